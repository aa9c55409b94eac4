//! The five blob requests, as the relay answers them: each is turned into one [`BlobStore`]
//! call, and the result into a reply or an error code.
//!
//! What it does not do: rate-limit, authenticate the connection or log anything about the
//! blob; it logs only the relay's own storage failures, without ids or capabilities.

use hush_protocol::{ErrorCode, Reply, Request};

use super::{BlobError, BlobStore};

/// The wire code for `e`, logging the relay's own failures.
fn code(e: BlobError) -> ErrorCode {
    if e.is_internal() {
        tracing::warn!(error = %e, "blob operation failed");
    }
    e.code()
}

impl BlobStore {
    /// Answers one blob request at time `now`. Other requests are `Malformed` here.
    pub async fn handle(&self, req: Request, now: u64) -> Result<Reply, ErrorCode> {
        match req {
            Request::BlobCreate {
                write_cap,
                read_cap,
                total_len,
                ttl_secs,
            } => self
                .create(&write_cap, &read_cap, total_len, ttl_secs, now)
                .await
                .map(|c| Reply::BlobCreated {
                    blob_id: c.id,
                    expires_at: c.expires_at,
                }),
            Request::BlobWrite {
                blob_id,
                write_cap,
                offset,
                data,
            } => self
                .write(blob_id, &write_cap, offset, data, now)
                .await
                .map(|committed| Reply::BlobWritten { committed }),
            Request::BlobStatus { blob_id, cap } => {
                self.status(blob_id, &cap, now).map(|s| Reply::BlobStatus {
                    total_len: s.total_len,
                    committed: s.committed,
                    expires_at: s.expires_at,
                })
            }
            Request::BlobRead {
                blob_id,
                read_cap,
                offset,
                len,
            } => self
                .read(blob_id, &read_cap, offset, len, now)
                .await
                .map(|data| Reply::BlobData { data }),
            Request::BlobDelete { blob_id, cap } => {
                self.delete(blob_id, &cap, now).await.map(|()| Reply::Done)
            }
            _ => return Err(ErrorCode::Malformed),
        }
        .map_err(code)
    }
}
