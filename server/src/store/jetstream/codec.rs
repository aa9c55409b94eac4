//! What the JetStream store writes into NATS, byte by byte, and the keys it seals it with.
//!
//! NATS never sees a queue id or a sender id: subjects carry domain-separated SHA-256 hashes
//! of them, and every value that holds an id, a capability hash or an envelope is sealed with
//! ChaCha20-Poly1305 under a key derived from the id it belongs to. Only someone who already
//! knows the id (the queue's owner, its senders, and the relay while it serves them) can read
//! it back, so the relay nodes need no shared secret to read each other's writes.
//!
//! Left in clear, because the sweep on any node needs them without knowing the ids: a queue
//! message's kind and expiry time, a queue's last-activity time, and which sender-index subject
//! belongs to which queue (a hash of a hash).
//!
//! What this module does not do: talk to NATS (`api.rs`) or decide what the bytes mean for a
//! queue (`queue.rs`).

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hush_protocol::{EnvelopeId, RecipientId, SenderId};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::store::{CapHash, StoreError};

/// Length of a random nonce in front of each sealed value.
const NONCE_LEN: usize = 12;
/// Length of a sealed capability part: nonce, capability hash, Poly1305 tag.
pub(super) const SEALED_CAP_LEN: usize = NONCE_LEN + 32 + 16;
/// Length of a queue message's clear header: kind byte and expiry.
const HEADER_LEN: usize = 1 + 8;

/// The hex hash that names a queue in subjects.
pub(super) fn queue_hash(rid: &RecipientId) -> String {
    hashed(b"hush-js-queue", rid.as_bytes())
}

/// The hex hash that names a sender id in subjects.
pub(super) fn sender_hash(sid: &SenderId) -> String {
    hashed(b"hush-js-sender", sid.as_bytes())
}

fn hashed(domain: &[u8], id: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(domain);
    h.update([0]);
    h.update(id);
    hex::encode(h.finalize())
}

/// The key that seals a queue's values: derived from the recipient id, independent of the hash
/// in its subjects.
pub(super) fn queue_key(rid: &RecipientId) -> Key {
    derive_key(b"hush-js-queue-key", rid.as_bytes())
}

/// The key that seals a sender-index value.
pub(super) fn sender_key(sid: &SenderId) -> Key {
    derive_key(b"hush-js-sender-key", sid.as_bytes())
}

fn derive_key(domain: &[u8], id: &[u8]) -> Key {
    let mut h = Sha256::new();
    h.update(domain);
    h.update([0]);
    h.update(id);
    h.finalize()
}

/// Seals `plain` under `key`, bound to `aad` (the subject it is written to).
pub(super) fn seal(key: &Key, aad: &[u8], plain: &[u8]) -> Vec<u8> {
    let mut nonce = [0u8; NONCE_LEN];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let cipher = ChaCha20Poly1305::new(key);
    let sealed = cipher
        .encrypt(Nonce::from_slice(&nonce), Payload { msg: plain, aad })
        .unwrap_or_default();
    let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    out
}

/// Opens a value sealed by [`seal`]; a wrong key, subject or a damaged value is corruption.
pub(super) fn open(key: &Key, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, StoreError> {
    if sealed.len() < NONCE_LEN + 16 {
        return Err(corrupt("sealed value too short"));
    }
    let (nonce, body) = sealed.split_at(NONCE_LEN);
    ChaCha20Poly1305::new(key)
        .decrypt(Nonce::from_slice(nonce), Payload { msg: body, aad })
        .map_err(|_| corrupt("sealed value does not open"))
}

/// A permanent failure for bytes in NATS that do not decode.
pub(super) fn corrupt(what: &str) -> StoreError {
    StoreError::permanent(format!("jetstream store: {what}"))
}

/// What one message on a queue's subject is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Kind {
    /// The queue's send capability, with no envelope.
    Cap,
    /// An envelope.
    Envelope,
    /// An envelope that also replaced the send capability.
    EnvelopeWithCap,
}

impl Kind {
    fn byte(self) -> u8 {
        match self {
            Kind::Cap => 0,
            Kind::Envelope => 1,
            Kind::EnvelopeWithCap => 2,
        }
    }

    fn from_byte(b: u8) -> Option<Kind> {
        match b {
            0 => Some(Kind::Cap),
            1 => Some(Kind::Envelope),
            2 => Some(Kind::EnvelopeWithCap),
            _ => None,
        }
    }

    /// Whether the message carries a capability.
    pub(super) fn has_cap(self) -> bool {
        matches!(self, Kind::Cap | Kind::EnvelopeWithCap)
    }

