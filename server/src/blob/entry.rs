//! [`Blob`]: one blob's metadata, key, file path and how far its upload got; the append, the
//! range read and the durability checkpoint.
//!
//! Durability rule: a write lands in the page cache and is acknowledged without an fsync. The
//! blob is *checkpointed* (its data fdatasync'd, then the header recording the new committed
//! length written and fdatasync'd) when the upload completes (before the final write is
//! answered), on graceful shutdown, and in the background (`checkpoint.rs`) each time
//! [`CHECKPOINT_BYTES`] more were written, so that an upload never waits for a sync in the
//! middle. After a crash the relay truncates each blob to the committed length its header
//! records, so `BlobStatus.committed` reports only durable bytes and the uploader resumes from
//! there. A complete blob is always durable.
//!
//! What it does not do: check capabilities or expiry (the index does, before calling here), or
//! create and delete files.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use hush_protocol::limits::MAX_BLOB_CHUNK;
use hush_protocol::BlobId;
use hush_vault::SlotId;
use subtle::ConstantTimeEq;

use super::cipher::{DataKey, WRAPPED_KEY_LEN};
use super::error::BlobError;
use super::header::{Header, HEADER_LEN};
use super::params::CapHash;

/// Bytes written to a blob between two checkpoints, at most (8 MiB): an interrupted upload
/// loses at most this much, and a fast upload pays two fdatasyncs per this much.
pub const CHECKPOINT_BYTES: u64 = 8 * 1024 * 1024;

/// How far a blob's upload got.
#[derive(Debug)]
pub(super) struct Progress {
    /// Bytes written (in the page cache at least).
    pub(super) committed: u64,
    /// Bytes the header on disk records as durable.
    pub(super) durable: u64,
    /// Sequence number of the last header written.
    pub(super) seq: u64,
    /// Set once the blob is deleted: later writes find it gone.
    pub(super) deleted: bool,
    /// Set while a background checkpoint is queued or running.
    pub(super) checkpointing: bool,
}

/// What a successful append asks of its caller.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) struct Appended {
    /// The committed length after the append.
    pub(super) committed: u64,
    /// Whether a background checkpoint is now due.
    pub(super) checkpoint_due: bool,
}

/// One blob: immutable metadata, its key, where its file is and its progress.
pub(super) struct Blob {
    pub(super) id: BlobId,
    pub(super) write_hash: CapHash,
    pub(super) read_hash: CapHash,
    pub(super) total_len: u64,
    pub(super) expires_at: u64,
    pub(super) slot: SlotId,
    pub(super) key: DataKey,
    pub(super) wrapped_key: [u8; WRAPPED_KEY_LEN],
    /// The blob's file. It is opened for each operation rather than held open, so that the
    /// number of blobs is not bounded by the process's file descriptor limit.
    pub(super) path: PathBuf,
    /// Held while writing, checkpointing or deleting.
    pub(super) progress: Mutex<Progress>,
    /// The committed length as of the last finished write, readable without waiting for a
    /// write or checkpoint in progress (status requests run on the async workers).
    pub(super) published: AtomicU64,
    /// Set once the blob is deleted, readable without the lock.
    pub(super) gone: AtomicBool,
}

impl std::fmt::Debug for Blob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Blob")
            .field("total_len", &self.total_len)
            .finish_non_exhaustive()
    }
}

/// Which capability a request presented.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Access {
    /// Only the write capability will do.
    Write,
    /// Only the read capability will do.
    Read,
    /// Either capability.
    Either,
}

impl Blob {
    /// The committed length as of the last finished write, or `None` once deleted.
    pub(super) fn committed(&self) -> Option<u64> {
        if self.gone.load(Ordering::Acquire) {
            return None;
        }
        Some(self.published.load(Ordering::Acquire))
    }

    /// Marks the blob deleted; returns its committed length. Waits for a write in progress.
    pub(super) fn mark_deleted(&self) -> u64 {
        let mut p = self.progress();
        p.deleted = true;
        self.gone.store(true, Ordering::Release);
        p.committed
    }

    /// Opens the blob's file for reading and writing. A file already removed means the blob
    /// was deleted meanwhile.
    pub(super) fn open(&self) -> Result<File, BlobError> {
        self.open_with(OpenOptions::new().read(true).write(true))
    }

    fn open_with(&self, options: &OpenOptions) -> Result<File, BlobError> {
        match options.open(&self.path) {
            Ok(f) => Ok(f),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(BlobError::NotFound),
            Err(e) => Err(e.into()),
        }
    }

