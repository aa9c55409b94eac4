//! A per-node cache of each queue's message list, so that a send or an ack does not read the
//! queue's whole subject from NATS first.
//!
//! For each queue it serves, a node keeps what it last read of the subject: each message's
//! stream sequence, kind, envelope id and body length, and the sealed capability of the
//! messages that carry one (no envelope body), plus the subject's last sequence. The lock on a
//! queue's entry is also the node's turn at writing that queue.
//!
//! Why a stale entry is safe:
//!
//! - **Every write is still a conditional publish** on the subject's last sequence as cached.
//!   Anything another node appended since (an envelope, a new capability, a capability copy
//!   written before an ack) makes it fail; the entry then reads only past its last sequence
//!   ([`QueueCache::sync`]) and the write is tried again. A write that is stored proves the
//!   entry was current, so the capability and quota it checked were the real ones, and the
//!   message is appended to the entry at the sequence JetStream returned.
//! - **Messages erased by another node** (acks, retracts, the sweep) stay in the entry until
//!   this node notices. They can only make the cached quota count too high, and every refusal
//!   (quota, capability) is made on fresh data: a full read for the quota, an incremental one
//!   for the capability (a capability change always appends). Erasing a seq that is already
//!   gone answers `false`, and the entry drops it. An envelope not found in the entry is looked
//!   for again after a read past the last sequence before the answer is "not pending".
//! - **A deleted queue** has every message erased, its last one too: nats-server then compares
//!   a conditional publish with 0, which fails against the cached last sequence.
//!
//! Memory is bounded: at most [`MAX_QUEUES`] entries, the least recently used idle one evicted
//! when a new queue comes; an entry holding more than [`MAX_MESSAGES`] messages is emptied
//! once its operation ends (its next use reads the subject in full, as without a cache).
//!
//! The cache is kept across reconnections to NATS and leader changes: a stream leader that
//! changes keeps the sequences, and a send on a warm entry then needs no read, only its publish
//! (retried while a leader is elected), where a read would fail until there is one.
//!
//! What this module does not do: cache envelope bodies (`pending` reads them from the stream),
//! records or activity times, or serve the sweep (which reads the subjects itself and then
//! drops the entries of the queues it changed).

use std::collections::HashMap;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use chacha20poly1305::Key;
use hush_protocol::EnvelopeId;
use tokio::sync::OwnedMutexGuard;

use super::api::{Api, Get, Published};
use super::codec::{self, Kind, RawQueueMsg};
use super::queue::Outcome;
use crate::store::{CapHash, StoreError};

/// Most queues cached per node.
pub(super) const MAX_QUEUES: usize = 1024;
/// Most messages one queue's entry keeps past the end of an operation.
pub(super) const MAX_MESSAGES: usize = 1024;

/// What the cache keeps of one message on a queue's subject.
#[derive(Clone, Debug)]
pub(super) struct Entry {
    /// The stream sequence.
    pub seq: u64,
    /// What it carries.
    pub kind: Kind,
    /// The envelope's id, for kinds that carry one.
    pub id: Option<EnvelopeId>,
    /// The envelope body's length in bytes.
    pub body_len: u64,
    /// The sealed capability, for kinds that carry one (empty otherwise).
    pub sealed_cap: Vec<u8>,
}

impl Entry {
    /// What the cache keeps of a message read from the subject: opens the envelope for its id.
    fn of(key: &Key, subject: &str, m: RawQueueMsg) -> Result<Entry, StoreError> {
        let (id, body_len) = if m.kind.has_envelope() {
            let (id, _) = codec::open_envelope(key, subject, &m.sealed_envelope)?;
            (Some(id), codec::sealed_body_len(&m.sealed_envelope))
        } else {
            (None, 0)
        };
        Ok(Entry {
            seq: m.seq,
            kind: m.kind,
            id,
            body_len,
            sealed_cap: m.sealed_cap,
        })
    }

