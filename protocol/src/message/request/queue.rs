//! The fields of the queue requests (create, send, retract, subscribe, ack, ack many, resecure,
//! delete)
//! and of the connection's own (ping, hello, next cert), encoder beside decoder. Fields go in declaration order; a signed request's signature
//! is read here, as its last field, and written by the caller.
//!
//! What it does not do: the tag or the request id (`mod.rs`), or the blob requests.

use super::super::field::{get, put, FrameWriter};
use super::{tag, Request};
use crate::codec::{DecodeError, Reader};
use crate::ids::EnvelopeId;
use crate::limits::{MAX_ACK_BATCH, MAX_FRAME_LEN};

/// Appends the fields of a queue request, without its signature. A blob request writes nothing.
pub(super) fn encode_fields(req: &Request, w: &mut FrameWriter<'_>) {
    match req {
        Request::CreateQueue {
            recipient_key,
            send_cap,
            ..
        } => {
            put(w, recipient_key);
            put(w, send_cap);
        }
        Request::Send {
            sender_id,
            send_cap,
            ttl_secs,
            new_send_cap,
            body,
        } => {
            put(w, sender_id);
            put(w, send_cap);
            put(w, ttl_secs);
            put(w, new_send_cap);
            w.bytes(body);
        }
        Request::Retract {
            sender_id,
            send_cap,
            envelope_id,
        } => {
            put(w, sender_id);
            put(w, send_cap);
            put(w, envelope_id);
        }
        Request::Subscribe { recipient_id, .. } | Request::DeleteQueue { recipient_id, .. } => {
            put(w, recipient_id);
        }
        Request::Ack {
            recipient_id,
            envelope_id,
        } => {
            put(w, recipient_id);
            put(w, envelope_id);
        }
        Request::AckMany {
            recipient_id,
            envelope_ids,
        } => {
            put(w, recipient_id);
            // At most MAX_ACK_BATCH ids are meant to go out; a longer list still encodes (its
            // count saturates), and the relay refuses it as malformed.
            w.u16(u16::try_from(envelope_ids.len()).unwrap_or(u16::MAX));
            for id in envelope_ids {
                put(w, id);
            }
        }
        Request::Resecure {
            recipient_id,
            new_send_cap,
            ..
        } => {
            put(w, recipient_id);
            put(w, new_send_cap);
        }
        Request::Hello { token } => put(w, token),
        Request::Ping
        | Request::NextCert
        | Request::BlobCreate { .. }
        | Request::BlobWrite { .. }
        | Request::BlobStatus { .. }
        | Request::BlobRead { .. }
        | Request::BlobDelete { .. } => {}
    }
}

/// Reads the fields of the queue request tagged `t`, signature included.
pub(super) fn decode_fields(t: u8, r: &mut Reader<'_>) -> Result<Request, DecodeError> {
    Ok(match t {
        tag::CREATE => Request::CreateQueue {
            recipient_key: get(r)?,
            send_cap: get(r)?,
            signature: get(r)?,
        },
        tag::SEND => Request::Send {
            sender_id: get(r)?,
            send_cap: get(r)?,
            ttl_secs: get(r)?,
            new_send_cap: get(r)?,
            // Bounded by the frame; the relay answers TooLarge above its envelope limit.
            body: r.bytes(MAX_FRAME_LEN)?.to_vec(),
        },
        tag::RETRACT => Request::Retract {
            sender_id: get(r)?,
            send_cap: get(r)?,
            envelope_id: get(r)?,
        },
        tag::SUBSCRIBE => Request::Subscribe {
            recipient_id: get(r)?,
            signature: get(r)?,
        },
        tag::ACK => Request::Ack {
            recipient_id: get(r)?,
            envelope_id: get(r)?,
        },
        tag::ACK_MANY => Request::AckMany {
            recipient_id: get(r)?,
            envelope_ids: envelope_ids(r)?,
        },
        tag::RESECURE => Request::Resecure {
            recipient_id: get(r)?,
            new_send_cap: get(r)?,
            signature: get(r)?,
        },
        tag::DELETE => Request::DeleteQueue {
            recipient_id: get(r)?,
            signature: get(r)?,
        },
        tag::PING => Request::Ping,
        tag::HELLO => Request::Hello { token: get(r)? },
        tag::NEXT_CERT => Request::NextCert,
        other => return Err(DecodeError::UnknownTag(other)),
    })
}

/// Reads an `AckMany` list: a `u16` count of 1 to [`MAX_ACK_BATCH`], then that many ids.
fn envelope_ids(r: &mut Reader<'_>) -> Result<Vec<EnvelopeId>, DecodeError> {
    let count = usize::from(r.u16()?);
    if count == 0 {
        return Err(DecodeError::InvalidValue);
    }
    if count > MAX_ACK_BATCH {
        return Err(DecodeError::TooLong {
            len: count,
            max: MAX_ACK_BATCH,
        });
    }
    (0..count).map(|_| get(r)).collect()
}
