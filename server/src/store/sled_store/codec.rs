//! Key and value layouts of [`super::SledStore`] in its single sled tree.
//!
//! Every key starts with a one-byte kind, so one tree (and one atomic `Batch`) holds all of it:
//!
//! | kind | key                                   | value                                  |
//! |------|---------------------------------------|----------------------------------------|
//! | `q`  | recipient id                          | [`QueueValue`]                         |
//! | `s`  | sender id                             | recipient id                           |
//! | `e`  | recipient id, seq (BE)                | [`EnvelopeHead`], then the sealed body |
//!
//! A queue record's `next_seq` is a limit: every seq handed out is below it (see `mem`). Its
//! `count` and `bytes` are informative only; they are recounted on open.
//!
//! Big-endian integers make sled's byte order the numeric order, so a queue's envelopes iterate
//! in seq order. Versions before the in-memory index also kept an envelope-id index (`i`) and an
//! expiry index (`x`); they are dropped on open ([`LEGACY_PREFIXES`]).
//!
//! What it does not do: encrypt (the body is sealed by the caller) or touch sled.

use hush_protocol::ids::ID_LEN;
use hush_protocol::{EnvelopeId, RecipientId, SenderId};
use hush_vault::SEAL_OVERHEAD;

use crate::store::{CapHash, QueueRecord, StoreError};

const QUEUE: u8 = b'q';
const SENDER: u8 = b's';
const ENVELOPE: u8 = b'e';

/// Key prefixes of the indexes older versions kept in sled.
pub(super) const LEGACY_PREFIXES: [[u8; 1]; 2] = [[b'i'], [b'x']];

/// Domain label in the associated data of every sealed body.
const BODY_AAD_LABEL: &[u8; 16] = b"hush-relay env 1";

fn corrupt(what: &str) -> StoreError {
    StoreError::permanent(format!("corrupt {what} record"))
}

fn id_at(bytes: &[u8], at: usize) -> [u8; ID_LEN] {
    let mut out = [0u8; ID_LEN];
    out.copy_from_slice(&bytes[at..at + ID_LEN]);
    out
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut out = [0u8; 8];
    out.copy_from_slice(&bytes[at..at + 8]);
    u64::from_be_bytes(out)
}

/// Key of a queue record.
pub(super) fn queue_key(r: &RecipientId) -> [u8; 1 + ID_LEN] {
    let mut k = [QUEUE; 1 + ID_LEN];
    k[1..].copy_from_slice(r.as_bytes());
    k
}

/// The prefix of every queue record.
pub(super) const QUEUE_PREFIX: [u8; 1] = [QUEUE];

/// Key of the sender id → recipient id index.
pub(super) fn sender_key(s: &SenderId) -> [u8; 1 + ID_LEN] {
    let mut k = [SENDER; 1 + ID_LEN];
    k[1..].copy_from_slice(s.as_bytes());
    k
}

/// Key of one envelope.
pub(super) fn envelope_key(r: &RecipientId, seq: u64) -> [u8; 1 + ID_LEN + 8] {
    let mut k = [ENVELOPE; 1 + ID_LEN + 8];
    k[1..1 + ID_LEN].copy_from_slice(r.as_bytes());
    k[1 + ID_LEN..].copy_from_slice(&seq.to_be_bytes());
    k
}

/// The prefix of all of one queue's envelopes.
pub(super) fn envelope_prefix(r: &RecipientId) -> [u8; 1 + ID_LEN] {
    let mut k = [ENVELOPE; 1 + ID_LEN];
    k[1..].copy_from_slice(r.as_bytes());
    k
}

/// The seq of an envelope key.
pub(super) fn envelope_key_seq(key: &[u8]) -> Result<u64, StoreError> {
    if key.len() != 1 + ID_LEN + 8 {
        return Err(corrupt("envelope key"));
    }
    Ok(u64_at(key, 1 + ID_LEN))
}

/// Associated data that binds a sealed body to its queue, position and envelope id.
pub(super) fn body_aad(r: &RecipientId, seq: u64, id: &EnvelopeId) -> [u8; 16 + 2 * ID_LEN + 8] {
    let mut aad = [0u8; 16 + 2 * ID_LEN + 8];
    aad[..16].copy_from_slice(BODY_AAD_LABEL);
    aad[16..16 + ID_LEN].copy_from_slice(r.as_bytes());
    aad[16 + ID_LEN..16 + ID_LEN + 8].copy_from_slice(&seq.to_be_bytes());
    aad[16 + ID_LEN + 8..].copy_from_slice(id.as_bytes());
    aad
}

/// A queue's record: its [`QueueRecord`] plus the counters the store maintains.
#[derive(Clone, PartialEq, Eq, Debug)]
pub(super) struct QueueValue {
    pub(super) sender_id: SenderId,
    pub(super) recipient_key: [u8; 32],
    pub(super) send_cap_hash: CapHash,
    pub(super) last_active: u64,
    /// The seq the next envelope gets.
    pub(super) next_seq: u64,
    /// Envelopes stored (expired ones until the sweep removes them).
    pub(super) count: u64,
    /// Body bytes stored.
    pub(super) bytes: u64,
}

