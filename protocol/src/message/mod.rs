//! Requests (client → relay), and responses and pushes (relay → client).
//!
//! A client frame is `request_id: u32` then a [`Request`]. A relay frame is a [`ServerFrame`]:
//! a response to one request id (a [`Reply`] or an [`ErrorCode`]), or a [`Push`] with no id.
//! Each message is a tag byte followed by its fields in a fixed order; see `docs/protocol.md`.
//! Signed requests put their 64-byte signature last, and sign everything before it
//! ([`Request::signed_part`]). Each message's encoder sits beside its decoder: requests in
//! `request/`, replies in `reply.rs`, pushes in `push.rs`, all through [`crate::codec`] and the
//! per-field encodings of `field.rs`.
//!
//! What it does not do: frame (see `frame.rs`), check signatures or enforce relay policy.

mod field;
mod push;
mod reply;
mod request;

pub use push::{Push, PushedEnvelope, ENVELOPES_OVERHEAD};
pub use reply::Reply;
pub use request::Request;

use crate::auth::{PUBLIC_KEY_LEN, SIGNATURE_LEN};
use crate::codec::{DecodeError, Reader, Writer};
use crate::error::ErrorCode;
use crate::frame::{begin_frame, end_frame};

/// An Ed25519 public key, as sent on the wire.
pub type PublicKeyBytes = [u8; PUBLIC_KEY_LEN];
/// An Ed25519 signature, as sent on the wire.
pub type SignatureBytes = [u8; SIGNATURE_LEN];

/// Relay frame tags, the first byte of a relay frame body.
mod tag {
    pub(super) const REPLY: u8 = 0x01;
    pub(super) const ERROR: u8 = 0x02;
    pub(super) const PUSH: u8 = 0x03;
}

/// A relay → client frame.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerFrame {
    /// The answer to the request with this id.
    Response {
        /// The request id the client chose.
        request_id: u32,
        /// The outcome.
        result: Result<Reply, ErrorCode>,
    },
    /// A push.
    Push(Push),
}

impl ServerFrame {
    /// Appends the whole frame (length prefix and body) to `out`.
    pub fn encode_frame(&self, out: &mut Vec<u8>) {
        let at = begin_frame(out);
        let mut w = Writer::new(&mut *out);
        match self {
            ServerFrame::Response {
                request_id,
                result: Ok(reply),
            } => {
                w.u8(tag::REPLY);
                w.u32(*request_id);
                reply.encode(&mut w);
            }
            ServerFrame::Response {
                request_id,
                result: Err(code),
            } => {
                w.u8(tag::ERROR);
                w.u32(*request_id);
                w.u16(code.to_u16());
            }
            ServerFrame::Push(push) => {
                w.u8(tag::PUSH);
                push.encode(&mut w);
            }
        }
        end_frame(out, at);
    }

    /// Decodes a relay frame body.
    pub fn decode(body: &[u8]) -> Result<ServerFrame, DecodeError> {
        let mut r = Reader::new(body);
        let frame = match r.u8()? {
            tag::REPLY => ServerFrame::Response {
                request_id: r.u32()?,
                result: Ok(Reply::decode(&mut r)?),
            },
            tag::ERROR => ServerFrame::Response {
                request_id: r.u32()?,
                result: Err(ErrorCode::from_u16(r.u16()?).ok_or(DecodeError::InvalidValue)?),
            },
            tag::PUSH => ServerFrame::Push(Push::decode(&mut r)?),
            other => return Err(DecodeError::UnknownTag(other)),
        };
        r.finish()?;
        Ok(frame)
    }
}
