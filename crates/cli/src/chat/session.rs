//! The whole of `hush chat`: the conversation list, and the one conversation open on screen
//! (if any). Keys go to whichever is shown; a new message goes to the open conversation if it
//! belongs there, and otherwise raises its conversation's unread count.
//!
//! Plain data, tested without a terminal or a client.
//!
//! What it does not do: open a conversation (the event loop loads it from the client and hands
//! it to [`Session::open`]) or draw.

use crossterm::event::KeyEvent;

use super::command::Action;
use super::list::{Conversations, ListOutcome};
use super::model::{ChatModel, KeyOutcome};

/// What a key press asks of the event loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Nothing beyond redrawing.
    None,
    /// Load and open this conversation.
    Open(String),
    /// Carry out this action in the open conversation.
    Act(Action),
    /// Leave `hush chat`.
    Quit,
}

/// Where a new message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// On screen: its conversation is open.
    Show,
    /// Counted unread in the list.
    Counted,
    /// Its conversation is not listed yet: sync the list and route it again.
    Unlisted,
}

/// The list and the open conversation.
#[derive(Debug, Clone, Default)]
pub(crate) struct Session {
    /// Every contact and group.
    pub(crate) list: Conversations,
    /// The conversation on screen; `None` while the list is shown.
    pub(crate) open: Option<ChatModel>,
}

impl Session {
    /// Shows `chat`: its messages are read, and it is selected in the list.
    pub(crate) fn open(&mut self, mut chat: ChatModel) {
        self.list.mark_read(&chat.name);
        self.list.select(&chat.name);
        chat.unread_elsewhere = self.list.unread_except(&chat.name);
        self.open = Some(chat);
    }

    /// Closes the open conversation and shows the list, with it selected.
    pub(crate) fn back_to_list(&mut self) {
        if let Some(chat) = self.open.take() {
            self.list.select(&chat.name);
        }
    }

    /// The open conversation's name.
    pub(crate) fn open_name(&self) -> Option<&str> {
        self.open.as_ref().map(|c| c.name.as_str())
    }

    /// Routes new message `id` of conversation `name`.
    pub(crate) fn incoming(&mut self, name: &str, id: &str) -> Route {
        if self.open_name() == Some(name) {
            return Route::Show;
        }
        if !self.list.add_unread(name, id) {
            return Route::Unlisted;
        }
        self.recount();
        Route::Counted
    }

    /// Message `id` is gone (expired or unsent): it leaves the screen and the unread counts.
    /// Returns whether it was on screen.
    pub(crate) fn gone(&mut self, id: &str) -> bool {
        self.list.forget_message(id);
        self.recount();
        self.open.as_mut().is_some_and(|c| c.remove_message(id))
    }

    /// Says something: in the open conversation, else under the list.
    pub(crate) fn status(&mut self, text: impl Into<String>) {
        match &mut self.open {
            Some(chat) => chat.status(text),
            None => self.list.notice = Some(text.into()),
        }
    }

    /// Recomputes the open conversation's count of unread messages elsewhere.
    pub(crate) fn recount(&mut self) {
        if let Some(chat) = &mut self.open {
            chat.unread_elsewhere = self.list.unread_except(&chat.name);
        }
    }

    /// Applies a key press to what is shown.
    pub(crate) fn on_key(&mut self, key: KeyEvent) -> Outcome {
        let Some(chat) = &mut self.open else {
            return match self.list.on_key(key) {
                ListOutcome::None => Outcome::None,
                ListOutcome::Open(name) => Outcome::Open(name),
                ListOutcome::Quit => Outcome::Quit,
            };
        };
        match chat.on_key(key) {
            KeyOutcome::None => Outcome::None,
            KeyOutcome::Act(Action::Quit) => Outcome::Quit,
            KeyOutcome::Act(Action::List) => {
                self.back_to_list();
                Outcome::None
            }
            KeyOutcome::Act(Action::Switch(name)) => Outcome::Open(name),
            KeyOutcome::Act(action) => Outcome::Act(action),
        }
    }
}

