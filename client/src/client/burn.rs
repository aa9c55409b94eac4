//! Burning a conversation, ours or the contact's: everything here is erased first, always, and
//! the relays are told after, as far as they can be.
//!
//! Under the state lock, [`Inner::burn_here`] seals the `Burn` payload (while the ratchet still
//! exists), writes an owed burn (see `owed`) holding that envelope, the contact's queue and our
//! own queue's deletion credential, and then erases every record of the contact, writes a
//! tombstone for our queue and forgets the contact. The owed burn is the burn's commit point:
//! if the erase is cut short, the next `tick` or open finishes it. Only then are the relays
//! called ([`Inner::deliver_owed`]): each part that succeeds, or whose queue is known to be
//! gone, is struck from the owed record, which goes once nothing is owed. What fails is tried
//! again by `tick` (at most every [`OWED_RETRY_SECS`]) until the relay TTL has passed, when the
//! envelope would expire anyway and the relay drops an idle queue.
//!
//! A late envelope on the burned queue is dropped and acked thanks to the tombstone, a keyed
//! hash of the queue's recipient id that `tick` removes after the relay TTL and clock skew.
//!
//! What it does not do: decide to burn (the conversation does) or hold the state lock across a
//! relay call.

use std::collections::{HashMap, HashSet};

use hush_protocol::{ErrorCode, RecipientId, RelayAddress};
use rand::rngs::OsRng;
use rand::RngCore;

use super::driver::to_event;
use super::error::ClientError;
use super::group_work_record::forget_contact_work;
use super::owed::{encode_tombstone, OwedBurn, OwedDelete, OwedSend};
use super::records::ContactRecord;
use super::view::ClientEvent;
use super::{Inner, State, RELAY_TTL_SECS};
use crate::conversation::limits::MAX_CLOCK_SKEW_SECS;
use crate::conversation::Effect;
use crate::net::{Lane, NetError};
use crate::store::{ContactId, ContactKey, LocalStore, Namespace, StoreKey, OWED_ID_LEN};
use crate::transfer::{forget_contact_records, staging};

/// Shortest time between two automatic attempts at one owed burn.
pub const OWED_RETRY_SECS: u64 = 60;

/// An owed burn's id.
pub(crate) type OwedId = [u8; OWED_ID_LEN];

/// What became of one thing a burn owes a relay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Delivery {
    /// Done.
    Done,
    /// Nothing to do: the queue was already gone (the contact blocked us or burned first, or
    /// we had blocked them).
    Gone,
    /// Not done yet (relay out of reach): tried again later, until the relay TTL has passed.
    Owed,
}

/// What a burn told the relays. Everything here was erased whatever they say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct BurnReport {
    /// The `Burn` sent to the contact.
    pub contact_told: Delivery,
    /// The deletion of our queue, the one the contact sent to.
    pub queue_deleted: Delivery,
}

/// When a burn made at `now` stops being owed, and its tombstone may go.
pub(crate) fn owed_until(now: u64) -> u64 {
    now.saturating_add(RELAY_TTL_SECS)
        .saturating_add(MAX_CLOCK_SKEW_SECS)
}

/// Erases every record of the contact `id` (named `name`, key `key`, receiving on `queue`):
/// its transfers and staged files too, and writes the tombstone of that queue.
fn erase_records(
    store: &LocalStore,
    id: ContactId,
    name: &str,
    key: &ContactKey,
    queue: RecipientId,
    now: u64,
) -> Result<(), ClientError> {
    store.put(
        &store.tombstone_key(queue.as_bytes()),
        &encode_tombstone(owed_until(now)),
    )?;
    staging::forget_all(store, key)?;
    forget_contact_records(store, name)?;
    forget_contact_work(store, id)?;
    store.erase_contact(id, key.scope())?;
    Ok(())
}

/// Finishes the erase an owed burn committed to, if its contact record is still there.
pub(crate) fn finish_erase(store: &LocalStore, id: ContactId, now: u64) -> Result<(), ClientError> {
    if let Some(bytes) = store.get(&StoreKey::Contact(id))? {
        match ContactRecord::decode(&bytes) {
            Ok(rec) => erase_records(
                store,
                id,
                &rec.name,
                &rec.key,
                rec.link.own.recipient_id,
                now,
            )?,
            // Unreadable: its key is lost, so only the record itself can go.
            Err(_) => {
                store.delete(&StoreKey::Contact(id))?;
            }
        }
    }
    Ok(())
}

/// Writes `owed` back under `id`, or deletes it if nothing is owed any more.
fn store_owed(store: &LocalStore, id: OwedId, owed: &OwedBurn) -> Result<(), ClientError> {
    if owed.is_done() {
        store.delete(&StoreKey::OwedBurn(id))?;
    } else {
        store.put(&StoreKey::OwedBurn(id), &owed.encode())?;
    }
    Ok(())
}

