//! What the `Client` persists beside the cores' own encodings: contacts (their queues and keys)
//! and pending invitations, each as one versioned record in the local store.
//!
//! Formats (integers big-endian, `str` = u16 length + UTF-8, `key` = 32-byte Ed25519 seed):
//!
//! - queue we own: `relay:str recipient_id:[16] sender_id:[16] recipient_key:key`
//! - contact: `1 | status:u8 (0 active, 1 burned) | verified:u8 | peer:[64] | own queue |
//!   peer_relay:str peer_sender_id:[16] peer_send_cap:[32]`; a burned contact keeps only its
//!   status byte (a tombstone, so that later sends say "burned").
//! - pending invitation: `1 | name:str | own queue | secrets:(u32 length, bytes)`
//!
//! Fields are read and written with [`hush_protocol::codec`].
//!
//! What it does not do: encrypt (the store seals every record) or hold the ratchet session and
//! conversation, which have their own records and encodings.

use ed25519_dalek::SigningKey;
use hush_protocol::codec::{DecodeError, Reader, Writer};
use hush_protocol::{RecipientId, RelayAddress, SendCapability, SenderId};
use zeroize::Zeroizing;

use crate::crypto::{PublicIdentity, PUBLIC_IDENTITY_LEN};

const VERSION: u8 = 1;
/// Most bytes a record field of variable length may hold.
const MAX_FIELD_LEN: usize = 16 * 1024;
/// Most bytes a `str` field may hold: all that its `u16` length can name.
const MAX_STR_LEN: usize = u16::MAX as usize;

/// A record did not decode: the store is damaged or from another version.
#[derive(Debug)]
pub(crate) struct RecordError;

/// A queue we receive on: where it is, its ids, and the key that owns it.
pub(crate) struct OwnQueue {
    pub(crate) relay: RelayAddress,
    pub(crate) recipient_id: RecipientId,
    pub(crate) sender_id: SenderId,
    pub(crate) key: SigningKey,
}

/// The contact's queue, which we send to.
pub(crate) struct PeerQueue {
    pub(crate) relay: RelayAddress,
    pub(crate) sender_id: SenderId,
    pub(crate) send_cap: SendCapability,
}

/// An established contact.
pub(crate) struct Link {
    pub(crate) verified: bool,
    pub(crate) peer: PublicIdentity,
    pub(crate) own: OwnQueue,
    pub(crate) to_peer: PeerQueue,
}

/// A contact as stored: live, or the tombstone a burn leaves.
pub(crate) enum ContactRecord {
    /// A contact we can talk to (or have blocked).
    Live(Box<Link>),
    /// Burned: everything else is erased.
    Burned,
}

/// An invitation we handed out and nobody has answered yet.
pub(crate) struct PendingRecord {
    pub(crate) name: String,
    pub(crate) own: OwnQueue,
    pub(crate) secrets: Zeroizing<Vec<u8>>,
}

impl From<DecodeError> for RecordError {
    fn from(_: DecodeError) -> Self {
        RecordError
    }
}

/// A writer for a new record, its version byte written.
fn writer() -> Writer<Zeroizing<Vec<u8>>> {
    let mut w = Writer::new(Zeroizing::new(Vec::new()));
    w.u8(VERSION);
    w
}

/// A reader past the record's version byte, which must be [`VERSION`].
fn reader(bytes: &[u8]) -> Result<Reader<'_>, RecordError> {
    let mut r = Reader::new(bytes);
    match r.u8()? {
        VERSION => Ok(r),
        _ => Err(RecordError),
    }
}

fn put_relay(w: &mut Writer<Zeroizing<Vec<u8>>>, relay: &RelayAddress) {
    w.bytes16(relay.to_string().as_bytes());
}

fn get_relay(r: &mut Reader<'_>) -> Result<RelayAddress, RecordError> {
    r.str16(MAX_STR_LEN)?.parse().map_err(|_| RecordError)
}

fn put_own(w: &mut Writer<Zeroizing<Vec<u8>>>, q: &OwnQueue) {
    put_relay(w, &q.relay);
    w.raw(q.recipient_id.as_bytes());
    w.raw(q.sender_id.as_bytes());
    w.raw(&Zeroizing::new(q.key.to_bytes())[..]);
}

