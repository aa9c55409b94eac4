//! Group commit: one flush of sled and the key vault makes many writers' changes durable.
//!
//! A writer applies its change (to sled's memory and the vault file's page cache), then calls
//! [`GroupCommit::durable`], which registers it as waiting and returns a future, or registers a
//! callback with [`Committer::after_durable`] (the store's writer thread does, once per batch of
//! sends and acks). A dedicated thread takes every waiter registered since its last flush, runs
//! one sled flush and one `fdatasync` of the vault, and then releases all of them with the
//! result. Writers that arrive during a flush go into the next one, so under load each flush
//! covers many writes.
//!
//! What it does not do: order writes (sled and the vault do that), or retry a failed flush; a
//! failure is reported to every waiter of that flush as [`StoreError::Backend`], transient or
//! permanent as its cause (see `error`).

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::File;
use std::future::Future;
use std::io;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
#[cfg(test)]
use std::sync::MutexGuard;
use std::sync::{mpsc, Arc, Mutex, PoisonError};
use std::time::Instant;

use hush_vault::{Vault, VaultError};
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use tokio::sync::oneshot;

use super::error::failed;
use super::worker::{WorkQueue, Worker};
use crate::store::StoreError;

/// What a flush tells its waiters: `Ok` once durable, or why the flush failed.
pub(super) type FlushResult = Result<(), StoreError>;

/// Called with the result of the first flush that started after it was registered.
pub(super) type AfterDurable = Box<dyn FnOnce(FlushResult) + Send>;

/// A registered waiter and how many writes it stands for (for tests and metrics).
struct Waiter {
    covers: usize,
    done: AfterDurable,
}

/// sled 0.34's log file inside its directory.
const SLED_LOG_FILE: &str = "db";
/// sled 0.34's directory of values too large for the log.
const SLED_BLOB_DIR: &str = "blobs";

/// Bucket bounds of the flush-latency histogram: 50 µs doubling to about 1.6 s.
fn latency_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(50e-6, 2.0, 16)
}

/// What the flusher shares with the store besides its queue of waiters.
struct Stats {
    flushes: AtomicU64,
    /// How long each flush took, in seconds.
    latency: Histogram,
    /// Held by the flusher while it takes a batch and flushes it; tests hold it to pile up
    /// writers deterministically.
    gate: Mutex<()>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            flushes: AtomicU64::new(0),
            latency: Histogram::new(latency_buckets()),
            gate: Mutex::new(()),
        }
    }
}

/// The flusher thread and the queue of writers waiting for it.
pub(super) struct GroupCommit {
    stats: Arc<Stats>,
    worker: Worker<Waiter>,
}

impl GroupCommit {
    /// Starts the flusher thread for `db` and `vault`.
    pub(super) fn start(
        db: sled::Db,
        mut files: SledFiles,
        vault: Arc<Vault>,
    ) -> Result<GroupCommit, StoreError> {
        let stats = Arc::new(Stats::default());
        let for_thread = Arc::clone(&stats);
        let syncer = VaultSyncer::spawn(Arc::clone(&vault));
        let worker = Worker::start("hush-store-flush", "flusher", move |queue| {
            flush_loop(queue, &for_thread, &db, &mut files, &syncer)
        })?;
        Ok(GroupCommit { stats, worker })
    }

    /// A handle that registers waiters from another thread.
    pub(super) fn committer(&self) -> Committer {
        Committer {
            queue: Arc::clone(self.worker.queue()),
        }
    }