/// Writes `owed` under a new random id, which it returns.
pub(crate) fn put_new_owed(store: &LocalStore, owed: &OwedBurn) -> Result<OwedId, ClientError> {
    let mut id = [0u8; OWED_ID_LEN];
    OsRng.fill_bytes(&mut id);
    store.put(&StoreKey::OwedBurn(id), &owed.encode())?;
    Ok(id)
}

/// Every owed burn in the store. A damaged one is removed (a typed error is logged).
pub(crate) fn owed_burns(store: &LocalStore) -> Result<Vec<(OwedId, OwedBurn)>, ClientError> {
    let mut out = Vec::new();
    for (key, value) in store.list(Namespace::OwedBurn, None)? {
        let StoreKey::OwedBurn(id) = key else {
            continue;
        };
        match OwedBurn::decode(&value) {
            Ok(owed) => out.push((id, owed)),
            Err(e) => {
                tracing::warn!(error = %e, "removing a damaged owed burn");
                store.delete(&key)?;
            }
        }
    }
    Ok(out)
}

/// Finishes the erase of every owed burn whose erase was cut short (run on open, before the
/// contacts are loaded), and drops the owed burns whose time is up.
pub(crate) fn settle_owed(store: &LocalStore, now: u64) -> Result<(), ClientError> {
    for (id, mut owed) in owed_burns(store)? {
        if let Some(contact) = owed.contact.take() {
            finish_erase(store, contact, now)?;
            store_owed(store, id, &owed)?;
        }
        if owed.expires_at <= now {
            store.delete(&StoreKey::OwedBurn(id))?;
        }
    }
    Ok(())
}

/// Removes the tombstones whose time is up (and any that does not decode).
pub(crate) fn expire_tombstones(store: &LocalStore, now: u64) -> Result<(), ClientError> {
    for (key, value) in store.list(Namespace::Tombstone, None)? {
        let due = super::owed::decode_tombstone(&value).is_none_or(|at| at <= now);
        if due {
            store.delete(&key)?;
        }
    }
    Ok(())
}

impl Inner {
    /// Carries out a burn of contact `name` under the lock: `effects` are what its conversation
    /// returned (ours: send `Burn`, ...; the contact's: delete our queue, ...). Seals the `Burn`
    /// payload, commits an owed burn, erases every record of the contact and forgets it.
    /// Returns the owed burn's id, for [`Inner::deliver_owed`].
    pub(crate) fn burn_here(
        &self,
        st: &mut State,
        name: &str,
        effects: Vec<Effect>,
        events: &mut Vec<ClientEvent>,
    ) -> Result<OwedId, ClientError> {
        let now = self.now();
        let c = st.contact(name)?;
        let mut envelope = None;
        let mut notices = Vec::new();
        for effect in effects {
            match effect {
                Effect::SendPayload(payload) => {
                    envelope = Some(c.session.encrypt(&payload.encode(), &mut OsRng)?);
                }
                Effect::Notify(ev) => notices.push(ev),
                // Our queue's deletion is always owed; everything else is erased below.
                _ => {}
            }
        }
        let to = &c.link.to_peer;
        let own = &c.link.own;
        let mut owed = OwedBurn {
            expires_at: owed_until(now),
            contact: Some(c.id),
            send: envelope.map(|envelope| OwedSend {
                relay: to.relay.clone(),
                sender_id: to.sender_id,
                send_cap: to.send_cap.clone(),
                envelope,
            }),
            delete: Some(OwedDelete {
                relay: own.relay.clone(),
                recipient_id: own.recipient_id,
                key: own.key.clone(),
            }),
        };
        let id = put_new_owed(&self.store, &owed)?;
        // Committed: from here on the contact is gone, and an erase cut short is finished by
        // the next tick or open.
        let Some(c) = st.contacts.remove(name) else {
            return Err(ClientError::UnknownContact {
                name: name.to_owned(),
            });
        };
        events.extend(notices.into_iter().map(|ev| to_event(name, None, ev)));
        erase_records(
            &self.store,
            c.id,
            name,
            &c.key,
            c.link.own.recipient_id,
            now,
        )?;
        owed.contact = None;
        store_owed(&self.store, id, &owed)?;
        Ok(id)
    }

    /// Tries what owed burn `only` (or, with `None`, every owed burn that is due) still owes
    /// the relays, striking each part that is done. Returns what became of `only`.
    pub(crate) async fn deliver_owed(&self, only: Option<OwedId>) -> Option<BurnReport> {
        match only {
            Some(id) => self.deliver_owed_now(&[id]).await.remove(&id),
            None => {
                // A run already under way covers this one.
                let next_try = self.owed_retry.try_lock().ok()?;
                self.deliver(next_try, None).await;
                None
            }
        }
    }

