//! Wake-ups across relay nodes: a send through one node wakes subscribers on every node.
//!
//! After a send is acknowledged (and when a queue is deleted), the node publishes an empty core
//! NATS message on the queue's wake subject (`<prefix>.w.<queue hash>`). Every node subscribes
//! to all wake subjects and wakes its local watchers of that queue. A wake-up lost while a node
//! is disconnected from NATS is made up on reconnection: the node then wakes every queue it
//! watches, and their subscribers read what they missed. Wake-ups only prompt a read; the
//! envelopes themselves come from the stream, so a lost or duplicated wake-up loses or
//! duplicates nothing.
//!
//! What this module does not do: carry envelopes, or decide what a woken subscriber reads.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use futures_util::StreamExt;
use hush_protocol::RecipientId;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::store::{WakeRegistry, Wakeup};

/// Local watchers, found by the queue hash that wake subjects carry.
#[derive(Clone, Default)]
pub(super) struct Watchers {
    registry: WakeRegistry,
    by_hash: Arc<Mutex<HashMap<String, RecipientId>>>,
}

impl Watchers {
    /// Starts watching a queue.
    pub(super) fn watch(&self, hash: String, rid: RecipientId) -> Wakeup {
        let w = self.registry.watch(rid);
        self.lock().insert(hash, rid);
        w
    }

    /// Wakes the local watchers of the queue with this hash, and forgets it once nobody
    /// watches it any more.
    pub(super) fn wake_hash(&self, hash: &str) {
        let mut map = self.lock();
        if let Some(rid) = map.get(hash).copied() {
            self.registry.wake(&rid);
            if !self.registry.is_watched(&rid) {
                map.remove(hash);
            }
        }
    }

    /// Wakes every watched queue: after a reconnection, when wake-ups may have been missed.
    pub(super) fn wake_all(&self) {
        let hashes: Vec<String> = self.lock().keys().cloned().collect();
        for h in hashes {
            self.wake_hash(&h);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, RecipientId>> {
        self.by_hash.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Listens to every node's wake-ups, and to reconnections, until the store is dropped.
pub(super) struct Listener {
    task: JoinHandle<()>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Listener {
    /// Subscribes to `<prefix>.w.*` and wakes `watchers` for each message; each message on
    /// `reconnected` wakes them all.
    pub(super) async fn start(
        client: &async_nats::Client,
        prefix: &str,
        watchers: Watchers,
        mut reconnected: mpsc::UnboundedReceiver<()>,
    ) -> Result<Listener, async_nats::SubscribeError> {
        let mut sub = client.subscribe(format!("{prefix}.w.*")).await?;
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    msg = sub.next() => match msg {
                        Some(m) => {
                            if let Some(hash) = m.subject.as_str().rsplit('.').next() {
                                watchers.wake_hash(hash);
                            }
                        }
                        None => break,
                    },
                    Some(()) = reconnected.recv() => watchers.wake_all(),
                }
            }
        });
        Ok(Listener { task })
    }
}
