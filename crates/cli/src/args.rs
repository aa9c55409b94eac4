//! The command line: global flags and one subcommand per user action.
//!
//! This interface is a contract that scripts and tests depend on; change it only additively.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use hush_client::net::{Socks5Proxy, TransportMode};

/// hush: end-to-end encrypted, ephemeral messaging.
#[derive(Debug, Parser)]
#[command(name = "hush", version, about, propagate_version = true)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: Global,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Flags every subcommand accepts.
#[derive(Debug, Args)]
pub(crate) struct Global {
    /// Home directory for identity, contacts and messages (else HUSH_HOME, else the XDG data dir).
    #[arg(long, global = true, value_name = "DIR")]
    pub(crate) home: Option<PathBuf>,
    /// Print output as JSON, one object per line.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    /// Reach every relay through this SOCKS5 proxy, never directly (else HUSH_PROXY). It must
    /// support UDP ASSOCIATE: Tor's SOCKS port and `ssh -D` cannot carry hush's QUIC.
    #[arg(
        long,
        global = true,
        env = "HUSH_PROXY",
        value_name = "socks5://[USER:PASS@]HOST:PORT",
        value_parser = parse_proxy,
        hide_env_values = true
    )]
    pub(crate) proxy: Option<Socks5Proxy>,
    /// How relay connections are shared: per-contact (one per contact you send to, so a relay
    /// cannot link your sends to your inbox) or per-relay (one per relay, for constrained links).
    #[arg(long, global = true, env = "HUSH_TRANSPORT", value_name = "MODE",
          default_value = "per-contact", value_parser = parse_transport)]
    pub(crate) transport: TransportMode,
}

/// A SOCKS5 proxy URL.
pub(crate) fn parse_proxy(s: &str) -> Result<Socks5Proxy, String> {
    s.parse().map_err(|e| format!("invalid proxy URL: {e}"))
}

/// A transport mode: `per-contact` or `per-relay`.
fn parse_transport(s: &str) -> Result<TransportMode, String> {
    s.parse()
        .map_err(|e: hush_client::net::TransportModeError| e.to_string())
}

/// A duration such as `30s`, `5m`, `1h`, `1d` or `4w`.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s)
        .map_err(|e| format!("{e} (use a duration like 30s, 5m, 1h, 1d or 4w)"))
}

/// A disappearing timer: a duration, or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimerSetting {
    /// Messages disappear this long after they are read.
    After(Duration),
    /// No disappearing timer.
    Off,
}

fn parse_timer_setting(s: &str) -> Result<TimerSetting, String> {
    if s.eq_ignore_ascii_case("off") {
        Ok(TimerSetting::Off)
    } else {
        parse_duration(s).map(TimerSetting::After)
    }
}