    /// Whether the message carries an envelope.
    pub(super) fn has_envelope(self) -> bool {
        matches!(self, Kind::Envelope | Kind::EnvelopeWithCap)
    }
}

/// A queue message as NATS holds it: clear header, sealed parts still sealed.
#[derive(Clone, Debug)]
pub(super) struct RawQueueMsg {
    /// The stream sequence.
    pub seq: u64,
    /// What it carries.
    pub kind: Kind,
    /// Unix seconds after which the envelope expires (`u64::MAX` for a capability).
    pub expires_at: u64,
    /// The sealed capability part, for kinds that carry one.
    pub sealed_cap: Vec<u8>,
    /// The sealed envelope part, for kinds that carry one.
    pub sealed_envelope: Vec<u8>,
}

impl RawQueueMsg {
    /// Decodes a message payload read back from NATS.
    pub(super) fn decode(seq: u64, payload: &[u8]) -> Result<RawQueueMsg, StoreError> {
        if payload.len() < HEADER_LEN {
            return Err(corrupt("queue message too short"));
        }
        let kind = Kind::from_byte(payload[0]).ok_or_else(|| corrupt("unknown message kind"))?;
        let expires_at = u64::from_be_bytes(payload[1..HEADER_LEN].try_into().unwrap_or([0; 8]));
        let rest = &payload[HEADER_LEN..];
        let cap_len = if kind.has_cap() { SEALED_CAP_LEN } else { 0 };
        if rest.len() < cap_len {
            return Err(corrupt("queue message too short"));
        }
        let (cap, env) = rest.split_at(cap_len);
        Ok(RawQueueMsg {
            seq,
            kind,
            expires_at,
            sealed_cap: cap.to_vec(),
            sealed_envelope: env.to_vec(),
        })
    }

    /// The payload that writes this message (its `seq` is not part of it).
    pub(super) fn encode(&self) -> Vec<u8> {
        let mut out =
            Vec::with_capacity(HEADER_LEN + self.sealed_cap.len() + self.sealed_envelope.len());
        out.push(self.kind.byte());
        out.extend_from_slice(&self.expires_at.to_be_bytes());
        out.extend_from_slice(&self.sealed_cap);
        out.extend_from_slice(&self.sealed_envelope);
        out
    }

    /// A capability message that carries the same sealed capability as `self`: what replaces
    /// an envelope that carried the queue's current capability when that envelope is removed.
    /// It needs no key: the sealed part is copied as it is.
    pub(super) fn cap_copy(&self) -> RawQueueMsg {
        RawQueueMsg {
            seq: 0,
            kind: Kind::Cap,
            expires_at: u64::MAX,
            sealed_cap: self.sealed_cap.clone(),
            sealed_envelope: Vec::new(),
        }
    }
}

/// The sealed capability part of a queue message on `subject`.
pub(super) fn seal_cap(key: &Key, subject: &str, cap: &CapHash) -> Vec<u8> {
    seal(key, subject.as_bytes(), cap)
}

/// Opens a sealed capability part.
pub(super) fn open_cap(key: &Key, subject: &str, sealed: &[u8]) -> Result<CapHash, StoreError> {
    let plain = open(key, subject.as_bytes(), sealed)?;
    plain
        .try_into()
        .map_err(|_| corrupt("capability has the wrong length"))
}

/// An envelope's sealed contents: its id and body.
pub(super) fn seal_envelope(key: &Key, subject: &str, id: &EnvelopeId, body: &[u8]) -> Vec<u8> {
    let mut plain = Vec::with_capacity(16 + body.len());
    plain.extend_from_slice(id.as_bytes());
    plain.extend_from_slice(body);
    seal(key, subject.as_bytes(), &plain)
}

/// Opens an envelope's sealed contents into its id and body.
pub(super) fn open_envelope(
    key: &Key,
    subject: &str,
    sealed: &[u8],
) -> Result<(EnvelopeId, Vec<u8>), StoreError> {
    let mut plain = open(key, subject.as_bytes(), sealed)?;
    if plain.len() < 16 {
        return Err(corrupt("envelope too short"));
    }
    let body = plain.split_off(16);
    let id: [u8; 16] = plain
        .try_into()
        .map_err(|_| corrupt("envelope id has the wrong length"))?;
    Ok((EnvelopeId::from_bytes(id), body))
}

/// The length of a body sealed by [`seal_envelope`], without opening it.
pub(super) fn sealed_body_len(sealed: &[u8]) -> u64 {
    sealed.len().saturating_sub(NONCE_LEN + 16 + 16) as u64
}

