//! The blob index: which blobs exist, what they reserve against the budget, and the blocking
//! operations on them (create, look up, delete, sweep, flush).
//!
//! Budget: creating a blob reserves `total_len + HEADER_LEN` bytes against the configured blob
//! budget, held until the blob is deleted or expires, so an upload never runs out of budget
//! half-way. Creation also checks the disk: its free space must cover the new blob plus what
//! the blobs already reserved have yet to write. A disk that fills anyway (other files grow)
//! fails the write with `NoSpace`, and the uploader retries the same offset later.
//!
//! Deletion: the blob leaves the index first (so no new request finds it), waits for an
//! in-flight write, shreds its vault slot (synced), then removes the file and syncs the
//! directory. From then on nothing in the data directory decrypts to its bytes.
//!
//! What it does not do: I/O on a blob's bytes (`entry.rs`), or open and reconcile the directory
//! at start-up (`recovery.rs`).

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use hush_protocol::BlobId;
use hush_vault::Vault;
use rand::RngCore;

use super::checkpoint::Checkpointer;
use super::cipher::DataKey;
use super::entry::{Access, Blob, Progress};
use super::error::BlobError;
use super::header::HEADER_LEN;
use super::params::{BlobLimits, CapHash, MAX_STORED_BLOBS};

/// Blobs by id, and the bytes they reserve.
#[derive(Default)]
pub(super) struct Index {
    pub(super) blobs: HashMap<BlobId, Arc<Blob>>,
    /// Sum of `total_len + HEADER_LEN` over the blobs.
    pub(super) reserved: u64,
}

/// The blob directory, its key vault and the index.
pub(super) struct Inner {
    pub(super) dir: PathBuf,
    pub(super) vault: Vault,
    pub(super) limits: BlobLimits,
    pub(super) index: Mutex<Index>,
    /// Sum of the committed lengths of the blobs in the index.
    pub(super) written: AtomicU64,
    /// Runs the periodic checkpoints off the request path.
    pub(super) checkpointer: Checkpointer,
}

/// What a create answers.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Created {
    /// The relay-assigned id.
    pub id: BlobId,
    /// Unix seconds at which the blob is deleted.
    pub expires_at: u64,
}

/// What a status request answers.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Status {
    /// Size declared at creation.
    pub total_len: u64,
    /// Bytes stored so far.
    pub committed: u64,
    /// Unix seconds at which the blob is deleted.
    pub expires_at: u64,
}

/// The file name of blob `id` inside [`super::BLOB_DIR`]: its id in hex, then `.blob`.
pub fn file_name(id: &BlobId) -> String {
    format!("{}.blob", hex::encode(id.as_bytes()))
}

/// Makes the directory's entries (a file created or removed) durable.
pub(super) fn sync_dir(dir: &Path) -> Result<(), BlobError> {
    File::open(dir)?.sync_all()?;
    Ok(())
}

/// Free bytes on the file system holding `dir`, for an unprivileged writer.
fn disk_free(dir: &Path) -> Result<u64, BlobError> {
    let s = rustix::fs::statvfs(dir).map_err(|e| BlobError::Io(e.into()))?;
    Ok(s.f_bavail.saturating_mul(s.f_frsize))
}

impl Inner {
    pub(super) fn lock(&self) -> MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The live blob `id`, if `cap` authorises `access` to it.
    pub(super) fn find(
        &self,
        id: &BlobId,
        cap: &CapHash,
        access: Access,
        now: u64,
    ) -> Result<Arc<Blob>, BlobError> {
        let blob = self.lock().blobs.get(id).cloned();
        match blob {
            Some(b) if b.expires_at > now && b.authorises(cap, access) => Ok(b),
            _ => Err(BlobError::NotFound),
        }
    }

    /// Reserves room for a blob of `total_len` bytes, or says why there is none.
    fn reserve(&self, total_len: u64) -> Result<u64, BlobError> {
        let charge = total_len.saturating_add(HEADER_LEN);
        let mut index = self.lock();
        if index.blobs.len() as u64 >= MAX_STORED_BLOBS
            || index.reserved.saturating_add(charge) > self.limits.budget_bytes
        {
            return Err(BlobError::NoSpace);
        }
        let unwritten = index
            .reserved
            .saturating_sub(self.written.load(Ordering::Relaxed));
        if disk_free(&self.dir)? < unwritten.saturating_add(charge) {
            return Err(BlobError::NoSpace);
        }
        index.reserved += charge;
        Ok(charge)
    }

    fn unreserve(&self, charge: u64) {
        let mut index = self.lock();
        index.reserved = index.reserved.saturating_sub(charge);
    }

