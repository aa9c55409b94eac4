//! The in-memory index of [`super::SledStore`]: every queue's record, counters and key slot, the
//! id, seq, expiry, key slot and segment place of every stored envelope, and the expiry order,
//! so that a send adds to its round's segment, an ack writes nothing to sled, neither reads
//! sled, and a read finds its envelopes without a scan.
//!
//! sled holds the truth; this index is rebuilt from it on open (`recovery`), and changed only
//! together with a batch, under the lock of the queue's stripe (a [`Stripe`] is what that lock
//! guards). A round of the writer whose batch sled refused is undone with an [`Undo`].
//!
//! A queue's sled record is written only when something in it must survive a restart: the send
//! capability, a seq limit that must stay above every seq handed out (raised [`SEQ_BLOCK`] at a
//! time, so a restart never reuses a seq), and `last_active` once it moves into another
//! [`ACTIVE_GRANULARITY`] period. At rest `last_active` is only the end of the period it fell
//! in ([`coarse_active`]), so a queue's record shows at most one write a day for its activity,
//! and the record says at most which day the queue was last used. Counters are recounted on
//! open.
//!
//! What it does not do: touch sled or the vault, or lock anything (the caller holds the stripe).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use hush_protocol::{EnvelopeId, RecipientId};

use super::codec::QueueValue;
use super::segment::Place;

/// How many seqs one write of a queue's record reserves.
pub(super) const SEQ_BLOCK: u64 = 1 << 16;
/// The period (seconds) `last_active` is rounded to at rest: a day. The idle sweep works in
/// weeks (30 days by default), so a day is well below what it can tell apart; a record written
/// once a day says no more about when a queue is used than which day.
pub(super) const ACTIVE_GRANULARITY: u64 = 24 * 60 * 60;

/// `t` rounded up to the end of its [`ACTIVE_GRANULARITY`] period: what is stored of a
/// `last_active` of `t`. Rounded up, so that after a restart a queue looks at most a day less
/// idle than it is, and the idle sweep never removes it early.
pub(super) fn coarse_active(t: u64) -> u64 {
    t.div_ceil(ACTIVE_GRANULARITY)
        .saturating_mul(ACTIVE_GRANULARITY)
}

/// What the index keeps of one stored envelope.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) struct EnvelopeMeta {
    pub(super) seq: u64,
    pub(super) expires_at: u64,
    /// Index of the vault slot holding the envelope's key (and naming its record).
    pub(super) slot: u64,
    /// Plaintext body length, counted against the quota.
    pub(super) body_len: u64,
    /// Where its sealed record is stored.
    pub(super) place: Place,
}

/// The parts of a queue's index entry that an [`Undo`] restores.
#[derive(Clone, Debug)]
pub(super) struct QueueState {
    value: QueueValue,
    seq_limit: u64,
    stored_active: u64,
}

/// One queue: its live record and counters, its key slot, and its envelopes by id and by seq.
#[derive(Debug)]
pub(super) struct QueueMem {
    /// Live values: `next_seq` is the seq the next envelope gets, `count` and `bytes` are exact.
    pub(super) value: QueueValue,
    /// The vault slot of the queue's key, which also names its record.
    pub(super) slot: u64,
    /// The seq limit stored in sled: every seq handed out is below it.
    seq_limit: u64,
    /// The `last_active` whose period is stored in sled.
    stored_active: u64,
    pub(super) envelopes: HashMap<EnvelopeId, EnvelopeMeta>,
    /// The envelopes' ids in seq order.
    order: BTreeMap<u64, EnvelopeId>,
}

impl QueueMem {
    /// A new, empty queue whose key is in `slot`; [`QueueMem::stored`] gives the record to
    /// store with it.
    pub(super) fn new(value: QueueValue, slot: u64) -> QueueMem {
        QueueMem {
            seq_limit: value.next_seq + SEQ_BLOCK,
            stored_active: value.last_active,
            value,
            slot,
            envelopes: HashMap::new(),
            order: BTreeMap::new(),
        }
    }

    /// A queue as loaded from its stored record, before its envelopes are added
    /// ([`QueueMem::add_loaded`]) and [`QueueMem::loaded`] is called.
    pub(super) fn from_stored(stored: QueueValue, slot: u64) -> QueueMem {
        QueueMem {
            seq_limit: stored.next_seq,
            stored_active: stored.last_active,
            value: QueueValue {
                count: 0,
                bytes: 0,
                ..stored
            },
            slot,
            envelopes: HashMap::new(),
            order: BTreeMap::new(),
        }
    }

