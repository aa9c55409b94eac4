//! The synchronous operations behind [`super::SledStore`]. Each takes the lock stripe of the
//! queue it changes, checks against the in-memory index (`mem`), stages its writes in one sled
//! `Batch`, applies it, and only then changes the index; keys of removed envelopes are shredded
//! once the batch is applied. Sends and acks only stage (`stage_*`, which change the index as
//! they stage): the writer applies many of them in one batch, and rebuilds the index of the
//! queues it touched from sled if that batch is refused.
//!
//! What it does not do: wait for durability or wake watchers; the async layer and the writer do
//! both after an operation returns.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard};

use hush_protocol::{EnvelopeId, RecipientId, SenderId};
use hush_vault::{SlotId, Vault};

use super::codec::{
    body_aad, envelope_key, envelope_key_seq, envelope_prefix, queue_key, sender_key, EnvelopeHead,
    QueueValue, QUEUE_PREFIX,
};
use super::error::backend;
use super::mem::{load_queue, EnvelopeMeta, QueueMem, Stripe};
use crate::store::{
    cap_matches, CapHash, NewEnvelope, QueueRecord, Quota, StoreError, StoredEnvelope, SweepStats,
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
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
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
        }
    }
}

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

/// Stages the removal of envelope `id` of queue `r` and takes it out of the index.
fn stage_remove(
    stripe: &mut Stripe,
    batch: &mut sled::Batch,
    r: &RecipientId,
    id: &EnvelopeId,
) -> Option<EnvelopeMeta> {
    let meta = stripe.remove_envelope(r, id)?;
    batch.remove(&envelope_key(r, meta.seq)[..]);
    Some(meta)
}

impl Core {
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

    pub(super) fn create(&self, rec: &QueueRecord) -> Result<(), StoreError> {
        let mut senders = self.senders.write().unwrap_or_else(PoisonError::into_inner);
        let mut stripe = self.stripe(&rec.recipient_id);
        if stripe.queues.contains_key(&rec.recipient_id) || senders.contains_key(&rec.sender_id) {
            return Err(StoreError::Exists);
        }
        let mut q = QueueMem::new(QueueValue::new(rec));
        let mut batch = sled::Batch::default();
        batch.insert(&queue_key(&rec.recipient_id)[..], q.encode());
        batch.insert(
            &sender_key(&rec.sender_id)[..],
            &rec.recipient_id.as_bytes()[..],
        );
        self.db.apply_batch(batch).map_err(backend)?;
        senders.insert(rec.sender_id, rec.recipient_id);
        stripe.insert_queue(rec.recipient_id, q);
        Ok(())
    }