    /// Locks the progress record.
    pub(super) fn progress(&self) -> MutexGuard<'_, Progress> {
        self.progress.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether `presented` is the capability `access` requires, compared in constant time.
    pub(super) fn authorises(&self, presented: &CapHash, access: Access) -> bool {
        let w = self.write_hash.ct_eq(presented);
        let r = self.read_hash.ct_eq(presented);
        let ok = match access {
            Access::Write => w,
            Access::Read => r,
            Access::Either => w | r,
        };
        ok.into()
    }

    /// The header recording `committed` under sequence number `seq`.
    pub(super) fn header(&self, seq: u64, committed: u64) -> Header {
        Header {
            seq,
            id: self.id,
            write_hash: self.write_hash,
            read_hash: self.read_hash,
            total_len: self.total_len,
            committed,
            expires_at: self.expires_at,
            slot: self.slot.index(),
            wrapped_key: self.wrapped_key,
        }
    }

    /// Appends `data` at `offset` (which must be the committed length). The final write of the
    /// upload checkpoints before returning; if that fails, the write is undone (the uploader
    /// sends it again). Otherwise, past [`CHECKPOINT_BYTES`] since the last checkpoint, the
    /// answer asks for a background checkpoint.
    /// `written` (the store's total) grows by what was appended, under the blob's lock, so a
    /// concurrent delete subtracts exactly what it removes.
    pub(super) fn append(
        &self,
        offset: u64,
        mut data: Vec<u8>,
        written: &AtomicU64,
    ) -> Result<Appended, BlobError> {
        let mut p = self.progress();
        if p.deleted {
            return Err(BlobError::NotFound);
        }
        if offset != p.committed {
            return Err(BlobError::Offset {
                committed: p.committed,
            });
        }
        let len = data.len() as u64;
        if data.len() > MAX_BLOB_CHUNK || len > self.total_len - p.committed {
            return Err(BlobError::TooLarge);
        }
        if data.is_empty() {
            return Ok(Appended {
                committed: p.committed,
                checkpoint_due: false,
            });
        }
        self.key.apply(offset, &mut data)?;
        let file = self.open()?;
        file.write_all_at(&data, HEADER_LEN + offset)?;
        p.committed += len;
        if p.committed == self.total_len {
            if let Err(e) = self.checkpoint_with(&file, &mut p) {
                p.committed -= len;
                return Err(e);
            }
        }
        let checkpoint_due = !p.checkpointing && p.committed - p.durable >= CHECKPOINT_BYTES;
        p.checkpointing |= checkpoint_due;
        self.published.store(p.committed, Ordering::Release);
        written.fetch_add(len, Ordering::Relaxed);
        Ok(Appended {
            committed: p.committed,
            checkpoint_due,
        })
    }

    /// Makes everything written durable: data first, then the header that records it.
    pub(super) fn checkpoint(&self, p: &mut Progress) -> Result<(), BlobError> {
        if p.durable == p.committed || p.deleted {
            return Ok(());
        }
        self.checkpoint_with(&self.open()?, p)
    }

    /// [`Blob::checkpoint`] through a file already open.
    fn checkpoint_with(&self, file: &File, p: &mut Progress) -> Result<(), BlobError> {
        if p.durable == p.committed || p.deleted {
            return Ok(());
        }
        file.sync_data()?;
        let seq = p.seq + 1;
        self.header(seq, p.committed).write_to(file)?;
        file.sync_data()?;
        p.seq = seq;
        p.durable = p.committed;
        Ok(())
    }

    /// Up to `len` bytes of the complete blob from `offset`.
    pub(super) fn read(&self, offset: u64, len: u32) -> Result<Vec<u8>, BlobError> {
        match self.committed() {
            None => return Err(BlobError::NotFound),
            Some(c) if c < self.total_len => return Err(BlobError::Incomplete),
            Some(_) => {}
        }
        if len as usize > MAX_BLOB_CHUNK {
            return Err(BlobError::Malformed("read longer than the chunk limit"));
        }
        if offset > self.total_len {
            return Err(BlobError::Malformed("read starts past the blob's end"));
        }
        let n = u64::from(len).min(self.total_len - offset);
        // n <= MAX_BLOB_CHUNK, checked above.
        let mut buf = vec![0u8; n as usize];
        let file = self.open_with(OpenOptions::new().read(true))?;
        file.read_exact_at(&mut buf, HEADER_LEN + offset)?;
        self.key.apply(offset, &mut buf)?;
        Ok(buf)
    }
}