#[cfg(test)]
mod tests {
    use crossterm::event::{KeyCode, KeyModifiers};

    use super::*;
    use crate::chat::list::Kind;
    use crate::chat::model::{ChatMessage, Direction};

    fn session() -> Session {
        let mut session = Session::default();
        session.list.sync(vec![
            ("bob".into(), Kind::Contact),
            ("team".into(), Kind::Group),
        ]);
        session
    }

    fn type_line(session: &mut Session, line: &str) -> Outcome {
        for c in line.chars() {
            session.on_key(KeyEvent::from(KeyCode::Char(c)));
        }
        session.on_key(KeyEvent::from(KeyCode::Enter))
    }

    #[test]
    fn messages_of_other_conversations_raise_their_unread_count_not_the_view() {
        let mut session = session();
        assert_eq!(session.incoming("team", "t1"), Route::Counted);
        session.open(ChatModel::new("bob"));
        assert_eq!(session.list.unread("team"), 1);
        assert_eq!(session.incoming("bob", "b1"), Route::Show);
        assert_eq!(session.incoming("team", "t2"), Route::Counted);
        assert_eq!(session.incoming("dave", "d1"), Route::Unlisted);
        let chat = session.open.as_ref().unwrap();
        assert_eq!(chat.unread_elsewhere, 2);
        assert_eq!(
            chat.messages().count(),
            0,
            "nothing of team's on bob's screen"
        );
        assert_eq!(session.list.unread("bob"), 0);

        // An unread message that expires no longer counts.
        assert!(!session.gone("t1"));
        assert_eq!(session.open.as_ref().unwrap().unread_elsewhere, 1);
    }

    #[test]
    fn opening_a_conversation_reads_it_and_ctrl_o_goes_back_to_the_list() {
        let mut session = session();
        session.incoming("team", "t1");
        let enter = KeyEvent::from(KeyCode::Enter);
        session.on_key(KeyEvent::from(KeyCode::Down));
        assert_eq!(session.on_key(enter), Outcome::Open("team".into()));
        session.open(ChatModel::new("team"));
        assert_eq!(session.list.unread("team"), 0);
        assert_eq!(
            type_line(&mut session, "hi all"),
            Outcome::Act(Action::Send("hi all".into()))
        );

        let ctrl_o = KeyEvent::new(KeyCode::Char('o'), KeyModifiers::CONTROL);
        assert_eq!(session.on_key(ctrl_o), Outcome::None);
        assert!(session.open.is_none());
        assert_eq!(session.list.selected_name(), Some("team"));
        // In the list, Enter opens the selected conversation again.
        assert_eq!(session.on_key(enter), Outcome::Open("team".into()));
    }

    #[test]
    fn switch_opens_another_conversation_and_quit_leaves() {
        let mut session = session();
        session.open(ChatModel::new("bob"));
        assert_eq!(
            type_line(&mut session, "/switch team"),
            Outcome::Open("team".into())
        );
        assert_eq!(type_line(&mut session, "/list"), Outcome::None);
        assert!(session.open.is_none());
        session.open(ChatModel::new("bob"));
        assert_eq!(type_line(&mut session, "/quit"), Outcome::Quit);
    }

    #[test]
    fn a_gone_message_leaves_the_open_conversation() {
        let mut session = session();
        let mut chat = ChatModel::new("bob");
        chat.add_message(ChatMessage {
            id: "b1".into(),
            direction: Direction::Received,
            text: "hello".into(),
            sent_at: 1,
            expires_at: None,
            view_once: false,
            author: None,
        });
        session.open(chat);
        assert!(session.gone("b1"));
        assert!(!session.gone("b1"));
        session.back_to_list();
        session.status("relay down");
        assert_eq!(session.list.notice.as_deref(), Some("relay down"));
    }
}
