//! Requests (client → relay), and responses and pushes (relay → client).
//!
//! A client frame is `request_id: u32` then a [`Request`]. A relay frame is a [`ServerFrame`]:
//! a response to one request id (a [`Reply`] or an [`ErrorCode`]), or a [`Push`] with no id.
//! Each message is a tag byte followed by its fields in a fixed order; see `docs/protocol.md`.
//! Signed requests put their 64-byte signature last, and sign everything before it
//! ([`Request::signed_part`]).
//!
//! What it does not do: frame (see `frame.rs`), check signatures or enforce relay policy.

use crate::auth::{PUBLIC_KEY_LEN, SIGNATURE_LEN};
use crate::codec::{DecodeError, Reader, Writer};
use crate::error::ErrorCode;
use crate::frame::{begin_frame, end_frame};
use crate::ids::{BlobCapability, BlobId, EnvelopeId, RecipientId, SendCapability, SenderId};
use crate::limits::{MAX_BLOB_CHUNK, MAX_ENVELOPE_LEN, MAX_FRAME_LEN};

/// An Ed25519 public key, as sent on the wire.
pub type PublicKeyBytes = [u8; PUBLIC_KEY_LEN];
/// An Ed25519 signature, as sent on the wire.
pub type SignatureBytes = [u8; SIGNATURE_LEN];

/// What a client asks of the relay.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Request {
    /// Creates a queue. Signed by `recipient_key` (proof of possession).
    CreateQueue {
        /// The key that will authorise recipient operations.
        recipient_key: PublicKeyBytes,
        /// The initial send capability; the relay keeps only its SHA-256.
        send_cap: SendCapability,
        /// Signature over the signing input.
        signature: SignatureBytes,
    },
    /// Appends an envelope to a queue. Authorised by the send capability.
    Send {
        /// The queue, by its sender id.
        sender_id: SenderId,
        /// The current send capability.
        send_cap: SendCapability,
        /// Requested lifetime in seconds; the relay caps it at its maximum.
        ttl_secs: u32,
        /// If present, atomically replaces the queue's send capability.
        new_send_cap: Option<SendCapability>,
        /// Opaque ciphertext. Relays accept at most [`MAX_ENVELOPE_LEN`] bytes (or their lower
        /// configured limit) and answer `TooLarge` above it.
        body: Vec<u8>,
    },
    /// Deletes a still-pending envelope on behalf of its sender.
    Retract {
        /// The queue, by its sender id.
        sender_id: SenderId,
        /// The current send capability.
        send_cap: SendCapability,
        /// The id the relay returned for the envelope.
        envelope_id: EnvelopeId,
    },
    /// Starts pushing the queue's pending and new envelopes on this connection. Signed.
    Subscribe {
        /// The queue, by its recipient id.
        recipient_id: RecipientId,
        /// Signature over the signing input.
        signature: SignatureBytes,
    },
    /// Deletes a delivered envelope. Allowed only on a queue subscribed on this connection,
    /// which the signed subscribe already authorised.
    Ack {
        /// The queue, by its recipient id.
        recipient_id: RecipientId,
        /// The envelope to delete.
        envelope_id: EnvelopeId,
    },
    /// Replaces the queue's send capability. Signed.
    Resecure {
        /// The queue, by its recipient id.
        recipient_id: RecipientId,
        /// The new capability; the relay keeps only its SHA-256.
        new_send_cap: SendCapability,
        /// Signature over the signing input.
        signature: SignatureBytes,
    },
    /// Deletes the queue and all its envelopes. Signed.
    DeleteQueue {
        /// The queue, by its recipient id.
        recipient_id: RecipientId,
        /// Signature over the signing input.
        signature: SignatureBytes,
    },
    /// Does nothing; answered with [`Reply::Pong`].
    Ping,
    /// Reserves a blob of `total_len` bytes, answered with [`Reply::BlobCreated`]. The relay
    /// keeps only hashes of the two capabilities; it answers `TooLarge` above its blob cap and
    /// `NoSpace` when it cannot hold the blob.
    BlobCreate {
        /// Authorises writes, status and retract; kept by the uploader.
        write_cap: BlobCapability,
        /// Authorises status, reads and delete; given to the recipient.
        read_cap: BlobCapability,
        /// Exact size of the blob once uploaded.
        total_len: u64,
        /// Requested lifetime in seconds; the relay caps it at its blob TTL.
        ttl_secs: u32,
    },
    /// Appends data to a blob, answered with [`Reply::BlobWritten`]. `offset` must equal the
    /// blob's committed length (else `BlobOffset`); the data must not go past `total_len`.
    BlobWrite {
        /// The blob.
        blob_id: BlobId,
        /// Its write capability.
        write_cap: BlobCapability,
        /// Where the data goes: the current committed length.
        offset: u64,
        /// At most [`MAX_BLOB_CHUNK`] bytes.
        data: Vec<u8>,
    },
    /// Asks how much of a blob is stored, answered with [`Reply::BlobStatus`]. Either
    /// capability works. Used to resume an interrupted upload or download.
    BlobStatus {
        /// The blob.
        blob_id: BlobId,
        /// Its write or read capability.
        cap: BlobCapability,
    },
    /// Reads a complete blob, answered with [`Reply::BlobData`] (`BlobIncomplete` before the
    /// upload finished).
    BlobRead {
        /// The blob.
        blob_id: BlobId,
        /// Its read capability.
        read_cap: BlobCapability,
        /// First byte to read.
        offset: u64,
        /// Most bytes to return; at most [`MAX_BLOB_CHUNK`].
        len: u32,
    },
    /// Deletes a blob (and shreds its key), answered with [`Reply::Done`]. With the write
    /// capability it is the sender's retract; with the read capability, the recipient's
    /// acknowledgement that the download is done.
    BlobDelete {
        /// The blob.
        blob_id: BlobId,
        /// Its write or read capability.
        cap: BlobCapability,
    },
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