    /// Resolves once everything written before this call is durable.
    ///
    /// The waiter is registered now, not when the future is first polled, so the caller must
    /// call this after its write.
    pub(super) fn durable(&self) -> impl Future<Output = Result<(), StoreError>> + Send + 'static {
        let (tx, rx) = oneshot::channel();
        self.committer().after_durable(
            1,
            Box::new(move |result| {
                // A writer that stopped waiting (its request was cancelled) is not an error.
                let _ = tx.send(result);
            }),
        );
        async move {
            match rx.await {
                Ok(result) => result,
                Err(_) => Err(StoreError::permanent("store is shutting down")),
            }
        }
    }

    /// How many flushes have run since the store was opened.
    pub(super) fn flush_count(&self) -> u64 {
        self.stats.flushes.load(Ordering::Relaxed)
    }

    /// The flush-latency histogram (seconds per flush); clones share it.
    pub(super) fn latency(&self) -> Histogram {
        self.stats.latency.clone()
    }

    /// Holds back flushes until the guard drops.
    #[cfg(test)]
    pub(super) fn pause(&self) -> MutexGuard<'_, ()> {
        self.stats
            .gate
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// How many writes wait for the next flush.
    #[cfg(test)]
    pub(super) fn waiting(&self) -> usize {
        let queue = self.worker.queue();
        queue.peek(|waiters| waiters.iter().map(|w| w.covers).sum())
    }
}

/// Registers waiters with a [`GroupCommit`]'s flusher.
pub(super) struct Committer {
    queue: Arc<WorkQueue<Waiter>>,
}

impl Committer {
    /// Calls `done` (on the flusher thread) with the result of the first flush that starts
    /// after this call; so call it after the write. `covers` is how many writes it stands for.
    /// `done` must be quick: the flusher waits for it.
    pub(super) fn after_durable(&self, covers: usize, done: AfterDurable) {
        self.queue.push(Waiter { covers, done });
    }
}

fn flush_loop(
    queue: &WorkQueue<Waiter>,
    stats: &Stats,
    db: &sled::Db,
    files: &mut SledFiles,
    vault: &VaultSyncer,
) {
    loop {
        queue.wait();
        let _gate = stats.gate.lock().unwrap_or_else(PoisonError::into_inner);
        let (batch, shutdown) = queue.take();
        // A panic inside sled must not kill the flusher: later writers would wait forever.
        let started = Instant::now();
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| flush_once(db, files, vault)))
            .unwrap_or_else(|_| Err(StoreError::permanent("database flush panicked")));
        let took = started.elapsed();
        stats.latency.observe(took.as_secs_f64());
        tracing::trace!(waiters = batch.len(), us = took.as_micros(), "group commit");
        stats.flushes.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = &result {
            let writes: usize = batch.iter().map(|w| w.covers).sum();
            tracing::error!(error = %e, writes, "store flush failed");
        }
        for waiter in batch {
            (waiter.done)(result.clone());
        }
        if shutdown && queue.is_empty() {
            return;
        }
    }
}

/// Flushes sled and fdatasyncs sled's files, while the vault's sync thread fdatasyncs the vault.
///
/// On Linux sled 0.34 makes its log stable with `sync_file_range`, which neither flushes the
/// drive's volatile cache nor persists the file's size, and it writes oversized nodes to blob
/// files without syncing them; so after sled's own flush the store fdatasyncs those files
/// itself, to survive power loss and not just a process crash. The vault sync runs alongside
/// all of that: every waiter of this flush wrote its vault slots before it registered.
/// (Crash consistency does not depend on the order of the two sides: a record whose key did not
/// reach disk, or a key whose record did not, is dropped on the next open by `recovery`; neither
/// was acknowledged.)
fn flush_once(db: &sled::Db, files: &mut SledFiles, vault: &VaultSyncer) -> FlushResult {
    let pending = vault.start_sync();
    let db_synced = db
        .flush()
        .map_err(|e| failed("database flush failed", e))
        .and_then(|_| files.sync().map_err(|e| failed("database sync failed", e)));
    let vault_synced = vault.finish(pending);
    db_synced?;
    vault_synced.map_err(|e| failed("key vault sync failed", e))
}