    /// The message written by this node, now stored at `seq`.
    pub(super) fn written(seq: u64, msg: &RawQueueMsg, id: Option<EnvelopeId>, len: u64) -> Entry {
        Entry {
            seq,
            kind: msg.kind,
            id,
            body_len: len,
            sealed_cap: msg.sealed_cap.clone(),
        }
    }
}

/// Where a queue's messages are read from, and the key that opens them.
pub(super) struct Source<'a> {
    /// The store's NATS calls.
    pub api: &'a Api,
    /// The queue stream's name.
    pub stream: &'a str,
    /// The queue's key.
    pub key: &'a Key,
}

/// One queue's cached message list.
#[derive(Debug)]
pub(super) struct QueueCache {
    subject: String,
    loaded: bool,
    last: u64,
    msgs: Vec<Entry>,
    /// The last-activity time this node last wrote for the queue.
    activity: Option<u64>,
}

impl QueueCache {
    fn new(subject: String) -> QueueCache {
        QueueCache {
            subject,
            loaded: false,
            last: 0,
            msgs: Vec::new(),
            activity: None,
        }
    }

    /// The queue's subject.
    pub(super) fn subject(&self) -> &str {
        &self.subject
    }

    /// Forgets everything: the next [`QueueCache::sync`] reads the subject in full.
    pub(super) fn reset(&mut self) {
        self.loaded = false;
        self.last = 0;
        self.msgs.clear();
        self.activity = None;
    }

    /// Whether this node's last write of the queue's last-activity time was `now`: writing it
    /// again would change nothing.
    pub(super) fn activity_is(&self, now: u64) -> bool {
        self.activity == Some(now)
    }

    /// Records that this node wrote `now` as the queue's last-activity time.
    pub(super) fn set_activity(&mut self, now: u64) {
        self.activity = Some(now);
    }

    /// Brings the entry up to date: a full read if it holds nothing yet, otherwise the subject's
    /// last message and whatever came after the cached last sequence. Returns whether it read
    /// the subject in full (then nothing in the entry is stale).
    pub(super) async fn sync(&mut self, src: &Source<'_>) -> Result<bool, StoreError> {
        if !self.loaded {
            self.load_full(src).await?;
            return Ok(true);
        }
        let last = src.api.get(src.stream, Get::Last(&self.subject)).await?;
        let Some(target) = last.map(|m| m.seq) else {
            // No last message: the queue is gone, or the subject's last message was just
            // erased, after which nats-server 2.9 can answer "no message" for a subject that
            // still holds earlier ones. Only a full read tells them apart.
            self.load_full(src).await?;
            return Ok(true);
        };
        if target < self.last {
            // The last message went: a deletion, or a stream that was created again.
            self.load_full(src).await?;
            return Ok(true);
        }
        while self.last < target {
            let Some(m) = self.read_next(src, self.last + 1).await? else {
                break;
            };
            self.last = m.seq;
            self.msgs.push(Entry::of(src.key, &self.subject, m)?);
        }
        Ok(false)
    }

    /// Makes sure the entry was read at least once. Returns whether it read it now.
    pub(super) async fn ensure_loaded(&mut self, src: &Source<'_>) -> Result<bool, StoreError> {
        if self.loaded {
            return Ok(false);
        }
        self.load_full(src).await?;
        Ok(true)
    }

    async fn load_full(&mut self, src: &Source<'_>) -> Result<(), StoreError> {
        self.reset();
        let mut from = 0;
        while let Some(m) = self.read_next(src, from).await? {
            from = m.seq + 1;
            self.last = m.seq;
            self.msgs.push(Entry::of(src.key, &self.subject, m)?);
        }
        self.loaded = true;
        Ok(())
    }

    async fn read_next(
        &self,
        src: &Source<'_>,
        from: u64,
    ) -> Result<Option<RawQueueMsg>, StoreError> {
        let which = Get::Next {
            from,
            filter: &self.subject,
        };
        match src.api.get(src.stream, which).await? {
            Some(m) => Ok(Some(RawQueueMsg::decode(m.seq, &m.data)?)),
            None => Ok(None),
        }
    }

    /// The subject's last sequence as cached, for a conditional publish (0: no message).
    pub(super) fn last_seq(&self) -> u64 {
        self.last
    }