/// What to do.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Create your identity and local store.
    Init {
        /// Your display name (kept locally).
        #[arg(long)]
        name: String,
        /// Your relay, as its operator gave it: hush://HOST:PORT#FINGERPRINT, or
        /// hush://TOKEN@HOST:PORT#FINGERPRINT for a relay that requires a create token.
        #[arg(long)]
        relay: String,
        /// Protect the local store with a passphrase (read from the terminal, or HUSH_PASSPHRASE).
        #[arg(long)]
        passphrase: bool,
    },
    /// Store a new create token for your relay (after the operator replaced or revoked yours).
    Token {
        /// Your relay's address with the token: hush://TOKEN@HOST:PORT#FINGERPRINT (without
        /// TOKEN@ to forget the token).
        relay: String,
    },
    /// Create a one-time invitation for a new contact.
    Invite {
        /// Your local name for whoever accepts it.
        #[arg(long = "as", value_name = "NAME")]
        as_name: String,
        /// How long the invitation stays valid (default 7d); after that it cannot be accepted
        /// and its queue and secrets are deleted.
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        expires: Option<Duration>,
    },
    /// Accept an invitation and create the contact.
    Accept {
        /// The hush://invite/... string.
        invitation: String,
        /// Your local name for the inviter.
        #[arg(long = "as", value_name = "NAME")]
        as_name: String,
    },
    /// Send a message (TEXT is read from stdin when omitted), or a file with --file.
    Send {
        /// The contact.
        name: String,
        /// The message text [default: read from stdin]. Text given here is visible to other
        /// local users (in `ps` and /proc) while hush runs, and stays in the shell history:
        /// prefer stdin for anything confidential.
        #[arg(conflicts_with = "file")]
        text: Option<String>,
        /// Send this file instead of a text (encrypted, uploaded to your relay; run the same
        /// command again to resume an interrupted upload).
        #[arg(long, value_name = "PATH")]
        file: Option<PathBuf>,
        /// Disappearing timer for this message.
        #[arg(long, value_parser = parse_duration)]
        timer: Option<Duration>,
        /// Delete the message right after its first display.
        #[arg(long)]
        view_once: bool,
    },
    /// Receive pending messages and print them, after any received earlier but never shown.
    Read {
        /// Only this contact.
        name: Option<String>,
        /// Wait this long for new messages.
        #[arg(long, value_parser = parse_duration)]
        wait: Option<Duration>,
    },
    /// Save a received file: download, check and decrypt it (resumes an interrupted download).
    Save {
        /// The message id that `hush read` printed.
        msg_id: String,
        /// Where to write it: a new file, or a directory [default: the current directory, with
        /// the sender's file name]. An existing file is never overwritten.
        #[arg(long, value_name = "PATH")]
        to: Option<PathBuf>,
    },
    /// Show what is still stored for a contact, both directions.
    History {
        /// The contact.
        name: String,
    },
    /// List contacts.
    Contacts,
    /// Show a contact's safety number; --mark records it as verified.
    Verify {
        /// The contact.
        name: String,
        /// Mark the contact verified.
        #[arg(long)]
        mark: bool,
    },
    /// Set the conversation's disappearing timer for both sides (a duration, or off).
    Timer {
        /// The contact.
        name: String,
        /// A duration such as 30s, 5m, 1h, 1d or 4w, or `off`.
        #[arg(value_parser = parse_timer_setting)]
        setting: TimerSetting,
    },
    /// Delete a message you sent, on both sides.
    Unsend {
        /// The contact.
        name: String,
        /// The message id printed by `send`.
        msg_id: String,
    },
    /// Destroy the whole conversation on both sides.
    Burn {
        /// The contact.
        name: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// Stop a contact from sending to you.
    Block {
        /// The contact.
        name: String,
    },
    /// Apply every deletion that is due (expired messages, blob deletions owed to relays) and
    /// exit: for a timer unit or cron, so that nothing expired stays on disk while hush is
    /// closed.
    Expire,
    /// Chat interactively: with a contact or in a group, or, without a name, choose from the
    /// list of every conversation with its unread count (Ctrl-O goes back to it).
    Chat {
        /// The contact or group; without one, the conversation list.
        name: Option<String>,
    },
    /// Group conversations: create one, manage its members, leave it or burn it. Send, read,
    /// history, unsend and timer take a group's name like a contact's.
    Group {
        #[command(subcommand)]
        action: GroupAction,
    },
}

