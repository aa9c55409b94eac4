//! Per-queue wake-ups for subscribed recipients.
//!
//! A store calls [`WakeRegistry::wake`] after an append becomes durable; a subscriber holds a
//! [`Wakeup`] and awaits [`Wakeup::changed`]. Entries are dropped when the last watcher goes, so
//! the registry holds memory only for queues someone is subscribed to.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use hush_protocol::RecipientId;
use tokio::sync::watch;

/// The in-process half of wake-ups: one watch channel per watched queue.
#[derive(Default, Clone)]
pub struct WakeRegistry {
    inner: Arc<Mutex<HashMap<RecipientId, watch::Sender<u64>>>>,
}

/// Fires when the watched queue changes.
#[derive(Debug)]
pub struct Wakeup {
    rx: watch::Receiver<u64>,
}

impl Wakeup {
    /// Waits for the next change after the last one seen. Returns `false` if the store that
    /// produced this handle is gone.
    pub async fn changed(&mut self) -> bool {
        self.rx.changed().await.is_ok()
    }
}

impl WakeRegistry {
    /// Starts watching a queue.
    pub fn watch(&self, queue: RecipientId) -> Wakeup {
        let mut map = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let rx = map
            .entry(queue)
            .or_insert_with(|| watch::channel(0).0)
            .subscribe();
        Wakeup { rx }
    }

    /// Whether anyone still watches `queue`.
    pub fn is_watched(&self, queue: &RecipientId) -> bool {
        let map = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        map.get(queue).is_some_and(|tx| tx.receiver_count() > 0)
    }

    /// Wakes everyone watching `queue`, and forgets the queue if nobody watches any more.
    pub fn wake(&self, queue: &RecipientId) {
        let mut map = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(tx) = map.get(queue) {
            if tx.receiver_count() == 0 {
                map.remove(queue);
            } else {
                tx.send_modify(|n| *n = n.wrapping_add(1));
            }
        }
    }
}
