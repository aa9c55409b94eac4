//! Group commit: one flush of sled and the key vault makes many writers' changes durable.
//!
//! A writer applies its change (to sled's memory and the vault file's page cache), then calls
//! [`GroupCommit::durable`], which registers it as waiting and returns a future. A dedicated
//! thread takes every waiter registered since its last flush, runs one `fdatasync` of the vault
//! and one sled flush, and then releases all of them with the result. Writers that arrive during
//! a flush go into the next one, so under load each flush covers many writes.
//!
//! What it does not do: order writes (sled and the vault do that), or retry a failed flush; a
//! failure is reported to every waiter of that flush as [`StoreError::Backend`].

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use hush_vault::Vault;
use tokio::sync::oneshot;

use crate::store::StoreError;

type Waiter = oneshot::Sender<Result<(), String>>;

#[derive(Default)]
struct Pending {
    waiters: Vec<Waiter>,
    shutdown: bool,
}

#[derive(Default)]
struct Shared {
    pending: Mutex<Pending>,
    wake: Condvar,
    flushes: AtomicU64,
    /// Held by the flusher while it takes a batch and flushes it; tests hold it to pile up
    /// writers deterministically.
    gate: Mutex<()>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The flusher thread and the queue of writers waiting for it.
pub(super) struct GroupCommit {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl GroupCommit {
    /// Starts the flusher thread for `db` and `vault`.
    pub(super) fn start(db: sled::Db, vault: Arc<Vault>) -> Result<GroupCommit, StoreError> {
        let shared = Arc::new(Shared::default());
        let for_thread = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("hush-store-flush".into())
            .spawn(move || flush_loop(&for_thread, &db, &vault))
            .map_err(|e| StoreError::Backend(format!("cannot start flusher thread: {e}")))?;
        Ok(GroupCommit {
            shared,
            thread: Some(thread),
        })
    }

    /// Resolves once everything written before this call is durable.
    ///
    /// The waiter is registered now, not when the future is first polled, so the caller must
    /// call this after its write.
    pub(super) fn durable(&self) -> impl Future<Output = Result<(), StoreError>> + Send + 'static {
        let (tx, rx) = oneshot::channel();
        {
            let mut pending = self.shared.lock();
            pending.waiters.push(tx);
        }
        self.shared.wake.notify_one();
        async move {
            match rx.await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(StoreError::Backend(e)),
                Err(_) => Err(StoreError::Backend("store is shutting down".into())),
            }
        }
    }

    /// How many flushes have run since the store was opened.
    pub(super) fn flush_count(&self) -> u64 {
        self.shared.flushes.load(Ordering::Relaxed)
    }

    /// Holds back flushes until the guard drops.
    #[cfg(test)]
    pub(super) fn pause(&self) -> MutexGuard<'_, ()> {
        self.shared
            .gate
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// How many writers wait for the next flush.
    #[cfg(test)]
    pub(super) fn waiting(&self) -> usize {
        self.shared.lock().waiters.len()
    }
}

impl Drop for GroupCommit {
    fn drop(&mut self) {
        self.shared.lock().shutdown = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("store flusher thread panicked");
            }
        }
    }
}

fn flush_loop(shared: &Shared, db: &sled::Db, vault: &Vault) {
    loop {
        {
            let mut pending = shared.lock();
            while pending.waiters.is_empty() && !pending.shutdown {
                pending = shared
                    .wake
                    .wait(pending)
                    .unwrap_or_else(PoisonError::into_inner);
            }
        }
        let _gate = shared.gate.lock().unwrap_or_else(PoisonError::into_inner);
        let (batch, shutdown) = {
            let mut pending = shared.lock();
            (std::mem::take(&mut pending.waiters), pending.shutdown)
        };
        let result = flush_once(db, vault);
        shared.flushes.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = &result {
            tracing::error!(error = %e, waiters = batch.len(), "store flush failed");
        }
        for waiter in batch {
            // A writer that stopped waiting (its request was cancelled) is not an error.
            let _ = waiter.send(result.clone());
        }
        if shutdown && shared.lock().waiters.is_empty() {
            return;
        }
    }
}

/// The vault first: a sled record that reaches disk before its key is found and dropped on the
/// next open, as is a key whose record never made it.
fn flush_once(db: &sled::Db, vault: &Vault) -> Result<(), String> {
    vault
        .sync()
        .map_err(|e| format!("key vault sync failed: {e}"))?;
    db.flush()
        .map(|_| ())
        .map_err(|e| format!("database flush failed: {e}"))
}
