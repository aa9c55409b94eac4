//! Pushes, relay → client, sent without a request: the [`Push`] type, encoder beside decoder.
//!
//! A push is a tag byte then its fields in declaration order; it travels inside a
//! [`ServerFrame::Push`](super::ServerFrame::Push). [`Push::Envelopes`] (`hush/2`) carries
//! several envelopes of one queue in one frame; [`Push::unbatch`] turns it back into the
//! [`Push::Envelope`]s it stands for, so what a client hands on is the same in both versions.
//!
//! What it does not do: the frame around it (`mod.rs`) or delivery order (the relay's job).

use super::field::{get, put, FrameWriter};
use crate::codec::{DecodeError, Reader};
use crate::ids::{EnvelopeId, RecipientId};
use crate::limits::{MAX_ENVELOPE_LEN, MAX_PUSH_BATCH};

/// Push tags.
mod tag {
    pub(super) const ENVELOPE: u8 = 0x01;
    pub(super) const GONE: u8 = 0x02;
    pub(super) const DRAINED: u8 = 0x03;
    pub(super) const ENVELOPES: u8 = 0x04;
}

/// One envelope of an [`Push::Envelopes`] batch: a [`Push::Envelope`] without its queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushedEnvelope {
    /// The envelope's id, for ack.
    pub envelope_id: EnvelopeId,
    /// Unix seconds at which the relay will drop it unread.
    pub expires_at: u64,
    /// Opaque ciphertext.
    pub body: Vec<u8>,
}

impl PushedEnvelope {
    /// Bytes this envelope adds to an [`Push::Envelopes`] frame.
    pub fn encoded_len(&self) -> usize {
        16 + 8 + 4 + self.body.len()
    }
}

/// Bytes of an [`Push::Envelopes`] frame besides its envelopes: length prefix, frame tag, push
/// tag, recipient id and count.
pub const ENVELOPES_OVERHEAD: usize = 4 + 1 + 1 + 16 + 2;

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
    /// Several pending envelopes of a subscribed queue, in send order, in one frame (`hush/2`
    /// only): 1 to [`MAX_PUSH_BATCH`] of them, within the frame limit.
    Envelopes {
        /// The subscribed queue.
        recipient_id: RecipientId,
        /// The envelopes, in send order.
        envelopes: Vec<PushedEnvelope>,
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
            Push::Envelopes {
                recipient_id,
                envelopes,
            } => {
                w.u8(tag::ENVELOPES);
                put(w, recipient_id);
                w.u16(u16::try_from(envelopes.len()).unwrap_or(u16::MAX));
                for e in envelopes {
                    put(w, &e.envelope_id);
                    put(w, &e.expires_at);
                    w.bytes(&e.body);
                }
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
            tag::ENVELOPES => Push::Envelopes {
                recipient_id: get(r)?,
                envelopes: pushed_envelopes(r)?,
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

impl Push {
    /// The pushes this one stands for: each envelope of an [`Push::Envelopes`] as its own
    /// [`Push::Envelope`], in order; any other push as itself.
    pub fn unbatch(self) -> Vec<Push> {
        match self {
            Push::Envelopes {
                recipient_id,
                envelopes,
            } => envelopes
                .into_iter()
                .map(|e| Push::Envelope {
                    recipient_id,
                    envelope_id: e.envelope_id,
                    expires_at: e.expires_at,
                    body: e.body,
                })
                .collect(),
            other => vec![other],
        }
    }
}

/// Reads an `Envelopes` list: a `u16` count of 1 to [`MAX_PUSH_BATCH`], then that many
/// envelopes. The frame limit bounds the bytes.
fn pushed_envelopes(r: &mut Reader<'_>) -> Result<Vec<PushedEnvelope>, DecodeError> {
    let count = usize::from(r.u16()?);
    if count == 0 {
        return Err(DecodeError::InvalidValue);
    }
    if count > MAX_PUSH_BATCH {
        return Err(DecodeError::TooLong {
            len: count,
            max: MAX_PUSH_BATCH,
        });
    }
    let mut out = Vec::with_capacity(count.min(r.remaining() / 28 + 1));
    for _ in 0..count {
        out.push(PushedEnvelope {
            envelope_id: get(r)?,
            expires_at: get(r)?,
            body: r.bytes(MAX_ENVELOPE_LEN)?.to_vec(),
        });
    }
    Ok(out)
}
