//! The `hush` command-line client: one-shot commands and the interactive `hush chat`.
//!
//! What it does: parses the command line, resolves the home directory, and drives the
//! `hush-client` library. What it does not do: any cryptography or protocol work of its own.

mod args;
mod chat;
mod home;
mod output;
mod passphrase;
mod qr;

use std::process::ExitCode;

use clap::Parser;

use args::{Cli, Command};

fn main() -> ExitCode {
    disable_core_dumps();
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
    let _home = home::resolve(cli.global.home.as_deref(), &|k| std::env::var(k).ok())?;
    let name = command_name(&cli.command);
    anyhow::bail!("`hush {name}` is not available in this build yet; nothing was changed")
}

fn command_name(command: &Command) -> &'static str {
    match command {
        Command::Init { .. } => "init",
        Command::Invite { .. } => "invite",
        Command::Accept { .. } => "accept",
        Command::Send { .. } => "send",
        Command::Read { .. } => "read",
        Command::History { .. } => "history",
        Command::Contacts => "contacts",
        Command::Verify { .. } => "verify",
        Command::Timer { .. } => "timer",
        Command::Unsend { .. } => "unsend",
        Command::Burn { .. } => "burn",
        Command::Block { .. } => "block",
        Command::Chat { .. } => "chat",
    }
}

/// Keeps secrets out of core files: the soft and hard core size limits become 0.
fn disable_core_dumps() {
    let none = rustix::process::Rlimit {
        current: Some(0),
        maximum: Some(0),
    };
    if let Err(err) = rustix::process::setrlimit(rustix::process::Resource::Core, none) {
        eprintln!("hush: warning: cannot disable core dumps ({err}); a crash could write secrets to disk");
    }
}
