//! The synchronous operations behind [`super::SledStore`]. Each takes the lock stripe of the
//! queue it changes, reads, checks, and stages its changes in a [`Txn`] that is applied as one
//! atomic sled `Batch`; keys of removed envelopes are shredded once that batch is applied.
//! Sends and acks only stage (`stage_*`): the writer applies many of them in one batch.
//!
//! What it does not do: wait for durability or wake watchers; the async layer and the writer do
//! both after an operation returns.

use std::sync::MutexGuard;

use hush_protocol::{EnvelopeId, RecipientId, SenderId};
use hush_vault::{SlotId, SEAL_OVERHEAD};

use super::codec::{
    body_aad, decode_expiry_key, decode_seq, envelope_id_key, envelope_key, envelope_key_seq,
    envelope_prefix, expiry_key, queue_key, sender_key, EnvelopeHead, QueueValue, EXPIRY_PREFIX,
    QUEUE_PREFIX,
};
use super::txn::Txn;
use super::{backend, lock, Core, LOCK_STRIPES};
use crate::store::{
    cap_matches, CapHash, NewEnvelope, QueueRecord, Quota, StoreError, StoredEnvelope, SweepStats,
};

/// A send as the writer receives it.
pub(super) struct SendOp {
    pub(super) sender: SenderId,
    pub(super) cap_hash: CapHash,
    pub(super) envelope: NewEnvelope,
    pub(super) new_cap_hash: Option<CapHash>,
    pub(super) quota: Quota,
    pub(super) now: u64,
}

fn queue_in(txn: &Txn<'_>, r: &RecipientId) -> Result<Option<QueueValue>, StoreError> {
    match txn.get(&queue_key(r))? {
        Some(v) => Ok(Some(QueueValue::decode(&v)?)),
        None => Ok(None),
    }
}

