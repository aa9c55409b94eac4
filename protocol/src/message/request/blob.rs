//! The fields of the blob requests (create, write, status, read, delete), encoder beside
//! decoder, in declaration order. No blob request is signed: capabilities authorise them.
//!
//! What it does not do: the tag or the request id (`mod.rs`), or the queue requests.

use super::super::field::{get, put, FrameWriter};
use super::{tag, Request};
use crate::codec::{DecodeError, Reader};
use crate::limits::MAX_BLOB_CHUNK;

/// Appends the fields of a blob request. A queue request writes nothing.
pub(super) fn encode_fields(req: &Request, w: &mut FrameWriter<'_>) {
    match req {
        Request::BlobCreate {
            write_cap,
            read_cap,
            total_len,
            ttl_secs,
        } => {
            put(w, write_cap);
            put(w, read_cap);
            put(w, total_len);
            put(w, ttl_secs);
        }
        Request::BlobWrite {
            blob_id,
            write_cap,
            offset,
            data,
        } => {
            put(w, blob_id);
            put(w, write_cap);
            put(w, offset);
            w.bytes(data);
        }
        Request::BlobStatus { blob_id, cap } | Request::BlobDelete { blob_id, cap } => {
            put(w, blob_id);
            put(w, cap);
        }
        Request::BlobRead {
            blob_id,
            read_cap,
            offset,
            len,
        } => {
            put(w, blob_id);
            put(w, read_cap);
            put(w, offset);
            put(w, len);
        }
        Request::CreateQueue { .. }
        | Request::Send { .. }
        | Request::Retract { .. }
        | Request::Subscribe { .. }
        | Request::Ack { .. }
        | Request::AckMany { .. }
        | Request::Resecure { .. }
        | Request::DeleteQueue { .. }
        | Request::Ping
        | Request::Hello { .. }
        | Request::NextCert => {}
    }
}

/// Reads the fields of the blob request tagged `t`.
pub(super) fn decode_fields(t: u8, r: &mut Reader<'_>) -> Result<Request, DecodeError> {
    Ok(match t {
        tag::BLOB_CREATE => Request::BlobCreate {
            write_cap: get(r)?,
            read_cap: get(r)?,
            total_len: get(r)?,
            ttl_secs: get(r)?,
        },
        tag::BLOB_WRITE => Request::BlobWrite {
            blob_id: get(r)?,
            write_cap: get(r)?,
            offset: get(r)?,
            data: r.bytes(MAX_BLOB_CHUNK)?.to_vec(),
        },
        tag::BLOB_STATUS => Request::BlobStatus {
            blob_id: get(r)?,
            cap: get(r)?,
        },
        tag::BLOB_READ => Request::BlobRead {
            blob_id: get(r)?,
            read_cap: get(r)?,
            offset: get(r)?,
            len: get(r)?,
        },
        tag::BLOB_DELETE => Request::BlobDelete {
            blob_id: get(r)?,
            cap: get(r)?,
        },
        other => return Err(DecodeError::UnknownTag(other)),
    })
}
