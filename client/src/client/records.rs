//! What the `Client` persists beside the cores' own encodings: contacts (their queues and keys)
//! and pending invitations, each as one versioned record in the local store.
//!
//! Formats (integers big-endian, `str` = u16 length + UTF-8, `key` = 32-byte Ed25519 seed):
//!
//! - queue we own: `relay:str recipient_id:[16] sender_id:[16] recipient_key:key`
//! - contact: `2 | name:str | contact_key:[32] | link`, where link is `trust:u8 (0 not
//!   verified, 1 verified, 2 introduced through a group and not verified) |
//!   peer:[64] | own queue | peer_relay:str peer_sender_id:[16] peer_send_cap:[32]`. The record
//!   lives under the contact's random id; the key names its other records (`ContactKey`).
//! - contact, store format 1 (read only to migrate it): `1 | status:u8 (0 active, 1 burned) |
//!   link`, or just `1 | 1` for the placeholder a burn used to leave.
//! - pending invitation: `2 | name:str | own queue | secrets:(u32 length, bytes) |
//!   introduced:u8` (1 for an invitation made to introduce a group's member); version 1 has no
//!   `introduced` byte.
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
use crate::store::{ContactKey, CONTACT_KEY_LEN};

const VERSION: u8 = 1;
/// Version byte of a pending invitation that says whether it introduces a group's member.
const PENDING_VERSION: u8 = 2;
/// Version byte of a contact record in store format 2.
const CONTACT_VERSION: u8 = 2;
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
    /// Known only through a group's introduction: we never handed them an invitation ourselves.
    pub(crate) introduced: bool,
    pub(crate) peer: PublicIdentity,
    pub(crate) own: OwnQueue,
    pub(crate) to_peer: PeerQueue,
}

/// A contact as stored: its local name, its store key, and its link.
pub(crate) struct ContactRecord {
    pub(crate) name: String,
    pub(crate) key: ContactKey,
    pub(crate) link: Link,
}

/// A contact as store format 1 kept it (under its name).
pub(crate) enum LegacyContact {
    /// A contact we can talk to (or have blocked).
    Live(Box<Link>),
    /// The placeholder a burn used to leave.
    Burned,
}

/// An invitation we handed out and nobody has answered yet.
pub(crate) struct PendingRecord {
    pub(crate) name: String,
    pub(crate) own: OwnQueue,
    pub(crate) secrets: Zeroizing<Vec<u8>>,
    /// Made to introduce a group's member: the contact it makes is known only through the group.
    pub(crate) introduced: bool,
}

impl From<DecodeError> for RecordError {
    fn from(_: DecodeError) -> Self {
        RecordError
    }
}

