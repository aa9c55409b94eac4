//! The in-memory index of [`super::SledStore`]: every queue's record and counters, the id, seq,
//! expiry and key slot of every stored envelope, and the expiry order, so that a send or an ack
//! writes one sled key and reads none.
//!
//! sled holds the truth; this index is rebuilt from it on open ([`load_queue`]) and after a
//! batch sled refused, and changed only together with a batch, under the lock of the queue's
//! stripe (a [`Stripe`] is what that lock guards).
//!
//! A queue's sled record is written only when something in it must survive a restart: the send
//! capability, a seq limit that must stay above every seq handed out (raised [`SEQ_BLOCK`] at a
//! time, so a restart never reuses a seq), and `last_active` once it has moved
//! [`ACTIVE_GRANULARITY`] seconds from what is stored. Counters are recounted on open.
//!
//! What it does not do: touch sled, or lock anything (the caller holds the stripe).

use std::collections::{BTreeSet, HashMap};

use hush_protocol::{EnvelopeId, RecipientId};
use hush_vault::SEAL_OVERHEAD;

use super::codec::{envelope_key_seq, envelope_prefix, EnvelopeHead, QueueValue};
use super::error::backend;
use crate::store::StoreError;

/// How many seqs one write of a queue's record reserves.
pub(super) const SEQ_BLOCK: u64 = 1 << 16;
/// How far (seconds) a queue's `last_active` may run ahead of its stored value before the
/// record is written again. After a restart a queue may look this much more idle than it was.
pub(super) const ACTIVE_GRANULARITY: u64 = 60;

/// What the index keeps of one stored envelope.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) struct EnvelopeMeta {
    pub(super) seq: u64,
    pub(super) expires_at: u64,
    /// Index of the vault slot holding the body's key.
    pub(super) slot: u64,
    /// Plaintext body length, counted against the quota.
    pub(super) body_len: u64,
}

/// One queue: its live record and counters, and its envelopes by id.
#[derive(Debug)]
pub(super) struct QueueMem {
    /// Live values: `next_seq` is the seq the next envelope gets, `count` and `bytes` are exact.
    pub(super) value: QueueValue,
    /// The seq limit stored in sled: every seq handed out is below it.
    seq_limit: u64,
    /// The `last_active` stored in sled.
    stored_active: u64,
    pub(super) envelopes: HashMap<EnvelopeId, EnvelopeMeta>,
}

impl QueueMem {
    /// A new, empty queue; [`QueueMem::encode`] gives the record to store with it.
    pub(super) fn new(value: QueueValue) -> QueueMem {
        QueueMem {
            seq_limit: value.next_seq + SEQ_BLOCK,
            stored_active: value.last_active,
            value,
            envelopes: HashMap::new(),
        }
    }

    /// The record to store: the live values, with the seq limit in place of the next seq.
    pub(super) fn encode(&mut self) -> Vec<u8> {
        self.stored_active = self.value.last_active;
        let stored = QueueValue {
            next_seq: self.seq_limit,
            ..self.value.clone()
        };
        stored.encode().to_vec()
    }

    /// Hands out the next seq. True if the record must be written with it (the limit moved).
    pub(super) fn take_seq(&mut self) -> (u64, bool) {
        let seq = self.value.next_seq;
        self.value.next_seq += 1;
        if self.value.next_seq <= self.seq_limit {
            return (seq, false);
        }
        self.seq_limit = self.value.next_seq + SEQ_BLOCK;
        (seq, true)
    }

    /// Marks the queue active at `now`. True if the record must be written.
    pub(super) fn touch(&mut self, now: u64) -> bool {
        self.value.last_active = now;
        now.abs_diff(self.stored_active) >= ACTIVE_GRANULARITY
    }
}

/// What one lock stripe guards: its queues and their envelopes in expiry order.
#[derive(Default, Debug)]
pub(super) struct Stripe {
    pub(super) queues: HashMap<RecipientId, QueueMem>,
    /// (expires_at, queue, seq, id) of every envelope of this stripe's queues.
    pub(super) expiry: BTreeSet<(u64, RecipientId, u64, EnvelopeId)>,
}

impl Stripe {
    /// Records envelope `id` of queue `r` and counts it.
    pub(super) fn add_envelope(&mut self, r: &RecipientId, id: EnvelopeId, meta: EnvelopeMeta) {
        if self.remove_envelope(r, &id).is_some() {
            tracing::warn!("an envelope id came twice in one queue; the later one replaces it");
        }
        if let Some(q) = self.queues.get_mut(r) {
            q.envelopes.insert(id, meta);
            q.value.count += 1;
            q.value.bytes += meta.body_len;
            self.expiry.insert((meta.expires_at, *r, meta.seq, id));
        }
    }

    /// Forgets envelope `id` of queue `r` and takes it off the counters. Returns what it was.
    pub(super) fn remove_envelope(
        &mut self,
        r: &RecipientId,
        id: &EnvelopeId,
    ) -> Option<EnvelopeMeta> {
        let q = self.queues.get_mut(r)?;
        let meta = q.envelopes.remove(id)?;
        q.value.count = q.value.count.saturating_sub(1);
        q.value.bytes = q.value.bytes.saturating_sub(meta.body_len);
        self.expiry.remove(&(meta.expires_at, *r, meta.seq, *id));
        Some(meta)
    }

