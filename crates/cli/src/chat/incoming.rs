//! What the client reports while the chat runs: a new message appears in its conversation if
//! that is open (which counts as its display) and otherwise raises its unread count; expiries
//! and unsends take messages away; contact and group events become status lines of their
//! conversation and keep the list current.
//!
//! What it does not do: carry out what the user typed (see `act.rs`).

use hush_client::{Client, ClientEvent, MessageView};

use super::load::{self, chat_message};
use super::session::{Route, Session};
use crate::events::describe;
use crate::present::{self, timer_secs};

/// Applies one client event to the session.
pub(crate) async fn on_event(client: &Client, session: &mut Session, event: ClientEvent) {
    match &event {
        ClientEvent::Message { contact, message } => {
            on_message(client, session, contact, message).await;
            return;
        }
        ClientEvent::RelayUnreachable { relay } => {
            session.status(format!(
                "cannot reach the relay {relay}; retrying. Nothing was lost"
            ));
            return;
        }
        ClientEvent::Expired { id, .. } => {
            session.gone(&id.to_hex());
            return;
        }
        ClientEvent::Unsent { id, .. } => {
            // Said only where the message was on screen.
            if session.gone(&id.to_hex()) {
                if let Some((_, text)) = describe(&event) {
                    session.status(text);
                }
            }
            return;
        }
        ClientEvent::ContactJoined { .. }
        | ClientEvent::Burned { .. }
        | ClientEvent::GroupChanged { .. }
        | ClientEvent::GroupRemoved { .. }
        | ClientEvent::GroupBurned { .. } => load::sync_list(client, session).await,
        _ => {}
    }
    let Some((about, text)) = describe(&event) else {
        return;
    };
    if session.open_name() != Some(about.as_str()) {
        if session.open.is_none() {
            session.status(format!("{about}: {text}"));
        }
        return;
    }
    apply_to_open(client, session, &event).await;
    session.status(text);
}

/// What an event about the open conversation changes in it.
async fn apply_to_open(client: &Client, session: &mut Session, event: &ClientEvent) {
    let Some(chat) = session.open.as_mut() else {
        return;
    };
    match event {
        ClientEvent::TimerChanged { timer, .. } => chat.timer = timer_secs(*timer),
        ClientEvent::Burned { .. } | ClientEvent::GroupBurned { .. } => {
            chat.clear_messages();
            chat.closed = true;
        }
        ClientEvent::Blocked { .. } | ClientEvent::GroupRemoved { .. } => chat.closed = true,
        ClientEvent::GroupChanged { group, .. } => {
            // Fails only for a group already erased: its burn, reported next, closes it.
            if let Ok((pane, timer)) = load::group_pane(client, group).await {
                chat.closed = !pane.members.iter().any(|m| m.you);
                chat.group = Some(pane);
                chat.timer = timer;
            }
        }
        _ => {}
    }
}

/// A new message: on screen if its conversation is open, else counted unread.
async fn on_message(client: &Client, session: &mut Session, contact: &str, message: &MessageView) {
    let conversation = match message.group {
        Some(group) => match client.group_name(group).await {
            Some(name) => name,
            // A group we no longer hold (left or burned meanwhile): nothing to show.
            None => return,
        },
        None => contact.to_owned(),
    };
    let id = message.id.to_hex();
    let mut route = session.incoming(&conversation, &id);
    if route == Route::Unlisted {
        load::sync_list(client, session).await;
        route = session.incoming(&conversation, &id);
    }
    if route != Route::Show {
        return;
    }
    let shown = match client.display(contact, message.id).await {
        Ok(shown) => shown,
        Err(err) if present::is_gone(&err) => return,
        Err(err) => {
            session.status(format!("cannot show a new message: {err}"));
            return;
        }
    };
    let text = present::body_text(&shown);
    let author = message.group.map(|_| contact.to_owned());
    if let Some(chat) = session.open.as_mut() {
        chat.add_message(chat_message(&shown, text, author));
    }
}
