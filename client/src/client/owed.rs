//! What a burn leaves in the store until the relays have heard of it: the owed burn, and the
//! tombstone of the burned queue. Neither holds a name.
//!
//! Formats (integers big-endian, `str` = u16 length + UTF-8, `opt` = 0 | 1 followed by the
//! value):
//!
//! - owed burn, under `OwedBurn ‖ random id`: `1 | expires_at:u64 | contact:opt([16]) |
//!   peer:opt(relay:str sender_id:[16] send_cap:[32] envelope:(u32 length, bytes)) |
//!   own:opt(relay:str recipient_id:[16] recipient_key:[32])`. `contact` is the random id of
//!   the contact being erased, set only while its erase has not finished (the record is the
//!   burn's commit point: opening a home finishes the erase); `peer` is the sealed `Burn` still
//!   to send to the contact's queue, `own` our queue still to delete.
//! - tombstone, under `Tombstone ‖ keyed hash of our burned queue's recipient id`:
//!   `1 | expires_at:u64`.
//!
//! What it does not do: decide when a part is done (see `burn`) or encrypt (the store seals
//! every record).

use ed25519_dalek::SigningKey;
use hush_protocol::codec::{Reader, Writer};
use hush_protocol::limits::MAX_ENVELOPE_LEN;
use hush_protocol::{RecipientId, RelayAddress, SendCapability, SenderId};
use zeroize::Zeroizing;

use super::records::RecordError;
use crate::store::{ContactId, CONTACT_ID_LEN};

const VERSION: u8 = 1;
/// Most bytes a relay address may take in a record.
const MAX_RELAY_LEN: usize = u16::MAX as usize;

/// The `Burn` still to deliver to the contact's queue.
pub(crate) struct OwedSend {
    pub(crate) relay: RelayAddress,
    pub(crate) sender_id: SenderId,
    pub(crate) send_cap: SendCapability,
    /// The sealed envelope (the ratchet that sealed it is gone).
    pub(crate) envelope: Vec<u8>,
}

/// Our queue still to delete.
pub(crate) struct OwedDelete {
    pub(crate) relay: RelayAddress,
    pub(crate) recipient_id: RecipientId,
    pub(crate) key: SigningKey,
}

/// A burn the relays have not fully heard of yet.
pub(crate) struct OwedBurn {
    /// After this (unix seconds) nothing is tried any more: the envelope would have expired
    /// and an idle queue is dropped by its relay.
    pub(crate) expires_at: u64,
    /// The contact whose erase has not finished yet.
    pub(crate) contact: Option<ContactId>,
    pub(crate) send: Option<OwedSend>,
    pub(crate) delete: Option<OwedDelete>,
}

/// An owed burn record that does not decode: damaged, or from another version.
#[derive(Debug, thiserror::Error)]
#[error("an owed burn record is unreadable")]
pub(crate) struct DamagedOwedBurn;

impl From<RecordError> for DamagedOwedBurn {
    fn from(_: RecordError) -> Self {
        DamagedOwedBurn
    }
}

impl From<hush_protocol::codec::DecodeError> for DamagedOwedBurn {
    fn from(_: hush_protocol::codec::DecodeError) -> Self {
        DamagedOwedBurn
    }
}

impl OwedBurn {
    /// Whether nothing is owed any more.
    pub(crate) fn is_done(&self) -> bool {
        self.contact.is_none() && self.send.is_none() && self.delete.is_none()
    }

