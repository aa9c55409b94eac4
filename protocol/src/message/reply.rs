//! Replies, relay → client: the [`Reply`] to a successful request, encoder beside decoder.
//!
//! A reply is a tag byte then its fields in declaration order; it travels inside a
//! [`ServerFrame::Response`](super::ServerFrame::Response).
//!
//! What it does not do: the frame around it or error responses (`mod.rs`).

use super::field::{get, put, FrameWriter};
use crate::access::RelayInfo;
use crate::codec::{DecodeError, Reader};
use crate::ids::{BlobId, EnvelopeId, RecipientId, SenderId};
use crate::limits::MAX_BLOB_CHUNK;
#[cfg(doc)]
use crate::message::Request;
use crate::rotation::CertRotation;

/// Reply tags.
mod tag {
    pub(super) const CREATED: u8 = 0x01;
    pub(super) const SENT: u8 = 0x02;
    pub(super) const RETRACTED: u8 = 0x03;
    pub(super) const DONE: u8 = 0x04;
    pub(super) const PONG: u8 = 0x05;
    pub(super) const BLOB_CREATED: u8 = 0x06;
    pub(super) const BLOB_WRITTEN: u8 = 0x07;
    pub(super) const BLOB_STATUS: u8 = 0x08;
    pub(super) const BLOB_DATA: u8 = 0x09;
    pub(super) const WELCOME: u8 = 0x0A;
    pub(super) const NEXT_CERT: u8 = 0x0B;
}

/// A successful answer.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reply {
    /// The queue exists now.
    Created {
        /// The id for recipient operations.
        recipient_id: RecipientId,
        /// The id for sends.
        sender_id: SenderId,
    },
    /// The envelope is durable.
    Sent {
        /// The relay-assigned id, for retract.
        envelope_id: EnvelopeId,
    },
    /// The retract was authorised; `was_pending` says whether the envelope was still queued.
    Retracted {
        /// Whether the envelope was still queued (and is now gone).
        was_pending: bool,
    },
    /// Subscribe, ack, re-secure and delete succeeded.
    Done,
    /// Answer to [`Request::Ping`].
    Pong,
    /// The blob is reserved.
    BlobCreated {
        /// The relay-assigned id.
        blob_id: BlobId,
        /// Unix seconds at which the relay deletes the blob, downloaded or not.
        expires_at: u64,
    },
    /// The data is stored; `committed` is the blob's stored length now.
    BlobWritten {
        /// Bytes stored so far.
        committed: u64,
    },
    /// How far a blob's upload got.
    BlobStatus {
        /// The size declared at creation.
        total_len: u64,
        /// Bytes stored so far; the upload is complete when it equals `total_len`.
        committed: u64,
        /// Unix seconds at which the relay deletes the blob.
        expires_at: u64,
    },
    /// Blob bytes from the requested offset; shorter than asked only at the blob's end.
    BlobData {
        /// The bytes.
        data: Vec<u8>,
    },
    /// Answer to [`Request::Hello`]: the relay's limits, and whether this connection may
    /// create queues and blobs.
    Welcome(RelayInfo),
    /// Answer to [`Request::NextCert`]: the certificate rotation pending, if any.
    NextCert(Option<CertRotation>),
}

impl Reply {
    /// Appends the tag and fields.
    pub(super) fn encode(&self, w: &mut FrameWriter<'_>) {
        match self {
            Reply::Created {
                recipient_id,
                sender_id,
            } => {
                w.u8(tag::CREATED);
                put(w, recipient_id);
                put(w, sender_id);
            }
            Reply::Sent { envelope_id } => {
                w.u8(tag::SENT);
                put(w, envelope_id);
            }
            Reply::Retracted { was_pending } => {
                w.u8(tag::RETRACTED);
                put(w, was_pending);
            }
            Reply::Done => w.u8(tag::DONE),
            Reply::Pong => w.u8(tag::PONG),
            Reply::BlobCreated {
                blob_id,
                expires_at,
            } => {
                w.u8(tag::BLOB_CREATED);
                put(w, blob_id);
                put(w, expires_at);
            }
            Reply::BlobWritten { committed } => {
                w.u8(tag::BLOB_WRITTEN);
                put(w, committed);
            }
            Reply::BlobStatus {
                total_len,
                committed,
                expires_at,
            } => {
                w.u8(tag::BLOB_STATUS);
                put(w, total_len);
                put(w, committed);
                put(w, expires_at);
            }
            Reply::BlobData { data } => {
                w.u8(tag::BLOB_DATA);
                w.bytes(data);
            }
            Reply::Welcome(info) => {
                w.u8(tag::WELCOME);
                put(w, info);
            }
            Reply::NextCert(next) => {
                w.u8(tag::NEXT_CERT);
                put(w, next);
            }
        }
    }

    /// Reads a reply written by [`Reply::encode`].
    pub(super) fn decode(r: &mut Reader<'_>) -> Result<Reply, DecodeError> {
        Ok(match r.u8()? {
            tag::CREATED => Reply::Created {
                recipient_id: get(r)?,
                sender_id: get(r)?,
            },
            tag::SENT => Reply::Sent {
                envelope_id: get(r)?,
            },
            tag::RETRACTED => Reply::Retracted {
                was_pending: get(r)?,
            },
            tag::DONE => Reply::Done,
            tag::PONG => Reply::Pong,
            tag::BLOB_CREATED => Reply::BlobCreated {
                blob_id: get(r)?,
                expires_at: get(r)?,
            },
            tag::BLOB_WRITTEN => Reply::BlobWritten { committed: get(r)? },
            tag::BLOB_STATUS => Reply::BlobStatus {
                total_len: get(r)?,
                committed: get(r)?,
                expires_at: get(r)?,
            },
            tag::BLOB_DATA => Reply::BlobData {
                data: r.bytes(MAX_BLOB_CHUNK)?.to_vec(),
            },
            tag::WELCOME => Reply::Welcome(get(r)?),
            tag::NEXT_CERT => Reply::NextCert(get(r)?),
            other => return Err(DecodeError::UnknownTag(other)),
        })
    }
}