/// A queue record as stored: the sender-index hash in clear (so any node's sweep can remove
/// the index), then the sender id and recipient key sealed under the queue key.
pub(super) fn encode_record(
    key: &Key,
    subject: &str,
    sid: &SenderId,
    recipient_key: &[u8; 32],
) -> Vec<u8> {
    let mut plain = Vec::with_capacity(48);
    plain.extend_from_slice(sid.as_bytes());
    plain.extend_from_slice(recipient_key);
    let mut out = sender_hash(sid).into_bytes();
    out.extend_from_slice(&seal(key, subject.as_bytes(), &plain));
    out
}

/// The sender-index hash in a stored record, readable without the queue key.
pub(super) fn record_sender_hash(value: &[u8]) -> Result<String, StoreError> {
    let h = value.get(..64).ok_or_else(|| corrupt("record too short"))?;
    String::from_utf8(h.to_vec()).map_err(|_| corrupt("record sender hash is not text"))
}

/// Opens a stored record into its sender id and recipient key.
pub(super) fn decode_record(
    key: &Key,
    subject: &str,
    value: &[u8],
) -> Result<(SenderId, [u8; 32]), StoreError> {
    let sealed = value.get(64..).ok_or_else(|| corrupt("record too short"))?;
    let plain = open(key, subject.as_bytes(), sealed)?;
    if plain.len() != 48 {
        return Err(corrupt("record has the wrong length"));
    }
    let mut sid = [0u8; 16];
    sid.copy_from_slice(&plain[..16]);
    let mut rkey = [0u8; 32];
    rkey.copy_from_slice(&plain[16..]);
    Ok((SenderId::from_bytes(sid), rkey))
}

/// A sender-index value: the recipient id, sealed under the sender key.
pub(super) fn encode_sender(sid: &SenderId, subject: &str, rid: &RecipientId) -> Vec<u8> {
    seal(&sender_key(sid), subject.as_bytes(), rid.as_bytes())
}

/// Opens a sender-index value into the recipient id.
pub(super) fn decode_sender(
    sid: &SenderId,
    subject: &str,
    value: &[u8],
) -> Result<RecipientId, StoreError> {
    let plain = open(&sender_key(sid), subject.as_bytes(), value)?;
    let id: [u8; 16] = plain
        .try_into()
        .map_err(|_| corrupt("sender index has the wrong length"))?;
    Ok(RecipientId::from_bytes(id))
}

/// A last-activity value (Unix seconds).
pub(super) fn encode_activity(now: u64) -> Vec<u8> {
    now.to_be_bytes().to_vec()
}

/// Decodes a last-activity value.
pub(super) fn decode_activity(value: &[u8]) -> Result<u64, StoreError> {
    let b: [u8; 8] = value
        .try_into()
        .map_err(|_| corrupt("activity has the wrong length"))?;
    Ok(u64::from_be_bytes(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_their_key_and_subject() {
        let rid = RecipientId::from_bytes([1; 16]);
        let key = queue_key(&rid);
        let sealed = seal_envelope(&key, "a", &EnvelopeId::from_bytes([2; 16]), b"body");
        assert_eq!(sealed_body_len(&sealed), 4);
        let (id, body) = open_envelope(&key, "a", &sealed).unwrap();
        assert_eq!((id.0, body.as_slice()), ([2; 16], &b"body"[..]));
        assert!(open_envelope(&key, "b", &sealed).is_err());
        let other = queue_key(&RecipientId::from_bytes([3; 16]));
        assert!(open_envelope(&other, "a", &sealed).is_err());
        // Neither the id nor its hash is the key.
        assert_ne!(hex::encode(key), queue_hash(&rid));
    }

    #[test]
    fn queue_messages_round_trip_and_copy_their_capability() {
        let key = queue_key(&RecipientId::from_bytes([1; 16]));
        let msg = RawQueueMsg {
            seq: 0,
            kind: Kind::EnvelopeWithCap,
            expires_at: 77,
            sealed_cap: seal_cap(&key, "s", &[9; 32]),
            sealed_envelope: seal_envelope(&key, "s", &EnvelopeId::from_bytes([2; 16]), b"x"),
        };
        let back = RawQueueMsg::decode(5, &msg.encode()).unwrap();
        assert_eq!((back.seq, back.kind, back.expires_at), (5, msg.kind, 77));
        let copy = RawQueueMsg::decode(6, &back.cap_copy().encode()).unwrap();
        assert_eq!(copy.kind, Kind::Cap);
        assert_eq!(open_cap(&key, "s", &copy.sealed_cap).unwrap(), [9; 32]);
        assert!(RawQueueMsg::decode(1, &[7, 0]).is_err());
    }
}
