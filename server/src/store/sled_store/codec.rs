//! Keys of [`super::SledStore`]'s single sled tree (store format 3), and the queue values the
//! store keeps in memory and seals at rest.
//!
//! Every key starts with a one-byte kind, so one tree (and one atomic `Batch`) holds all of it:
//!
//! | kind | key                          | value                                             |
//! |------|------------------------------|---------------------------------------------------|
//! | `f`  | (nothing more)               | the store format, u32 BE ([`FORMAT`])             |
//! | `q`  | vault slot of the queue key  | the queue record, sealed (see `seal`)             |
//! | `s`  | segment id (u64 BE)          | a segment: envelope records, each sealed under its own key (see `segment`) |
//!
//! No key holds an id a client uses, nor anything computed from one: the relay never looks a
//! record up on disk by id. The in-memory index (`mem`) maps ids to slots and segments, and is
//! rebuilt on open by opening every record. A slot is a vault position, reused once its key is
//! shredded; a segment id is a counter.
//!
//! Format 2 had one `e` key per envelope (`e` ‖ vault slot → the sealed envelope record, the
//! same record a segment entry holds) and no segments; format 1 had ids in the clear. Both are
//! read only to migrate them (`migrate`).
//!
//! What it does not do: encrypt (`seal` does), or touch sled.

use hush_protocol::SenderId;

use crate::store::{CapHash, QueueRecord, StoreError};

/// The store format this code writes. Format 1 had ids in the clear, format 2 one key per
/// envelope (see `migrate`).
pub(super) const FORMAT: u32 = 3;
/// The format with one sled key per envelope, which `migrate` turns into segments.
pub(super) const FORMAT_2: u32 = 2;
/// Key of the store format record.
pub(super) const FORMAT_KEY: [u8; 1] = [b'f'];

const QUEUE: u8 = b'q';
const ENVELOPE: u8 = b'e';
const SEGMENT: u8 = b's';

/// The prefix of every queue record.
pub(super) const QUEUE_PREFIX: [u8; 1] = [QUEUE];
/// The prefix of every envelope record of format 2.
pub(super) const ENVELOPE_PREFIX: [u8; 1] = [ENVELOPE];
/// The prefix of every segment.
pub(super) const SEGMENT_PREFIX: [u8; 1] = [SEGMENT];

pub(super) fn corrupt(what: &str) -> StoreError {
    StoreError::permanent(format!("corrupt {what} record"))
}

fn slot_key(kind: u8, slot: u64) -> [u8; 9] {
    let mut k = [kind; 9];
    k[1..].copy_from_slice(&slot.to_be_bytes());
    k
}

/// Key of the queue record sealed under the key in vault slot `slot`.
pub(super) fn queue_key(slot: u64) -> [u8; 9] {
    slot_key(QUEUE, slot)
}

/// Key of the format 2 envelope record sealed under the key in vault slot `slot`.
pub(super) fn envelope_key(slot: u64) -> [u8; 9] {
    slot_key(ENVELOPE, slot)
}

/// Key of segment `id`.
pub(super) fn segment_key(id: u64) -> [u8; 9] {
    slot_key(SEGMENT, id)
}

/// The vault slot a queue or envelope key names (or the id a segment key names).
pub(super) fn key_slot(key: &[u8]) -> Result<u64, StoreError> {
    let bytes: [u8; 8] = key
        .get(1..)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| corrupt("key of a"))?;
    Ok(u64::from_be_bytes(bytes))
}

/// The value of the format record of format `format`.
pub(super) fn format_value(format: u32) -> [u8; 4] {
    format.to_be_bytes()
}

/// A queue's record: its [`QueueRecord`] (but the recipient id, its key in the index) plus the
/// counters the store maintains. Sealed at rest without `count` and `bytes`, which are
/// recounted on open.
#[derive(Clone, PartialEq, Eq, Debug)]
pub(super) struct QueueValue {
    pub(super) sender_id: SenderId,
    pub(super) recipient_key: [u8; 32],
    pub(super) send_cap_hash: CapHash,
    pub(super) last_active: u64,
    /// The seq the next envelope gets (at rest: a limit above every seq handed out).
    pub(super) next_seq: u64,
    /// Envelopes stored (expired ones until the sweep removes them).
    pub(super) count: u64,
    /// Body bytes stored.
    pub(super) bytes: u64,
}

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

    pub(super) fn record(&self, recipient_id: hush_protocol::RecipientId) -> QueueRecord {
        QueueRecord {
            recipient_id,
            sender_id: self.sender_id,
            recipient_key: self.recipient_key,
            send_cap_hash: self.send_cap_hash,
            last_active: self.last_active,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_their_slot_and_nothing_else() {
        assert_eq!(queue_key(7), [b'q', 0, 0, 0, 0, 0, 0, 0, 7]);
        assert_eq!(key_slot(&envelope_key(u64::MAX)).unwrap(), u64::MAX);
        assert!(envelope_key(255) < envelope_key(256));
        assert!(segment_key(255) < segment_key(256));
        assert_eq!(key_slot(&segment_key(42)).unwrap(), 42);
        assert!(key_slot(b"e").is_err());
        assert!(key_slot(&[b'e'; 10]).is_err());
    }
}