/// What to do with a group.
#[derive(Debug, Subcommand)]
pub(crate) enum GroupAction {
    /// Create a group with you as its owner (groups and contacts share one name space).
    Create {
        /// The group's name.
        name: String,
        /// The group timer: messages disappear this long after they are read.
        #[arg(long, value_parser = parse_duration)]
        timer: Option<Duration>,
    },
    /// Add contacts to a group (owner and admins).
    Add {
        /// The group.
        name: String,
        /// The contacts to add.
        #[arg(required = true)]
        contacts: Vec<String>,
    },
    /// Remove a member (owner and admins): nothing sent afterwards reaches them.
    Remove {
        /// The group.
        name: String,
        /// The member, as `group members` names them.
        member: String,
    },
    /// Make a member an admin, or with --revoke take it back (owner only).
    Admin {
        /// The group.
        name: String,
        /// The member.
        member: String,
        /// Revoke admin rights instead.
        #[arg(long)]
        revoke: bool,
    },
    /// Leave a group: the members are told, and your copy is erased.
    Leave {
        /// The group.
        name: String,
    },
    /// List a group's members, their roles and whether you verified them.
    Members {
        /// The group.
        name: String,
    },
    /// Burn a group for everyone (owner only): every member's copy is erased.
    Burn {
        /// The group.
        name: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_forms() {
        let cli = Cli::try_parse_from([
            "hush", "--home", "/tmp/x", "send", "bob", "hi", "--timer", "5m",
        ])
        .unwrap();
        assert_eq!(cli.global.home, Some(PathBuf::from("/tmp/x")));
        match cli.command {
            Command::Send {
                name,
                text,
                timer,
                view_once,
                file,
            } => {
                assert_eq!(file, None);
                assert_eq!(name, "bob");
                assert_eq!(text.as_deref(), Some("hi"));
                assert_eq!(timer, Some(Duration::from_secs(300)));
                assert!(!view_once);
            }
            other => panic!("unexpected {other:?}"),
        }
        let cli = Cli::try_parse_from(["hush", "timer", "bob", "off", "--json"]).unwrap();
        assert!(cli.global.json);
        assert!(matches!(
            cli.command,
            Command::Timer {
                setting: TimerSetting::Off,
                ..
            }
        ));
    }

    #[test]
    fn parses_file_sending_and_saving() {
        let cli =
            Cli::try_parse_from(["hush", "send", "bob", "--file", "r.pdf", "--view-once"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Send { text: None, file: Some(ref f), view_once: true, .. } if f == &PathBuf::from("r.pdf")
        ));
        assert!(Cli::try_parse_from(["hush", "send", "bob", "hi", "--file", "r.pdf"]).is_err());
        let cli = Cli::try_parse_from(["hush", "save", "ab12", "--to", "/tmp/out"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Save { ref msg_id, to: Some(ref to) } if msg_id == "ab12" && to == &PathBuf::from("/tmp/out")
        ));
    }

    #[test]
    fn parses_the_transport_mode_and_names_a_bad_one() {
        let cli = Cli::try_parse_from(["hush", "contacts"]).unwrap();
        assert_eq!(cli.global.transport, TransportMode::PerContact);
        let cli = Cli::try_parse_from(["hush", "contacts", "--transport", "per-relay"]).unwrap();
        assert_eq!(cli.global.transport, TransportMode::PerRelay);
        let err = Cli::try_parse_from(["hush", "--transport", "per-host", "contacts"]).unwrap_err();
        assert!(
            err.to_string()
                .contains("unknown transport mode `per-host`: use per-contact or per-relay"),
            "{err}"
        );
    }

    #[test]
    fn parses_expire() {
        let cli = Cli::try_parse_from(["hush", "expire", "--json"]).unwrap();
        assert!(cli.global.json);
        assert!(matches!(cli.command, Command::Expire));
        assert!(Cli::try_parse_from(["hush", "expire", "now"]).is_err());
    }

    #[test]
    fn parses_group_commands() {
        let cli = Cli::try_parse_from(["hush", "group", "add", "deal", "bob", "carol"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Group { action: GroupAction::Add { ref name, ref contacts } }
                if name == "deal" && contacts == &["bob", "carol"]
        ));
        assert!(Cli::try_parse_from(["hush", "group", "add", "deal"]).is_err());
        let cli =
            Cli::try_parse_from(["hush", "group", "admin", "deal", "bob", "--revoke"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Group {
                action: GroupAction::Admin { revoke: true, .. }
            }
        ));
    }

    #[test]
    fn rejects_bad_durations() {
        let err = Cli::try_parse_from(["hush", "timer", "bob", "soon"]).unwrap_err();
        assert!(err.to_string().contains("duration"));
    }
}
