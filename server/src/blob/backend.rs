//! [`Blobs`]: the blob backend a relay serves from, chosen at start-up: each node's data
//! directory ([`BlobStore`]) or the NATS JetStream cluster the nodes share
//! ([`JetStreamBlobs`]). Both answer the same operations with the same errors.
//!
//! What it does not do: choose (the configuration's `blob_store` does, and the binary opens
//! the backend), or add behaviour of its own: each call goes to the backend unchanged.

use hush_protocol::{BlobCapability, BlobId};

use super::jetstream::JetStreamBlobs;
use super::{BlobError, BlobStore, Created, Status};

/// Where a relay keeps its blobs.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Blobs {
    /// In this node's data directory, encrypted at rest.
    Local(BlobStore),
    /// On the NATS JetStream cluster the relay nodes share.
    JetStream(JetStreamBlobs),
}

impl From<BlobStore> for Blobs {
    fn from(b: BlobStore) -> Blobs {
        Blobs::Local(b)
    }
}

impl From<JetStreamBlobs> for Blobs {
    fn from(b: JetStreamBlobs) -> Blobs {
        Blobs::JetStream(b)
    }
}

impl Blobs {
    /// Creates a blob of `total_len` bytes. `ttl_secs = 0` means the maximum.
    pub async fn create(
        &self,
        write_cap: &BlobCapability,
        read_cap: &BlobCapability,
        total_len: u64,
        ttl_secs: u32,
        now: u64,
    ) -> Result<Created, BlobError> {
        match self {
            Blobs::Local(b) => {
                b.create(write_cap, read_cap, total_len, ttl_secs, now)
                    .await
            }
            Blobs::JetStream(b) => {
                b.create(write_cap, read_cap, total_len, ttl_secs, now)
                    .await
            }
        }
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
        match self {
            Blobs::Local(b) => b.write(id, write_cap, offset, data, now).await,
            Blobs::JetStream(b) => b.write(id, write_cap, offset, data, now).await,
        }
    }

    /// How far the blob's upload got; either capability works.
    pub async fn status(
        &self,
        id: BlobId,
        cap: &BlobCapability,
        now: u64,
    ) -> Result<Status, BlobError> {
        match self {
            Blobs::Local(b) => b.status(id, cap, now),
            Blobs::JetStream(b) => b.status(id, cap, now).await,
        }
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
        match self {
            Blobs::Local(b) => b.read(id, read_cap, offset, len, now).await,
            Blobs::JetStream(b) => b.read(id, read_cap, offset, len, now).await,
        }
    }

    /// Deletes the blob (either capability).
    pub async fn delete(
        &self,
        id: BlobId,
        cap: &BlobCapability,
        now: u64,
    ) -> Result<(), BlobError> {
        match self {
            Blobs::Local(b) => b.delete(id, cap, now).await,
            Blobs::JetStream(b) => b.delete(id, cap, now).await,
        }
    }

    /// Deletes every blob whose time is up at `now`; returns how many this node deleted.
    pub async fn sweep(&self, now: u64) -> Result<u64, BlobError> {
        match self {
            Blobs::Local(b) => b.sweep(now).await,
            Blobs::JetStream(b) => b.sweep(now).await,
        }
    }

    /// Makes every byte written so far durable. A JetStream write is durable (on a quorum)
    /// before it is answered, so there is nothing to do there.
    pub async fn flush(&self) -> Result<(), BlobError> {
        match self {
            Blobs::Local(b) => b.flush().await,
            Blobs::JetStream(_) => Ok(()),
        }
    }

    /// How many blobs this node holds and the bytes they reserve, for its metrics; `None` for
    /// JetStream, where counting would read every blob's meta message.
    pub fn counts(&self) -> Option<(u64, u64)> {
        match self {
            Blobs::Local(b) => Some((b.len() as u64, b.reserved_bytes())),
            Blobs::JetStream(_) => None,
        }
    }

    /// The local store, if blobs are kept in the data directory.
    pub fn local(&self) -> Option<&BlobStore> {
        match self {
            Blobs::Local(b) => Some(b),
            Blobs::JetStream(_) => None,
        }
    }
}
