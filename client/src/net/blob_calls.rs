//! Typed calls for the relay's blob requests: create, write, status, read and delete.
//!
//! Each call is one request and one answer, like the queue calls in `relay_client.rs`. They
//! take `&self` and may run concurrently on one connection: every call waits for its own
//! request id, so an uploader can keep many [`RelayClient::blob_write`] calls in flight. The
//! relay handles the requests of one connection in the order they arrive, so writes started in
//! offset order are applied in offset order.
//!
//! What it does not do: split a file into chunks, encrypt it, retry or resume (the caller asks
//! [`RelayClient::blob_status`] and continues from its `committed` length). A refusal comes back
//! as [`RelayCallError::Relay`] with the relay's code, for instance `NoBlob`, `BlobOffset`,
//! `BlobIncomplete`, `TooLarge` or `NoSpace`.

use hush_protocol::{BlobCapability, BlobId, Reply, Request};

use super::relay_client::{RelayCallError, RelayClient};

/// What [`RelayClient::blob_status`] reports about a blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlobStatus {
    /// The size declared when the blob was created.
    pub total_len: u64,
    /// Bytes the relay holds; the upload is complete when this equals `total_len`. After a
    /// relay restart it is what the relay had made durable: resume the upload from here.
    pub committed: u64,
    /// Unix seconds at which the relay deletes the blob, downloaded or not.
    pub expires_at: u64,
}

impl BlobStatus {
    /// Whether the upload has finished, so the blob can be read.
    pub fn is_complete(&self) -> bool {
        self.committed == self.total_len
    }
}

impl RelayClient {
    /// Reserves a blob of `total_len` bytes, authorised by the two capabilities (which must
    /// differ). `ttl_secs = 0` asks for the relay's maximum. Returns the relay-assigned id and
    /// the Unix time at which the relay deletes the blob.
    pub async fn blob_create(
        &self,
        write_cap: &BlobCapability,
        read_cap: &BlobCapability,
        total_len: u64,
        ttl_secs: u32,
    ) -> Result<(BlobId, u64), RelayCallError> {
        let req = Request::BlobCreate {
            write_cap: write_cap.clone(),
            read_cap: read_cap.clone(),
            total_len,
            ttl_secs,
        };
        expect_reply!(
            self.call(req),
            Reply::BlobCreated { blob_id, expires_at } => (blob_id, expires_at)
        )
    }

    /// Appends `data` (at most `MAX_BLOB_CHUNK` bytes) at `offset`, which must be the blob's
    /// committed length. Returns the committed length after the write.
    pub async fn blob_write(
        &self,
        blob_id: BlobId,
        write_cap: &BlobCapability,
        offset: u64,
        data: Vec<u8>,
    ) -> Result<u64, RelayCallError> {
        let req = Request::BlobWrite {
            blob_id,
            write_cap: write_cap.clone(),
            offset,
            data,
        };
        expect_reply!(self.call(req), Reply::BlobWritten { committed } => committed)
    }

    /// How far the blob's upload got; either capability works.
    pub async fn blob_status(
        &self,
        blob_id: BlobId,
        cap: &BlobCapability,
    ) -> Result<BlobStatus, RelayCallError> {
        let req = Request::BlobStatus {
            blob_id,
            cap: cap.clone(),
        };
        expect_reply!(
            self.call(req),
            Reply::BlobStatus { total_len, committed, expires_at } =>
                BlobStatus { total_len, committed, expires_at }
        )
    }

    /// Reads up to `len` bytes (at most `MAX_BLOB_CHUNK`) of a complete blob from `offset`.
    /// The answer is shorter than `len` only at the blob's end.
    pub async fn blob_read(
        &self,
        blob_id: BlobId,
        read_cap: &BlobCapability,
        offset: u64,
        len: u32,
    ) -> Result<Vec<u8>, RelayCallError> {
        let req = Request::BlobRead {
            blob_id,
            read_cap: read_cap.clone(),
            offset,
            len,
        };
        expect_reply!(self.call(req), Reply::BlobData { data } => data)
    }

    /// Deletes the blob: with the write capability it is the sender's retract, with the read
    /// capability the recipient's "download done". The relay shreds the blob's key.
    pub async fn blob_delete(
        &self,
        blob_id: BlobId,
        cap: &BlobCapability,
    ) -> Result<(), RelayCallError> {
        let req = Request::BlobDelete {
            blob_id,
            cap: cap.clone(),
        };
        expect_reply!(self.call(req), Reply::Done => ())
    }
}