    /// Adds an envelope read from sled while loading. False if the queue already has one with
    /// that id or seq (the later one is then dropped).
    pub(super) fn add_loaded(&mut self, id: EnvelopeId, meta: EnvelopeMeta) -> bool {
        if self.envelopes.contains_key(&id) || self.order.contains_key(&meta.seq) {
            return false;
        }
        self.value.count += 1;
        self.value.bytes += meta.body_len;
        self.value.next_seq = self.value.next_seq.max(meta.seq + 1);
        self.envelopes.insert(id, meta);
        self.order.insert(meta.seq, id);
        true
    }

    /// Finishes loading: a stored limit below what is in use (data from before limits were
    /// stored) moves up on the next send.
    pub(super) fn loaded(mut self) -> QueueMem {
        self.seq_limit = self.seq_limit.max(self.value.next_seq);
        self
    }

    /// The record to store: the live values, with the seq limit in place of the next seq and
    /// `last_active` coarsened.
    pub(super) fn stored(&mut self) -> QueueValue {
        self.stored_active = self.value.last_active;
        QueueValue {
            next_seq: self.seq_limit,
            last_active: coarse_active(self.value.last_active),
            ..self.value.clone()
        }
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

    /// Marks the queue active at `now`. True if the record must be written: `now` is in
    /// another period than what is stored.
    pub(super) fn touch(&mut self, now: u64) -> bool {
        self.value.last_active = now;
        coarse_active(now) != coarse_active(self.stored_active)
    }

    /// What an [`Undo`] needs to put this entry back as it is now (envelopes aside).
    pub(super) fn state(&self) -> QueueState {
        QueueState {
            value: self.value.clone(),
            seq_limit: self.seq_limit,
            stored_active: self.stored_active,
        }
    }

    /// Puts back what [`QueueMem::state`] saved.
    pub(super) fn restore(&mut self, state: QueueState) {
        self.value = state.value;
        self.seq_limit = state.seq_limit;
        self.stored_active = state.stored_active;
    }

    /// Up to `limit` envelopes with `seq >= from_seq` that have not expired at `now`, in seq
    /// order, stopping once their bodies reach `max_bytes`.
    pub(super) fn pending(
        &self,
        from_seq: u64,
        limit: usize,
        now: u64,
        max_bytes: usize,
    ) -> Vec<(EnvelopeId, EnvelopeMeta)> {
        let mut out = Vec::new();
        let mut bytes = 0u64;
        for id in self.order.range(from_seq..).map(|(_, id)| id) {
            if out.len() >= limit || bytes >= max_bytes as u64 {
                break;
            }
            if let Some(meta) = self.envelopes.get(id).filter(|m| m.expires_at > now) {
                bytes += meta.body_len;
                out.push((*id, *meta));
            }
        }
        out
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
            q.order.insert(meta.seq, id);
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
        q.order.remove(&meta.seq);
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

/// How to take back what a round of the writer staged in the index, should sled refuse its
/// batch: each queue's state before the round, and the envelopes the round added and removed.
#[derive(Default)]
pub(super) struct Undo {
    states: HashMap<RecipientId, QueueState>,
    added: Vec<(RecipientId, EnvelopeId)>,
    removed: Vec<(RecipientId, EnvelopeId, EnvelopeMeta)>,
}

impl Undo {
    /// Notes queue `q`'s state before the round first changes it.
    pub(super) fn before_change(&mut self, r: &RecipientId, q: &QueueMem) {
        self.states.entry(*r).or_insert_with(|| q.state());
    }

    /// Notes that the round added envelope `id` to queue `r`.
    pub(super) fn added(&mut self, r: RecipientId, id: EnvelopeId) {
        self.added.push((r, id));
    }

    /// Notes that the round removed envelope `id` (which was `meta`) from queue `r`.
    pub(super) fn removed(&mut self, r: RecipientId, id: EnvelopeId, meta: EnvelopeMeta) {
        self.removed.push((r, id, meta));
    }

    /// Takes the round back: `stripe_of` names the stripe of a queue.
    pub(super) fn revert(
        self,
        stripes: &mut [impl std::ops::DerefMut<Target = Stripe>],
        stripe_of: impl Fn(&RecipientId) -> usize,
    ) {
        for (r, id) in self.added.iter().rev() {
            stripes[stripe_of(r)].remove_envelope(r, id);
        }
        for (r, id, meta) in self.removed.into_iter().rev() {
            stripes[stripe_of(&r)].add_envelope(&r, id, meta);
        }
        for (r, state) in self.states {
            if let Some(q) = stripes[stripe_of(&r)].queues.get_mut(&r) {
                q.restore(state);
            }
        }
    }
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

    fn meta(n: u8, expires_at: u64) -> EnvelopeMeta {
        EnvelopeMeta {
            seq: u64::from(n),
            expires_at,
            slot: u64::from(n),
            body_len: 5,
            place: Place {
                seg: 0,
                at: 0,
                len: 5,
            },
        }
    }

    #[test]
    fn the_stored_seq_limit_stays_above_every_seq_handed_out() {
        let mut q = QueueMem::new(value(1), 0);
        let stored = q.stored();
        for expected in 1..=SEQ_BLOCK {
            let (seq, write) = q.take_seq();
            assert_eq!(seq, expected);
            assert!(!write, "seq {seq} is within the stored limit");
            assert!(seq < stored.next_seq);
        }
        let (seq, write) = q.take_seq();
        assert!(write, "seq {seq} needs a new limit");
        assert!(seq < q.stored().next_seq);
    }

    #[test]
    fn last_active_is_stored_as_the_end_of_its_day_and_written_once_a_day() {
        let day = ACTIVE_GRANULARITY;
        assert_eq!(coarse_active(0), 0);
        assert_eq!(coarse_active(1), day);
        assert_eq!(coarse_active(day), day);
        assert_eq!(coarse_active(day + 1), 2 * day);
        let mut q = QueueMem::new(value(1), 0);
        assert_eq!(q.stored().last_active, day);
        assert_eq!(q.value.last_active, 1_000, "the live value stays exact");
        assert!(!q.touch(day - 1));
        assert!(!q.touch(day));
        assert!(q.touch(day + 1));
        assert_eq!(q.stored().last_active, 2 * day);
        assert!(!q.touch(2 * day));
        // A clock that went back a day is written too.
        assert!(q.touch(0));
    }

    #[test]
    fn the_expiry_and_seq_orders_follow_adds_and_removes() {
        let r = RecipientId::from_bytes([9; 16]);
        let mut s = Stripe::default();
        s.insert_queue(r, QueueMem::new(value(1), 0));
        let id = |n: u8| EnvelopeId::from_bytes([n; 16]);
        for (n, at) in [(1u8, 30u64), (2, 10), (3, 20)] {
            s.add_envelope(&r, id(n), meta(n, at));
        }
        assert_eq!(s.queues[&r].value.count, 3);
        assert_eq!(s.queues[&r].value.bytes, 15);
        assert_eq!(s.expired(20), vec![(r, vec![id(2), id(3)])]);
        let pending = |s: &Stripe, from, now| -> Vec<EnvelopeId> {
            let q = &s.queues[&r];
            q.pending(from, 10, now, usize::MAX)
                .into_iter()
                .map(|(i, _)| i)
                .collect()
        };
        assert_eq!(pending(&s, 0, 0), vec![id(1), id(2), id(3)]);
        assert_eq!(pending(&s, 2, 15), vec![id(3)]);
        assert_eq!(s.remove_envelope(&r, &id(2)).map(|m| m.seq), Some(2));
        assert_eq!(s.expired(20), vec![(r, vec![id(3)])]);
        assert_eq!(pending(&s, 0, 0), vec![id(1), id(3)]);
        assert_eq!(s.queues[&r].value.count, 2);
        assert!(s.remove_queue(&r).is_some());
        assert!(s.expiry.is_empty());
    }

    #[test]
    fn an_undo_takes_a_round_back() {
        let r = RecipientId::from_bytes([9; 16]);
        let id = |n: u8| EnvelopeId::from_bytes([n; 16]);
        let mut stripes = vec![Box::new(Stripe::default())];
        stripes[0].insert_queue(r, QueueMem::new(value(1), 0));
        stripes[0].add_envelope(&r, id(1), meta(1, 50));
        let before = stripes[0].queues[&r].state();
        let mut undo = Undo::default();
        {
            let s = &mut stripes[0];
            undo.before_change(&r, &s.queues[&r]);
            let q = s.queues.get_mut(&r).unwrap();
            q.take_seq();
            q.touch(9_999_999);
            let gone = s.remove_envelope(&r, &id(1)).unwrap();
            undo.removed(r, id(1), gone);
            s.add_envelope(&r, id(2), meta(2, 60));
            undo.added(r, id(2));
        }
        undo.revert(&mut stripes, |_| 0);
        let q = &stripes[0].queues[&r];
        assert_eq!(q.value, before.value);
        assert_eq!(q.envelopes.keys().copied().collect::<Vec<_>>(), vec![id(1)]);
        assert_eq!(stripes[0].expiry.len(), 1);
    }
}
