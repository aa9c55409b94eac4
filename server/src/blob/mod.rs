//! Blob storage: the relay side of file transfer. A blob is one uploaded file's ciphertext,
//! written once in order by its sender and read by its recipient, then deleted.
//!
//! What it does: [`BlobStore`] keeps each blob as one file under `<data>/blobs/` (a header,
//! then the bytes), encrypted at rest under a fresh per-blob key that a slot of the blob key
//! vault (`<data>/blobs/keys.vault`, unlocked by `<data>/device.key`) wraps; see `cipher`.
//! Deleting a blob (delete, retract, expiry) shreds that slot and removes the file, so nothing
//! in the data directory decrypts to its bytes afterwards. Only SHA-256 hashes of the two
//! capabilities are kept, and compared in constant time. Creation reserves the blob's size
//! against a budget (see `index`); writes are append-only and acknowledged without an fsync
//! per chunk, under the durability rule in `entry` (periodic checkpoints in `checkpoint`); a restart keeps complete and partial blobs
//! (see `recovery`). Reads return only the range asked for, and nothing ever holds a whole
//! blob in memory. Every operation that touches the disk runs on tokio's blocking pool.
//!
//! [`Blobs`] chooses between that store and [`jetstream::JetStreamBlobs`], which keeps blobs on
//! the NATS JetStream cluster that several relay nodes share (same operations, same errors).
//!
//! What it does not do: see plaintext (clients encrypt end to end before uploading), decide
//! the clock (callers pass `now`), rate-limit (the connection layer does), or work without a
//! data directory: relays on the in-memory queue store keep blobs on disk too, in the data
//! directory that already holds their certificate.

mod backend;
mod checkpoint;
mod cipher;
mod entry;
mod error;
pub(crate) mod handler;
mod header;
mod index;
pub mod jetstream;
mod params;
mod recovery;
#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::Arc;

use hush_protocol::{BlobCapability, BlobId};

pub use backend::Blobs;
pub use entry::CHECKPOINT_BYTES;
pub use error::BlobError;
pub use header::HEADER_LEN;
pub use index::{file_name, Created, Status};
pub use params::{
    BlobLimits, CapHash, BLOB_DIR, KEY_FILE, MAX_BLOB_BYTES, MAX_STORED_BLOBS, VAULT_FILE,
};

use params::cap_hash;

/// The relay's blob storage. Cheap to clone; clones share one directory.
#[derive(Clone)]
pub struct BlobStore {
    inner: Arc<index::Inner>,
}

impl std::fmt::Debug for BlobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobStore")
            .field("limits", &self.inner.limits)
            .finish_non_exhaustive()
    }
}

impl BlobStore {
    /// Opens (or creates) the blob directory under `data_dir` and reconciles it with its vault.
    /// Blocks on disk.
    pub fn open(data_dir: &Path, limits: BlobLimits) -> Result<BlobStore, BlobError> {
        Ok(BlobStore {
            inner: Arc::new(recovery::open(data_dir, limits)?),
        })
    }

    /// Runs blocking blob work on tokio's blocking pool.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&index::Inner) -> Result<T, BlobError> + Send + 'static,
    ) -> Result<T, BlobError> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || f(&inner))
            .await
            .map_err(|e| BlobError::Task(e.to_string()))?
    }

    /// Creates a blob of `total_len` bytes. `ttl_secs = 0` means the maximum.
    pub async fn create(
        &self,
        write_cap: &BlobCapability,
        read_cap: &BlobCapability,
        total_len: u64,
        ttl_secs: u32,
        now: u64,
    ) -> Result<Created, BlobError> {
        let expires_at = self.inner.limits.expiry(ttl_secs, now);
        let (w, r) = (cap_hash(write_cap), cap_hash(read_cap));
        self.blocking(move |i| i.create(w, r, total_len, expires_at))
            .await
    }

    /// Appends `data` at `offset`; returns the committed length after it.
    pub async fn write(
        &self,
        id: BlobId,
        write_cap: &BlobCapability,
        offset: u64,
        data: Vec<u8>,
        now: u64,
    ) -> Result<u64, BlobError> {
        let cap = cap_hash(write_cap);
        self.blocking(move |i| i.write(&id, &cap, offset, data, now))
            .await
    }

    /// How far the blob's upload got; either capability works. Touches only memory.
    pub fn status(&self, id: BlobId, cap: &BlobCapability, now: u64) -> Result<Status, BlobError> {
        let blob = self
            .inner
            .find(&id, &cap_hash(cap), entry::Access::Either, now)?;
        let committed = blob.committed().ok_or(BlobError::NotFound)?;
        Ok(Status {
            total_len: blob.total_len,
            committed,
            expires_at: blob.expires_at,
        })
    }

    /// Up to `len` bytes of the complete blob from `offset`.
    pub async fn read(
        &self,
        id: BlobId,
        read_cap: &BlobCapability,
        offset: u64,
        len: u32,
        now: u64,
    ) -> Result<Vec<u8>, BlobError> {
        let blob = self
            .inner
            .find(&id, &cap_hash(read_cap), entry::Access::Read, now)?;
        tokio::task::spawn_blocking(move || blob.read(offset, len))
            .await
            .map_err(|e| BlobError::Task(e.to_string()))?
    }

    /// Deletes the blob (either capability), shredding its key.
    pub async fn delete(
        &self,
        id: BlobId,
        cap: &BlobCapability,
        now: u64,
    ) -> Result<(), BlobError> {
        let cap = cap_hash(cap);
        self.blocking(move |i| i.delete(&id, &cap, now)).await
    }

    /// Deletes every blob whose time is up at `now`, finished or not; returns how many.
    pub async fn sweep(&self, now: u64) -> Result<u64, BlobError> {
        self.blocking(move |i| i.sweep(now)).await
    }

    /// Makes every byte written so far durable (graceful shutdown calls it).
    pub async fn flush(&self) -> Result<(), BlobError> {
        self.blocking(|i| i.flush()).await
    }

    /// How many blobs the store holds (expired ones until the sweep removes them).
    pub fn len(&self) -> usize {
        self.inner.lock().blobs.len()
    }

    /// Whether the store holds no blob.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes reserved against the budget.
    pub fn reserved_bytes(&self) -> u64 {
        self.inner.lock().reserved
    }
}
