//! The synchronous operations behind [`super::SledStore`]. Each takes the lock stripe of the
//! queue it changes, checks against the in-memory index (`mem`), stages its writes in one sled
//! `Batch`, applies it, and only then changes the index; keys of removed records are shredded
//! once the batch is applied. Sends and acks only stage (`stage_*`, which change the index as
//! they stage and note how to take that back in an [`Undo`]): the writer applies many of them
//! in one batch, and undoes the round in the index if that batch is refused.
//!
//! Envelopes are stored in segments (`segment`): a send adds its record to the round's open
//! segment; a removal writes nothing for the envelope itself (shredding its key is what removes
//! it) and counts it off its segment, whose key goes in the same batch once it holds no live
//! envelope. The segment table's lock is taken after any stripe.
//!
//! Every record is sealed under its own vault key (`seal`): a queue's record under the queue's
//! key, which is shredded with the queue, and each envelope's header and body under the
//! envelope's key.
//!
//! What it does not do: wait for durability or wake watchers; the async layer and the writer do
//! both after an operation returns.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard};

use hush_protocol::{EnvelopeId, RecipientId, SenderId};
use hush_vault::{RecordKey, SlotId, Vault};

use super::codec::{queue_key, segment_key, QueueValue};
use super::error::backend;
use super::mem::{EnvelopeMeta, QueueMem, Stripe, Undo};
use super::recovery::{load, Repair};
use super::seal::ENVELOPE_SEAL_OVERHEAD;
use super::seal::{open_envelope, seal_envelope_into, seal_queue, EnvelopeHead};
use super::segment::{SegmentRound, Segments};
use crate::store::{
    cap_matches, CapHash, NewEnvelope, QueueRecord, Quota, StoreError, StoreStats, StoredEnvelope,
    SweepStats,
};

/// Lock stripes; queues hash onto them, so sends to different queues rarely contend.
const LOCK_STRIPES: usize = 64;

/// The database, the vault and the in-memory index, shared with the writer thread.
pub(super) struct Core {
    pub(super) db: sled::Db,
    pub(super) vault: Arc<Vault>,
    /// The index of the queues that hash onto each stripe; its lock is the queue's lock.
    stripes: Box<[Mutex<Stripe>]>,
    /// Sender id → recipient id. Taken before any stripe; written only by create and delete.
    senders: RwLock<HashMap<SenderId, RecipientId>>,
    /// Live envelopes per segment. Taken after any stripe.
    segments: Mutex<Segments>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What the writer stages a round in: its batch, its segments, and keys allocated for its
/// sends ahead of time (in one vault write), taken from the end.
pub(super) type Staging<'a, 't> = (
    &'a mut sled::Batch,
    &'a mut SegmentRound<'t>,
    &'a mut Vec<(SlotId, RecordKey)>,
);

/// A send as the writer receives it.
pub(super) struct SendOp {
    pub(super) sender: SenderId,
    pub(super) cap_hash: CapHash,
    pub(super) envelope: NewEnvelope,
    pub(super) new_cap_hash: Option<CapHash>,
    pub(super) quota: Quota,
    pub(super) now: u64,
}

/// Which stripe queue `r` hashes onto.
pub(super) fn stripe_of(r: &RecipientId) -> usize {
    let b = r.as_bytes();
    usize::from(u16::from_le_bytes([b[0], b[1]])) % LOCK_STRIPES
}

/// Queue `r`'s index entry, if `sender` and `cap_hash` authorise a send to it.
fn authorised<'s>(
    stripe: &'s mut Stripe,
    r: &RecipientId,
    sender: &SenderId,
    cap_hash: &CapHash,
) -> Result<&'s mut QueueMem, StoreError> {
    let q = stripe.queues.get_mut(r).ok_or(StoreError::Auth)?;
    let cap_ok = cap_matches(&q.value.send_cap_hash, cap_hash);
    if q.value.sender_id != *sender || !cap_ok {
        return Err(StoreError::Auth);
    }
    Ok(q)
}