/// A writer for a new record, its `version` byte written.
fn writer(version: u8) -> Writer<Zeroizing<Vec<u8>>> {
    let mut w = Writer::new(Zeroizing::new(Vec::new()));
    w.u8(version);
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

fn put_link(w: &mut Writer<Zeroizing<Vec<u8>>>, link: &Link) {
    w.u8(match (link.verified, link.introduced) {
        (true, _) => 1,
        (false, false) => 0,
        (false, true) => 2,
    });
    w.raw(&link.peer.to_bytes());
    put_own(w, &link.own);
    put_relay(w, &link.to_peer.relay);
    w.raw(link.to_peer.sender_id.as_bytes());
    w.raw(link.to_peer.send_cap.as_bytes());
}

fn get_link(r: &mut Reader<'_>) -> Result<Link, RecordError> {
    let (verified, introduced) = match r.u8()? {
        0 => (false, false),
        1 => (true, false),
        2 => (false, true),
        _ => return Err(RecordError),
    };
    let peer = PublicIdentity::from_bytes(r.take(PUBLIC_IDENTITY_LEN)?).map_err(|_| RecordError)?;
    let own = get_own(r)?;
    let relay = get_relay(r)?;
    let sender_id = SenderId(r.array()?);
    let send_cap = SendCapability::from_bytes(r.array()?);
    Ok(Link {
        verified,
        introduced,
        peer,
        own,
        to_peer: PeerQueue {
            relay,
            sender_id,
            send_cap,
        },
    })
}

impl ContactRecord {
    /// Encodes a contact record from its parts.
    pub(crate) fn encode_parts(name: &str, key: &ContactKey, link: &Link) -> Zeroizing<Vec<u8>> {
        let mut w = Writer::new(Zeroizing::new(Vec::new()));
        w.u8(CONTACT_VERSION);
        w.bytes16(name.as_bytes());
        w.raw(&key.as_bytes()[..]);
        put_link(&mut w, link);
        w.finish()
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<ContactRecord, RecordError> {
        let mut r = Reader::new(bytes);
        if r.u8()? != CONTACT_VERSION {
            return Err(RecordError);
        }
        let name = r.str16(MAX_STR_LEN)?.to_owned();
        let key = ContactKey::from_bytes(*Zeroizing::new(r.array::<CONTACT_KEY_LEN>()?));
        let link = get_link(&mut r)?;
        r.finish()?;
        Ok(ContactRecord { name, key, link })
    }
}

impl LegacyContact {
    /// Encodes a format 1 contact record (tests build format 1 homes with it).
    #[cfg(test)]
    pub(crate) fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut w = writer(VERSION);
        match self {
            LegacyContact::Burned => w.u8(1),
            LegacyContact::Live(link) => {
                w.u8(0);
                put_link(&mut w, link);
            }
        }
        w.finish()
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<LegacyContact, RecordError> {
        let mut r = reader(bytes)?;
        let rec = match r.u8()? {
            1 => LegacyContact::Burned,
            0 => LegacyContact::Live(Box::new(get_link(&mut r)?)),
            _ => return Err(RecordError),
        };
        r.finish()?;
        Ok(rec)
    }
}

impl PendingRecord {
    pub(crate) fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut w = writer(PENDING_VERSION);
        w.bytes16(self.name.as_bytes());
        put_own(&mut w, &self.own);
        w.bytes(&self.secrets);
        w.bool(self.introduced);
        w.finish()
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<PendingRecord, RecordError> {
        let mut r = Reader::new(bytes);
        let version = r.u8()?;
        if version != VERSION && version != PENDING_VERSION {
            return Err(RecordError);
        }
        let name = r.str16(MAX_STR_LEN)?.to_owned();
        let own = get_own(&mut r)?;
        let secrets = Zeroizing::new(r.bytes(MAX_FIELD_LEN)?.to_vec());
        let introduced = version == PENDING_VERSION && r.bool()?;
        r.finish()?;
        Ok(PendingRecord {
            name,
            own,
            secrets,
            introduced,
        })
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

    fn link() -> Link {
        Link {
            verified: true,
            introduced: false,
            peer: Identity::generate(&mut OsRng).public(),
            own: own(),
            to_peer: PeerQueue {
                relay: relay(),
                sender_id: SenderId([4; 16]),
                send_cap: SendCapability::from_bytes([5; 32]),
            },
        }
    }

    #[test]
    fn contact_round_trips_and_rejects_damage() {
        let key = ContactKey::from_bytes([6; 32]);
        let bytes = ContactRecord::encode_parts("bob", &key, &link());
        let back = ContactRecord::decode(&bytes).unwrap();
        assert_eq!(back.name, "bob");
        assert_eq!(back.key.as_bytes(), key.as_bytes());
        assert_eq!(
            ContactRecord::encode_parts(&back.name, &back.key, &back.link),
            bytes
        );
        for cut in 0..bytes.len() {
            assert!(ContactRecord::decode(&bytes[..cut]).is_err());
        }
        let mut long = bytes.to_vec();
        long.push(0);
        assert!(ContactRecord::decode(&long).is_err());
        // A format 1 record is not a format 2 one, and the other way round.
        let legacy = LegacyContact::Live(Box::new(link())).encode();
        assert!(ContactRecord::decode(&legacy).is_err());
        assert!(LegacyContact::decode(&bytes).is_err());
        assert!(matches!(
            LegacyContact::decode(&legacy),
            Ok(LegacyContact::Live(_))
        ));
        assert!(matches!(
            LegacyContact::decode(&LegacyContact::Burned.encode()),
            Ok(LegacyContact::Burned)
        ));
    }

    #[test]
    fn pending_round_trips() {
        let rec = PendingRecord {
            name: "bob".into(),
            own: own(),
            secrets: Zeroizing::new(vec![9; 100]),
            introduced: true,
        };
        let bytes = rec.encode();
        let back = PendingRecord::decode(&bytes).unwrap();
        assert_eq!(back.name, "bob");
        assert_eq!(&back.secrets[..], &[9; 100][..]);
        assert_eq!(back.own.recipient_id, RecipientId([1; 16]));
        assert!(back.introduced);
        // Version 1 has no `introduced` byte: such an invitation introduces nobody.
        let mut old = bytes[..bytes.len() - 1].to_vec();
        old[0] = VERSION;
        assert!(!PendingRecord::decode(&old).unwrap().introduced);
        assert!(PendingRecord::decode(&bytes[..bytes.len() - 1]).is_err());
    }

    #[test]
    fn a_links_trust_round_trips() {
        for (verified, introduced) in [(false, false), (true, false), (false, true)] {
            let mut l = link();
            l.verified = verified;
            l.introduced = introduced;
            let mut w = writer(VERSION);
            put_link(&mut w, &l);
            let bytes = w.finish();
            let mut r = reader(&bytes).unwrap();
            let back = get_link(&mut r).unwrap();
            assert_eq!((back.verified, back.introduced), (verified, introduced));
        }
    }
}