    /// Checks a send (capability and quota) and stages its append, changing the index. Call
    /// with every stripe held (`stripes`, in order) and the sender index read (`senders`). On
    /// success the envelope's key is in a fresh vault slot, which the caller must shred if
    /// `batch` is not applied (and rebuild the queue's index).
    pub(super) fn stage_append(
        &self,
        stripes: &mut [MutexGuard<'_, Stripe>],
        senders: &HashMap<SenderId, RecipientId>,
        batch: &mut sled::Batch,
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
        let (slot, key) = self.vault.allocate().map_err(backend)?;
        let (seq, mut write) = q.take_seq();
        write |= q.touch(now);
        if let Some(new) = new_cap_hash {
            q.value.send_cap_hash = new;
            write = true;
        }
        if write {
            batch.insert(&queue_key(&r)[..], q.encode());
        }
        let head = EnvelopeHead {
            id: env.id,
            expires_at: env.expires_at,
            slot: slot.index(),
        };
        let mut value = head.encode_for(env.body.len());
        key.seal_into(&body_aad(&r, seq, &env.id), &env.body, &mut value);
        batch.insert(&envelope_key(&r, seq)[..], value);
        let meta = EnvelopeMeta {
            seq,
            expires_at: env.expires_at,
            slot: slot.index(),
            body_len: len,
        };
        stripe.add_envelope(&r, env.id, meta);
        Ok((r, slot))
    }

    /// Stages the removal of envelope `id` from queue `r` for its recipient, changing the
    /// index. Call with every stripe held. Returns what it was if it was there (expired or
    /// not); its key is to be shredded once `batch` is applied.
    pub(super) fn stage_ack(
        stripes: &mut [MutexGuard<'_, Stripe>],
        batch: &mut sled::Batch,
        r: &RecipientId,
        id: &EnvelopeId,
        now: u64,
    ) -> Option<EnvelopeMeta> {
        let stripe: &mut Stripe = &mut stripes[stripe_of(r)];
        let q = stripe.queues.get_mut(r)?;
        if q.touch(now) {
            batch.insert(&queue_key(r)[..], q.encode());
        }
        stage_remove(stripe, batch, r, id)
    }

    /// Rebuilds the index of queue `r` from sled, after a batch that changed it was refused.
    /// Call with its stripe held.
    pub(super) fn reload(&self, stripe: &mut Stripe, r: &RecipientId) {
        let loaded = self
            .db
            .get(queue_key(r))
            .map_err(backend)
            .and_then(|v| v.map(|v| load_queue(&self.db, r, &v)).transpose());
        match loaded {
            Ok(Some(q)) => stripe.insert_queue(*r, q),
            Ok(None) => {
                stripe.remove_queue(r);
            }
            Err(e) => {
                // Left as staged; the next open rebuilds it from what sled holds.
                tracing::error!(error = %e, "cannot reload a queue after a refused write");
            }
        }
    }

    pub(super) fn shred(&self, slots: impl IntoIterator<Item = u64>) -> Result<(), StoreError> {
        for slot in slots {
            self.vault
                .shred_deferred(SlotId::from_index(slot))
                .map_err(backend)?;
        }
        Ok(())
    }

    /// Removes envelopes `ids` of queue `r` in one batch, then from the index, and shreds their
    /// keys. Call with the queue's stripe held. Returns how many envelopes it removed.
    fn remove_envelopes(
        &self,
        stripe: &mut Stripe,
        r: &RecipientId,
        ids: &[EnvelopeId],
    ) -> Result<usize, StoreError> {
        let mut batch = sled::Batch::default();
        let mut found = Vec::with_capacity(ids.len());
        if let Some(q) = stripe.queues.get(r) {
            for id in ids {
                if let Some(meta) = q.envelopes.get(id) {
                    batch.remove(&envelope_key(r, meta.seq)[..]);
                    found.push(*id);
                }
            }
        }
        self.db.apply_batch(batch).map_err(backend)?;
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
        let before = q.value.clone();
        change(&mut q.value);
        let stored = self.db.insert(&queue_key(r)[..], q.encode());
        if let Err(e) = stored {
            q.value = before;
            return Err(backend(e));
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
        let mut out = Vec::new();
        let mut bytes = 0usize;
        let range = envelope_key(r, from_seq)..=envelope_key(r, u64::MAX);
        for item in self.db.range(range) {
            if out.len() >= limit || bytes >= max_bytes {
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
                Ok(body) => {
                    bytes += body.len();
                    out.push(StoredEnvelope {
                        seq,
                        id: head.id,
                        body,
                        expires_at: head.expires_at,
                    });
                }
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
        let mut senders = self.senders.write().unwrap_or_else(PoisonError::into_inner);
        let mut stripe = self.stripe(r);
        let Some(sender) = stripe
            .queues
            .get(r)
            .filter(|q| doomed(&q.value))
            .map(|q| q.value.sender_id)
        else {
            return Ok(false);
        };
        let mut batch = sled::Batch::default();
        let mut slots = Vec::new();
        // Everything sled holds under the queue, whether or not the index knows it.
        for item in self.db.scan_prefix(envelope_prefix(r)) {
            let (k, v) = item.map_err(backend)?;
            let (head, _) = EnvelopeHead::decode(&v)?;
            batch.remove(k);
            slots.push(head.slot);
        }
        batch.remove(&queue_key(r)[..]);
        batch.remove(&sender_key(&sender)[..]);
        self.db.apply_batch(batch).map_err(backend)?;
        stripe.remove_queue(r);
        senders.remove(&sender);
        drop(stripe);
        drop(senders);
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

    /// Forgets the whole index and builds it again from sled.
    pub(super) fn rebuild_index(&self) -> Result<(), StoreError> {
        let mut senders = self.senders.write().unwrap_or_else(PoisonError::into_inner);
        let mut stripes = self.all_stripes();
        senders.clear();
        for stripe in stripes.iter_mut() {
            **stripe = Stripe::default();
        }
        drop(stripes);
        drop(senders);
        self.load_all()
    }

    /// Builds the whole index from sled (on open, after `recovery`).
    pub(super) fn load_all(&self) -> Result<(), StoreError> {
        let mut senders = self.senders.write().unwrap_or_else(PoisonError::into_inner);
        for item in self.db.scan_prefix(QUEUE_PREFIX) {
            let (k, v) = item.map_err(backend)?;
            let bytes = k.get(1..).and_then(|b| b.try_into().ok());
            let r = RecipientId::from_bytes(bytes.ok_or_else(|| backend("bad queue key"))?);
            let q = load_queue(&self.db, &r, &v)?;
            senders.insert(q.value.sender_id, r);
            self.stripe(&r).insert_queue(r, q);
        }
        Ok(())
    }
}
