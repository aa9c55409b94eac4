//! Pushes, relay → client, sent without a request: the [`Push`] type, encoder beside decoder.
//!
//! A push is a tag byte then its fields in declaration order; it travels inside a
//! [`ServerFrame::Push`](super::ServerFrame::Push).
//!
//! What it does not do: the frame around it (`mod.rs`) or delivery order (the relay's job).

use super::field::{get, put, FrameWriter};
use crate::codec::{DecodeError, Reader};
use crate::ids::{EnvelopeId, RecipientId};
use crate::limits::MAX_ENVELOPE_LEN;

/// Push tags.
mod tag {
    pub(super) const ENVELOPE: u8 = 0x01;
    pub(super) const GONE: u8 = 0x02;
    pub(super) const DRAINED: u8 = 0x03;
}

/// Something the relay sends without being asked.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Push {
    /// A pending envelope of a subscribed queue; they arrive in send order.
    Envelope {
        /// The subscribed queue.
        recipient_id: RecipientId,
        /// The envelope's id, for ack.
        envelope_id: EnvelopeId,
        /// Unix seconds at which the relay will drop it unread.
        expires_at: u64,
        /// Opaque ciphertext.
        body: Vec<u8>,
    },
    /// A subscribed queue was deleted; no more envelopes will come.
    QueueGone {
        /// The queue that went.
        recipient_id: RecipientId,
    },
    /// Every envelope that was pending when the subscription started has now been pushed (sent
    /// once per subscription, after that backlog). A client uses it to tell "nothing more is
    /// waiting" from "the network is slow"; envelopes sent later still follow as usual.
    Drained {
        /// The subscribed queue.
        recipient_id: RecipientId,
    },
}

impl Push {
    /// Appends the tag and fields.
    pub(super) fn encode(&self, w: &mut FrameWriter<'_>) {
        match self {
            Push::Envelope {
                recipient_id,
                envelope_id,
                expires_at,
                body,
            } => {
                w.u8(tag::ENVELOPE);
                put(w, recipient_id);
                put(w, envelope_id);
                put(w, expires_at);
                w.bytes(body);
            }
            Push::QueueGone { recipient_id } => {
                w.u8(tag::GONE);
                put(w, recipient_id);
            }
            Push::Drained { recipient_id } => {
                w.u8(tag::DRAINED);
                put(w, recipient_id);
            }
        }
    }

    /// Reads a push written by [`Push::encode`].
    pub(super) fn decode(r: &mut Reader<'_>) -> Result<Push, DecodeError> {
        Ok(match r.u8()? {
            tag::ENVELOPE => Push::Envelope {
                recipient_id: get(r)?,
                envelope_id: get(r)?,
                expires_at: get(r)?,
                body: r.bytes(MAX_ENVELOPE_LEN)?.to_vec(),
            },
            tag::GONE => Push::QueueGone {
                recipient_id: get(r)?,
            },
            tag::DRAINED => Push::Drained {
                recipient_id: get(r)?,
            },
            other => return Err(DecodeError::UnknownTag(other)),
        })
    }
}
