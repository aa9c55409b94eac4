//! [`SledStore`]: the embedded default [`QueueStore`], on sled, with every record sealed at rest.
//!
//! Layout (store format 3, see `codec`): one sled tree holds queue records and segments of
//! envelope records (`segment`), each record sealed under its own key from a [`Vault`] in the
//! data directory (device key from the 0600 `device.key` beside it); a queue record is keyed by
//! nothing but that key's vault slot, a segment by a counter (`seal` says what each record
//! holds). No id a client uses is on disk in the clear, nor anything computed from one. An
//! in-memory index (`mem`), rebuilt on open by opening every record, holds every queue's record
//! and counters and every envelope's id, seq, expiry, key slot and place in its segment, so a
//! round of sends writes a few segments, an ack writes nothing to sled (it shreds the
//! envelope's key), and neither reads sled. Every
//! change to a queue is part of one sled `Batch`, applied atomically under that queue's lock
//! stripe (which also guards its part of the index), so the capability check, quota check,
//! append and optional capability swap of a send are one step. Sends and acks go through one
//! writer thread (`writer`), which applies all that are queued as one batch holding every
//! stripe; other changes apply their own batch.
//!
//! Deletion: ack, retract and expiry shred the envelope's key; deleting a queue shreds its
//! envelopes' keys and the queue's own. What sled's log, or a segment that still holds other
//! envelopes, may still hold of them can then no longer be read; a segment's key is removed
//! once all its envelopes are gone. A database of format 1 (ids in the clear) or 2 (one key per
//! envelope) is migrated on open (`migrate`).
//!
//! Durability: mutations return once a group commit (one sled flush, then one vault fdatasync,
//! shared by every concurrent writer; see `commit`) has covered them. Runtime: sends and acks
//! run on the writer thread and flushing on a dedicated thread; other per-request work touches
//! only memory and the page cache and runs on the caller's task, as does the first
//! `INLINE_READ_BYTES` of a read of pending envelopes; the rest of such a read, sweeps and queue
//! deletion, which may touch many records, run under `spawn_blocking`.
//! [`SledStore::open`] blocks and needs no runtime.
//!
//! What it does not do: decide TTLs or quotas (passed in), authorise recipients (done before a
//! store call), or count expired-but-unswept envelopes out of the quota (the sweep removes them).

mod codec;
mod commit;
mod error;
mod mem;
mod migrate;
mod ops;
mod recovery;
mod seal;
mod segment;
#[cfg(test)]
mod tests;
mod worker;
mod writer;

use std::fs::DirBuilder;
use std::future::Future;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hush_protocol::{EnvelopeId, RecipientId, SenderId};
use hush_vault::{DeviceKey, Vault, VaultOptions};

use self::commit::{GroupCommit, SledFiles};
use self::error::backend;
use self::ops::{Core, SendOp};
use self::writer::{Op, Writer};
use super::{
    CapHash, NewEnvelope, QueueRecord, QueueStore, Quota, StoreError, StoreStats, StoredEnvelope,
    SweepStats, WakeRegistry, Wakeup,
};

/// Most vault slots, hence most records (envelopes and queues) stored at once (64 Mi).
pub const MAX_STORED_ENVELOPES: u64 = 1 << 26;
/// Subdirectory that holds the sled database (formats 2 and 3; format 1 was in `db`).
const DB_DIR: &str = "db.v2";
/// The key vault file.
const VAULT_FILE: &str = "keys.vault";
/// The device key file that unlocks the vault.
const KEY_FILE: &str = "device.key";
/// Body bytes a read of pending envelopes reads on the caller's task before it moves to a
/// blocking thread.
const INLINE_READ_BYTES: usize = 128 * 1024;

/// The sled-backed queue store. Cheap to clone; clones share one database.
#[derive(Clone)]
pub struct SledStore {
    inner: Arc<Inner>,
}