    /// Puts queue `r` in (replacing whatever was there), with its envelopes' expiry entries.
    pub(super) fn insert_queue(&mut self, r: RecipientId, q: QueueMem) {
        self.remove_queue(&r);
        for (id, meta) in &q.envelopes {
            self.expiry.insert((meta.expires_at, r, meta.seq, *id));
        }
        self.queues.insert(r, q);
    }

    /// Forgets queue `r` and its envelopes. Returns it.
    pub(super) fn remove_queue(&mut self, r: &RecipientId) -> Option<QueueMem> {
        let q = self.queues.remove(r)?;
        for (id, meta) in &q.envelopes {
            self.expiry.remove(&(meta.expires_at, *r, meta.seq, *id));
        }
        Some(q)
    }

    /// The ids of every envelope that expired at or before `now`, by queue.
    pub(super) fn expired(&self, now: u64) -> Vec<(RecipientId, Vec<EnvelopeId>)> {
        let mut items: Vec<(RecipientId, u64, EnvelopeId)> = self
            .expiry
            .iter()
            .take_while(|(at, _, _, _)| *at <= now)
            .map(|(_, r, seq, id)| (*r, *seq, *id))
            .collect();
        items.sort_unstable();
        let mut out: Vec<(RecipientId, Vec<EnvelopeId>)> = Vec::new();
        for (r, _, id) in items {
            match out.last_mut() {
                Some((last, ids)) if *last == r => ids.push(id),
                _ => out.push((r, vec![id])),
            }
        }
        out
    }
}

/// Builds queue `r`'s index from its stored record `record` and its envelopes in `db`.
pub(super) fn load_queue(
    db: &sled::Db,
    r: &RecipientId,
    record: &[u8],
) -> Result<QueueMem, StoreError> {
    let stored = QueueValue::decode(record)?;
    let mut q = QueueMem {
        seq_limit: stored.next_seq,
        stored_active: stored.last_active,
        value: QueueValue {
            count: 0,
            bytes: 0,
            ..stored
        },
        envelopes: HashMap::new(),
    };
    for item in db.scan_prefix(envelope_prefix(r)) {
        let (k, v) = item.map_err(backend)?;
        let seq = envelope_key_seq(&k)?;
        let (head, sealed) = EnvelopeHead::decode(&v)?;
        let body_len = sealed.len().saturating_sub(SEAL_OVERHEAD) as u64;
        q.value.count += 1;
        q.value.bytes += body_len;
        q.value.next_seq = q.value.next_seq.max(seq + 1);
        let meta = EnvelopeMeta {
            seq,
            expires_at: head.expires_at,
            slot: head.slot,
            body_len,
        };
        q.envelopes.insert(head.id, meta);
    }
    // A stored limit below what is in use (data from before limits were stored) moves up on the
    // next send.
    q.seq_limit = q.seq_limit.max(q.value.next_seq);
    Ok(q)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hush_protocol::SenderId;

    fn value(next_seq: u64) -> QueueValue {
        QueueValue {
            sender_id: SenderId::from_bytes([1; 16]),
            recipient_key: [2; 32],
            send_cap_hash: [3; 32],
            last_active: 1_000,
            next_seq,
            count: 0,
            bytes: 0,
        }
    }

    #[test]
    fn the_stored_seq_limit_stays_above_every_seq_handed_out() {
        let mut q = QueueMem::new(value(1));
        let stored = QueueValue::decode(&q.encode()).unwrap();
        for expected in 1..=SEQ_BLOCK {
            let (seq, write) = q.take_seq();
            assert_eq!(seq, expected);
            assert!(!write, "seq {seq} is within the stored limit");
            assert!(seq < stored.next_seq);
        }
        let (seq, write) = q.take_seq();
        assert!(write, "seq {seq} needs a new limit");
        let stored = QueueValue::decode(&q.encode()).unwrap();
        assert!(seq < stored.next_seq);
    }

    #[test]
    fn last_active_is_written_once_it_moves_a_granule() {
        let mut q = QueueMem::new(value(1));
        q.encode();
        assert!(!q.touch(1_000 + ACTIVE_GRANULARITY - 1));
        assert!(q.touch(1_000 + ACTIVE_GRANULARITY));
        q.encode();
        assert!(!q.touch(1_000 + ACTIVE_GRANULARITY + 1));
        // A clock that went back is written too.
        assert!(q.touch(0));
    }

    #[test]
    fn the_expiry_order_follows_adds_and_removes() {
        let r = RecipientId::from_bytes([9; 16]);
        let mut s = Stripe::default();
        s.insert_queue(r, QueueMem::new(value(1)));
        let id = |n: u8| EnvelopeId::from_bytes([n; 16]);
        for (n, at) in [(1u8, 30u64), (2, 10), (3, 20)] {
            let meta = EnvelopeMeta {
                seq: u64::from(n),
                expires_at: at,
                slot: u64::from(n),
                body_len: 5,
            };
            s.add_envelope(&r, id(n), meta);
        }
        assert_eq!(s.queues[&r].value.count, 3);
        assert_eq!(s.queues[&r].value.bytes, 15);
        assert_eq!(s.expired(20), vec![(r, vec![id(2), id(3)])]);
        assert_eq!(s.remove_envelope(&r, &id(2)).map(|m| m.seq), Some(2));
        assert_eq!(s.expired(20), vec![(r, vec![id(3)])]);
        assert_eq!(s.queues[&r].value.count, 2);
        assert!(s.remove_queue(&r).is_some());
        assert!(s.expiry.is_empty());
    }
}