    /// Tries the owed burns `ids` now, whenever they were last tried; returns what became of
    /// each one still on record.
    pub(crate) async fn deliver_owed_now(&self, ids: &[OwedId]) -> HashMap<OwedId, BurnReport> {
        let next_try = self.owed_retry.lock().await;
        self.deliver(next_try, Some(ids)).await
    }

    /// One run over the owed burns: `only` those (tried now), or every one that is due.
    async fn deliver(
        &self,
        mut next_try: tokio::sync::MutexGuard<'_, RetryTimes>,
        only: Option<&[OwedId]>,
    ) -> HashMap<OwedId, BurnReport> {
        let now = self.now();
        let mut reports = HashMap::new();
        let owed = match owed_burns(&self.store) {
            Ok(owed) => owed,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list owed burns");
                return reports;
            }
        };
        next_try.retain(|id, _| owed.iter().any(|(o, _)| o == id));
        let mut unreachable = HashSet::new();
        for (id, owed) in owed {
            let due = match only {
                Some(only) => only.contains(&id),
                None => next_try.get(&id).is_none_or(|&at| at <= now),
            };
            if !due {
                continue;
            }
            let r = self.attempt(id, owed, now, &mut unreachable).await;
            if r.contact_told == Delivery::Owed || r.queue_deleted == Delivery::Owed {
                next_try.insert(id, now.saturating_add(OWED_RETRY_SECS));
            }
            reports.insert(id, r);
        }
        reports
    }

    /// One attempt at one owed burn; relays in `unreachable` are not tried again.
    async fn attempt(
        &self,
        id: OwedId,
        mut owed: OwedBurn,
        now: u64,
        unreachable: &mut HashSet<RelayAddress>,
    ) -> BurnReport {
        let mut report = BurnReport {
            contact_told: Delivery::Gone,
            queue_deleted: Delivery::Gone,
        };
        if owed.expires_at <= now {
            // Too late: the envelope has expired and the relay drops an idle queue.
            owed.send = None;
            owed.delete = None;
        }
        if let Some(contact) = owed.contact {
            match finish_erase(&self.store, contact, now) {
                Ok(()) => owed.contact = None,
                Err(e) => tracing::warn!(error = %e, "finishing a burn's erase failed"),
            }
        }
        if let Some(send) = &owed.send {
            report.contact_told = self.send_owed(send, unreachable).await;
            if report.contact_told != Delivery::Owed {
                owed.send = None;
            }
        }
        if let Some(delete) = &owed.delete {
            report.queue_deleted = self.delete_owed(delete, unreachable).await;
            if report.queue_deleted != Delivery::Owed {
                owed.delete = None;
            }
        }
        if let Err(e) = store_owed(&self.store, id, &owed) {
            tracing::warn!(error = %e, "cannot update an owed burn");
        }
        report
    }

    async fn send_owed(&self, s: &OwedSend, unreachable: &mut HashSet<RelayAddress>) -> Delivery {
        if unreachable.contains(&s.relay) {
            return Delivery::Owed;
        }
        let sent = self
            .pool
            .run_on(&s.relay, Lane::Contact(s.sender_id), |conn| {
                let (cap, wire) = (s.send_cap.clone(), s.envelope.clone());
                async move { conn.client().send(s.sender_id, &cap, 0, None, wire).await }
            })
            .await;
        delivery(sent.map(|_| ()), &s.relay, unreachable)
    }

    async fn delete_owed(
        &self,
        d: &OwedDelete,
        unreachable: &mut HashSet<RelayAddress>,
    ) -> Delivery {
        if unreachable.contains(&d.relay) {
            return Delivery::Owed;
        }
        let deleted = self
            .pool
            .run(&d.relay, |conn| {
                let key = d.key.clone();
                async move { conn.client().delete_queue(&key, d.recipient_id).await }
            })
            .await;
        delivery(deleted, &d.relay, unreachable)
    }

    /// Whether an envelope that arrived on queue `rid` is a late one on a burned queue.
    pub(crate) fn is_tombstoned(&self, rid: RecipientId) -> Result<bool, ClientError> {
        let key = self.store.tombstone_key(rid.as_bytes());
        Ok(self.store.get(&key)?.is_some())
    }
}

/// What a relay's answer means for an owed part.
fn delivery(
    r: Result<(), NetError>,
    relay: &RelayAddress,
    unreachable: &mut HashSet<RelayAddress>,
) -> Delivery {
    match r {
        Ok(()) => Delivery::Done,
        Err(e) if matches!(e.code(), Some(ErrorCode::NoQueue | ErrorCode::Auth)) => Delivery::Gone,
        Err(e) => {
            tracing::debug!(error = %e, "an owed burn is deferred");
            if matches!(e, NetError::Unreachable { .. }) {
                unreachable.insert(relay.clone());
            }
            Delivery::Owed
        }
    }
}

/// When each owed burn may next be tried automatically (unix seconds), in memory.
pub(crate) type RetryTimes = HashMap<OwedId, u64>;