mod tag {
    pub(super) const CREATE: u8 = 0x01;
    pub(super) const SEND: u8 = 0x02;
    pub(super) const RETRACT: u8 = 0x03;
    pub(super) const SUBSCRIBE: u8 = 0x04;
    pub(super) const ACK: u8 = 0x05;
    pub(super) const RESECURE: u8 = 0x06;
    pub(super) const DELETE: u8 = 0x07;
    pub(super) const PING: u8 = 0x08;
    pub(super) const BLOB_CREATE: u8 = 0x09;
    pub(super) const BLOB_WRITE: u8 = 0x0A;
    pub(super) const BLOB_STATUS: u8 = 0x0B;
    pub(super) const BLOB_READ: u8 = 0x0C;
    pub(super) const BLOB_DELETE: u8 = 0x0D;

    pub(super) const FRAME_REPLY: u8 = 0x01;
    pub(super) const FRAME_ERROR: u8 = 0x02;
    pub(super) const FRAME_PUSH: u8 = 0x03;

    pub(super) const CREATED: u8 = 0x01;
    pub(super) const SENT: u8 = 0x02;
    pub(super) const RETRACTED: u8 = 0x03;
    pub(super) const DONE: u8 = 0x04;
    pub(super) const PONG: u8 = 0x05;
    pub(super) const BLOB_CREATED: u8 = 0x06;
    pub(super) const BLOB_WRITTEN: u8 = 0x07;
    pub(super) const BLOB_STATUS_REPLY: u8 = 0x08;
    pub(super) const BLOB_DATA: u8 = 0x09;

    pub(super) const PUSH_ENVELOPE: u8 = 0x01;
    pub(super) const PUSH_GONE: u8 = 0x02;
    pub(super) const PUSH_DRAINED: u8 = 0x03;
}

fn cap(r: &mut Reader<'_>) -> Result<SendCapability, DecodeError> {
    Ok(SendCapability::from_bytes(r.array()?))
}

fn blob_cap(r: &mut Reader<'_>) -> Result<BlobCapability, DecodeError> {
    Ok(BlobCapability::from_bytes(r.array()?))
}

