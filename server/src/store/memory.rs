//! In-memory [`QueueStore`], for tests. Nothing survives the process.
//!
//! One mutex guards all queues: simple and obviously atomic, which is what tests need. Clones
//! share the same queues, so a test can stop a relay and start another on the same store to
//! model a restart.
//!
//! What it does not do: persist, or scale across cores (the sled store is the production one).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use hush_protocol::{EnvelopeId, RecipientId, SenderId};

use super::{
    cap_matches, CapHash, NewEnvelope, QueueRecord, QueueStore, Quota, StoreError, StoreStats,
    StoredEnvelope, SweepStats, WakeRegistry, Wakeup,
};

#[derive(Default)]
struct Queue {
    record: Option<QueueRecord>,
    envelopes: BTreeMap<u64, StoredEnvelope>,
    by_id: HashMap<EnvelopeId, u64>,
    next_seq: u64,
    bytes: u64,
}

impl Queue {
    fn remove(&mut self, id: &EnvelopeId) -> bool {
        let Some(seq) = self.by_id.remove(id) else {
            return false;
        };
        if let Some(env) = self.envelopes.remove(&seq) {
            self.bytes -= env.body.len() as u64;
        }
        true
    }
}

#[derive(Default)]
struct State {
    queues: HashMap<RecipientId, Queue>,
    senders: HashMap<SenderId, RecipientId>,
}

impl State {
    /// The queue `sender` names, if `cap_hash` authorises it.
    fn authorised(&mut self, sender: &SenderId, cap_hash: &CapHash) -> Option<&mut Queue> {
        let rid = self.senders.get(sender)?;
        let q = self.queues.get_mut(rid)?;
        let rec = q.record.as_ref()?;
        cap_matches(&rec.send_cap_hash, cap_hash).then_some(q)
    }

    fn remove_queue(&mut self, rid: &RecipientId) -> bool {
        match self.queues.remove(rid) {
            Some(q) => {
                if let Some(rec) = q.record {
                    self.senders.remove(&rec.sender_id);
                }
                true
            }
            None => false,
        }
    }
}

/// Queues held in a `HashMap` behind one mutex.
#[derive(Clone, Default)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
    wake: WakeRegistry,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore").finish_non_exhaustive()
    }
}

impl QueueStore for MemoryStore {
    async fn create_queue(&self, queue: QueueRecord) -> Result<(), StoreError> {
        let mut st = self.lock();
        if st.queues.contains_key(&queue.recipient_id) || st.senders.contains_key(&queue.sender_id)
        {
            return Err(StoreError::Exists);
        }
        st.senders.insert(queue.sender_id, queue.recipient_id);
        st.queues.insert(
            queue.recipient_id,
            Queue {
                record: Some(queue),
                ..Queue::default()
            },
        );
        Ok(())
    }

    async fn queue(&self, recipient: RecipientId) -> Result<Option<QueueRecord>, StoreError> {
        Ok(self
            .lock()
            .queues
            .get(&recipient)
            .and_then(|q| q.record.clone()))
    }

    async fn send(
        &self,
        sender: SenderId,
        cap_hash: CapHash,
        envelope: NewEnvelope,
        new_cap_hash: Option<CapHash>,
        quota: Quota,
        now: u64,
    ) -> Result<RecipientId, StoreError> {
        let rid = {
            let mut st = self.lock();
            let q = st.authorised(&sender, &cap_hash).ok_or(StoreError::Auth)?;
            let len = envelope.body.len() as u64;
            if q.envelopes.len() >= quota.max_messages as usize
                || q.bytes.saturating_add(len) > quota.max_bytes
            {
                return Err(StoreError::QueueFull);
            }
            let seq = q.next_seq;
            q.next_seq += 1;
            q.bytes += len;
            q.by_id.insert(envelope.id, seq);
            q.envelopes.insert(
                seq,
                StoredEnvelope {
                    seq,
                    id: envelope.id,
                    body: envelope.body,
                    expires_at: envelope.expires_at,
                },
            );
            let rec = q.record.as_mut().ok_or(StoreError::Auth)?;
            if let Some(h) = new_cap_hash {
                rec.send_cap_hash = h;
            }
            rec.last_active = now;
            rec.recipient_id
        };
        self.wake.wake(&rid);
        Ok(rid)
    }