    /// Records a message this node published conditionally on [`QueueCache::last_seq`]: being
    /// stored, it directly follows the cached list.
    pub(super) fn appended(&mut self, entry: Entry) {
        self.last = entry.seq;
        self.msgs.push(entry);
    }

    /// The message that carries the capability in force, if any.
    pub(super) fn cap_carrier(&self) -> Option<&Entry> {
        self.msgs.iter().rev().find(|m| m.kind.has_cap())
    }

    /// The capability in force, or `None` if the queue has none.
    pub(super) fn current_cap(&self, key: &Key) -> Result<Option<CapHash>, StoreError> {
        self.cap_carrier()
            .map(|m| codec::open_cap(key, &self.subject, &m.sealed_cap))
            .transpose()
    }

    /// How many envelopes the entry holds and their body bytes: never fewer than the queue
    /// holds once the entry is synced, more if another node erased some since.
    pub(super) fn usage(&self) -> (u64, u64) {
        self.msgs
            .iter()
            .filter(|m| m.kind.has_envelope())
            .fold((0, 0), |(n, b), m| (n + 1, b + m.body_len))
    }

    /// The stream sequence of the envelope with this id.
    pub(super) fn find(&self, id: &EnvelopeId) -> Option<u64> {
        self.msgs.iter().find(|m| m.id == Some(*id)).map(|m| m.seq)
    }

    fn drop_seq(&mut self, seq: u64) {
        self.msgs.retain(|m| m.seq != seq);
    }

    /// Erases the message at `seq`, keeping the capability in force if it carried it, and never
    /// erasing the subject's last message as it stands (see `queue.rs`, [`super::queue::View::remove`]).
    /// Returns whether this call erased it; `Retry` if the capability copy's conditional publish
    /// found the entry stale.
    pub(super) async fn remove(
        &mut self,
        src: &Source<'_>,
        seq: u64,
    ) -> Result<Outcome<bool>, StoreError> {
        if !self.msgs.iter().any(|m| m.seq == seq) {
            return Ok(Outcome::Done(false));
        }
        let carrier = self.cap_carrier();
        let keep_cap = carrier.is_some_and(|c| c.seq == seq) || seq == self.last;
        let copy = match carrier {
            Some(c) if keep_cap => RawQueueMsg {
                seq: 0,
                kind: Kind::Cap,
                expires_at: u64::MAX,
                sealed_cap: c.sealed_cap.clone(),
                sealed_envelope: Vec::new(),
            },
            _ => {
                let erased = src.api.erase(src.stream, seq).await?;
                self.drop_seq(seq);
                return Ok(Outcome::Done(erased));
            }
        };
        let published = src
            .api
            .publish(&self.subject, copy.encode(), Some(self.last), None)
            .await?;
        let Published::Stored(new_seq) = published else {
            return Ok(Outcome::Retry);
        };
        self.appended(Entry::written(new_seq, &copy, None, 0));
        // Dropped only once it is known gone: an entry never lacks a message the queue holds.
        let erased = src.api.erase(src.stream, seq).await?;
        self.drop_seq(seq);
        self.erase_caps_before(src, new_seq).await;
        Ok(Outcome::Done(erased))
    }

    /// Erases the capability messages older than `seq` (a newer carrier superseded them) and
    /// drops them from the entry. Failures are logged only: a stale capability message is
    /// never the one in force, and counts for no quota.
    pub(super) async fn erase_caps_before(&mut self, src: &Source<'_>, seq: u64) {
        let old: Vec<u64> = self
            .msgs
            .iter()
            .filter(|m| m.kind == Kind::Cap && m.seq < seq)
            .map(|m| m.seq)
            .collect();
        for s in old {
            if let Err(e) = src.api.erase(src.stream, s).await {
                tracing::debug!(error = %e, "superseded capability not erased yet");
            }
            self.drop_seq(s);
        }
    }
}

struct Slot {
    queue: Arc<tokio::sync::Mutex<QueueCache>>,
    used: u64,
}