fn get_own(r: &mut Reader<'_>) -> Result<OwnQueue, RecordError> {
    let relay = get_relay(r)?;
    let recipient_id = RecipientId(r.array()?);
    let sender_id = SenderId(r.array()?);
    let seed = Zeroizing::new(r.array::<32>()?);
    Ok(OwnQueue {
        relay,
        recipient_id,
        sender_id,
        key: SigningKey::from_bytes(&seed),
    })
}

impl ContactRecord {
    pub(crate) fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut w = writer();
        match self {
            ContactRecord::Burned => w.u8(1),
            ContactRecord::Live(link) => {
                w.u8(0);
                w.bool(link.verified);
                w.raw(&link.peer.to_bytes());
                put_own(&mut w, &link.own);
                put_relay(&mut w, &link.to_peer.relay);
                w.raw(link.to_peer.sender_id.as_bytes());
                w.raw(link.to_peer.send_cap.as_bytes());
            }
        }
        w.finish()
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<ContactRecord, RecordError> {
        let mut r = reader(bytes)?;
        let rec = match r.u8()? {
            1 => ContactRecord::Burned,
            0 => {
                let verified = r.bool()?;
                let peer = PublicIdentity::from_bytes(r.take(PUBLIC_IDENTITY_LEN)?)
                    .map_err(|_| RecordError)?;
                let own = get_own(&mut r)?;
                let relay = get_relay(&mut r)?;
                let sender_id = SenderId(r.array()?);
                let send_cap = SendCapability::from_bytes(r.array()?);
                ContactRecord::Live(Box::new(Link {
                    verified,
                    peer,
                    own,
                    to_peer: PeerQueue {
                        relay,
                        sender_id,
                        send_cap,
                    },
                }))
            }
            _ => return Err(RecordError),
        };
        r.finish()?;
        Ok(rec)
    }
}

impl PendingRecord {
    pub(crate) fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut w = writer();
        w.bytes16(self.name.as_bytes());
        put_own(&mut w, &self.own);
        w.bytes(&self.secrets);
        w.finish()
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<PendingRecord, RecordError> {
        let mut r = reader(bytes)?;
        let name = r.str16(MAX_STR_LEN)?.to_owned();
        let own = get_own(&mut r)?;
        let secrets = Zeroizing::new(r.bytes(MAX_FIELD_LEN)?.to_vec());
        r.finish()?;
        Ok(PendingRecord { name, own, secrets })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Identity;
    use rand::rngs::OsRng;

    fn relay() -> RelayAddress {
        format!("hush://127.0.0.1:4433#{}", "ab".repeat(32))
            .parse()
            .unwrap()
    }

    fn own() -> OwnQueue {
        OwnQueue {
            relay: relay(),
            recipient_id: RecipientId([1; 16]),
            sender_id: SenderId([2; 16]),
            key: SigningKey::from_bytes(&[3; 32]),
        }
    }

    #[test]
    fn contact_round_trips_and_rejects_damage() {
        let rec = ContactRecord::Live(Box::new(Link {
            verified: true,
            peer: Identity::generate(&mut OsRng).public(),
            own: own(),
            to_peer: PeerQueue {
                relay: relay(),
                sender_id: SenderId([4; 16]),
                send_cap: SendCapability::from_bytes([5; 32]),
            },
        }));
        let bytes = rec.encode();
        let back = ContactRecord::decode(&bytes).unwrap();
        assert_eq!(back.encode(), bytes);
        for cut in 0..bytes.len() {
            assert!(ContactRecord::decode(&bytes[..cut]).is_err());
        }
        let mut long = bytes.to_vec();
        long.push(0);
        assert!(ContactRecord::decode(&long).is_err());
        let tomb = ContactRecord::Burned.encode();
        assert!(matches!(
            ContactRecord::decode(&tomb),
            Ok(ContactRecord::Burned)
        ));
    }

    #[test]
    fn pending_round_trips() {
        let rec = PendingRecord {
            name: "bob".into(),
            own: own(),
            secrets: Zeroizing::new(vec![9; 100]),
        };
        let back = PendingRecord::decode(&rec.encode()).unwrap();
        assert_eq!(back.name, "bob");
        assert_eq!(&back.secrets[..], &[9; 100][..]);
        assert_eq!(back.own.recipient_id, RecipientId([1; 16]));
    }
}