impl Core {
    fn stripe(&self, r: &RecipientId) -> MutexGuard<'_, ()> {
        let b = r.as_bytes();
        let h = usize::from(u16::from_le_bytes([b[0], b[1]]));
        lock(&self.stripes[h % LOCK_STRIPES])
    }

    /// Every lock stripe, in order: the writer holds them all while it stages and applies.
    pub(super) fn all_stripes(&self) -> Vec<MutexGuard<'_, ()>> {
        self.stripes.iter().map(lock).collect()
    }

    pub(super) fn get_queue(&self, r: &RecipientId) -> Result<Option<QueueValue>, StoreError> {
        match self.db.get(queue_key(r)).map_err(backend)? {
            Some(v) => Ok(Some(QueueValue::decode(&v)?)),
            None => Ok(None),
        }
    }

    /// The queue `sender` names, if `cap_hash` authorises it. Call with the queue's stripe held.
    fn authorised_queue(
        txn: &Txn<'_>,
        r: &RecipientId,
        sender: &SenderId,
        cap_hash: &CapHash,
    ) -> Result<QueueValue, StoreError> {
        let q = queue_in(txn, r)?.ok_or(StoreError::Auth)?;
        let cap_ok = cap_matches(&q.send_cap_hash, cap_hash);
        if q.sender_id != *sender || !cap_ok {
            return Err(StoreError::Auth);
        }
        Ok(q)
    }

    fn recipient_of(&self, sender: &SenderId) -> Result<RecipientId, StoreError> {
        let v = self
            .db
            .get(sender_key(sender))
            .map_err(backend)?
            .ok_or(StoreError::Auth)?;
        let bytes = v.as_ref().try_into().map_err(backend)?;
        Ok(RecipientId::from_bytes(bytes))
    }

    pub(super) fn create(&self, rec: &QueueRecord) -> Result<(), StoreError> {
        let _create = lock(&self.create_lock);
        let _queue = self.stripe(&rec.recipient_id);
        let qk = queue_key(&rec.recipient_id);
        let sk = sender_key(&rec.sender_id);
        if self.db.contains_key(qk).map_err(backend)?
            || self.db.contains_key(sk).map_err(backend)?
        {
            return Err(StoreError::Exists);
        }
        let mut batch = sled::Batch::default();
        batch.insert(&qk[..], &QueueValue::new(rec).encode()[..]);
        batch.insert(&sk[..], &rec.recipient_id.as_bytes()[..]);
        self.db.apply_batch(batch).map_err(backend)
    }

    /// Checks a send (capability and quota, against what `txn` has staged) and stages its
    /// append. Call with every stripe held. On success the envelope's key is in a fresh vault
    /// slot, which the caller must shred if `txn` is not applied.
    pub(super) fn stage_append(
        &self,
        txn: &mut Txn<'_>,
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
        // Sender ids change only when a queue is created or deleted, never inside a `Txn`.
        let r = self.recipient_of(&sender)?;
        let mut q = Self::authorised_queue(txn, &r, &sender, &cap_hash)?;
        let len = env.body.len() as u64;
        if q.count >= u64::from(quota.max_messages) || q.bytes.saturating_add(len) > quota.max_bytes
        {
            return Err(StoreError::QueueFull);
        }
        let seq = q.next_seq;
        let (slot, key) = self.vault.allocate().map_err(backend)?;
        let head = EnvelopeHead {
            id: env.id,
            expires_at: env.expires_at,
            slot: slot.index(),
        };
        let mut value = head.encode_for(env.body.len());
        key.seal_into(&body_aad(&r, seq, &env.id), &env.body, &mut value);
        q.next_seq += 1;
        q.count += 1;
        q.bytes += len;
        q.last_active = now;
        if let Some(new) = new_cap_hash {
            q.send_cap_hash = new;
        }
        txn.insert(&envelope_key(&r, seq), value);
        txn.insert(&envelope_id_key(&r, &env.id), &seq.to_be_bytes()[..]);
        txn.insert(&expiry_key(env.expires_at, &r, seq), &[][..]);
        txn.insert(&queue_key(&r), &q.encode()[..]);
        Ok((r, slot))
    }

    /// Stages the removal of the envelopes at `seqs` from queue `r` (whose value is `q`). Call
    /// with the queue's stripe held. Returns the heads of the envelopes that were there; their
    /// keys are to be shredded once `txn` is applied.
    fn stage_remove(
        txn: &mut Txn<'_>,
        r: &RecipientId,
        q: &mut QueueValue,
        seqs: &[u64],
    ) -> Result<Vec<EnvelopeHead>, StoreError> {
        let mut removed = Vec::with_capacity(seqs.len());
        for &seq in seqs {
            let Some(v) = txn.get(&envelope_key(r, seq))? else {
                continue;
            };
            let (head, sealed) = EnvelopeHead::decode(&v)?;
            let body_len = sealed.len().saturating_sub(SEAL_OVERHEAD) as u64;
            q.count = q.count.saturating_sub(1);
            q.bytes = q.bytes.saturating_sub(body_len);
            txn.remove(&envelope_key(r, seq));
            txn.remove(&envelope_id_key(r, &head.id));
            txn.remove(&expiry_key(head.expires_at, r, seq));
            removed.push(head);
        }
        if !removed.is_empty() {
            txn.insert(&queue_key(r), &q.encode()[..]);
        }
        Ok(removed)
    }

    /// Applies `txn`, then shreds the keys of the envelopes it removed.
    fn apply_and_shred(&self, txn: Txn<'_>, removed: &[EnvelopeHead]) -> Result<(), StoreError> {
        txn.apply()?;
        self.shred(removed.iter().map(|h| h.slot))
    }

    pub(super) fn shred(&self, slots: impl IntoIterator<Item = u64>) -> Result<(), StoreError> {
        for slot in slots {
            self.vault
                .shred_deferred(SlotId::from_index(slot))
                .map_err(backend)?;
        }
        Ok(())
    }

    /// Stages the removal of envelope `id` from queue `r`. Returns its head if it was there.
    fn stage_remove_by_id(
        txn: &mut Txn<'_>,
        r: &RecipientId,
        q: &mut QueueValue,
        id: &EnvelopeId,
    ) -> Result<Option<EnvelopeHead>, StoreError> {
        let Some(v) = txn.get(&envelope_id_key(r, id))? else {
            return Ok(None);
        };
        let seq = decode_seq(&v)?;
        Ok(Self::stage_remove(txn, r, q, &[seq])?.pop())
    }

    pub(super) fn retract(
        &self,
        sender: &SenderId,
        cap_hash: &CapHash,
        id: &EnvelopeId,
    ) -> Result<bool, StoreError> {
        let r = self.recipient_of(sender)?;
        let _queue = self.stripe(&r);
        let mut txn = Txn::new(&self.db);
        let mut q = Self::authorised_queue(&txn, &r, sender, cap_hash)?;
        let removed = Self::stage_remove_by_id(&mut txn, &r, &mut q, id)?;
        self.apply_and_shred(txn, removed.as_slice())?;
        Ok(removed.is_some())
    }

    /// Stages the removal of envelope `id` from queue `r` for its recipient. Call with every
    /// stripe held. Returns its head if it was there (expired or not); its key is to be
    /// shredded once `txn` is applied.
    pub(super) fn stage_ack(
        txn: &mut Txn<'_>,
        r: &RecipientId,
        id: &EnvelopeId,
        now: u64,
    ) -> Result<Option<EnvelopeHead>, StoreError> {
        let Some(mut q) = queue_in(txn, r)? else {
            return Ok(None);
        };
        q.last_active = now;
        Self::stage_remove_by_id(txn, r, &mut q, id)
    }

    /// Applies `change` to queue `r`'s record. [`StoreError::Auth`] if there is no such queue.
    pub(super) fn update_queue(
        &self,
        r: &RecipientId,
        change: impl FnOnce(&mut QueueValue),
    ) -> Result<(), StoreError> {
        let _queue = self.stripe(r);
        let mut q = self.get_queue(r)?.ok_or(StoreError::Auth)?;
        change(&mut q);
        self.db
            .insert(&queue_key(r)[..], &q.encode()[..])
            .map(|_| ())
            .map_err(backend)
    }

    pub(super) fn pending(
        &self,
        r: &RecipientId,
        from_seq: u64,
        limit: usize,
        now: u64,
    ) -> Result<Vec<StoredEnvelope>, StoreError> {
        let mut out = Vec::new();
        let range = envelope_key(r, from_seq)..=envelope_key(r, u64::MAX);
        for item in self.db.range(range) {
            if out.len() >= limit {
                break;
            }
            let (k, v) = item.map_err(backend)?;
            let seq = envelope_key_seq(&k)?;
            let (head, sealed) = EnvelopeHead::decode(&v)?;
            if head.expires_at <= now {
                continue;
            }
            let body = self
                .vault
                .get(SlotId::from_index(head.slot))
                .and_then(|key| key.open(&body_aad(r, seq, &head.id), sealed));
            match body {
                Ok(body) => out.push(StoredEnvelope {
                    seq,
                    id: head.id,
                    body,
                    expires_at: head.expires_at,
                }),
                // Acked or retracted (and its key shredded) since the scan read it.
                Err(_) if !self.db.contains_key(&k).map_err(backend)? => {}
                Err(e) => return Err(backend(format!("envelope key unusable: {e}"))),
            }
        }
        Ok(out)
    }

    /// Deletes queue `r` and all its envelopes if `doomed` says so. Returns whether it did.
    pub(super) fn delete_queue_if(
        &self,
        r: &RecipientId,
        doomed: impl FnOnce(&QueueValue) -> bool,
    ) -> Result<bool, StoreError> {
        let _queue = self.stripe(r);
        let Some(q) = self.get_queue(r)?.filter(|q| doomed(q)) else {
            return Ok(false);
        };
        let mut batch = sled::Batch::default();
        let mut slots = Vec::new();
        for item in self.db.scan_prefix(envelope_prefix(r)) {
            let (k, v) = item.map_err(backend)?;
            let seq = envelope_key_seq(&k)?;
            let (head, _) = EnvelopeHead::decode(&v)?;
            batch.remove(k);
            batch.remove(&envelope_id_key(r, &head.id)[..]);
            batch.remove(&expiry_key(head.expires_at, r, seq)[..]);
            slots.push(head.slot);
        }
        batch.remove(&queue_key(r)[..]);
        batch.remove(&sender_key(&q.sender_id)[..]);
        self.db.apply_batch(batch).map_err(backend)?;
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
        let mut expired = Vec::new();
        for item in self.db.scan_prefix(EXPIRY_PREFIX).keys() {
            let (expires_at, r, seq) = decode_expiry_key(&item.map_err(backend)?)?;
            if expires_at > now {
                break;
            }
            expired.push((r, seq));
        }
        for (r, group) in group_by_queue(expired) {
            let _queue = self.stripe(&r);
            let mut txn = Txn::new(&self.db);
            let Some(mut q) = queue_in(&txn, &r)? else {
                continue;
            };
            let removed = Self::stage_remove(&mut txn, &r, &mut q, &group)?;
            self.apply_and_shred(txn, &removed)?;
            stats.expired_envelopes += removed.len() as u64;
        }
        let cutoff = now.saturating_sub(idle_after);
        let mut idle = Vec::new();
        for item in self.db.scan_prefix(QUEUE_PREFIX) {
            let (k, v) = item.map_err(backend)?;
            if QueueValue::decode(&v)?.last_active < cutoff {
                let bytes = k.get(1..).and_then(|b| b.try_into().ok());
                idle.push(RecipientId::from_bytes(
                    bytes.ok_or_else(|| backend("bad queue key"))?,
                ));
            }
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
}

/// Groups (queue, seq) pairs by queue, keeping each queue's seqs together.
fn group_by_queue(mut items: Vec<(RecipientId, u64)>) -> Vec<(RecipientId, Vec<u64>)> {
    items.sort_unstable();
    let mut out: Vec<(RecipientId, Vec<u64>)> = Vec::new();
    for (r, seq) in items {
        match out.last_mut() {
            Some((last, seqs)) if *last == r => seqs.push(seq),
            _ => out.push((r, vec![seq])),
        }
    }
    out
}