/// A thread that fdatasyncs the vault when the flusher asks, so the vault's sync runs while
/// the flusher syncs sled, without starting a thread per flush.
struct VaultSyncer {
    vault: Arc<Vault>,
    /// Asks the thread for one sync; `None` if the thread could not be started.
    ask: Option<mpsc::Sender<mpsc::Sender<Result<(), VaultError>>>>,
}

/// A sync the [`VaultSyncer`] runs, or, if it could not be asked, none.
struct PendingSync(Option<mpsc::Receiver<Result<(), VaultError>>>);

impl VaultSyncer {
    fn spawn(vault: Arc<Vault>) -> VaultSyncer {
        let (ask, asked) = mpsc::channel::<mpsc::Sender<Result<(), VaultError>>>();
        let for_thread = Arc::clone(&vault);
        let spawned = std::thread::Builder::new()
            .name("hush-store-vsync".into())
            .spawn(move || {
                // Ends when the flusher (which holds the only sender) is gone.
                for reply in asked {
                    let _ = reply.send(for_thread.sync());
                }
            });
        VaultSyncer {
            vault,
            ask: spawned.is_ok().then_some(ask),
        }
    }

    /// Starts a sync of everything written to the vault so far.
    fn start_sync(&self) -> PendingSync {
        let (reply, result) = mpsc::channel();
        let asked = self.ask.as_ref().is_some_and(|ask| ask.send(reply).is_ok());
        PendingSync(asked.then_some(result))
    }

    /// Waits for a sync [`VaultSyncer::start_sync`] began, or syncs in line if the thread is gone.
    fn finish(&self, pending: PendingSync) -> Result<(), VaultError> {
        match pending.0.map(|result| result.recv()) {
            Some(Ok(synced)) => synced,
            _ => self.vault.sync(),
        }
    }
}

/// sled's log file and blob directory, which the store syncs itself.
pub(super) struct SledFiles {
    log: File,
    blobs: PathBuf,
    /// Blob files already synced; blobs are written once and never changed.
    synced: HashSet<OsString>,
}

impl SledFiles {
    /// Opens the files of the sled database in `db_dir` (which must already be open).
    pub(super) fn open(db_dir: &Path) -> io::Result<SledFiles> {
        Ok(SledFiles {
            log: File::open(db_dir.join(SLED_LOG_FILE))?,
            blobs: db_dir.join(SLED_BLOB_DIR),
            synced: HashSet::new(),
        })
    }

    fn sync(&mut self) -> io::Result<()> {
        self.log.sync_data()?;
        let entries = match std::fs::read_dir(&self.blobs) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        let mut present = HashSet::with_capacity(self.synced.len());
        let mut added = false;
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name();
            if !self.synced.contains(&name) {
                match File::open(entry.path()) {
                    Ok(blob) => blob.sync_data()?,
                    // Replaced by sled meanwhile: nothing left to sync.
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e),
                }
                added = true;
            }
            present.insert(name);
        }
        if added {
            File::open(&self.blobs)?.sync_all()?;
        }
        self.synced = present;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sled_files_sync_new_blobs_and_forget_removed_ones() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(SLED_LOG_FILE), b"log").unwrap();
        let mut files = SledFiles::open(dir.path()).unwrap();
        // No blob directory yet.
        files.sync().unwrap();
        let blobs = dir.path().join(SLED_BLOB_DIR);
        std::fs::create_dir(&blobs).unwrap();
        std::fs::write(blobs.join("17"), b"blob").unwrap();
        std::fs::write(blobs.join("18"), b"blob").unwrap();
        files.sync().unwrap();
        let names = |f: &SledFiles| {
            let mut v: Vec<_> = f.synced.iter().cloned().collect();
            v.sort();
            v
        };
        assert_eq!(
            names(&files),
            vec![OsString::from("17"), OsString::from("18")]
        );
        std::fs::remove_file(blobs.join("17")).unwrap();
        files.sync().unwrap();
        assert_eq!(names(&files), vec![OsString::from("18")]);
    }
}
