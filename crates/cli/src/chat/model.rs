//! The chat's view model: one conversation (with a contact or in a group) as the screen shows
//! it, and the input line.
//!
//! It is plain data with a clock passed in as `now` (unix seconds), so the rules (what is shown,
//! when a message vanishes, what a key does) are tested without a terminal or a client.
//!
//! What it does not do: talk to the client or draw. The event loop feeds it what the client
//! reports, and `view.rs` draws it.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::command::{self, Action};

/// The most status lines kept; older ones scroll away.
const MAX_STATUS_LINES: usize = 200;

/// How many hex digits of a message id the chat shows (and `/unsend` needs at least).
pub(crate) const SHORT_ID_LEN: usize = 8;

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    /// We sent it.
    Sent,
    /// The contact sent it.
    Received,
}

/// A message as the chat shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChatMessage {
    /// The message id in lowercase hex.
    pub(crate) id: String,
    /// Who wrote it.
    pub(crate) direction: Direction,
    /// Its text.
    pub(crate) text: String,
    /// When it was sent (unix seconds).
    pub(crate) sent_at: u64,
    /// When it disappears (unix seconds), if it has a timer.
    pub(crate) expires_at: Option<u64>,
    /// Whether it is deleted right after this display.
    pub(crate) view_once: bool,
    /// Who wrote a received group message (`None` in a conversation with a contact, where the
    /// contact wrote it).
    pub(crate) author: Option<String>,
}

impl ChatMessage {
    /// The id as the chat shows it.
    pub(crate) fn short_id(&self) -> &str {
        self.id.get(..SHORT_ID_LEN).unwrap_or(&self.id)
    }
}

/// One line of the conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Entry {
    /// A message.
    Message(ChatMessage),
    /// Something that happened: a timer change, an unsend, a burn, an error.
    Status(String),
}

/// One member of a group, as the header lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Member {
    /// The member's name (a contact's name, ours, or a `member-` label).
    pub(crate) name: String,
    /// `owner`, `admin` or `member`.
    pub(crate) role: &'static str,
    /// Whether this is us.
    pub(crate) you: bool,
}

/// What a group conversation knows beyond a contact's.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct GroupPane {
    /// The members, us included.
    pub(crate) members: Vec<Member>,
}

impl GroupPane {
    /// Whether we own the group (and so may burn it).
    pub(crate) fn we_own(&self) -> bool {
        self.members.iter().any(|m| m.you && m.role == "owner")
    }
}

/// A destructive command waiting for a typed `yes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Confirm {
    /// `/burn`.
    Burn,
    /// `/leave`.
    Leave,
}

/// What a key press asks of the event loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeyOutcome {
    /// Nothing beyond redrawing.
    None,
    /// Carry out this action.
    Act(Action),
}

/// The conversation on screen and the line being typed.
#[derive(Debug, Clone)]
pub(crate) struct ChatModel {
    /// The contact's or the group's local name.
    pub(crate) name: String,
    /// The group's members, if this is a group.
    pub(crate) group: Option<GroupPane>,
    /// The conversation's disappearing timer, in seconds.
    pub(crate) timer: Option<u64>,
    /// Whether the contact's safety number was verified.
    pub(crate) verified: bool,
    /// Messages and status lines, oldest first.
    pub(crate) entries: Vec<Entry>,
    /// The line being typed.
    pub(crate) input: String,
    /// Set after `/burn` or `/leave`: the next line must be `yes` to go ahead.
    pub(crate) confirming: Option<Confirm>,
    /// Set once the conversation is burned, blocked or left: nothing more can be sent.
    pub(crate) closed: bool,
    /// How many unread messages wait in other conversations.
    pub(crate) unread_elsewhere: usize,
}