    /// Creates a blob: reserves its space, makes its key and its file, durably.
    pub(super) fn create(
        &self,
        write_hash: CapHash,
        read_hash: CapHash,
        total_len: u64,
        expires_at: u64,
    ) -> Result<Created, BlobError> {
        self.limits.check_new(&write_hash, &read_hash, total_len)?;
        let charge = self.reserve(total_len)?;
        let mut id = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut id);
        let id = BlobId(id);
        let (slot, slot_key) = match self.vault.allocate() {
            Ok(s) => s,
            Err(e) => {
                self.unreserve(charge);
                return Err(e.into());
            }
        };
        let key = DataKey::generate();
        let wrapped_key = key.wrap(&slot_key, &id);
        let path = self.dir.join(file_name(&id));
        let made = self.make_file(&path).and_then(|file| {
            let blob = Blob {
                id,
                write_hash,
                read_hash,
                total_len,
                expires_at,
                slot,
                key,
                wrapped_key,
                path: path.clone(),
                progress: Mutex::new(Progress {
                    committed: 0,
                    durable: 0,
                    seq: 0,
                    deleted: false,
                    checkpointing: false,
                }),
                published: AtomicU64::new(0),
                gone: AtomicBool::new(false),
            };
            blob.header(0, 0).write_to(&file)?;
            file.sync_all()?;
            sync_dir(&self.dir)?;
            self.vault.sync()?;
            Ok(blob)
        });
        match made {
            Ok(blob) => {
                self.lock().blobs.insert(id, Arc::new(blob));
                Ok(Created { id, expires_at })
            }
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                let _ = self.vault.shred(slot);
                self.unreserve(charge);
                Err(e)
            }
        }
    }

    /// A new, empty blob file (mode 0600) with room for the header.
    fn make_file(&self, path: &Path) -> Result<File, BlobError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
        file.set_len(HEADER_LEN)?;
        Ok(file)
    }

    /// Appends to blob `id`, authorised by its write capability.
    pub(super) fn write(
        &self,
        id: &BlobId,
        cap: &CapHash,
        offset: u64,
        data: Vec<u8>,
        now: u64,
    ) -> Result<u64, BlobError> {
        let blob = self.find(id, cap, Access::Write, now)?;
        let appended = blob.append(offset, data, &self.written)?;
        if appended.checkpoint_due {
            self.checkpointer.request(blob);
        }
        Ok(appended.committed)
    }

    /// Removes blob `id`, authorised by either capability.
    pub(super) fn delete(&self, id: &BlobId, cap: &CapHash, now: u64) -> Result<(), BlobError> {
        let blob = {
            let mut index = self.lock();
            let found = index
                .blobs
                .get(id)
                .filter(|b| b.expires_at > now && b.authorises(cap, Access::Either));
            if found.is_none() {
                return Err(BlobError::NotFound);
            }
            let blob = index.blobs.remove(id).ok_or(BlobError::NotFound)?;
            index.reserved = index
                .reserved
                .saturating_sub(blob.total_len.saturating_add(HEADER_LEN));
            blob
        };
        self.destroy(&blob)
    }

    /// Shreds the key of a blob already out of the index, then removes its file.
    fn destroy(&self, blob: &Blob) -> Result<(), BlobError> {
        let committed = blob.mark_deleted();
        let _ = self
            .written
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |w| {
                Some(w.saturating_sub(committed))
            });
        let shredded = self.vault.shred(blob.slot).map_err(BlobError::from);
        let removed = std::fs::remove_file(&blob.path)
            .map_err(BlobError::from)
            .and_then(|()| sync_dir(&self.dir));
        shredded.and(removed)
    }

    /// Removes every blob whose time is up; returns how many.
    pub(super) fn sweep(&self, now: u64) -> Result<u64, BlobError> {
        let expired: Vec<Arc<Blob>> = {
            let mut index = self.lock();
            let ids: Vec<BlobId> = index
                .blobs
                .values()
                .filter(|b| b.expires_at <= now)
                .map(|b| b.id)
                .collect();
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                if let Some(b) = index.blobs.remove(&id) {
                    index.reserved = index
                        .reserved
                        .saturating_sub(b.total_len.saturating_add(HEADER_LEN));
                    out.push(b);
                }
            }
            out
        };
        let mut first_error = None;
        for blob in &expired {
            if let Err(e) = self.destroy(blob) {
                first_error.get_or_insert(e);
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(expired.len() as u64),
        }
    }

    /// Checkpoints every blob with undurable bytes.
    pub(super) fn flush(&self) -> Result<(), BlobError> {
        let blobs: Vec<Arc<Blob>> = self.lock().blobs.values().cloned().collect();
        let mut first_error = None;
        for blob in blobs {
            let mut p = blob.progress();
            if let Err(e) = blob.checkpoint(&mut p) {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// The vault slot of a blob, for tests that inspect the vault.
    #[cfg(test)]
    pub(super) fn slot_of(&self, id: &BlobId) -> Option<hush_vault::SlotId> {
        self.lock().blobs.get(id).map(|b| b.slot)
    }
}
