//! What one relay node keeps in memory to spare NATS round trips: a turn per queue for its own
//! writes, and the queue each sender id names.
//!
//! Neither is needed for correctness. Writes to a queue are made atomic by JetStream's
//! expected-last-sequence check, across nodes; taking turns within a node only keeps its own
//! concurrent sends to one queue from failing that check against each other and reading the
//! queue again. A cached sender id can only be stale for a deleted queue, whose subject then
//! holds no capability, so a send through it is refused as for any unknown queue.
//!
//! What this module does not do: cache envelopes or capabilities (they change on other nodes).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use hush_protocol::{RecipientId, SenderId};
use tokio::sync::OwnedMutexGuard;

/// Most sender ids remembered; the map is cleared when it is full.
const MAX_SENDERS: usize = 100_000;

/// A node's turns and sender cache.
#[derive(Default)]
pub(super) struct Local {
    turns: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    senders: Mutex<HashMap<SenderId, RecipientId>>,
}

/// This node's turn at writing one queue; the next waiting writer goes when it is dropped.
pub(super) struct Turn {
    _guard: OwnedMutexGuard<()>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Local {
    /// Waits for this node's turn at writing the queue with this hash.
    pub(super) async fn turn(&self, hash: &str) -> Turn {
        let mutex = {
            let mut turns = lock(&self.turns);
            // Forget the queues nobody is writing to.
            turns.retain(|_, m| Arc::strong_count(m) > 1);
            turns.entry(hash.to_owned()).or_default().clone()
        };
        Turn {
            _guard: mutex.lock_owned().await,
        }
    }

    /// The queue a sender id was last seen to name.
    pub(super) fn sender(&self, sid: &SenderId) -> Option<RecipientId> {
        lock(&self.senders).get(sid).copied()
    }

    /// Remembers the queue a sender id names.
    pub(super) fn remember_sender(&self, sid: SenderId, rid: RecipientId) {
        let mut senders = lock(&self.senders);
        if senders.len() >= MAX_SENDERS {
            senders.clear();
        }
        senders.insert(sid, rid);
    }
}
