//! The chat's event loop: key presses, the client's event stream, and a one-second tick for the
//! countdowns, all feeding the session (the conversation list and the open conversation),
//! which is redrawn after each.
//!
//! Showing a received message counts as its display: its read timer starts (and a view-once
//! message is deleted from the store) as it appears on screen. A message of a conversation not
//! on screen is only counted: it stays unread until its conversation is opened.
//!
//! What it does not do: draw (see `view.rs`, `list_view.rs`), interpret typed lines (see
//! `command.rs`), carry them out (see `act.rs`) or read what arrives (see `incoming.rs`).

use std::io::{self, IsTerminal};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use crossterm::event::Event as TermEvent;
use hush_client::Client;
use ratatui::backend::Backend;
use ratatui::Terminal;
use tokio::sync::mpsc;

use super::session::{Outcome, Session};
use super::terminal::ChatTerminal;
use super::{act, incoming, list_view, load, view};
use crate::present::now_secs;

/// How often the countdowns are redrawn.
const TICK: Duration = Duration::from_secs(1);

/// Runs `hush chat [NAME]` on the terminal until the user quits.
pub(crate) async fn run(client: &Client, name: Option<&str>) -> Result<()> {
    if !io::stdin().is_terminal() || !io::stdout().is_terminal() {
        bail!("`hush chat` needs a terminal; in scripts use `hush send` and `hush read`");
    }
    if let Some(name) = name {
        load::check_known(client, name).await?;
    }
    // Handled before the terminal changes, so that a signal can never leave it in raw mode.
    let stop = stop_signal()?;
    let mut terminal = ChatTerminal::enter()?;
    let keys = spawn_key_reader();
    let result = tokio::select! {
        result = run_on(client, name, &mut terminal.terminal, keys) => result,
        signal = stop => Err(anyhow!("`hush chat` stopped by {signal}")),
    };
    drop(terminal);
    result
}

/// Resolves to the name of the first SIGTERM, SIGHUP or SIGINT (raw mode turns Ctrl-C into a
/// key, so SIGINT comes only from `kill`). The handlers are installed when this returns.
fn stop_signal() -> Result<impl std::future::Future<Output = &'static str>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut hup = signal(SignalKind::hangup()).context("cannot handle SIGHUP")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = hup.recv() => "SIGHUP",
            _ = int.recv() => "SIGINT",
        }
    })
}

/// The event loop on any ratatui backend, with terminal events from `keys`. It starts in
/// conversation `name`, or in the conversation list without one.
pub(crate) async fn run_on<B: Backend>(
    client: &Client,
    name: Option<&str>,
    terminal: &mut Terminal<B>,
    mut keys: mpsc::UnboundedReceiver<TermEvent>,
) -> Result<()> {
    let mut session = Session::default();
    let mut events = client.subscribe_events();
    load::first_list(client, &mut session).await?;
    if let Some(name) = name {
        load::open(client, &mut session, name).await?;
    }
    let mut tick = tokio::time::interval(TICK);
    let mut events_open = true;
    loop {
        let now = now_secs();
        if let Some(chat) = session.open.as_mut() {
            chat.expire(now);
        }
        terminal.draw(|frame| draw(frame, &session, now))?;
        tokio::select! {
            key = keys.recv() => {
                let Some(key) = key else { break };
                let TermEvent::Key(key) = key else { continue };
                match session.on_key(key) {
                    Outcome::None => {}
                    Outcome::Quit => break,
                    Outcome::Open(name) => {
                        if let Err(err) = load::open(client, &mut session, &name).await {
                            session.status(format!("{err:#}"));
                        }
                    }
                    Outcome::Act(action) => act::act(client, &mut session, action).await,
                }
            }
            event = events.recv(), if events_open => match event {
                Some(event) => incoming::on_event(client, &mut session, event).await,
                None => {
                    events_open = false;
                    session.status("incoming messages stopped; /quit and start the chat again");
                }
            },
            _ = tick.tick() => {}
        }
    }
    Ok(())
}

/// Draws the open conversation, or the list.
fn draw(frame: &mut ratatui::Frame<'_>, session: &Session, now: u64) {
    match &session.open {
        Some(chat) => view::render(frame, chat, now),
        None => list_view::render(frame, &session.list),
    }
}

/// Reads terminal events on a thread of its own (crossterm's reader blocks).
fn spawn_key_reader() -> mpsc::UnboundedReceiver<TermEvent> {
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        while let Ok(event) = crossterm::event::read() {
            if tx.send(event).is_err() {
                break;
            }
        }
    });
    rx
}
