//! The `hush` command-line client: one-shot commands and the interactive `hush chat`.
//!
//! Layer: a program at the top; it drives hush-client and uses hush-vault only to harden the
//! process.
//!
//! What it does: parses the command line, resolves the home directory, and drives the
//! `hush-client` library. What it does not do: any cryptography or protocol work of its own.
//!
//! Decisions:
//! - Showing a received message is its display: `read`, `history` and `chat` reveal what they
//!   print, so its read timer starts then (and a view-once message is consumed). Nothing is ever
//!   printed without starting its timer.
//! - One-shot commands try an unreachable relay twice, 3 s each, then fail naming the relay;
//!   `chat` keeps the library's patient reconnection defaults.
//! - Relay connections are per contact unless `--transport per-relay` (or `HUSH_TRANSPORT`)
//!   asks for one per relay; see `docs/client.md`, "Transport isolation".
//! - In `chat`, a view-once message stays on the (alternate) screen until the chat ends; it is
//!   already gone from the store when it appears.
//! - Errors go to stderr as one line, also with `--json`; the exit status is 1 (2 for a
//!   malformed command line).
//! - The process hardens itself before anything else (no core files, not dumpable, so other
//!   processes of the same user cannot read its memory), and takes `HUSH_PASSPHRASE` out of
//!   its environment before any thread starts.
//! - `--proxy` (or `HUSH_PROXY`) sends every relay connection through a SOCKS5 proxy's UDP
//!   association; a proxy that is down or cannot carry UDP is an error naming it, never a
//!   reason to connect directly.

mod args;
mod chat;
mod commands;
mod confirm;
mod events;
mod expire;
mod files;
mod groups;
mod home;
mod open;
mod output;
mod passphrase;
mod present;
mod progress;
mod qr;

use std::process::ExitCode;

use clap::Parser;

use args::{Cli, Command, Global};
use output::Output;

fn main() -> ExitCode {
    for gap in hush_vault::process::harden() {
        eprintln!("hush: warning: {gap}; a crash or another process could read secrets");
    }
    passphrase::take_from_env();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("hush: {err:#}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let home = home::resolve(cli.global.home.as_deref(), &|k| std::env::var(k).ok())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(dispatch(cli.command, &home, cli.global))
}

async fn dispatch(command: Command, home: &std::path::Path, global: Global) -> anyhow::Result<()> {
    let json = global.json;
    let mut out = Output::stdout(json);
    if let Command::Init {
        name,
        relay,
        passphrase,
    } = &command
    {
        let options = open::options(open::Patience::OneShot, global.proxy, global.transport);
        return commands::init(home, name, relay, *passphrase, &options, &mut out).await;
    }
    let patience = if matches!(command, Command::Chat { .. }) {
        open::Patience::Interactive
    } else {
        open::Patience::OneShot
    };
    let client = open::open_home(home, patience, global.proxy, global.transport).await?;
    let result = match &command {
        Command::Init { .. } => Ok(()),
        Command::Token { relay } => commands::token(&client, relay, &mut out).await,
        Command::Invite { as_name, expires } => {
            commands::invite(&client, as_name, *expires, &mut out).await
        }
        Command::Accept {
            invitation,
            as_name,
        } => commands::accept(&client, invitation, as_name, &mut out).await,
        Command::Send {
            name,
            file: Some(path),
            timer,
            view_once,
            ..
        } if groups::is_group(&client, name).await => {
            groups::send_file(&client, name, path, *timer, *view_once, &mut out).await
        }
        Command::Send {
            name,
            file: Some(path),
            timer,
            view_once,
            ..
        } => files::send(&client, name, path, *timer, *view_once, &mut out).await,
        Command::Send {
            name,
            text,
            timer,
            view_once,
            file: None,
        } => commands::send(&client, name, text.clone(), *timer, *view_once, &mut out).await,
        Command::Save { msg_id, to } => files::save(&client, msg_id, to.as_deref(), &mut out).await,
        Command::Read { name, wait } => {
            commands::read(&client, name.as_deref(), *wait, &mut out).await
        }
        Command::History { name } => commands::history(&client, name, &mut out).await,
        Command::Contacts => commands::contacts(&client, &mut out).await,
        Command::Verify { name, mark } => commands::verify(&client, name, *mark, &mut out).await,
        Command::Timer { name, setting } => {
            commands::timer(&client, name, *setting, &mut out).await
        }
        Command::Unsend { name, msg_id } => commands::unsend(&client, name, msg_id, &mut out).await,
        Command::Burn { name, yes } => commands::burn(&client, name, *yes, &mut out).await,
        Command::Block { name } => commands::block(&client, name, &mut out).await,
        Command::Expire => expire::run(&client, json).await,
        Command::Chat { name } => chat::run(&client, name.as_deref()).await,
        Command::Group { action } => groups::run(&client, action, &mut out).await,
    };
    client.close().await;
    result
}