impl Request {
    /// A short name for logs and metrics; never includes field values.
    pub fn kind(&self) -> &'static str {
        match self {
            Request::CreateQueue { .. } => "create",
            Request::Send { .. } => "send",
            Request::Retract { .. } => "retract",
            Request::Subscribe { .. } => "subscribe",
            Request::Ack { .. } => "ack",
            Request::Resecure { .. } => "resecure",
            Request::DeleteQueue { .. } => "delete",
            Request::Ping => "ping",
            Request::BlobCreate { .. } => "blob_create",
            Request::BlobWrite { .. } => "blob_write",
            Request::BlobStatus { .. } => "blob_status",
            Request::BlobRead { .. } => "blob_read",
            Request::BlobDelete { .. } => "blob_delete",
        }
    }

    /// The signature a signed request carries, if it is one.
    pub fn signature(&self) -> Option<&SignatureBytes> {
        match self {
            Request::CreateQueue { signature, .. }
            | Request::Subscribe { signature, .. }
            | Request::Resecure { signature, .. }
            | Request::DeleteQueue { signature, .. } => Some(signature),
            _ => None,
        }
    }

    /// Mutable access to the signature, for the signer to fill in.
    pub fn signature_mut(&mut self) -> Option<&mut SignatureBytes> {
        match self {
            Request::CreateQueue { signature, .. }
            | Request::Subscribe { signature, .. }
            | Request::Resecure { signature, .. }
            | Request::DeleteQueue { signature, .. } => Some(signature),
            _ => None,
        }
    }

    /// The encoded request without its trailing signature: what the signature covers.
    pub fn signed_part(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128);
        self.encode_body(&mut Writer { buf: &mut out }, false);
        out
    }

    /// Appends a whole client frame (length prefix, request id, request) to `out`.
    pub fn encode_frame(&self, request_id: u32, out: &mut Vec<u8>) {
        let at = begin_frame(out);
        let mut w = Writer { buf: out };
        w.u32(request_id);
        self.encode_body(&mut w, true);
        end_frame(out, at);
    }

    fn encode_body(&self, w: &mut Writer<'_>, with_sig: bool) {
        match self {
            Request::CreateQueue {
                recipient_key,
                send_cap,
                ..
            } => {
                w.u8(tag::CREATE);
                w.raw(recipient_key);
                w.raw(send_cap.as_bytes());
            }
            Request::Send {
                sender_id,
                send_cap,
                ttl_secs,
                new_send_cap,
                body,
            } => {
                w.u8(tag::SEND);
                w.raw(sender_id.as_bytes());
                w.raw(send_cap.as_bytes());
                w.u32(*ttl_secs);
                w.bool(new_send_cap.is_some());
                if let Some(c) = new_send_cap {
                    w.raw(c.as_bytes());
                }
                w.bytes(body);
            }
            Request::Retract {
                sender_id,
                send_cap,
                envelope_id,
            } => {
                w.u8(tag::RETRACT);
                w.raw(sender_id.as_bytes());
                w.raw(send_cap.as_bytes());
                w.raw(envelope_id.as_bytes());
            }
            Request::Subscribe { recipient_id, .. } => {
                w.u8(tag::SUBSCRIBE);
                w.raw(recipient_id.as_bytes());
            }
            Request::Ack {
                recipient_id,
                envelope_id,
            } => {
                w.u8(tag::ACK);
                w.raw(recipient_id.as_bytes());
                w.raw(envelope_id.as_bytes());
            }
            Request::Resecure {
                recipient_id,
                new_send_cap,
                ..
            } => {
                w.u8(tag::RESECURE);
                w.raw(recipient_id.as_bytes());
                w.raw(new_send_cap.as_bytes());
            }
            Request::DeleteQueue { recipient_id, .. } => {
                w.u8(tag::DELETE);
                w.raw(recipient_id.as_bytes());
            }
            Request::Ping => w.u8(tag::PING),
            Request::BlobCreate {
                write_cap,
                read_cap,
                total_len,
                ttl_secs,
            } => {
                w.u8(tag::BLOB_CREATE);
                w.raw(write_cap.as_bytes());
                w.raw(read_cap.as_bytes());
                w.u64(*total_len);
                w.u32(*ttl_secs);
            }
            Request::BlobWrite {
                blob_id,
                write_cap,
                offset,
                data,
            } => {
                w.u8(tag::BLOB_WRITE);
                w.raw(blob_id.as_bytes());
                w.raw(write_cap.as_bytes());
                w.u64(*offset);
                w.bytes(data);
            }
            Request::BlobStatus { blob_id, cap } => {
                w.u8(tag::BLOB_STATUS);
                w.raw(blob_id.as_bytes());
                w.raw(cap.as_bytes());
            }
            Request::BlobRead {
                blob_id,
                read_cap,
                offset,
                len,
            } => {
                w.u8(tag::BLOB_READ);
                w.raw(blob_id.as_bytes());
                w.raw(read_cap.as_bytes());
                w.u64(*offset);
                w.u32(*len);
            }
            Request::BlobDelete { blob_id, cap } => {
                w.u8(tag::BLOB_DELETE);
                w.raw(blob_id.as_bytes());
                w.raw(cap.as_bytes());
            }
        }
        if with_sig {
            if let Some(sig) = self.signature() {
                w.raw(sig);
            }
        }
    }

    /// Decodes a client frame body into its request id and request.
    ///
    /// On failure after the id was read, the id is returned with the error so the relay can
    /// answer it with [`ErrorCode::Malformed`].
    pub fn decode_frame(body: &[u8]) -> Result<(u32, Request), (Option<u32>, DecodeError)> {
        let mut r = Reader::new(body);
        let id = r.u32().map_err(|e| (None, e))?;
        let req = Self::decode_body(&mut r)
            .and_then(|req| r.finish().map(|()| req))
            .map_err(|e| (Some(id), e))?;
        Ok((id, req))
    }

    fn decode_body(r: &mut Reader<'_>) -> Result<Request, DecodeError> {
        let t = r.u8()?;
        Ok(match t {
            tag::CREATE => Request::CreateQueue {
                recipient_key: r.array()?,
                send_cap: cap(r)?,
                signature: r.array()?,
            },
            tag::SEND => Request::Send {
                sender_id: SenderId(r.array()?),
                send_cap: cap(r)?,
                ttl_secs: r.u32()?,
                new_send_cap: if r.bool()? { Some(cap(r)?) } else { None },
                // Bounded by the frame; the relay answers TooLarge above its envelope limit.
                body: r.bytes(MAX_FRAME_LEN)?,
            },
            tag::RETRACT => Request::Retract {
                sender_id: SenderId(r.array()?),
                send_cap: cap(r)?,
                envelope_id: EnvelopeId(r.array()?),
            },
            tag::SUBSCRIBE => Request::Subscribe {
                recipient_id: RecipientId(r.array()?),
                signature: r.array()?,
            },
            tag::ACK => Request::Ack {
                recipient_id: RecipientId(r.array()?),
                envelope_id: EnvelopeId(r.array()?),
            },
            tag::RESECURE => Request::Resecure {
                recipient_id: RecipientId(r.array()?),
                new_send_cap: cap(r)?,
                signature: r.array()?,
            },
            tag::DELETE => Request::DeleteQueue {
                recipient_id: RecipientId(r.array()?),
                signature: r.array()?,
            },
            tag::PING => Request::Ping,
            tag::BLOB_CREATE => Request::BlobCreate {
                write_cap: blob_cap(r)?,
                read_cap: blob_cap(r)?,
                total_len: r.u64()?,
                ttl_secs: r.u32()?,
            },
            tag::BLOB_WRITE => Request::BlobWrite {
                blob_id: BlobId(r.array()?),
                write_cap: blob_cap(r)?,
                offset: r.u64()?,
                data: r.bytes(MAX_BLOB_CHUNK)?,
            },
            tag::BLOB_STATUS => Request::BlobStatus {
                blob_id: BlobId(r.array()?),
                cap: blob_cap(r)?,
            },
            tag::BLOB_READ => Request::BlobRead {
                blob_id: BlobId(r.array()?),
                read_cap: blob_cap(r)?,
                offset: r.u64()?,
                len: r.u32()?,
            },
            tag::BLOB_DELETE => Request::BlobDelete {
                blob_id: BlobId(r.array()?),
                cap: blob_cap(r)?,
            },
            other => return Err(DecodeError::UnknownTag(other)),
        })
    }
}

