//! The sealed records of store formats 2 and 3: what a queue record and an envelope record
//! hold, and their encryption under the record's own vault key. (Format 3 keeps the same
//! records and stores envelope records in segments, see `segment`.)
//!
//! - A queue record is `recipient id ‖ sender id ‖ recipient key ‖ capability hash ‖
//!   last_active ‖ seq limit` (112 bytes), sealed under the queue's key.
//! - An envelope record is `recipient id ‖ envelope id ‖ seq ‖ expires_at ‖ body`, sealed under
//!   the envelope's key: its header travels with its body, and goes with it when the key is
//!   shredded.
//!
//! The associated data of each is a label and the vault slot the record's key sits in (which
//! is also its sled key), so a record moved to another key's place does not open. Only the
//! length of a sealed record is visible: a queue record is always the same length, an envelope
//! record [`ENVELOPE_SEAL_OVERHEAD`] bytes longer than its body (which clients pad).
//!
//! What it does not do: pick keys or slots, choose what is stored (`mem` coarsens
//! `last_active` and turns the next seq into a limit first), or touch sled or the vault file.

use hush_protocol::ids::ID_LEN;
use hush_protocol::{EnvelopeId, RecipientId, SenderId};
use hush_vault::{RecordKey, SEAL_OVERHEAD};

use super::codec::{corrupt, QueueValue};
use crate::store::StoreError;

/// Domain label of a queue record's associated data.
const QUEUE_LABEL: &[u8; 16] = b"hush-relay que 2";
/// Domain label of an envelope record's associated data.
const ENVELOPE_LABEL: &[u8; 16] = b"hush-relay env 2";

/// Length of a queue record's plaintext.
const QUEUE_PLAIN_LEN: usize = 2 * ID_LEN + 64 + 16;
/// Length of an envelope record's header, before the body.
const ENVELOPE_HEAD_LEN: usize = 2 * ID_LEN + 16;
/// How much longer an envelope record is than its body.
pub(super) const ENVELOPE_SEAL_OVERHEAD: usize = ENVELOPE_HEAD_LEN + SEAL_OVERHEAD;

fn aad(label: &[u8; 16], slot: u64) -> [u8; 24] {
    let mut a = [0u8; 24];
    a[..16].copy_from_slice(label);
    a[16..].copy_from_slice(&slot.to_be_bytes());
    a
}

/// The id at `at` in `bytes` (which the caller has checked is long enough).
pub(super) fn id_at(bytes: &[u8], at: usize) -> [u8; ID_LEN] {
    let mut out = [0u8; ID_LEN];
    out.copy_from_slice(&bytes[at..at + ID_LEN]);
    out
}

/// The big-endian u64 at `at` in `bytes` (which the caller has checked is long enough).
pub(super) fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut out = [0u8; 8];
    out.copy_from_slice(&bytes[at..at + 8]);
    u64::from_be_bytes(out)
}

/// Seals queue `r`'s record `v` under `key`, the key in vault slot `slot`. `count` and
/// `bytes` are not stored.
pub(super) fn seal_queue(key: &RecordKey, slot: u64, r: &RecipientId, v: &QueueValue) -> Vec<u8> {
    let mut plain = [0u8; QUEUE_PLAIN_LEN];
    plain[..ID_LEN].copy_from_slice(r.as_bytes());
    plain[ID_LEN..2 * ID_LEN].copy_from_slice(v.sender_id.as_bytes());
    plain[2 * ID_LEN..2 * ID_LEN + 32].copy_from_slice(&v.recipient_key);
    plain[2 * ID_LEN + 32..2 * ID_LEN + 64].copy_from_slice(&v.send_cap_hash);
    plain[2 * ID_LEN + 64..2 * ID_LEN + 72].copy_from_slice(&v.last_active.to_be_bytes());
    plain[2 * ID_LEN + 72..].copy_from_slice(&v.next_seq.to_be_bytes());
    let sealed = key.seal(&aad(QUEUE_LABEL, slot), &plain);
    zeroize::Zeroize::zeroize(&mut plain);
    sealed
}

/// Opens a queue record sealed by [`seal_queue`]; its counters are zero.
pub(super) fn open_queue(
    key: &RecordKey,
    slot: u64,
    sealed: &[u8],
) -> Result<(RecipientId, QueueValue), StoreError> {
    let plain = key
        .open(&aad(QUEUE_LABEL, slot), sealed)
        .map_err(|_| corrupt("queue"))?;
    if plain.len() != QUEUE_PLAIN_LEN {
        return Err(corrupt("queue"));
    }
    let mut recipient_key = [0u8; 32];
    recipient_key.copy_from_slice(&plain[2 * ID_LEN..2 * ID_LEN + 32]);
    let mut send_cap_hash = [0u8; 32];
    send_cap_hash.copy_from_slice(&plain[2 * ID_LEN + 32..2 * ID_LEN + 64]);
    let value = QueueValue {
        sender_id: SenderId::from_bytes(id_at(&plain, ID_LEN)),
        recipient_key,
        send_cap_hash,
        last_active: u64_at(&plain, 2 * ID_LEN + 64),
        next_seq: u64_at(&plain, 2 * ID_LEN + 72),
        count: 0,
        bytes: 0,
    };
    Ok((RecipientId::from_bytes(id_at(&plain, 0)), value))
}