impl ChatModel {
    /// An empty chat with contact `name`.
    pub(crate) fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            group: None,
            timer: None,
            verified: false,
            entries: Vec::new(),
            input: String::new(),
            confirming: None,
            closed: false,
            unread_elsewhere: 0,
        }
    }

    /// An empty chat in group `name`.
    pub(crate) fn new_group(name: impl Into<String>, pane: GroupPane) -> Self {
        Self {
            group: Some(pane),
            ..Self::new(name)
        }
    }

    /// Whether this is a group conversation.
    pub(crate) fn is_group(&self) -> bool {
        self.group.is_some()
    }

    /// Adds a message, unless one with the same id is already shown.
    pub(crate) fn add_message(&mut self, message: ChatMessage) {
        let known = self
            .messages()
            .any(|m| m.id == message.id && m.direction == message.direction);
        if !known {
            self.entries.push(Entry::Message(message));
        }
    }

    /// Removes the message with this id. Returns whether it was shown.
    pub(crate) fn remove_message(&mut self, id: &str) -> bool {
        let before = self.entries.len();
        self.entries
            .retain(|e| !matches!(e, Entry::Message(m) if m.id == id));
        self.entries.len() != before
    }

    /// Removes every message whose expiry has come. Returns how many vanished.
    pub(crate) fn expire(&mut self, now: u64) -> usize {
        let before = self.entries.len();
        self.entries.retain(
            |e| !matches!(e, Entry::Message(ChatMessage { expires_at: Some(at), .. }) if *at <= now),
        );
        before - self.entries.len()
    }

    /// Removes every message, as after a burn.
    pub(crate) fn clear_messages(&mut self) {
        self.entries.retain(|e| matches!(e, Entry::Status(_)));
    }

    /// Adds a status line.
    pub(crate) fn status(&mut self, text: impl Into<String>) {
        self.entries.push(Entry::Status(text.into()));
        let statuses = self
            .entries
            .iter()
            .filter(|e| matches!(e, Entry::Status(_)))
            .count();
        if statuses > MAX_STATUS_LINES {
            if let Some(first) = self
                .entries
                .iter()
                .position(|e| matches!(e, Entry::Status(_)))
            {
                self.entries.remove(first);
            }
        }
    }

    /// The messages shown, oldest first.
    pub(crate) fn messages(&self) -> impl Iterator<Item = &ChatMessage> {
        self.entries.iter().filter_map(|e| match e {
            Entry::Message(m) => Some(m),
            Entry::Status(_) => None,
        })
    }

    /// The full id of the one sent message whose id starts with `prefix`.
    pub(crate) fn resolve_sent_id(&self, prefix: &str) -> Result<String, String> {
        if prefix.len() < 4 {
            return Err(format!(
                "give at least 4 characters of the id (shown before each message), not {prefix:?}"
            ));
        }
        let mut found = self
            .messages()
            .filter(|m| m.direction == Direction::Sent && m.id.starts_with(prefix));
        match (found.next(), found.next()) {
            (Some(m), None) => Ok(m.id.clone()),
            (Some(_), Some(_)) => Err(format!(
                "more than one of your messages starts with {prefix}; give more of the id"
            )),
            (None, _) => Err(format!(
                "none of your messages on screen has the id {prefix}; only your own messages can be unsent"
            )),
        }
    }

    /// Applies a key press to the input line; a submitted line becomes an action.
    pub(crate) fn on_key(&mut self, key: KeyEvent) -> KeyOutcome {
        if key.kind == KeyEventKind::Release {
            return KeyOutcome::None;
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        match key.code {
            KeyCode::Char('c' | 'd') if ctrl => KeyOutcome::Act(Action::Quit),
            KeyCode::Char('o') if ctrl => KeyOutcome::Act(Action::List),
            KeyCode::Char('u') if ctrl => {
                self.input.clear();
                KeyOutcome::None
            }
            KeyCode::Char(c) if !ctrl => {
                self.input.push(c);
                KeyOutcome::None
            }
            KeyCode::Backspace => {
                self.input.pop();
                KeyOutcome::None
            }
            KeyCode::Esc => {
                self.input.clear();
                self.cancel_confirm();
                KeyOutcome::None
            }
            KeyCode::Enter => self.submit(),
            _ => KeyOutcome::None,
        }
    }

    /// Takes the input line and works out what it asks for.
    fn submit(&mut self) -> KeyOutcome {
        let line = std::mem::take(&mut self.input);
        if let Some(confirm) = self.confirming.take() {
            if line.trim().eq_ignore_ascii_case("yes") {
                return KeyOutcome::Act(match confirm {
                    Confirm::Burn => Action::Burn,
                    Confirm::Leave => Action::Leave,
                });
            }
            self.status(cancelled(confirm));
            return KeyOutcome::None;
        }
        match command::parse(&line) {
            Ok(None) => KeyOutcome::None,
            Ok(Some(action @ (Action::Burn | Action::Leave))) => self.ask_confirmation(&action),
            Ok(Some(Action::Help)) => {
                self.status(command::COMMANDS_HELP);
                KeyOutcome::None
            }
            Ok(Some(Action::Send(_) | Action::Timer(_) | Action::Unsend(_))) if self.closed => {
                self.status(
                    "this conversation is closed; Ctrl-O for the list, Ctrl-C or /quit to leave",
                );
                KeyOutcome::None
            }
            Ok(Some(action)) => KeyOutcome::Act(action),
            Err(message) => {
                self.status(message);
                KeyOutcome::None
            }
        }
    }

    /// Asks for a typed `yes` before a burn or a leave, or says why it cannot be done here.
    fn ask_confirmation(&mut self, action: &Action) -> KeyOutcome {
        let name = self.name.clone();
        let (confirm, question) = match (action, &self.group) {
            (Action::Leave, None) => {
                self.status(format!(
                    "/leave is for groups; /burn ends the conversation with {name}"
                ));
                return KeyOutcome::None;
            }
            (Action::Burn, Some(pane)) if !pane.we_own() => {
                self.status(format!(
                    "only the owner of {name} can burn it; /leave erases your copy"
                ));
                return KeyOutcome::None;
            }
            (Action::Leave, Some(_)) => (
                Confirm::Leave,
                format!("leaving {name} erases your copy of it and tells its members. Type yes and Enter to go ahead, anything else to cancel"),
            ),
            (_, Some(_)) => (
                Confirm::Burn,
                format!("burn destroys {name} for EVERY member. Type yes and Enter to go ahead, anything else to cancel"),
            ),
            (_, None) => (
                Confirm::Burn,
                format!("burn destroys the whole conversation with {name} on BOTH sides. Type yes and Enter to go ahead, anything else to cancel"),
            ),
        };
        self.confirming = Some(confirm);
        self.status(question);
        KeyOutcome::None
    }

    fn cancel_confirm(&mut self) {
        if let Some(confirm) = self.confirming.take() {
            self.status(cancelled(confirm));
        }
    }
}

/// The status line after a cancelled confirmation.
fn cancelled(confirm: Confirm) -> &'static str {
    match confirm {
        Confirm::Burn => "burn cancelled; nothing was deleted",
        Confirm::Leave => "leave cancelled; you are still a member",
    }
}
