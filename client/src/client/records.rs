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
//! What it does not do: encrypt (the store seals every record) or hold the ratchet session and
//! conversation, which have their own records and encodings.

use ed25519_dalek::SigningKey;
use hush_protocol::{RecipientId, RelayAddress, SendCapability, SenderId};
use zeroize::Zeroizing;

use crate::crypto::{PublicIdentity, PUBLIC_IDENTITY_LEN};

const VERSION: u8 = 1;
/// Most bytes a record field of variable length may hold.
const MAX_FIELD_LEN: usize = 16 * 1024;

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

struct W(Zeroizing<Vec<u8>>);

impl W {
    fn new() -> W {
        W(Zeroizing::new(vec![VERSION]))
    }
    fn raw(&mut self, b: &[u8]) {
        self.0.extend_from_slice(b);
    }
    fn str(&mut self, s: &str) {
        let len = u16::try_from(s.len()).unwrap_or(u16::MAX);
        self.raw(&len.to_be_bytes());
        self.raw(&s.as_bytes()[..usize::from(len)]);
    }
    fn own(&mut self, q: &OwnQueue) {
        self.str(&q.relay.to_string());
        self.raw(q.recipient_id.as_bytes());
        self.raw(q.sender_id.as_bytes());
        self.raw(&Zeroizing::new(q.key.to_bytes())[..]);
    }
}

struct R<'a>(&'a [u8]);

impl<'a> R<'a> {
    fn new(b: &'a [u8]) -> Result<R<'a>, RecordError> {
        match b.split_first() {
            Some((&VERSION, rest)) => Ok(R(rest)),
            _ => Err(RecordError),
        }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], RecordError> {
        if self.0.len() < n {
            return Err(RecordError);
        }
        let (h, t) = self.0.split_at(n);
        self.0 = t;
        Ok(h)
    }
    fn arr<const N: usize>(&mut self) -> Result<[u8; N], RecordError> {
        self.take(N)?.try_into().map_err(|_| RecordError)
    }
    fn u8(&mut self) -> Result<u8, RecordError> {
        Ok(self.arr::<1>()?[0])
    }
    fn str(&mut self) -> Result<&'a str, RecordError> {
        let len = usize::from(u16::from_be_bytes(self.arr()?));
        std::str::from_utf8(self.take(len)?).map_err(|_| RecordError)
    }
    fn relay(&mut self) -> Result<RelayAddress, RecordError> {
        self.str()?.parse().map_err(|_| RecordError)
    }
    fn own(&mut self) -> Result<OwnQueue, RecordError> {
        let relay = self.relay()?;
        let recipient_id = RecipientId(self.arr()?);
        let sender_id = SenderId(self.arr()?);
        let seed = Zeroizing::new(self.arr::<32>()?);
        Ok(OwnQueue {
            relay,
            recipient_id,
            sender_id,
            key: SigningKey::from_bytes(&seed),
        })
    }
    fn finish(&self) -> Result<(), RecordError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(RecordError)
        }
    }
}

impl ContactRecord {
    pub(crate) fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut w = W::new();
        match self {
            ContactRecord::Burned => w.raw(&[1]),
            ContactRecord::Live(link) => {
                w.raw(&[0, u8::from(link.verified)]);
                w.raw(&link.peer.to_bytes());
                w.own(&link.own);
                w.str(&link.to_peer.relay.to_string());
                w.raw(link.to_peer.sender_id.as_bytes());
                w.raw(link.to_peer.send_cap.as_bytes());
            }
        }
        w.0
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<ContactRecord, RecordError> {
        let mut r = R::new(bytes)?;
        let rec = match r.u8()? {
            1 => ContactRecord::Burned,
            0 => {
                let verified = match r.u8()? {
                    0 => false,
                    1 => true,
                    _ => return Err(RecordError),
                };
                let peer = PublicIdentity::from_bytes(r.take(PUBLIC_IDENTITY_LEN)?)
                    .map_err(|_| RecordError)?;
                let own = r.own()?;
                let relay = r.relay()?;
                let sender_id = SenderId(r.arr()?);
                let send_cap = SendCapability::from_bytes(r.arr()?);
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
        let mut w = W::new();
        w.str(&self.name);
        w.own(&self.own);
        let len = u32::try_from(self.secrets.len()).unwrap_or(u32::MAX);
        w.raw(&len.to_be_bytes());
        w.raw(&self.secrets);
        w.0
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<PendingRecord, RecordError> {
        let mut r = R::new(bytes)?;
        let name = r.str()?.to_owned();
        let own = r.own()?;
        let len = usize::try_from(u32::from_be_bytes(r.arr()?)).map_err(|_| RecordError)?;
        if len > MAX_FIELD_LEN {
            return Err(RecordError);
        }
        let secrets = Zeroizing::new(r.take(len)?.to_vec());
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