/// What an envelope record says about its envelope, besides the body.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) struct EnvelopeHead {
    /// The queue it is in.
    pub(super) recipient: RecipientId,
    /// The relay-assigned envelope id.
    pub(super) id: EnvelopeId,
    /// Its position in the queue.
    pub(super) seq: u64,
    /// Unix seconds after which it is removed unread.
    pub(super) expires_at: u64,
}

/// Seals envelope `head` with `body` under `key`, the key in vault slot `slot`.
pub(super) fn seal_envelope(
    key: &RecordKey,
    slot: u64,
    head: &EnvelopeHead,
    body: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(ENVELOPE_SEAL_OVERHEAD + body.len());
    seal_envelope_into(key, slot, head, body, &mut out);
    out
}

/// Like [`seal_envelope`], but appends the sealed record to `out` (a segment's value).
pub(super) fn seal_envelope_into(
    key: &RecordKey,
    slot: u64,
    head: &EnvelopeHead,
    body: &[u8],
    out: &mut Vec<u8>,
) {
    let mut plain = Vec::with_capacity(ENVELOPE_HEAD_LEN + body.len());
    plain.extend_from_slice(head.recipient.as_bytes());
    plain.extend_from_slice(head.id.as_bytes());
    plain.extend_from_slice(&head.seq.to_be_bytes());
    plain.extend_from_slice(&head.expires_at.to_be_bytes());
    plain.extend_from_slice(body);
    key.seal_into(&aad(ENVELOPE_LABEL, slot), &plain, out);
}

/// Opens an envelope record sealed by [`seal_envelope`]: its header and its body.
pub(super) fn open_envelope(
    key: &RecordKey,
    slot: u64,
    sealed: &[u8],
) -> Result<(EnvelopeHead, Vec<u8>), StoreError> {
    let mut plain = key
        .open(&aad(ENVELOPE_LABEL, slot), sealed)
        .map_err(|_| corrupt("envelope"))?;
    if plain.len() < ENVELOPE_HEAD_LEN {
        return Err(corrupt("envelope"));
    }
    let head = EnvelopeHead {
        recipient: RecipientId::from_bytes(id_at(&plain, 0)),
        id: EnvelopeId::from_bytes(id_at(&plain, ID_LEN)),
        seq: u64_at(&plain, 2 * ID_LEN),
        expires_at: u64_at(&plain, 2 * ID_LEN + 8),
    };
    plain.drain(..ENVELOPE_HEAD_LEN);
    Ok((head, plain))
}

/// The body length of a sealed envelope record of `sealed_len` bytes.
pub(super) fn sealed_body_len(sealed_len: usize) -> u64 {
    sealed_len.saturating_sub(ENVELOPE_SEAL_OVERHEAD) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value() -> QueueValue {
        QueueValue {
            sender_id: SenderId::from_bytes([1; ID_LEN]),
            recipient_key: [2; 32],
            send_cap_hash: [3; 32],
            last_active: 4,
            next_seq: 5,
            count: 0,
            bytes: 0,
        }
    }

    #[test]
    fn queue_records_round_trip_and_hide_their_ids() {
        let (key, r) = (RecordKey::generate(), RecipientId::from_bytes([9; ID_LEN]));
        let sealed = seal_queue(&key, 3, &r, &value());
        assert_eq!(open_queue(&key, 3, &sealed).unwrap(), (r, value()));
        assert!(!sealed.windows(ID_LEN).any(|w| w == [9; ID_LEN]));
        assert!(!sealed.windows(ID_LEN).any(|w| w == [1; ID_LEN]));
        // Bound to its slot, its key and its label.
        assert!(open_queue(&key, 4, &sealed).is_err());
        assert!(open_queue(&RecordKey::generate(), 3, &sealed).is_err());
        assert!(open_envelope(&key, 3, &sealed).is_err());
    }

    #[test]
    fn envelope_records_round_trip_and_hide_their_header() {
        let key = RecordKey::generate();
        let head = EnvelopeHead {
            recipient: RecipientId::from_bytes([7; ID_LEN]),
            id: EnvelopeId::from_bytes([8; ID_LEN]),
            seq: 0x0102_0304_0506_0708,
            expires_at: 10,
        };
        let sealed = seal_envelope(&key, 5, &head, b"body");
        assert_eq!(sealed.len(), 4 + ENVELOPE_SEAL_OVERHEAD);
        assert_eq!(sealed_body_len(sealed.len()), 4);
        assert_eq!(
            open_envelope(&key, 5, &sealed).unwrap(),
            (head, b"body".to_vec())
        );
        assert!(!sealed.windows(ID_LEN).any(|w| w == [8; ID_LEN]));
        assert!(!sealed.windows(8).any(|w| w == head.seq.to_be_bytes()));
        assert!(open_envelope(&key, 6, &sealed).is_err());
        assert!(open_queue(&key, 5, &sealed).is_err());
    }
}