impl Core {
    /// The store's core over an open database and vault, with an empty index.
    pub(super) fn new(db: sled::Db, vault: Arc<Vault>) -> Core {
        Core {
            db,
            vault,
            stripes: (0..LOCK_STRIPES)
                .map(|_| Mutex::new(Stripe::default()))
                .collect(),
            senders: RwLock::default(),
            segments: Mutex::default(),
        }
    }

    /// The segment table: the writer holds it (after every stripe) while it stages a round.
    pub(super) fn segments(&self) -> MutexGuard<'_, Segments> {
        lock(&self.segments)
    }

    fn stripe(&self, r: &RecipientId) -> MutexGuard<'_, Stripe> {
        lock(&self.stripes[stripe_of(r)])
    }

    /// Every lock stripe, in order: the writer holds them all while it stages and applies.
    pub(super) fn all_stripes(&self) -> Vec<MutexGuard<'_, Stripe>> {
        self.stripes.iter().map(lock).collect()
    }

    /// The sender id → recipient id index, for reading.
    pub(super) fn senders(&self) -> RwLockReadGuard<'_, HashMap<SenderId, RecipientId>> {
        self.senders.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn get_queue(&self, r: &RecipientId) -> Option<QueueRecord> {
        self.stripe(r).queues.get(r).map(|q| q.value.record(*r))
    }

    /// Queue `r`'s record as stored, sealed under its key: its sled key and value.
    fn sealed_queue(
        &self,
        r: &RecipientId,
        q: &mut QueueMem,
    ) -> Result<([u8; 9], Vec<u8>), StoreError> {
        let key = self
            .vault
            .get(SlotId::from_index(q.slot))
            .map_err(backend)?;
        Ok((queue_key(q.slot), seal_queue(&key, q.slot, r, &q.stored())))
    }

    pub(super) fn create(&self, rec: &QueueRecord) -> Result<(), StoreError> {
        let mut senders = self.senders.write().unwrap_or_else(PoisonError::into_inner);
        let mut stripe = self.stripe(&rec.recipient_id);
        if stripe.queues.contains_key(&rec.recipient_id) || senders.contains_key(&rec.sender_id) {
            return Err(StoreError::Exists);
        }
        let (slot, key) = self.vault.allocate().map_err(backend)?;
        let mut q = QueueMem::new(QueueValue::new(rec), slot.index());
        let sealed = seal_queue(&key, slot.index(), &rec.recipient_id, &q.stored());
        if let Err(e) = self.db.insert(queue_key(slot.index()), sealed) {
            // Nothing refers to the key: shred it now (or on the next open if this fails).
            let _ = self.vault.shred_deferred(slot);
            return Err(backend(e));
        }
        senders.insert(rec.sender_id, rec.recipient_id);
        stripe.insert_queue(rec.recipient_id, q);
        Ok(())
    }

    /// Checks a send (capability and quota) and stages its append, changing the index and
    /// noting how in `undo`. Call with every stripe held (`stripes`, in order) and the sender
    /// index read (`senders`). On success the envelope's key is in a fresh vault slot, which
    /// the caller must shred if `batch` is not applied (and revert `undo`).
    pub(super) fn stage_append(
        &self,
        stripes: &mut [MutexGuard<'_, Stripe>],
        senders: &HashMap<SenderId, RecipientId>,
        (batch, segs, keys): Staging<'_, '_>,
        undo: &mut Undo,
        op: SendOp,
    ) -> Result<(RecipientId, SlotId), StoreError> {
        let SendOp {
            sender,
            cap_hash,
            envelope: env,
            new_cap_hash,
            quota,
            now,
        } = op;
        let r = *senders.get(&sender).ok_or(StoreError::Auth)?;
        let stripe: &mut Stripe = &mut stripes[stripe_of(&r)];
        let q = authorised(stripe, &r, &sender, &cap_hash)?;
        let len = env.body.len() as u64;
        if q.value.count >= u64::from(quota.max_messages)
            || q.value.bytes.saturating_add(len) > quota.max_bytes
        {
            return Err(StoreError::QueueFull);
        }
        // Nothing changes before the key has its slot: a failure here leaves no trace.
        let (slot, key) = match keys.pop() {
            Some(allocated) => allocated,
            None => self.vault.allocate().map_err(backend)?,
        };
        undo.before_change(&r, q);
        let before = q.state();
        let (seq, mut write) = q.take_seq();
        write |= q.touch(now);
        if let Some(new) = new_cap_hash {
            q.value.send_cap_hash = new;
            write = true;
        }
        if write {
            match self.sealed_queue(&r, q) {
                Ok((k, v)) => batch.insert(&k[..], v),
                Err(e) => {
                    q.restore(before);
                    let _ = self.vault.shred_deferred(slot);
                    return Err(e);
                }
            }
        }
        let head = EnvelopeHead {
            recipient: r,
            id: env.id,
            seq,
            expires_at: env.expires_at,
        };
        let sealed_len = env.body.len() + ENVELOPE_SEAL_OVERHEAD;
        let place = segs.append(batch, slot.index(), sealed_len, |out| {
            seal_envelope_into(&key, slot.index(), &head, &env.body, out)
        });
        let meta = EnvelopeMeta {
            seq,
            expires_at: env.expires_at,
            slot: slot.index(),
            body_len: len,
            place,
        };
        stripe.add_envelope(&r, env.id, meta);
        undo.added(r, env.id);
        Ok((r, slot))
    }

    /// Stages the removal of envelope `id` from queue `r` for its recipient, changing the
    /// index and noting how in `undo`. Call with every stripe held. Returns what it was if it
    /// was there (expired or not); its key is to be shredded once `batch` is applied.
    pub(super) fn stage_ack(
        &self,
        stripes: &mut [MutexGuard<'_, Stripe>],
        (batch, segs, _): Staging<'_, '_>,
        undo: &mut Undo,
        (r, id): (&RecipientId, &EnvelopeId),
        now: u64,
    ) -> Option<EnvelopeMeta> {
        let stripe: &mut Stripe = &mut stripes[stripe_of(r)];
        let q = stripe.queues.get_mut(r)?;
        undo.before_change(r, q);
        let before = q.state();
        if q.touch(now) {
            match self.sealed_queue(r, q) {
                Ok((k, v)) => batch.insert(&k[..], v),
                // Only the day of last use is not stored: the next write will.
                Err(e) => {
                    tracing::error!(error = %e, "cannot seal a queue record");
                    q.restore(before);
                    q.value.last_active = now;
                }
            }
        }
        let meta = stripe.remove_envelope(r, id)?;
        segs.release(batch, meta.place.seg);
        undo.removed(*r, *id, meta);
        Some(meta)
    }

    /// Takes back a round the writer staged but sled refused. Call with every stripe held.
    pub(super) fn revert(stripes: &mut [MutexGuard<'_, Stripe>], undo: Undo) {
        undo.revert(stripes, stripe_of);
    }

    pub(super) fn shred(&self, slots: impl IntoIterator<Item = u64>) -> Result<(), StoreError> {
        for slot in slots {
            self.vault
                .shred_deferred(SlotId::from_index(slot))
                .map_err(backend)?;
        }
        Ok(())
    }

    /// Counts the envelopes in `segs` off their segments and applies `batch` with the removal
    /// of every segment left empty; on refusal the counts are put back.
    fn release_segments(
        &self,
        mut batch: sled::Batch,
        segs: impl IntoIterator<Item = u64>,
        must_apply: bool,
    ) -> Result<(), StoreError> {
        let mut table = self.segments();
        let mut round = SegmentRound::new(&mut table);
        let mut emptied = false;
        for seg in segs {
            emptied |= round.release(&mut batch, seg);
        }
        if !(must_apply || emptied) {
            return Ok(());
        }
        if let Err(e) = self.db.apply_batch(batch) {
            round.undo();
            return Err(backend(e));
        }
        Ok(())
    }

    /// Removes envelopes `ids` of queue `r`: counts them off their segments (removing the
    /// segments left empty, in one batch), then from the index, and shreds their keys. Call
    /// with the queue's stripe held. Returns how many envelopes it removed.
    fn remove_envelopes(
        &self,
        stripe: &mut Stripe,
        r: &RecipientId,
        ids: &[EnvelopeId],
    ) -> Result<usize, StoreError> {
        let mut found = Vec::with_capacity(ids.len());
        let mut segs = Vec::with_capacity(ids.len());
        if let Some(q) = stripe.queues.get(r) {
            for id in ids {
                if let Some(meta) = q.envelopes.get(id) {
                    segs.push(meta.place.seg);
                    found.push(*id);
                }
            }
        }
        self.release_segments(sled::Batch::default(), segs, false)?;
        let slots: Vec<u64> = found
            .iter()
            .filter_map(|id| stripe.remove_envelope(r, id))
            .map(|m| m.slot)
            .collect();
        self.shred(slots)?;
        Ok(found.len())
    }

    pub(super) fn retract(
        &self,
        sender: &SenderId,
        cap_hash: &CapHash,
        id: &EnvelopeId,
    ) -> Result<bool, StoreError> {
        let r = *self.senders().get(sender).ok_or(StoreError::Auth)?;
        let mut stripe = self.stripe(&r);
        authorised(&mut stripe, &r, sender, cap_hash)?;
        let removed = self.remove_envelopes(&mut stripe, &r, &[*id])?;
        Ok(removed > 0)
    }

    /// Applies `change` to queue `r`'s record and stores it. [`StoreError::Auth`] if there is
    /// no such queue.
    pub(super) fn update_queue(
        &self,
        r: &RecipientId,
        change: impl FnOnce(&mut QueueValue),
    ) -> Result<(), StoreError> {
        let mut stripe = self.stripe(r);
        let q = stripe.queues.get_mut(r).ok_or(StoreError::Auth)?;
        let before = q.state();
        change(&mut q.value);
        let stored = self
            .sealed_queue(r, q)
            .and_then(|(k, v)| self.db.insert(k, v).map_err(backend));
        if let Err(e) = stored {
            q.restore(before);
            return Err(e);
        }
        Ok(())
    }

    /// Up to `limit` pending envelopes of queue `r` from `from_seq` on, in order; it stops
    /// early once the bodies read reach `max_bytes`.
    pub(super) fn pending(
        &self,
        r: &RecipientId,
        from_seq: u64,
        limit: usize,
        now: u64,
        max_bytes: usize,
    ) -> Result<Vec<StoredEnvelope>, StoreError> {
        let wanted = match self.stripe(r).queues.get(r) {
            Some(q) => q.pending(from_seq, limit, now, max_bytes),
            None => return Ok(Vec::new()),
        };
        let mut out = Vec::with_capacity(wanted.len());
        // Envelopes sent together share a segment: read each segment once.
        let mut segment: Option<(u64, Option<sled::IVec>)> = None;
        for (id, meta) in wanted {
            let seg = meta.place.seg;
            if segment.as_ref().is_none_or(|(s, _)| *s != seg) {
                let read = self.db.get(segment_key(seg)).map_err(backend)?;
                segment = Some((seg, read));
            }
            let record = segment
                .as_ref()
                .and_then(|(_, v)| v.as_deref())
                .and_then(|v| meta.place.slice(v));
            let key = self.vault.get(SlotId::from_index(meta.slot));
            let opened = match (record, key) {
                (Some(v), Ok(key)) => open_envelope(&key, meta.slot, v).ok(),
                _ => None,
            };
            match opened {
                Some((head, body)) if head.recipient == *r && head.id == id => {
                    out.push(StoredEnvelope {
                        seq: head.seq,
                        id,
                        body,
                        expires_at: head.expires_at,
                    });
                }
                // Acked or retracted since the index was read (its slot perhaps reused).
                _ if !self.still_holds(r, &id, meta.slot) => {}
                _ => return Err(backend("envelope record unreadable")),
            }
        }
        Ok(out)
    }

    /// Whether the index still has envelope `id` of queue `r` in `slot`.
    fn still_holds(&self, r: &RecipientId, id: &EnvelopeId, slot: u64) -> bool {
        let stripe = self.stripe(r);
        let meta = stripe.queues.get(r).and_then(|q| q.envelopes.get(id));
        meta.is_some_and(|m| m.slot == slot)
    }

    /// Deletes queue `r` and all its envelopes if `doomed` says so, and shreds their keys, the
    /// queue's included. Returns whether it did.
    pub(super) fn delete_queue_if(
        &self,
        r: &RecipientId,
        doomed: impl FnOnce(&QueueValue) -> bool,
    ) -> Result<bool, StoreError> {
        let mut senders = self.senders.write().unwrap_or_else(PoisonError::into_inner);
        let mut stripe = self.stripe(r);
        let Some(q) = stripe.queues.get(r).filter(|q| doomed(&q.value)) else {
            return Ok(false);
        };
        let (sender, queue_slot) = (q.value.sender_id, q.slot);
        let mut batch = sled::Batch::default();
        let mut slots: Vec<u64> = q.envelopes.values().map(|m| m.slot).collect();
        let segs: Vec<u64> = q.envelopes.values().map(|m| m.place.seg).collect();
        batch.remove(&queue_key(queue_slot)[..]);
        self.release_segments(batch, segs, true)?;
        stripe.remove_queue(r);
        senders.remove(&sender);
        drop(stripe);
        drop(senders);
        slots.push(queue_slot);
        self.shred(slots)?;
        Ok(true)
    }

    /// Removes expired envelopes and idle queues. Returns the stats and the deleted queues.
    pub(super) fn sweep(
        &self,
        now: u64,
        idle_after: u64,
    ) -> Result<(SweepStats, Vec<RecipientId>), StoreError> {
        let mut stats = SweepStats::default();
        let cutoff = now.saturating_sub(idle_after);
        let mut idle = Vec::new();
        for stripe in self.stripes.iter() {
            let mut stripe = lock(stripe);
            for (r, ids) in stripe.expired(now) {
                let removed = self.remove_envelopes(&mut stripe, &r, &ids)?;
                stats.expired_envelopes += removed as u64;
            }
            idle.extend(
                stripe
                    .queues
                    .iter()
                    .filter(|(_, q)| q.value.last_active < cutoff)
                    .map(|(r, _)| *r),
            );
        }
        let mut deleted = Vec::new();
        for r in idle {
            // Re-checked under the queue's lock: a send may have made it active meanwhile.
            if self.delete_queue_if(&r, |q| q.last_active < cutoff)? {
                stats.idle_queues += 1;
                deleted.push(r);
            }
        }
        Ok((stats, deleted))
    }

    /// Forgets the whole index and builds it again from sled, changing nothing on disk.
    pub(super) fn rebuild_index(&self) -> Result<(), StoreError> {
        let (queues, segments) = load(&self.db, &self.vault, Repair::No)?;
        self.install(queues, segments);
        Ok(())
    }

    /// Replaces the whole index with `queues` and `segments` (on open, from `recovery`).
    pub(super) fn install(&self, queues: HashMap<RecipientId, QueueMem>, segments: Segments) {
        let mut senders = self.senders.write().unwrap_or_else(PoisonError::into_inner);
        let mut stripes = self.all_stripes();
        *self.segments() = segments;
        senders.clear();
        for stripe in stripes.iter_mut() {
            **stripe = Stripe::default();
        }
        for (r, q) in queues {
            senders.insert(q.value.sender_id, r);
            stripes[stripe_of(&r)].insert_queue(r, q);
        }
    }

    /// Counts of what the index holds, one stripe at a time (so the counts of different
    /// stripes may be a moment apart).
    pub(super) fn stats(&self) -> StoreStats {
        let mut stats = StoreStats::default();
        for stripe in &self.stripes {
            let stripe = lock(stripe);
            stats.queues += stripe.queues.len() as u64;
            for q in stripe.queues.values() {
                stats.envelopes += q.value.count;
                stats.envelope_bytes += q.value.bytes;
            }
            if let Some((at, ..)) = stripe.expiry.first() {
                let earliest = stats.earliest_expiry.map_or(*at, |e| e.min(*at));
                stats.earliest_expiry = Some(earliest);
            }
        }
        stats
    }

    /// The vault slot of envelope `id` of queue `r`, for tests.
    #[cfg(test)]
    pub(super) fn envelope_slot(&self, r: &RecipientId, id: &EnvelopeId) -> Option<u64> {
        let stripe = self.stripe(r);
        stripe.queues.get(r)?.envelopes.get(id).map(|m| m.slot)
    }
}