const QUEUE_VALUE_LEN: usize = ID_LEN + 32 + 32 + 4 * 8;

impl QueueValue {
    pub(super) fn new(rec: &QueueRecord) -> QueueValue {
        QueueValue {
            sender_id: rec.sender_id,
            recipient_key: rec.recipient_key,
            send_cap_hash: rec.send_cap_hash,
            last_active: rec.last_active,
            next_seq: 1,
            count: 0,
            bytes: 0,
        }
    }

    pub(super) fn record(&self, recipient_id: RecipientId) -> QueueRecord {
        QueueRecord {
            recipient_id,
            sender_id: self.sender_id,
            recipient_key: self.recipient_key,
            send_cap_hash: self.send_cap_hash,
            last_active: self.last_active,
        }
    }

    pub(super) fn encode(&self) -> [u8; QUEUE_VALUE_LEN] {
        let mut v = [0u8; QUEUE_VALUE_LEN];
        v[..ID_LEN].copy_from_slice(self.sender_id.as_bytes());
        v[ID_LEN..ID_LEN + 32].copy_from_slice(&self.recipient_key);
        v[ID_LEN + 32..ID_LEN + 64].copy_from_slice(&self.send_cap_hash);
        let counters = [self.last_active, self.next_seq, self.count, self.bytes];
        for (n, c) in counters.iter().enumerate() {
            let at = ID_LEN + 64 + 8 * n;
            v[at..at + 8].copy_from_slice(&c.to_be_bytes());
        }
        v
    }

    pub(super) fn decode(v: &[u8]) -> Result<QueueValue, StoreError> {
        if v.len() != QUEUE_VALUE_LEN {
            return Err(corrupt("queue"));
        }
        let mut recipient_key = [0u8; 32];
        recipient_key.copy_from_slice(&v[ID_LEN..ID_LEN + 32]);
        let mut send_cap_hash = [0u8; 32];
        send_cap_hash.copy_from_slice(&v[ID_LEN + 32..ID_LEN + 64]);
        let at = |n: usize| u64_at(v, ID_LEN + 64 + 8 * n);
        Ok(QueueValue {
            sender_id: SenderId::from_bytes(id_at(v, 0)),
            recipient_key,
            send_cap_hash,
            last_active: at(0),
            next_seq: at(1),
            count: at(2),
            bytes: at(3),
        })
    }
}

/// The fixed-size start of an envelope value; the sealed body follows it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) struct EnvelopeHead {
    pub(super) id: EnvelopeId,
    pub(super) expires_at: u64,
    /// Index of the vault slot holding the body's key.
    pub(super) slot: u64,
}

/// Length of an encoded [`EnvelopeHead`].
pub(super) const ENVELOPE_HEAD_LEN: usize = ID_LEN + 16;

impl EnvelopeHead {
    /// Encodes the head into a buffer with room for a sealed body of `body_len` plaintext
    /// bytes, which the caller appends.
    pub(super) fn encode_for(&self, body_len: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(ENVELOPE_HEAD_LEN + SEAL_OVERHEAD + body_len);
        v.extend_from_slice(self.id.as_bytes());
        v.extend_from_slice(&self.expires_at.to_be_bytes());
        v.extend_from_slice(&self.slot.to_be_bytes());
        v
    }

    /// Splits an envelope value into its head and sealed body.
    pub(super) fn decode(v: &[u8]) -> Result<(EnvelopeHead, &[u8]), StoreError> {
        if v.len() < ENVELOPE_HEAD_LEN {
            return Err(corrupt("envelope"));
        }
        let head = EnvelopeHead {
            id: EnvelopeId::from_bytes(id_at(v, 0)),
            expires_at: u64_at(v, ID_LEN),
            slot: u64_at(v, ID_LEN + 8),
        };
        Ok((head, &v[ENVELOPE_HEAD_LEN..]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_value_round_trips() {
        let q = QueueValue {
            sender_id: SenderId::from_bytes([1; ID_LEN]),
            recipient_key: [2; 32],
            send_cap_hash: [3; 32],
            last_active: 4,
            next_seq: 5,
            count: 6,
            bytes: u64::MAX,
        };
        assert_eq!(QueueValue::decode(&q.encode()).unwrap(), q);
        assert!(QueueValue::decode(&q.encode()[1..]).is_err());
    }

    #[test]
    fn envelope_keys_sort_by_seq() {
        let r = RecipientId::from_bytes([9; ID_LEN]);
        assert!(envelope_key(&r, 255) < envelope_key(&r, 256));
        assert_eq!(envelope_key_seq(&envelope_key(&r, 77)).unwrap(), 77);
        let head = EnvelopeHead {
            id: EnvelopeId::from_bytes([7; ID_LEN]),
            expires_at: 8,
            slot: 9,
        };
        let mut v = head.encode_for(6);
        v.extend_from_slice(b"sealed");
        assert_eq!(EnvelopeHead::decode(&v).unwrap(), (head, &b"sealed"[..]));
    }
}
