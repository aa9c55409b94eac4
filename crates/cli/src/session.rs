//! Opening a home: finding out how its store is locked, asking for the passphrase if needed,
//! and turning the client library's values into what the commands print.
//!
//! What it does not do: print (see `output.rs`) or decide what a command does (see
//! `commands.rs`).

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Result};
use hush_client::conversation::MessageId;
use hush_client::net::RetryPolicy;
use hush_client::store::{KeyKind, KeySource, LocalStore, Passphrase, StoreError};
use hush_client::{Client, ClientOptions, ContactStatus, ContactView, MessageView};

use crate::output::{ContactOut, FileOut, MessageOut};
use crate::passphrase;

/// The wall clock as unix seconds, for countdowns in what is printed.
pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Connection attempts per relay operation for a one-shot command.
const ONE_SHOT_ATTEMPTS: u32 = 2;

/// How long one connection attempt of a one-shot command may take.
const ONE_SHOT_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// How patient the client is with relays: a one-shot command reports an unreachable relay after
/// a few seconds; the chat keeps the library's interactive defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Patience {
    /// Give up soon, so that a script learns of the problem.
    OneShot,
    /// Keep trying, as an interactive session should.
    Interactive,
}

/// Opens the home in `home`, reading the passphrase if its store has one.
pub(crate) async fn open(home: &Path, patience: Patience) -> Result<Client> {
    let kind = match LocalStore::key_kind(home) {
        Ok(kind) => kind,
        Err(StoreError::NotInitialised { .. }) => bail!(not_initialised(home)),
        Err(err) => return Err(err.into()),
    };
    let key = match kind {
        KeyKind::Passphrase => key_from_passphrase(false)?,
        _ => KeySource::KeyFile,
    };
    let options = match patience {
        Patience::OneShot => ClientOptions::with_retry(RetryPolicy::new(
            ONE_SHOT_ATTEMPTS,
            ONE_SHOT_CONNECT_TIMEOUT,
        )),
        Patience::Interactive => ClientOptions::default(),
    };
    Client::open_with(home, key, options)
        .await
        .map_err(|err| match err {
            hush_client::ClientError::NotInitialised { .. } => anyhow!(not_initialised(home)),
            other => other.into(),
        })
}

fn not_initialised(home: &Path) -> String {
    format!(
        "no hush home at {}; run `hush init --name NAME --relay hush://HOST:PORT#FINGERPRINT` first, or pass --home DIR",
        home.display()
    )
}

/// A key source from a passphrase read from the terminal or `HUSH_PASSPHRASE`.
pub(crate) fn key_from_passphrase(confirm: bool) -> Result<KeySource> {
    let secret = passphrase::read(confirm)?;
    Ok(KeySource::Passphrase(Passphrase::new(
        secret.as_bytes().to_vec(),
    )))
}

/// Fails with a clear message unless `name` is one of the client's contacts.
pub(crate) async fn contact(client: &Client, name: &str) -> Result<ContactView> {
    client
        .contacts()
        .await
        .into_iter()
        .find(|c| c.name == name)
        .ok_or_else(|| anyhow!(hush_client::ClientError::UnknownContact { name: name.into() }))
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
    }
}

/// Reveals `view` if it is an unread incoming message (which starts its read timer, and
/// consumes it if view-once). Returns the view as it now stands and the text shown, if any.
pub(crate) async fn reveal(
    client: &Client,
    contact: &str,
    view: MessageView,
) -> Result<(MessageView, Option<String>)> {
    if view.outgoing || view.displayed_at.is_some() {
        let text = view.body.as_ref().map(|b| b.as_str().to_owned());
        return Ok((view, text));
    }
    let text = client
        .display(contact, view.id)
        .await?
        .map(|b| b.as_str().to_owned());
    let now = find_message(client, contact, view.id).await.unwrap_or(view);
    Ok((now, text))
}

/// The stored view of message `id`, if it is still stored.
pub(crate) async fn find_message(
    client: &Client,
    contact: &str,
    id: MessageId,
) -> Option<MessageView> {
    client
        .history(contact)
        .await
        .ok()?
        .into_iter()
        .find(|m| m.id == id)
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
        name: view.name.clone(),
        verified: view.verified,
        timer: view.timer.map(|d| d.as_secs()),
        status: status.into(),
    }
}

/// A timer in whole seconds.
pub(crate) fn timer_secs(timer: Option<Duration>) -> Option<u64> {
    timer.map(|d| d.as_secs())
}
