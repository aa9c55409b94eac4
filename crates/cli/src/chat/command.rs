//! What a line typed into the chat's input means: a message, or one of the slash commands.
//!
//! What it does not do: carry anything out. The event loop turns an [`Action`] into calls on
//! the client.

use std::time::Duration;

use crate::args::{parse_duration, TimerSetting};

/// The help shown for an unknown or malformed command.
pub(crate) const COMMANDS_HELP: &str =
    "commands: /timer DUR|off, /unsend ID, /burn, /leave (groups), /verify, /switch NAME, /list or Ctrl-O (the conversation list), /quit or Ctrl-C (start with // to send a /)";

/// One thing the user asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    /// Send this text.
    Send(String),
    /// Set the conversation's disappearing timer for both sides.
    Timer(TimerSetting),
    /// Unsend the message whose id starts with this prefix.
    Unsend(String),
    /// Ask to burn the conversation (the model then asks for confirmation).
    Burn,
    /// Ask to leave the group (the model then asks for confirmation).
    Leave,
    /// Go back to the conversation list.
    List,
    /// Show the commands and keys.
    Help,
    /// Open the conversation with this contact or group.
    Switch(String),
    /// Show the safety number.
    Verify,
    /// Leave the chat.
    Quit,
}

/// Parses one submitted input line. An empty line means nothing (`Ok(None)`).
///
/// A line that starts with `/` is a command; `//` escapes a literal leading slash.
pub(crate) fn parse(line: &str) -> Result<Option<Action>, String> {
    if line.trim().is_empty() {
        return Ok(None);
    }
    if let Some(rest) = line.strip_prefix("//") {
        return Ok(Some(Action::Send(format!("/{rest}"))));
    }
    let Some(command) = line.strip_prefix('/') else {
        return Ok(Some(Action::Send(line.to_owned())));
    };
    let mut words = command.split_whitespace();
    let name = words.next().unwrap_or_default();
    let arg = words.next();
    let extra = words.next();
    let action = match (name, arg, extra) {
        ("timer", Some(arg), None) => Action::Timer(parse_timer(arg)?),
        ("timer", _, _) => return Err("usage: /timer DUR|off, e.g. /timer 5m".into()),
        ("unsend", Some(id), None) => Action::Unsend(id.to_ascii_lowercase()),
        ("unsend", _, _) => {
            return Err("usage: /unsend ID, with the id shown before your message".into())
        }
        ("burn", None, _) => Action::Burn,
        ("leave", None, _) => Action::Leave,
        ("list", None, _) => Action::List,
        ("help" | "h" | "?", None, _) => Action::Help,
        ("switch", Some(name), None) => Action::Switch(name.to_owned()),
        ("switch", _, _) => return Err("usage: /switch NAME, a contact's or a group's name".into()),
        ("verify", None, _) => Action::Verify,
        ("quit" | "q" | "exit", None, _) => Action::Quit,
        _ => return Err(format!("unknown command /{command}; {COMMANDS_HELP}")),
    };
    Ok(Some(action))
}

fn parse_timer(arg: &str) -> Result<TimerSetting, String> {
    if arg.eq_ignore_ascii_case("off") {
        return Ok(TimerSetting::Off);
    }
    let duration: Duration = parse_duration(arg)?;
    if duration.is_zero() {
        return Err("a timer must be longer than 0s; use /timer off to turn it off".into());
    }
    Ok(TimerSetting::After(duration))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_a_message_and_blank_is_nothing() {
        assert_eq!(parse("hello").unwrap(), Some(Action::Send("hello".into())));
        assert_eq!(parse("   ").unwrap(), None);
        assert_eq!(
            parse("//timer is a word").unwrap(),
            Some(Action::Send("/timer is a word".into()))
        );
    }

    #[test]
    fn every_command_parses() {
        assert_eq!(
            parse("/timer 5m").unwrap(),
            Some(Action::Timer(TimerSetting::After(Duration::from_secs(300))))
        );
        assert_eq!(
            parse("/timer OFF").unwrap(),
            Some(Action::Timer(TimerSetting::Off))
        );
        assert_eq!(
            parse("/unsend A1B2").unwrap(),
            Some(Action::Unsend("a1b2".into()))
        );
        assert_eq!(parse("/burn").unwrap(), Some(Action::Burn));
        assert_eq!(parse("/verify").unwrap(), Some(Action::Verify));
        assert_eq!(parse("/leave").unwrap(), Some(Action::Leave));
        assert_eq!(parse("/list").unwrap(), Some(Action::List));
        assert_eq!(
            parse("/switch team").unwrap(),
            Some(Action::Switch("team".into()))
        );
        assert_eq!(parse("/quit").unwrap(), Some(Action::Quit));
    }

    #[test]
    fn malformed_commands_say_how_to_use_them() {
        assert!(parse("/timer").unwrap_err().contains("usage: /timer"));
        assert!(parse("/timer soon").unwrap_err().contains("duration"));
        assert!(parse("/timer 0s").unwrap_err().contains("/timer off"));
        assert!(parse("/unsend").unwrap_err().contains("usage: /unsend"));
        assert!(parse("/switch").unwrap_err().contains("usage: /switch"));
        assert!(parse("/switch a b").unwrap_err().contains("usage: /switch"));
        assert!(parse("/frobnicate").unwrap_err().contains("/quit"));
        assert!(parse("/burn now").unwrap_err().contains("unknown command"));
    }
}
