//! Keys of [`super::SledStore`]'s single sled tree (store format 2), and the queue values the
//! store keeps in memory and seals at rest.
//!
//! Every key starts with a one-byte kind, so one tree (and one atomic `Batch`) holds all of it:
//!
//! | kind | key                          | value                                             |
//! |------|------------------------------|---------------------------------------------------|
//! | `f`  | (nothing more)               | the store format, u32 BE ([`FORMAT`])             |
//! | `q`  | vault slot of the queue key  | the queue record, sealed (see `seal`)             |
//! | `e`  | vault slot of the envelope key | the envelope's header and body, sealed (see `seal`) |
//!
//! No key holds an id a client uses, nor anything computed from one: the relay never looks a
//! record up on disk by id. The in-memory index (`mem`) maps ids to slots, and is rebuilt on
//! open by opening every record. A slot is a vault position, reused once its key is shredded.
//!
//! Format 1 (before the records were sealed) is read only to migrate it (`migrate`).
//!
//! What it does not do: encrypt (`seal` does), or touch sled.

use hush_protocol::SenderId;

use crate::store::{CapHash, QueueRecord, StoreError};

/// The store format this code writes. Format 1 had ids in the clear (see `migrate`).
pub(super) const FORMAT: u32 = 2;
/// Key of the store format record.
pub(super) const FORMAT_KEY: [u8; 1] = [b'f'];

const QUEUE: u8 = b'q';
const ENVELOPE: u8 = b'e';

/// The prefix of every queue record.
pub(super) const QUEUE_PREFIX: [u8; 1] = [QUEUE];
/// The prefix of every envelope record.
pub(super) const ENVELOPE_PREFIX: [u8; 1] = [ENVELOPE];

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

/// Key of the envelope record sealed under the key in vault slot `slot`.
pub(super) fn envelope_key(slot: u64) -> [u8; 9] {
    slot_key(ENVELOPE, slot)
}

/// The vault slot a queue or envelope key names.
pub(super) fn key_slot(key: &[u8]) -> Result<u64, StoreError> {
    let bytes: [u8; 8] = key
        .get(1..)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| corrupt("key of a"))?;
    Ok(u64::from_be_bytes(bytes))
}

/// The value of the format record.
pub(super) fn format_value() -> [u8; 4] {
    FORMAT.to_be_bytes()
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
        assert!(key_slot(b"e").is_err());
        assert!(key_slot(&[b'e'; 10]).is_err());
    }
}