/// Fields drop in order: the writer finishes what is queued and stops first, then the flusher
/// thread (with a final flush).
struct Inner {
    writer: Writer,
    commit: GroupCommit,
    core: Arc<Core>,
    wakes: WakeRegistry,
}

impl SledStore {
    /// Opens (or creates, mode 0700) the data directory `dir`: the database, the key vault and
    /// its device key file. Migrates a database of an older format, and drops records left
    /// half-written by a crash. Blocks on disk.
    pub fn open(dir: &Path) -> Result<SledStore, StoreError> {
        let options = VaultOptions {
            max_slots: MAX_STORED_ENVELOPES,
        };
        Self::open_with(dir, options)
    }

    /// [`SledStore::open`] on a blocking thread, for callers already inside the runtime.
    pub async fn open_async(dir: PathBuf) -> Result<SledStore, StoreError> {
        tokio::task::spawn_blocking(move || Self::open(&dir))
            .await
            .map_err(backend)?
    }

    fn open_with(dir: &Path, options: VaultOptions) -> Result<SledStore, StoreError> {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(backend)?;
        let key = DeviceKey::load_or_create_key_file(&dir.join(KEY_FILE)).map_err(backend)?;
        let vault = Arc::new(Vault::open(&dir.join(VAULT_FILE), &key, options).map_err(backend)?);
        let db = migrate::open_current(dir, &dir.join(DB_DIR), &vault)?;
        let (queues, segments) = recovery::load(&db, &vault, recovery::Repair::Yes)?;
        let files = SledFiles::open(&dir.join(DB_DIR)).map_err(backend)?;
        let commit = GroupCommit::start(db.clone(), files, Arc::clone(&vault))?;
        let core = Arc::new(Core::new(db, vault));
        core.install(queues, segments);
        let wakes = WakeRegistry::default();
        let writer = Writer::start(Arc::clone(&core), commit.committer(), wakes.clone())?;
        Ok(SledStore {
            inner: Arc::new(Inner {
                writer,
                commit,
                core,
                wakes,
            }),
        })
    }

    /// How many group-commit flushes have run since open (for metrics and tests).
    pub fn flush_count(&self) -> u64 {
        self.inner.commit.flush_count()
    }

    /// Runs blocking store work off the async executor.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Core) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let core = Arc::clone(&self.inner.core);
        tokio::task::spawn_blocking(move || f(&core))
            .await
            .map_err(backend)?
    }

    /// Queues a send with the writer now; the future resolves once it is durable.
    fn submit_send(
        &self,
        op: SendOp,
    ) -> impl Future<Output = Result<RecipientId, StoreError>> + Send + 'static {
        let (done, rx) = tokio::sync::oneshot::channel();
        self.inner.writer.submit(Op::Send(op, done));
        async move { rx.await.unwrap_or_else(|_| Err(writer_gone())) }
    }
}

/// Opens the sled database in `path` as the store uses it.
fn open_db(path: &Path) -> Result<sled::Db, StoreError> {
    sled::Config::new()
        .path(path)
        .mode(sled::Mode::HighThroughput)
        // Every write is flushed by the group commit; a timer flush would only add I/O.
        .flush_every_ms(None)
        .open()
        .map_err(backend)
}

fn writer_gone() -> StoreError {
    StoreError::permanent("the store's writer stopped (shutting down, or it failed)")
}

impl QueueStore for SledStore {
    async fn create_queue(&self, queue: QueueRecord) -> Result<(), StoreError> {
        self.inner.core.create(&queue)?;
        self.inner.commit.durable().await
    }

    async fn queue(&self, recipient: RecipientId) -> Result<Option<QueueRecord>, StoreError> {
        Ok(self.inner.core.get_queue(&recipient))
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
        let started = self.start_send(sender, cap_hash, envelope, new_cap_hash, quota, now);
        started.await.await
    }

