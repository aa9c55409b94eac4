//! The chat's view model: the conversation as the screen shows it, and the input line.
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
    /// The contact's local name.
    pub(crate) contact: String,
    /// The conversation's disappearing timer, in seconds.
    pub(crate) timer: Option<u64>,
    /// Whether the contact's safety number was verified.
    pub(crate) verified: bool,
    /// Messages and status lines, oldest first.
    pub(crate) entries: Vec<Entry>,
    /// The line being typed.
    pub(crate) input: String,
    /// Set after `/burn`: the next line must be `yes` to go ahead.
    pub(crate) confirming_burn: bool,
    /// Set once the conversation is burned or blocked: nothing more can be sent.
    pub(crate) closed: bool,
}

impl ChatModel {
    /// An empty chat with `contact`.
    pub(crate) fn new(contact: impl Into<String>) -> Self {
        Self {
            contact: contact.into(),
            timer: None,
            verified: false,
            entries: Vec::new(),
            input: String::new(),
            confirming_burn: false,
            closed: false,
        }
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
                self.cancel_burn();
                KeyOutcome::None
            }
            KeyCode::Enter => self.submit(),
            _ => KeyOutcome::None,
        }
    }

    /// Takes the input line and works out what it asks for.
    fn submit(&mut self) -> KeyOutcome {
        let line = std::mem::take(&mut self.input);
        if self.confirming_burn {
            self.confirming_burn = false;
            if line.trim().eq_ignore_ascii_case("yes") {
                return KeyOutcome::Act(Action::Burn);
            }
            self.status("burn cancelled; nothing was deleted");
            return KeyOutcome::None;
        }
        match command::parse(&line) {
            Ok(None) => KeyOutcome::None,
            Ok(Some(Action::Burn)) => {
                self.confirming_burn = true;
                self.status(format!(
                    "burn destroys the whole conversation with {} on BOTH sides. Type yes and Enter to go ahead, anything else to cancel",
                    self.contact
                ));
                KeyOutcome::None
            }
            Ok(Some(Action::Send(_) | Action::Timer(_) | Action::Unsend(_))) if self.closed => {
                self.status("this conversation is closed; press Ctrl-C or type /quit to leave");
                KeyOutcome::None
            }
            Ok(Some(action)) => KeyOutcome::Act(action),
            Err(message) => {
                self.status(message);
                KeyOutcome::None
            }
        }
    }

    fn cancel_burn(&mut self) {
        if self.confirming_burn {
            self.confirming_burn = false;
            self.status("burn cancelled; nothing was deleted");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(id: &str, direction: Direction, expires_at: Option<u64>) -> ChatMessage {
        ChatMessage {
            id: id.into(),
            direction,
            text: format!("text of {id}"),
            sent_at: 100,
            expires_at,
            view_once: false,
        }
    }

    fn type_line(model: &mut ChatModel, line: &str) -> KeyOutcome {
        for c in line.chars() {
            assert_eq!(
                model.on_key(KeyEvent::from(KeyCode::Char(c))),
                KeyOutcome::None
            );
        }
        model.on_key(KeyEvent::from(KeyCode::Enter))
    }

    #[test]
    fn expiry_removes_exactly_the_messages_whose_time_has_come() {
        let mut model = ChatModel::new("bob");
        model.add_message(message("aaaa0001", Direction::Sent, Some(130)));
        model.add_message(message("aaaa0002", Direction::Received, Some(160)));
        model.add_message(message("aaaa0003", Direction::Received, None));
        assert_eq!(model.expire(129), 0);
        assert_eq!(model.expire(130), 1);
        let left: Vec<_> = model.messages().map(|m| m.id.as_str()).collect();
        assert_eq!(left, ["aaaa0002", "aaaa0003"]);
        assert_eq!(model.expire(10_000), 1);
    }

    #[test]
    fn a_redelivered_message_is_shown_once() {
        let mut model = ChatModel::new("bob");
        model.add_message(message("aaaa0001", Direction::Received, None));
        model.add_message(message("aaaa0001", Direction::Received, None));
        assert_eq!(model.messages().count(), 1);
        assert!(model.remove_message("aaaa0001"));
        assert!(!model.remove_message("aaaa0001"));
    }

    #[test]
    fn typing_and_enter_send_a_message() {
        let mut model = ChatModel::new("bob");
        assert_eq!(
            type_line(&mut model, "hi bob"),
            KeyOutcome::Act(Action::Send("hi bob".into()))
        );
        assert!(model.input.is_empty());
        model.on_key(KeyEvent::from(KeyCode::Char('x')));
        model.on_key(KeyEvent::from(KeyCode::Backspace));
        assert!(model.input.is_empty());
    }

    #[test]
    fn burn_needs_a_typed_yes() {
        let mut model = ChatModel::new("bob");
        assert_eq!(type_line(&mut model, "/burn"), KeyOutcome::None);
        assert!(model.confirming_burn);
        assert_eq!(type_line(&mut model, "no"), KeyOutcome::None);
        assert!(!model.confirming_burn);
        type_line(&mut model, "/burn");
        assert_eq!(type_line(&mut model, "yes"), KeyOutcome::Act(Action::Burn));
    }

    #[test]
    fn unsend_resolves_a_unique_prefix_of_our_own_messages() {
        let mut model = ChatModel::new("bob");
        model.add_message(message("abcd1111", Direction::Sent, None));
        model.add_message(message("abcd2222", Direction::Sent, None));
        model.add_message(message("ffff3333", Direction::Received, None));
        assert_eq!(model.resolve_sent_id("abcd1").unwrap(), "abcd1111");
        assert!(model.resolve_sent_id("abcd").unwrap_err().contains("more"));
        assert!(model.resolve_sent_id("ffff33").is_err());
        assert!(model.resolve_sent_id("ab").is_err());
    }

    #[test]
    fn a_closed_conversation_sends_nothing_but_can_be_left() {
        let mut model = ChatModel::new("bob");
        model.closed = true;
        assert_eq!(type_line(&mut model, "hello"), KeyOutcome::None);
        assert_eq!(
            type_line(&mut model, "/quit"),
            KeyOutcome::Act(Action::Quit)
        );
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(model.on_key(ctrl_c), KeyOutcome::Act(Action::Quit));
    }

    #[test]
    fn errors_become_status_lines() {
        let mut model = ChatModel::new("bob");
        type_line(&mut model, "/nope");
        assert!(matches!(model.entries.last(), Some(Entry::Status(s)) if s.contains("unknown")));
    }
}