    pub(crate) fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut w = Writer::new(Zeroizing::new(Vec::new()));
        w.u8(VERSION);
        w.u64(self.expires_at);
        w.opt_raw(self.contact.as_ref().map(|c| &c.0[..]));
        match &self.send {
            None => w.u8(0),
            Some(s) => {
                w.u8(1);
                w.bytes16(s.relay.to_string().as_bytes());
                w.raw(s.sender_id.as_bytes());
                w.raw(s.send_cap.as_bytes());
                w.bytes(&s.envelope);
            }
        }
        match &self.delete {
            None => w.u8(0),
            Some(d) => {
                w.u8(1);
                w.bytes16(d.relay.to_string().as_bytes());
                w.raw(d.recipient_id.as_bytes());
                w.raw(&Zeroizing::new(d.key.to_bytes())[..]);
            }
        }
        w.finish()
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<OwedBurn, DamagedOwedBurn> {
        let mut r = Reader::new(bytes);
        if r.u8()? != VERSION {
            return Err(DamagedOwedBurn);
        }
        let expires_at = r.u64()?;
        let contact = r.opt_array::<CONTACT_ID_LEN>()?.map(ContactId);
        let send = match r.u8()? {
            0 => None,
            1 => Some(OwedSend {
                relay: relay(&mut r)?,
                sender_id: SenderId(r.array()?),
                send_cap: SendCapability::from_bytes(r.array()?),
                envelope: r.bytes(MAX_ENVELOPE_LEN)?.to_vec(),
            }),
            _ => return Err(DamagedOwedBurn),
        };
        let delete = match r.u8()? {
            0 => None,
            1 => Some(OwedDelete {
                relay: relay(&mut r)?,
                recipient_id: RecipientId(r.array()?),
                key: SigningKey::from_bytes(&Zeroizing::new(r.array::<32>()?)),
            }),
            _ => return Err(DamagedOwedBurn),
        };
        r.finish()?;
        Ok(OwedBurn {
            expires_at,
            contact,
            send,
            delete,
        })
    }
}

fn relay(r: &mut Reader<'_>) -> Result<RelayAddress, DamagedOwedBurn> {
    r.str16(MAX_RELAY_LEN)?.parse().map_err(|_| DamagedOwedBurn)
}

/// The value of a tombstone: when it may go.
pub(crate) fn encode_tombstone(expires_at: u64) -> Vec<u8> {
    let mut w = Writer::with_capacity(9);
    w.u8(VERSION);
    w.u64(expires_at);
    w.finish()
}

/// When a tombstone may go; `None` if it does not decode.
pub(crate) fn decode_tombstone(bytes: &[u8]) -> Option<u64> {
    let mut r = Reader::new(bytes);
    if r.u8().ok()? != VERSION {
        return None;
    }
    let at = r.u64().ok()?;
    r.finish().ok()?;
    Some(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relay() -> RelayAddress {
        format!("hush://127.0.0.1:4433#{}", "ab".repeat(32))
            .parse()
            .unwrap()
    }

    fn full() -> OwedBurn {
        OwedBurn {
            expires_at: 1_800_000_000,
            contact: Some(ContactId([1; CONTACT_ID_LEN])),
            send: Some(OwedSend {
                relay: relay(),
                sender_id: SenderId([2; 16]),
                send_cap: SendCapability::from_bytes([3; 32]),
                envelope: vec![4; 300],
            }),
            delete: Some(OwedDelete {
                relay: relay(),
                recipient_id: RecipientId([5; 16]),
                key: SigningKey::from_bytes(&[6; 32]),
            }),
        }
    }

    #[test]
    fn owed_burns_round_trip_and_damage_is_an_error() {
        let bytes = full().encode();
        let back = OwedBurn::decode(&bytes).unwrap();
        assert_eq!(back.encode(), bytes);
        assert!(!back.is_done());
        for cut in 0..bytes.len() {
            assert!(OwedBurn::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut long = bytes.to_vec();
        long.push(0);
        assert!(OwedBurn::decode(&long).is_err());
        let mut bad = bytes.to_vec();
        bad[0] = 9;
        assert!(OwedBurn::decode(&bad).is_err());
        let done = OwedBurn {
            contact: None,
            send: None,
            delete: None,
            ..full()
        };
        assert!(OwedBurn::decode(&done.encode()).unwrap().is_done());
    }

    #[test]
    fn tombstones_round_trip() {
        assert_eq!(decode_tombstone(&encode_tombstone(42)), Some(42));
        assert_eq!(decode_tombstone(&[1, 2]), None);
        assert_eq!(decode_tombstone(&[]), None);
    }
}