    /// Queues the send with the writer at once: sends submitted later are staged after it.
    fn start_send(
        &self,
        sender: SenderId,
        cap_hash: CapHash,
        envelope: NewEnvelope,
        new_cap_hash: Option<CapHash>,
        quota: Quota,
        now: u64,
    ) -> impl Future<Output = impl Future<Output = Result<RecipientId, StoreError>> + Send + 'static>
           + Send {
        let durable = self.submit_send(SendOp {
            sender,
            cap_hash,
            envelope,
            new_cap_hash,
            quota,
            now,
        });
        std::future::ready(durable)
    }

    async fn retract(
        &self,
        sender: SenderId,
        cap_hash: CapHash,
        envelope: EnvelopeId,
    ) -> Result<bool, StoreError> {
        let removed = self.inner.core.retract(&sender, &cap_hash, &envelope)?;
        if removed {
            self.inner.commit.durable().await?;
        }
        Ok(removed)
    }

    async fn pending(
        &self,
        recipient: RecipientId,
        from_seq: u64,
        limit: usize,
        now: u64,
    ) -> Result<Vec<StoredEnvelope>, StoreError> {
        // Most reads are a few small, recently written envelopes still in sled's cache: read
        // them here, which costs less than a hop to a blocking thread. Past a small budget of
        // body bytes, the rest is read on a blocking thread.
        let core = &self.inner.core;
        let mut out = core.pending(&recipient, from_seq, limit, now, INLINE_READ_BYTES)?;
        let Some(last) = out.last() else {
            return Ok(out);
        };
        let read_bytes: usize = out.iter().map(|e| e.body.len()).sum();
        if out.len() == limit || read_bytes < INLINE_READ_BYTES {
            return Ok(out);
        }
        let (next, left) = (last.seq + 1, limit - out.len());
        let rest = self
            .blocking(move |core| core.pending(&recipient, next, left, now, usize::MAX))
            .await?;
        out.extend(rest);
        Ok(out)
    }

    async fn ack(
        &self,
        recipient: RecipientId,
        envelope: EnvelopeId,
        now: u64,
    ) -> Result<bool, StoreError> {
        let (done, rx) = tokio::sync::oneshot::channel();
        self.inner.writer.submit(Op::Ack {
            recipient,
            envelope,
            now,
            done,
        });
        rx.await.unwrap_or_else(|_| Err(writer_gone()))
    }

    async fn set_send_cap(
        &self,
        recipient: RecipientId,
        new_cap_hash: CapHash,
    ) -> Result<(), StoreError> {
        self.inner
            .core
            .update_queue(&recipient, |q| q.send_cap_hash = new_cap_hash)?;
        self.inner.commit.durable().await
    }

    async fn touch(&self, recipient: RecipientId, now: u64) -> Result<(), StoreError> {
        self.inner
            .core
            .update_queue(&recipient, |q| q.last_active = now)?;
        self.inner.commit.durable().await
    }

    async fn delete_queue(&self, recipient: RecipientId) -> Result<bool, StoreError> {
        let existed = self
            .blocking(move |core| core.delete_queue_if(&recipient, |_| true))
            .await?;
        if existed {
            self.inner.commit.durable().await?;
            self.inner.wakes.wake(&recipient);
        }
        Ok(existed)
    }

    async fn sweep(&self, now: u64, idle_after: u64) -> Result<SweepStats, StoreError> {
        let (stats, deleted) = self
            .blocking(move |core| core.sweep(now, idle_after))
            .await?;
        self.inner.commit.durable().await?;
        for r in &deleted {
            self.inner.wakes.wake(r);
        }
        Ok(stats)
    }

    fn watch(&self, recipient: RecipientId) -> Wakeup {
        self.inner.wakes.watch(recipient)
    }

    async fn flush(&self) -> Result<(), StoreError> {
        self.inner.commit.durable().await
    }

    fn stats(&self) -> Option<StoreStats> {
        Some(self.inner.core.stats())
    }

    fn commit_latency(&self) -> Option<super::CommitLatency> {
        Some(self.inner.commit.latency())
    }
}
