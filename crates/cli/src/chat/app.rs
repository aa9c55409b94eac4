//! The chat's event loop: key presses, the client's event stream, and a one-second tick for the
//! countdowns, all feeding the view model, which is redrawn after each.
//!
//! Showing a received message counts as its display: its read timer starts (and a view-once
//! message is deleted from the store) as it appears on screen.
//!
//! What it does not do: draw (see `view.rs`) or interpret typed lines (see `command.rs`).

use std::io::{self, IsTerminal};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use crossterm::event::Event as TermEvent;
use hush_client::{Client, ClientEvent, MessageView};
use ratatui::backend::Backend;
use ratatui::Terminal;
use tokio::sync::mpsc;

use super::command::Action;
use super::model::{ChatMessage, ChatModel, Direction, KeyOutcome};
use super::terminal::ChatTerminal;
use super::view;
use crate::args::TimerSetting;
use crate::events::describe;
use crate::present::{self, now_secs, timer_secs};

/// How often the countdowns are redrawn.
const TICK: Duration = Duration::from_secs(1);

/// Runs `hush chat NAME` on the terminal until the user quits.
pub(crate) async fn run(client: &Client, name: &str) -> Result<()> {
    if !io::stdin().is_terminal() || !io::stdout().is_terminal() {
        bail!("`hush chat` needs a terminal; in scripts use `hush send` and `hush read`");
    }
    present::contact(client, name).await?;
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

/// The event loop on any ratatui backend, with terminal events from `keys`.
pub(crate) async fn run_on<B: Backend>(
    client: &Client,
    name: &str,
    terminal: &mut Terminal<B>,
    mut keys: mpsc::UnboundedReceiver<TermEvent>,
) -> Result<()> {
    let contact = present::contact(client, name).await?;
    let mut model = ChatModel::new(name);
    model.timer = timer_secs(contact.timer);
    model.verified = contact.verified;
    let mut events = client.subscribe_events();
    load_history(client, name, &mut model).await?;
    let mut tick = tokio::time::interval(TICK);
    let mut events_open = true;
    loop {
        let now = now_secs();
        model.expire(now);
        terminal.draw(|frame| view::render(frame, &model, now))?;
        tokio::select! {
            key = keys.recv() => {
                let Some(key) = key else { break };
                let TermEvent::Key(key) = key else { continue };
                if let KeyOutcome::Act(action) = model.on_key(key) {
                    if action == Action::Quit {
                        break;
                    }
                    act(client, name, &mut model, action).await;
                }
            }
            event = events.recv(), if events_open => match event {
                Some(event) => on_event(client, name, &mut model, event).await,
                None => {
                    events_open = false;
                    model.status("incoming messages stopped; /quit and start the chat again");
                }
            },
            _ = tick.tick() => {}
        }
    }
    Ok(())
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

async fn load_history(client: &Client, name: &str, model: &mut ChatModel) -> Result<()> {
    for view in client.history(name).await? {
        let (shown, text) = present::reveal(client, name, view).await?;
        model.add_message(chat_message(&shown, text));
    }
    Ok(())
}

fn chat_message(view: &MessageView, text: Option<String>) -> ChatMessage {
    let text = text.unwrap_or_else(|| {
        if let Some(f) = &view.file {
            let size = crate::output::size_text(f.size);
            if view.outgoing {
                format!("[file] {} ({size})", f.name)
            } else {
                // The chat has no /save: saving happens outside it.
                format!(
                    "[file] {} ({size}); save it outside the chat with: hush save {}",
                    f.name,
                    view.id.to_hex()
                )
            }
        } else if view.view_once {
            "(view-once message)".into()
        } else {
            String::new()
        }
    });
    ChatMessage {
        id: view.id.to_hex(),
        direction: if view.outgoing {
            Direction::Sent
        } else {
            Direction::Received
        },
        text,
        sent_at: view.sent_at,
        expires_at: view.expires_at,
        view_once: view.view_once,
    }
}

/// Carries out what the user asked; failures become status lines.
async fn act(client: &Client, name: &str, model: &mut ChatModel, action: Action) {
    if let Err(err) = try_act(client, name, model, action).await {
        model.status(format!("{err:#}"));
    }
}

async fn try_act(client: &Client, name: &str, model: &mut ChatModel, action: Action) -> Result<()> {
    match action {
        Action::Send(text) => {
            let sent = client.send_text(name, &text, None, false).await?;
            model.add_message(chat_message(&sent, Some(text)));
        }
        Action::Timer(setting) => {
            let timer = match setting {
                TimerSetting::After(d) => Some(d),
                TimerSetting::Off => None,
            };
            client.set_timer(name, timer).await?;
            model.timer = timer_secs(timer);
            model.status(match timer {
                Some(_) => format!(
                    "you set the disappearing timer to {} for both sides",
                    view::timer_label(model.timer)
                ),
                None => "you turned the disappearing timer off for both sides".into(),
            });
        }
        Action::Unsend(prefix) => {
            let hex = model.resolve_sent_id(&prefix).map_err(anyhow::Error::msg)?;
            let id = present::parse_message_id(&hex)?;
            client.unsend(name, id).await?;
            model.remove_message(&hex);
            model.status(format!(
                "you unsent {}; it is gone on both sides",
                &hex[..8]
            ));
        }
        Action::Burn => {
            client.burn(name).await?;
            model.clear_messages();
            model.closed = true;
            model.status("you burned the conversation on both sides; /quit to leave");
        }
        Action::Verify => {
            let number = client.safety_number(name).await?;
            model.status(format!(
                "safety number with {name}: {} (compare it with {name}; `hush verify {name} --mark` records it)",
                number.digits()
            ));
        }
        Action::Quit => {}
    }
    Ok(())
}

async fn on_event(client: &Client, name: &str, model: &mut ChatModel, event: ClientEvent) {
    match &event {
        ClientEvent::Message { contact, message } if contact == name => {
            match client.display(name, message.id).await {
                Ok(shown) => {
                    let text = present::body_text(&shown);
                    model.add_message(chat_message(&shown, text));
                }
                Err(err) => model.status(format!("cannot show a new message: {err}")),
            }
            return;
        }
        ClientEvent::Message { contact, .. } => {
            model.status(format!("new message from {contact} (hush chat {contact})"));
            return;
        }
        ClientEvent::RelayUnreachable { relay } => {
            model.status(format!(
                "cannot reach the relay {relay}; retrying. Nothing was lost"
            ));
            return;
        }
        _ => {}
    }
    if event.contact() != Some(name) {
        return;
    }
    match &event {
        ClientEvent::Expired { id, .. } => {
            model.remove_message(&id.to_hex());
            return;
        }
        ClientEvent::Unsent { id, .. } => {
            model.remove_message(&id.to_hex());
        }
        ClientEvent::TimerChanged { timer, .. } => model.timer = timer_secs(*timer),
        ClientEvent::Burned { .. } => {
            model.clear_messages();
            model.closed = true;
        }
        ClientEvent::Blocked { .. } => model.closed = true,
        _ => {}
    }
    if let Some((_, text)) = describe(&event) {
        model.status(text);
    }
}