impl ServerFrame {
    /// Appends the whole frame (length prefix and body) to `out`.
    pub fn encode_frame(&self, out: &mut Vec<u8>) {
        let at = begin_frame(out);
        let mut w = Writer { buf: out };
        match self {
            ServerFrame::Response {
                request_id,
                result: Ok(reply),
            } => {
                w.u8(tag::FRAME_REPLY);
                w.u32(*request_id);
                encode_reply(reply, &mut w);
            }
            ServerFrame::Response {
                request_id,
                result: Err(code),
            } => {
                w.u8(tag::FRAME_ERROR);
                w.u32(*request_id);
                w.u16(code.to_u16());
            }
            ServerFrame::Push(push) => {
                w.u8(tag::FRAME_PUSH);
                encode_push(push, &mut w);
            }
        }
        end_frame(out, at);
    }

    /// Decodes a relay frame body.
    pub fn decode(body: &[u8]) -> Result<ServerFrame, DecodeError> {
        let mut r = Reader::new(body);
        let frame = match r.u8()? {
            tag::FRAME_REPLY => ServerFrame::Response {
                request_id: r.u32()?,
                result: Ok(decode_reply(&mut r)?),
            },
            tag::FRAME_ERROR => ServerFrame::Response {
                request_id: r.u32()?,
                result: Err(ErrorCode::from_u16(r.u16()?).ok_or(DecodeError::InvalidValue)?),
            },
            tag::FRAME_PUSH => ServerFrame::Push(decode_push(&mut r)?),
            other => return Err(DecodeError::UnknownTag(other)),
        };
        r.finish()?;
        Ok(frame)
    }
}

