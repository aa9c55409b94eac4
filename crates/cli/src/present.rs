//! Turning the client library's values into what the commands print: messages, contacts and
//! timers as output records, message ids from their spelling, and revealing unread messages.
//!
//! What it does not do: print (see `output.rs`), or open a home (see `open.rs`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, Result};
use hush_client::conversation::{ConversationError, MessageId};
use hush_client::{Client, ClientError, ContactStatus, ContactView, Delivery, MessageView};

use crate::output::{ContactOut, FileOut, MessageOut, Record};

/// The wall clock as unix seconds, for countdowns in what is printed.
pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Fails with a clear message unless `name` is one of the client's contacts.
pub(crate) async fn contact(client: &Client, name: &str) -> Result<ContactView> {
    client
        .contacts()
        .await
        .into_iter()
        .find(|c| c.name == name)
        .ok_or_else(|| anyhow!(ClientError::UnknownContact { name: name.into() }))
}

/// A message id from its hex spelling.
pub(crate) fn parse_message_id(s: &str) -> Result<MessageId> {
    MessageId::from_hex(&s.to_ascii_lowercase()).ok_or_else(|| {
        anyhow!("invalid message id {s:?}: give the 32 hex digits that `hush send` printed")
    })
}

/// A message as printed, with `text` as revealed (or already in the view).
pub(crate) fn message_out(contact: &str, view: &MessageView, text: Option<String>) -> MessageOut {
    MessageOut {
        id: view.id.to_hex(),
        contact: contact.to_owned(),
        direction: if view.outgoing { "out" } else { "in" },
        sent_at: view.sent_at,
        text: text.or_else(|| view.body.as_ref().map(|b| b.as_str().to_owned())),
        expires_at: view.expires_at,
        view_once: view.view_once,
        file: view.file.as_ref().map(|f| FileOut {
            name: f.name.clone(),
            size: f.size,
            relay_expires_at: f.expires_at,
        }),
        group: None,
        from: None,
    }
}

/// The record of a message we just sent.
pub(crate) fn sent_record(contact: &str, view: &MessageView) -> Record {
    Record::Sent {
        id: view.id.to_hex(),
        contact: contact.to_owned(),
        expires_at: view.expires_at,
    }
}

/// Reveals `view` if it is an unread incoming message (which starts its read timer, and
/// consumes it if view-once). Returns the view as it now stands and the text shown, if any.
pub(crate) async fn reveal(
    client: &Client,
    contact: &str,
    view: MessageView,
) -> Result<(MessageView, Option<String>)> {
    let shown = if view.outgoing || view.displayed_at.is_some() {
        view
    } else {
        client.display(contact, view.id).await?
    };
    let text = body_text(&shown);
    Ok((shown, text))
}

/// The text of a message's body, if it has one.
pub(crate) fn body_text(view: &MessageView) -> Option<String> {
    view.body.as_ref().map(|b| b.as_str().to_owned())
}

/// Whether a failed display means the message is no longer there (unsent, expired, burned).
pub(crate) fn is_gone(err: &ClientError) -> bool {
    matches!(
        err,
        ClientError::Burned
            | ClientError::UnknownContact { .. }
            | ClientError::Conversation(ConversationError::UnknownMessage)
    )
}

/// How a part of a burn went, as printed.
pub(crate) fn delivery(d: Delivery) -> &'static str {
    match d {
        Delivery::Done => "done",
        Delivery::Gone => "gone",
        _ => "owed",
    }
}

/// A contact as printed.
pub(crate) fn contact_out(view: &ContactView) -> ContactOut {
    let status = match view.status {
        ContactStatus::Active => "active",
        ContactStatus::Blocked => "blocked",
        ContactStatus::Burned => "burned",
        _ => "unknown",
    };
    ContactOut {
        kind: "contact",
        name: view.name.clone(),
        verified: view.verified,
        introduced: view.introduced,
        timer: view.timer.map(|d| d.as_secs()),
        status: status.into(),
        members: None,
    }
}

/// A timer in whole seconds.
pub(crate) fn timer_secs(timer: Option<Duration>) -> Option<u64> {
    timer.map(|d| d.as_secs())
}
