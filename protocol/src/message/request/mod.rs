//! Requests, client → relay: the [`Request`] type, its client frame, and which group encodes
//! each request.
//!
//! A client frame is `request_id: u32` then a tag byte and the request's fields. Signed requests
//! put their 64-byte signature last and sign everything before it ([`Request::signed_part`]).
//! The fields of each request are encoded and decoded side by side in `queue.rs` (queue
//! requests) and `blob.rs` (blob requests).
//!
//! What it does not do: check signatures or enforce relay policy.

mod blob;
mod queue;

use super::field::FrameWriter;
use super::{PublicKeyBytes, SignatureBytes};
use crate::access::CreateToken;
use crate::codec::{DecodeError, Reader, Writer};
use crate::frame::{begin_frame, end_frame};
use crate::ids::{BlobCapability, BlobId, EnvelopeId, RecipientId, SendCapability, SenderId};
#[cfg(doc)]
use crate::limits::{MAX_ACK_BATCH, MAX_BLOB_CHUNK, MAX_ENVELOPE_LEN};
#[cfg(doc)]
use crate::message::Reply;

/// Request tags, the first byte after the request id.
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
    pub(super) const HELLO: u8 = 0x0E;
    pub(super) const NEXT_CERT: u8 = 0x0F;
    pub(super) const ACK_MANY: u8 = 0x10;
}

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
    /// Deletes several delivered envelopes of one queue (`hush/2` only), answered with one
    /// [`Reply::Done`] once every deletion is durable. Allowed like [`Request::Ack`]; a
    /// `hush/1` connection gets `Malformed`, as from a relay that does not know it.
    AckMany {
        /// The queue, by its recipient id.
        recipient_id: RecipientId,
        /// The envelopes to delete: 1 to [`MAX_ACK_BATCH`] ids.
        envelope_ids: Vec<EnvelopeId>,
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
    /// Introduces the connection: presents the create token, if the client has one for this
    /// relay, and asks for the relay's limits, answered with [`Reply::Welcome`]. A token the
    /// relay does not accept is `Forbidden`. Optional: a connection that never says hello
    /// works as before on an open relay.
    Hello {
        /// The create token from the user's relay address, if it carried one.
        token: Option<CreateToken>,
    },
    /// Asks whether the relay will switch to another certificate soon, answered with
    /// [`Reply::NextCert`]. Optional: the client asks on connections it pinned, and keeps the
    /// announced fingerprint as a second pin for this relay until the switch.
    NextCert,
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
            Request::AckMany { .. } => "ack_many",
            Request::Resecure { .. } => "resecure",
            Request::DeleteQueue { .. } => "delete",
            Request::Ping => "ping",
            Request::BlobCreate { .. } => "blob_create",
            Request::BlobWrite { .. } => "blob_write",
            Request::BlobStatus { .. } => "blob_status",
            Request::BlobRead { .. } => "blob_read",
            Request::BlobDelete { .. } => "blob_delete",
            Request::Hello { .. } => "hello",
            Request::NextCert => "next_cert",
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
        self.encode_body(&mut Writer::new(&mut out), false);
        out
    }

    /// Appends a whole client frame (length prefix, request id, request) to `out`.
    pub fn encode_frame(&self, request_id: u32, out: &mut Vec<u8>) {
        let at = begin_frame(out);
        let mut w = Writer::new(&mut *out);
        w.u32(request_id);
        self.encode_body(&mut w, true);
        end_frame(out, at);
    }

    /// Decodes a client frame body into its request id and request.
    ///
    /// On failure after the id was read, the id is returned with the error so the relay can
    /// answer it with [`ErrorCode::Malformed`](crate::ErrorCode::Malformed).
    pub fn decode_frame(body: &[u8]) -> Result<(u32, Request), (Option<u32>, DecodeError)> {
        let mut r = Reader::new(body);
        let id = r.u32().map_err(|e| (None, e))?;
        let req = Self::decode_body(&mut r)
            .and_then(|req| r.finish().map(|()| req))
            .map_err(|e| (Some(id), e))?;
        Ok((id, req))
    }

    /// The tag that starts this request's encoding.
    fn tag(&self) -> u8 {
        match self {
            Request::CreateQueue { .. } => tag::CREATE,
            Request::Send { .. } => tag::SEND,
            Request::Retract { .. } => tag::RETRACT,
            Request::Subscribe { .. } => tag::SUBSCRIBE,
            Request::Ack { .. } => tag::ACK,
            Request::AckMany { .. } => tag::ACK_MANY,
            Request::Resecure { .. } => tag::RESECURE,
            Request::DeleteQueue { .. } => tag::DELETE,
            Request::Ping => tag::PING,
            Request::BlobCreate { .. } => tag::BLOB_CREATE,
            Request::BlobWrite { .. } => tag::BLOB_WRITE,
            Request::BlobStatus { .. } => tag::BLOB_STATUS,
            Request::BlobRead { .. } => tag::BLOB_READ,
            Request::BlobDelete { .. } => tag::BLOB_DELETE,
            Request::Hello { .. } => tag::HELLO,
            Request::NextCert => tag::NEXT_CERT,
        }
    }

    /// Whether this request is one of the blob group (`blob.rs`) rather than a queue request.
    fn is_blob(&self) -> bool {
        matches!(
            self,
            Request::BlobCreate { .. }
                | Request::BlobWrite { .. }
                | Request::BlobStatus { .. }
                | Request::BlobRead { .. }
                | Request::BlobDelete { .. }
        )
    }

    /// The tag, the fields and (if `with_sig`) the trailing signature.
    fn encode_body(&self, w: &mut FrameWriter<'_>, with_sig: bool) {
        w.u8(self.tag());
        if self.is_blob() {
            blob::encode_fields(self, w);
        } else {
            queue::encode_fields(self, w);
        }
        if with_sig {
            if let Some(sig) = self.signature() {
                w.raw(sig);
            }
        }
    }

    fn decode_body(r: &mut Reader<'_>) -> Result<Request, DecodeError> {
        let t = r.u8()?;
        if (tag::BLOB_CREATE..=tag::BLOB_DELETE).contains(&t) {
            blob::decode_fields(t, r)
        } else {
            queue::decode_fields(t, r)
        }
    }
}
