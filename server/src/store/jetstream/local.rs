//! What one relay node keeps in memory to spare NATS round trips, besides the queue cache
//! (`cache.rs`, which is also the node's turn at writing a queue): the queue each sender id
//! names.
//!
//! It is not needed for correctness. A cached sender id can only be stale for a deleted queue,
//! whose subject then holds no capability, so a send through it is refused as for any unknown
//! queue (the conditional publish on the cached list fails, and the fresh read finds no
//! capability).
//!
//! What this module does not do: cache envelopes or capabilities (`cache.rs`).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use hush_protocol::{RecipientId, SenderId};

/// Most sender ids remembered; the map is cleared when it is full.
const MAX_SENDERS: usize = 100_000;

/// A node's sender cache.
#[derive(Default)]
pub(super) struct Local {
    senders: Mutex<HashMap<SenderId, RecipientId>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Local {
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