#[derive(Default)]
struct Slots {
    map: HashMap<String, Slot>,
    tick: u64,
}

/// Every cached queue of one node.
#[derive(Default, Clone)]
pub(super) struct Cache {
    slots: Arc<Mutex<Slots>>,
}

/// A queue's entry, locked: this node's turn at the queue. An entry grown past
/// [`MAX_MESSAGES`] is emptied when the turn ends.
pub(super) struct Held {
    guard: OwnedMutexGuard<QueueCache>,
}

impl Deref for Held {
    type Target = QueueCache;
    fn deref(&self) -> &QueueCache {
        &self.guard
    }
}

impl DerefMut for Held {
    fn deref_mut(&mut self) -> &mut QueueCache {
        &mut self.guard
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if self.guard.msgs.len() > MAX_MESSAGES {
            self.guard.reset();
        }
    }
}

impl Cache {
    fn slots(&self) -> MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for this node's turn at the queue with this hash and subject, and returns its
    /// entry (empty for a queue not cached yet).
    pub(super) async fn lock(&self, hash: &str, subject: &str) -> Held {
        let queue = {
            let mut slots = self.slots();
            slots.tick += 1;
            let tick = slots.tick;
            if !slots.map.contains_key(hash) && slots.map.len() >= MAX_QUEUES {
                evict_one(&mut slots.map);
            }
            let slot = slots.map.entry(hash.to_owned()).or_insert_with(|| Slot {
                queue: Arc::new(tokio::sync::Mutex::new(QueueCache::new(subject.to_owned()))),
                used: tick,
            });
            slot.used = tick;
            slot.queue.clone()
        };
        Held {
            guard: queue.lock_owned().await,
        }
    }

    /// Drops the entry of one queue: after the sweep or a deletion changed it.
    pub(super) fn forget(&self, hash: &str) {
        self.slots().map.remove(hash);
    }

    /// How many queues are cached.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.slots().map.len()
    }
}

/// Evicts the least recently used entry that no operation holds, if any.
fn evict_one(map: &mut HashMap<String, Slot>) {
    let victim = map
        .iter()
        .filter(|(_, s)| Arc::strong_count(&s.queue) == 1)
        .min_by_key(|(_, s)| s.used)
        .map(|(h, _)| h.clone());
    if let Some(h) = victim {
        map.remove(&h);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_least_recently_used_idle_queue_is_evicted_first() {
        let cache = Cache::default();
        for i in 0..MAX_QUEUES {
            drop(cache.lock(&format!("h{i}"), "s").await);
        }
        // h0 is used again, so h1 is now the oldest; h2 is held, so it stays too.
        drop(cache.lock("h0", "s").await);
        let held = cache.lock("h2", "s").await;
        drop(cache.lock("new", "s").await);
        assert_eq!(cache.len(), MAX_QUEUES);
        let has = |h: &str| cache.slots().map.contains_key(h);
        assert!(has("h0") && has("h2") && has("new"));
        assert!(!has("h1"));
        drop(held);
    }

    #[tokio::test]
    async fn an_entry_grown_past_its_bound_is_emptied_when_its_turn_ends() {
        let cache = Cache::default();
        let mut held = cache.lock("h", "s").await;
        held.loaded = true;
        let msg = RawQueueMsg {
            seq: 0,
            kind: Kind::Envelope,
            expires_at: 1,
            sealed_cap: Vec::new(),
            sealed_envelope: Vec::new(),
        };
        for seq in 1..=MAX_MESSAGES as u64 {
            held.appended(Entry::written(seq, &msg, None, 1));
        }
        drop(held);
        let mut held = cache.lock("h", "s").await;
        assert_eq!((held.loaded, held.usage().0), (true, MAX_MESSAGES as u64));
        held.appended(Entry::written(MAX_MESSAGES as u64 + 1, &msg, None, 1));
        drop(held);
        let held = cache.lock("h", "s").await;
        assert_eq!(
            (held.loaded, held.last_seq(), held.usage().0),
            (false, 0, 0)
        );
    }
}
