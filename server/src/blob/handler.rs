//! The five blob requests, as the relay answers them: each function makes one [`Blobs`]
//! call and turns its result into a reply or an error code. Which function a request calls is
//! decided in the relay's request router.
//!
//! What it does not do: route requests, rate-limit, authenticate the connection or log anything
//! about the blob; it logs only the relay's own storage failures, without ids or capabilities.

use hush_protocol::{BlobCapability, BlobId, ErrorCode, Reply};

use super::error::BlobError;
use super::Blobs;

/// The wire code for `e`, logging the relay's own failures.
fn code(e: BlobError) -> ErrorCode {
    if e.is_internal() {
        tracing::warn!(error = %e, "blob operation failed");
    }
    e.code()
}

/// Answers `BlobCreate`.
pub(crate) async fn create(
    blobs: &Blobs,
    write_cap: &BlobCapability,
    read_cap: &BlobCapability,
    total_len: u64,
    ttl_secs: u32,
    now: u64,
) -> Result<Reply, ErrorCode> {
    let c = blobs
        .create(write_cap, read_cap, total_len, ttl_secs, now)
        .await
        .map_err(code)?;
    Ok(Reply::BlobCreated {
        blob_id: c.id,
        expires_at: c.expires_at,
    })
}

/// Answers `BlobWrite`.
pub(crate) async fn write(
    blobs: &Blobs,
    blob_id: BlobId,
    write_cap: &BlobCapability,
    offset: u64,
    data: Vec<u8>,
    now: u64,
) -> Result<Reply, ErrorCode> {
    let committed = blobs
        .write(blob_id, write_cap, offset, data, now)
        .await
        .map_err(code)?;
    Ok(Reply::BlobWritten { committed })
}

/// Answers `BlobStatus`.
pub(crate) async fn status(
    blobs: &Blobs,
    blob_id: BlobId,
    cap: &BlobCapability,
    now: u64,
) -> Result<Reply, ErrorCode> {
    let s = blobs.status(blob_id, cap, now).await.map_err(code)?;
    Ok(Reply::BlobStatus {
        total_len: s.total_len,
        committed: s.committed,
        expires_at: s.expires_at,
    })
}

/// Answers `BlobRead`.
pub(crate) async fn read(
    blobs: &Blobs,
    blob_id: BlobId,
    read_cap: &BlobCapability,
    offset: u64,
    len: u32,
    now: u64,
) -> Result<Reply, ErrorCode> {
    let data = blobs
        .read(blob_id, read_cap, offset, len, now)
        .await
        .map_err(code)?;
    Ok(Reply::BlobData { data })
}

/// Answers `BlobDelete`.
pub(crate) async fn delete(
    blobs: &Blobs,
    blob_id: BlobId,
    cap: &BlobCapability,
    now: u64,
) -> Result<Reply, ErrorCode> {
    blobs.delete(blob_id, cap, now).await.map_err(code)?;
    Ok(Reply::Done)
}
