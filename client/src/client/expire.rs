//! Expiry without a running client: what lapsed while nothing ran is deleted when a home is
//! opened, before [`Client::open`] returns, and [`Client::expire`] applies every due deletion
//! on demand (`hush expire`, run by a timer unit or cron) and says what it did.
//!
//! Opening is local only: it never waits on a relay. The blob deletions owed to relays (a file
//! message's blob, once the message is gone) are retried by [`Client::expire`], within the
//! patience its caller gives it, and by the actions that already reach a relay.
//!
//! What it does not do: decide what is due (the conversations and the records' owners do, in
//! `Inner::tick`), or run in the background (that is the event task's job while a client runs).

use std::sync::atomic::Ordering;
use std::time::Duration;

use hush_protocol::RelayAddress;

use super::view::ClientEvent;
use super::{Client, ClientError, Inner};

/// What an expiry pass did, in counts only (no names, ids or texts).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExpiryReport {
    /// Messages deleted because their timer (or, unread, the relay's lifetime) ran out, counting
    /// those deleted when the home was opened.
    pub messages_expired: usize,
    /// Deletions a relay confirmed during this pass (blobs of gone file messages, queues of
    /// expired invitations or burned contacts).
    pub relay_deletions_done: usize,
    /// Relay deletions still owed because their relay could not be reached in time: the next
    /// pass retries them.
    pub relay_deletions_owed: usize,
    /// The relays those owed deletions wait for.
    pub owed_relays: Vec<RelayAddress>,
}

/// How many of `events` are expired messages.
fn expired_in(events: &[ClientEvent]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, ClientEvent::Expired { .. }))
        .count()
}

impl Inner {
    /// Applies every due local deletion: each conversation is ticked in full (expired messages,
    /// and what its metadata no longer needs), then [`Inner::tick_local`] applies the rest. No
    /// network: the owed burns wait for [`Inner::tick`]. Returns how many messages expired.
    pub(super) async fn expire_local(&self) -> Result<usize, ClientError> {
        let mut events = self.tick_conversations(true).await?;
        events.extend(self.tick_local().await?);
        Ok(expired_in(&events))
    }
}

impl Client {
    /// The local part of expiry, run by [`Client::open`] before it returns: what lapsed while
    /// no client ran is deleted before anything can show it.
    pub(super) async fn expire_on_open(&self) -> Result<(), ClientError> {
        let expired = self.inner.expire_local().await?;
        self.expired_on_open.fetch_add(expired, Ordering::Relaxed);
        Ok(())
    }

    /// Applies every deletion that is due: expired messages (including those deleted when the
    /// home was opened, which this report counts once), everything else [`Client::tick`]
    /// applies, and the blob deletions owed to relays, for at most `patience` of network time.
    /// A relay out of reach is not an error: its deletions stay owed, and the report says so.
    pub async fn expire(&self, patience: Duration) -> Result<ExpiryReport, ClientError> {
        let mut expired = self.expired_on_open.swap(0, Ordering::Relaxed);
        expired += self.inner.expire_local().await?;
        let (owed_before, _) = crate::transfer::owed::owed_summary(&self.inner.store)?;
        // Past the patience the retries are dropped; whatever a relay confirmed meanwhile it
        // confirms again (an already deleted blob counts as done).
        if let Ok(events) = tokio::time::timeout(patience, self.tick()).await {
            expired += expired_in(&events?);
        }
        let (owed, owed_relays) = crate::transfer::owed::owed_summary(&self.inner.store)?;
        Ok(ExpiryReport {
            messages_expired: expired,
            relay_deletions_done: owed_before.saturating_sub(owed),
            relay_deletions_owed: owed,
            owed_relays,
        })
    }
}
