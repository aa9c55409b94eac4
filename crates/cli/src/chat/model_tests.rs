//! Unit tests of the chat's view model: expiry, redelivery, typing, confirmations, unsend by
//! prefix, closed conversations, and what a group allows.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::command::Action;
use super::model::*;

fn message(id: &str, direction: Direction, expires_at: Option<u64>) -> ChatMessage {
    ChatMessage {
        id: id.into(),
        direction,
        text: format!("text of {id}"),
        sent_at: 100,
        expires_at,
        view_once: false,
        author: None,
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
    assert_eq!(model.confirming, Some(Confirm::Burn));
    assert_eq!(type_line(&mut model, "no"), KeyOutcome::None);
    assert_eq!(model.confirming, None);
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
fn in_a_group_only_the_owner_is_asked_to_confirm_a_burn_and_leave_needs_a_yes() {
    let member = |name: &str, role, you| Member {
        name: name.into(),
        role,
        you,
    };
    let owned = GroupPane {
        members: vec![
            member("alice", "owner", true),
            member("bob", "member", false),
        ],
    };
    let mut model = ChatModel::new_group("team", owned);
    type_line(&mut model, "/burn");
    assert_eq!(model.confirming, Some(Confirm::Burn));
    assert_eq!(type_line(&mut model, "yes"), KeyOutcome::Act(Action::Burn));

    let joined = GroupPane {
        members: vec![
            member("alice", "owner", false),
            member("bob", "admin", true),
        ],
    };
    let mut model = ChatModel::new_group("team", joined);
    assert_eq!(type_line(&mut model, "/burn"), KeyOutcome::None);
    assert_eq!(model.confirming, None);
    assert!(
        matches!(model.entries.last(), Some(Entry::Status(s)) if s.contains("only the owner")),
        "{:?}",
        model.entries
    );
    type_line(&mut model, "/leave");
    assert_eq!(model.confirming, Some(Confirm::Leave));
    assert_eq!(type_line(&mut model, "no"), KeyOutcome::None);
    assert!(matches!(model.entries.last(), Some(Entry::Status(s)) if s.contains("still a member")));
    type_line(&mut model, "/leave");
    assert_eq!(type_line(&mut model, "YES"), KeyOutcome::Act(Action::Leave));
}

#[test]
fn leave_is_refused_with_a_contact_and_help_lists_the_keys() {
    let mut model = ChatModel::new("bob");
    assert_eq!(type_line(&mut model, "/leave"), KeyOutcome::None);
    assert!(
        matches!(model.entries.last(), Some(Entry::Status(s)) if s.contains("/leave is for groups"))
    );
    assert_eq!(model.confirming, None);
    type_line(&mut model, "/help");
    assert!(matches!(model.entries.last(), Some(Entry::Status(s)) if s.contains("Ctrl-O")));
    let ctrl_o = KeyEvent::new(KeyCode::Char('o'), KeyModifiers::CONTROL);
    assert_eq!(model.on_key(ctrl_o), KeyOutcome::Act(Action::List));
}

#[test]
fn errors_become_status_lines() {
    let mut model = ChatModel::new("bob");
    type_line(&mut model, "/nope");
    assert!(matches!(model.entries.last(), Some(Entry::Status(s)) if s.contains("unknown")));
}