    async fn retract(
        &self,
        sender: SenderId,
        cap_hash: CapHash,
        envelope: EnvelopeId,
    ) -> Result<bool, StoreError> {
        let mut st = self.lock();
        let q = st.authorised(&sender, &cap_hash).ok_or(StoreError::Auth)?;
        Ok(q.remove(&envelope))
    }

    async fn pending(
        &self,
        recipient: RecipientId,
        from_seq: u64,
        limit: usize,
        now: u64,
    ) -> Result<Vec<StoredEnvelope>, StoreError> {
        let st = self.lock();
        let Some(q) = st.queues.get(&recipient) else {
            return Ok(Vec::new());
        };
        Ok(q.envelopes
            .range(from_seq..)
            .map(|(_, e)| e)
            .filter(|e| e.expires_at > now)
            .take(limit)
            .cloned()
            .collect())
    }

    async fn ack(
        &self,
        recipient: RecipientId,
        envelope: EnvelopeId,
        now: u64,
    ) -> Result<bool, StoreError> {
        let mut st = self.lock();
        let Some(q) = st.queues.get_mut(&recipient) else {
            return Ok(false);
        };
        if let Some(rec) = q.record.as_mut() {
            rec.last_active = now;
        }
        Ok(q.remove(&envelope))
    }

    async fn set_send_cap(
        &self,
        recipient: RecipientId,
        new_cap_hash: CapHash,
    ) -> Result<(), StoreError> {
        let mut st = self.lock();
        let rec = st
            .queues
            .get_mut(&recipient)
            .and_then(|q| q.record.as_mut())
            .ok_or(StoreError::Auth)?;
        rec.send_cap_hash = new_cap_hash;
        Ok(())
    }

    async fn touch(&self, recipient: RecipientId, now: u64) -> Result<(), StoreError> {
        if let Some(rec) = self
            .lock()
            .queues
            .get_mut(&recipient)
            .and_then(|q| q.record.as_mut())
        {
            rec.last_active = now;
        }
        Ok(())
    }

    async fn delete_queue(&self, recipient: RecipientId) -> Result<bool, StoreError> {
        let existed = self.lock().remove_queue(&recipient);
        self.wake.wake(&recipient);
        Ok(existed)
    }

    async fn sweep(&self, now: u64, idle_after: u64) -> Result<SweepStats, StoreError> {
        let mut stats = SweepStats::default();
        let mut gone = Vec::new();
        {
            let mut st = self.lock();
            let cutoff = now.saturating_sub(idle_after);
            let idle: Vec<RecipientId> = st
                .queues
                .iter()
                .filter(|(_, q)| q.record.as_ref().is_some_and(|r| r.last_active < cutoff))
                .map(|(id, _)| *id)
                .collect();
            for rid in idle {
                st.remove_queue(&rid);
                stats.idle_queues += 1;
                gone.push(rid);
            }
            for q in st.queues.values_mut() {
                let expired: Vec<EnvelopeId> = q
                    .envelopes
                    .values()
                    .filter(|e| e.expires_at <= now)
                    .map(|e| e.id)
                    .collect();
                for id in expired {
                    q.remove(&id);
                    stats.expired_envelopes += 1;
                }
            }
        }
        for rid in gone {
            self.wake.wake(&rid);
        }
        Ok(stats)
    }

    fn watch(&self, recipient: RecipientId) -> Wakeup {
        self.wake.watch(recipient)
    }

    fn stats(&self) -> Option<StoreStats> {
        let state = self.lock();
        let mut stats = StoreStats::default();
        for q in state.queues.values() {
            stats.queues += 1;
            stats.envelopes += q.envelopes.len() as u64;
            stats.envelope_bytes += q.bytes;
            let earliest = q.envelopes.values().map(|e| e.expires_at).min();
            stats.earliest_expiry = match (stats.earliest_expiry, earliest) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        Some(stats)
    }

    async fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::MemoryStore;

    #[tokio::test]
    async fn memory_store_conforms() {
        crate::store::conformance::run_all(|| (MemoryStore::new(), ())).await;
    }
}