fn encode_reply(reply: &Reply, w: &mut Writer<'_>) {
    match reply {
        Reply::Created {
            recipient_id,
            sender_id,
        } => {
            w.u8(tag::CREATED);
            w.raw(recipient_id.as_bytes());
            w.raw(sender_id.as_bytes());
        }
        Reply::Sent { envelope_id } => {
            w.u8(tag::SENT);
            w.raw(envelope_id.as_bytes());
        }
        Reply::Retracted { was_pending } => {
            w.u8(tag::RETRACTED);
            w.bool(*was_pending);
        }
        Reply::Done => w.u8(tag::DONE),
        Reply::Pong => w.u8(tag::PONG),
        Reply::BlobCreated {
            blob_id,
            expires_at,
        } => {
            w.u8(tag::BLOB_CREATED);
            w.raw(blob_id.as_bytes());
            w.u64(*expires_at);
        }
        Reply::BlobWritten { committed } => {
            w.u8(tag::BLOB_WRITTEN);
            w.u64(*committed);
        }
        Reply::BlobStatus {
            total_len,
            committed,
            expires_at,
        } => {
            w.u8(tag::BLOB_STATUS_REPLY);
            w.u64(*total_len);
            w.u64(*committed);
            w.u64(*expires_at);
        }
        Reply::BlobData { data } => {
            w.u8(tag::BLOB_DATA);
            w.bytes(data);
        }
    }
}

fn decode_reply(r: &mut Reader<'_>) -> Result<Reply, DecodeError> {
    Ok(match r.u8()? {
        tag::CREATED => Reply::Created {
            recipient_id: RecipientId(r.array()?),
            sender_id: SenderId(r.array()?),
        },
        tag::SENT => Reply::Sent {
            envelope_id: EnvelopeId(r.array()?),
        },
        tag::RETRACTED => Reply::Retracted {
            was_pending: r.bool()?,
        },
        tag::DONE => Reply::Done,
        tag::PONG => Reply::Pong,
        tag::BLOB_CREATED => Reply::BlobCreated {
            blob_id: BlobId(r.array()?),
            expires_at: r.u64()?,
        },
        tag::BLOB_WRITTEN => Reply::BlobWritten {
            committed: r.u64()?,
        },
        tag::BLOB_STATUS_REPLY => Reply::BlobStatus {
            total_len: r.u64()?,
            committed: r.u64()?,
            expires_at: r.u64()?,
        },
        tag::BLOB_DATA => Reply::BlobData {
            data: r.bytes(MAX_BLOB_CHUNK)?,
        },
        other => return Err(DecodeError::UnknownTag(other)),
    })
}

fn encode_push(push: &Push, w: &mut Writer<'_>) {
    match push {
        Push::Envelope {
            recipient_id,
            envelope_id,
            expires_at,
            body,
        } => {
            w.u8(tag::PUSH_ENVELOPE);
            w.raw(recipient_id.as_bytes());
            w.raw(envelope_id.as_bytes());
            w.u64(*expires_at);
            w.bytes(body);
        }
        Push::QueueGone { recipient_id } => {
            w.u8(tag::PUSH_GONE);
            w.raw(recipient_id.as_bytes());
        }
        Push::Drained { recipient_id } => {
            w.u8(tag::PUSH_DRAINED);
            w.raw(recipient_id.as_bytes());
        }
    }
}

fn decode_push(r: &mut Reader<'_>) -> Result<Push, DecodeError> {
    Ok(match r.u8()? {
        tag::PUSH_ENVELOPE => Push::Envelope {
            recipient_id: RecipientId(r.array()?),
            envelope_id: EnvelopeId(r.array()?),
            expires_at: r.u64()?,
            body: r.bytes(MAX_ENVELOPE_LEN)?,
        },
        tag::PUSH_GONE => Push::QueueGone {
            recipient_id: RecipientId(r.array()?),
        },
        tag::PUSH_DRAINED => Push::Drained {
            recipient_id: RecipientId(r.array()?),
        },
        other => return Err(DecodeError::UnknownTag(other)),
    })
}
