//! Typed record keys, and how each becomes a sled key that names nothing.
//!
//! Every record is stored under `namespace byte || tag(...)`, where a tag is the first
//! [`TAG_LEN`] bytes of HMAC-SHA256 under the store's index key (which lives sealed in the store
//! itself). A contact's records share `tag(contact)`, so "all messages of contact X" is the
//! prefix `MESSAGE || tag(X)`. The real key travels inside the sealed value, where it is checked
//! on every read and recovered by `list`.
//!
//! What it does not do: hide the namespace byte, so the number of records per namespace, and
//! how many messages share one (unnamed) contact, is visible to whoever reads the directory.

use std::fmt;

use hmac::digest::{Key, KeyInit};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use super::limits::{MAX_INVITATION_ID_LEN, MAX_NAME_LEN, MAX_TRANSFER_ID_LEN};
use super::StoreError;
use crate::conversation::{MessageId, MESSAGE_ID_LEN};

/// Length of one keyed-hash tag in a sled key.
pub(crate) const TAG_LEN: usize = 16;
/// Length of the index key.
pub(crate) const INDEX_KEY_LEN: usize = 32;
/// Block size of SHA-256, the length of an HMAC-SHA256 key after padding.
const HMAC_BLOCK_LEN: usize = 64;
/// sled key of the record that holds the index key itself.
pub(crate) const INDEX_RECORD: [u8; 1] = [0];

/// A group of records of one kind.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[non_exhaustive]
pub enum Namespace {
    /// This installation's identity keys (one record).
    Identity,
    /// Settings: own name, own relay address.
    Setting,
    /// Contacts, by local name.
    Contact,
    /// Per-contact ratchet session state.
    Session,
    /// Per-contact conversation metadata.
    ConversationMeta,
    /// Per-contact message records, many per contact.
    Message,
    /// Pending invitations (their secrets), by id.
    Invitation,
    /// File transfers in progress and blob deletions still owed to a relay, by id.
    Transfer,
}

impl Namespace {
    /// Every namespace.
    pub const ALL: [Namespace; 8] = [
        Namespace::Identity,
        Namespace::Setting,
        Namespace::Contact,
        Namespace::Session,
        Namespace::ConversationMeta,
        Namespace::Message,
        Namespace::Invitation,
        Namespace::Transfer,
    ];

    /// The first byte of every sled key in this namespace (0 is the index record).
    pub(crate) const fn byte(self) -> u8 {
        match self {
            Namespace::Identity => 1,
            Namespace::Setting => 2,
            Namespace::Contact => 3,
            Namespace::Session => 4,
            Namespace::ConversationMeta => 5,
            Namespace::Message => 6,
            Namespace::Invitation => 7,
            Namespace::Transfer => 8,
        }
    }

    fn from_byte(b: u8) -> Option<Namespace> {
        Namespace::ALL.into_iter().find(|ns| ns.byte() == b)
    }

    /// Whether each record of this namespace belongs to one contact.
    pub const fn is_per_contact(self) -> bool {
        matches!(
            self,
            Namespace::Contact
                | Namespace::Session
                | Namespace::ConversationMeta
                | Namespace::Message
        )
    }
}

/// One of the client's settings.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[non_exhaustive]
pub enum Setting {
    /// The name this installation shows to contacts.
    OwnName,
    /// The address of the relay this installation receives on.
    RelayAddress,
}

impl Setting {
    const fn byte(self) -> u8 {
        match self {
            Setting::OwnName => 1,
            Setting::RelayAddress => 2,
        }
    }

    fn from_byte(b: u8) -> Option<Setting> {
        [Setting::OwnName, Setting::RelayAddress]
            .into_iter()
            .find(|s| s.byte() == b)
    }
}

/// The key of one record. Contact names are local names the user chose.
#[derive(Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StoreKey {
    /// The identity record.
    Identity,
    /// One setting.
    Setting(Setting),
    /// A contact, by local name.
    Contact(String),
    /// A contact's ratchet session state.
    Session(String),
    /// A contact's conversation metadata.
    ConversationMeta(String),
    /// One message of a contact.
    Message(String, MessageId),
    /// A pending invitation, by id.
    Invitation(Vec<u8>),
    /// A file transfer or an owed blob deletion, by id.
    Transfer(Vec<u8>),
}

impl fmt::Debug for StoreKey {
    /// Names and ids are left out, as in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StoreKey::{:?}(..)", self.namespace())
    }
}

impl StoreKey {
    /// The namespace the record lives in.
    pub fn namespace(&self) -> Namespace {
        match self {
            StoreKey::Identity => Namespace::Identity,
            StoreKey::Setting(_) => Namespace::Setting,
            StoreKey::Contact(_) => Namespace::Contact,
            StoreKey::Session(_) => Namespace::Session,
            StoreKey::ConversationMeta(_) => Namespace::ConversationMeta,
            StoreKey::Message(..) => Namespace::Message,
            StoreKey::Invitation(_) => Namespace::Invitation,
            StoreKey::Transfer(_) => Namespace::Transfer,
        }
    }

    /// The contact the record belongs to, if any.
    pub fn contact(&self) -> Option<&str> {
        match self {
            StoreKey::Contact(n)
            | StoreKey::Session(n)
            | StoreKey::ConversationMeta(n)
            | StoreKey::Message(n, _) => Some(n),
            _ => None,
        }
    }

    /// Checks the key against the limits.
    pub(crate) fn validate(&self) -> Result<(), StoreError> {
        if let Some(name) = self.contact() {
            check_name(name)?;
        }
        if let StoreKey::Invitation(id) = self {
            if id.is_empty() || id.len() > MAX_INVITATION_ID_LEN {
                return Err(StoreError::InvalidKey {
                    what: "an invitation id",
                    max: MAX_INVITATION_ID_LEN,
                });
            }
        }
        if let StoreKey::Transfer(id) = self {
            if id.is_empty() || id.len() > MAX_TRANSFER_ID_LEN {
                return Err(StoreError::InvalidKey {
                    what: "a transfer id",
                    max: MAX_TRANSFER_ID_LEN,
                });
            }
        }
        Ok(())
    }

    /// The key's own encoding, kept inside the sealed value.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = vec![self.namespace().byte()];
        match self {
            StoreKey::Identity => {}
            StoreKey::Setting(s) => out.push(s.byte()),
            StoreKey::Contact(n) | StoreKey::Session(n) | StoreKey::ConversationMeta(n) => {
                out.extend_from_slice(n.as_bytes());
            }
            StoreKey::Message(n, id) => {
                out.extend_from_slice(id.as_bytes());
                out.extend_from_slice(n.as_bytes());
            }
            StoreKey::Invitation(id) | StoreKey::Transfer(id) => out.extend_from_slice(id),
        }
        out
    }

    /// Decodes what [`StoreKey::encode`] produced; `None` if it is malformed.
    pub(crate) fn decode(bytes: &[u8]) -> Option<StoreKey> {
        let (&ns, rest) = bytes.split_first()?;
        let name = |b: &[u8]| {
            let s = std::str::from_utf8(b).ok()?;
            check_name(s).ok()?;
            Some(s.to_owned())
        };
        let key = match Namespace::from_byte(ns)? {
            Namespace::Identity if rest.is_empty() => StoreKey::Identity,
            Namespace::Identity => return None,
            Namespace::Setting => match rest {
                [b] => StoreKey::Setting(Setting::from_byte(*b)?),
                _ => return None,
            },
            Namespace::Contact => StoreKey::Contact(name(rest)?),
            Namespace::Session => StoreKey::Session(name(rest)?),
            Namespace::ConversationMeta => StoreKey::ConversationMeta(name(rest)?),
            Namespace::Message => {
                let id = rest.get(..MESSAGE_ID_LEN)?.try_into().ok()?;
                StoreKey::Message(name(&rest[MESSAGE_ID_LEN..])?, MessageId(id))
            }
            Namespace::Invitation => StoreKey::Invitation(rest.to_vec()),
            Namespace::Transfer => StoreKey::Transfer(rest.to_vec()),
        };
        key.validate().ok()?;
        Some(key)
    }
}

fn check_name(name: &str) -> Result<(), StoreError> {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(StoreError::InvalidKey {
            what: "a contact name",
            max: MAX_NAME_LEN,
        });
    }
    Ok(())
}

/// The secret that turns names and ids into sled keys. Zeroized on drop; never printed.
pub(crate) struct IndexKey(Zeroizing<[u8; INDEX_KEY_LEN]>);

impl IndexKey {
    pub(crate) fn new(bytes: Zeroizing<[u8; INDEX_KEY_LEN]>) -> IndexKey {
        IndexKey(bytes)
    }

    /// A [`TAG_LEN`]-byte keyed hash of `parts` under `label`, each part length-prefixed.
    fn tag(&self, label: &[u8], parts: &[&[u8]]) -> [u8; TAG_LEN] {
        // HMAC pads a short key with zeros to the hash's block size; padding it here gives the
        // same MAC and a key type that cannot be rejected.
        let mut block = Zeroizing::new([0u8; HMAC_BLOCK_LEN]);
        block[..INDEX_KEY_LEN].copy_from_slice(&self.0[..]);
        let mut mac = <Hmac<Sha256> as KeyInit>::new(&Key::<Hmac<Sha256>>::from(*block));
        mac.update(label);
        for part in parts {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        let full = mac.finalize().into_bytes();
        let mut out = [0u8; TAG_LEN];
        out.copy_from_slice(&full[..TAG_LEN]);
        out
    }

    /// The prefix shared by every record of `ns` belonging to `contact`.
    pub(crate) fn contact_prefix(&self, ns: Namespace, contact: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + 2 * TAG_LEN);
        out.push(ns.byte());
        out.extend_from_slice(&self.tag(b"contact", &[contact.as_bytes()]));
        out
    }

    /// The sled key of `key`.
    pub(crate) fn sled_key(&self, key: &StoreKey) -> Vec<u8> {
        let ns = key.namespace();
        match key {
            StoreKey::Identity => vec![ns.byte()],
            StoreKey::Setting(s) => self.single(ns, b"setting", &[s.byte()]),
            StoreKey::Contact(n) | StoreKey::Session(n) | StoreKey::ConversationMeta(n) => {
                self.contact_prefix(ns, n)
            }
            StoreKey::Message(n, id) => {
                let mut out = self.contact_prefix(ns, n);
                out.extend_from_slice(&self.tag(b"message", &[n.as_bytes(), id.as_bytes()]));
                out
            }
            StoreKey::Invitation(id) => self.single(ns, b"invitation", id),
            StoreKey::Transfer(id) => self.single(ns, b"transfer", id),
        }
    }

    fn single(&self, ns: Namespace, label: &[u8], part: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + TAG_LEN);
        out.push(ns.byte());
        out.extend_from_slice(&self.tag(label, &[part]));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padded_hmac_key_gives_the_standard_hmac() {
        let index = IndexKey::new(Zeroizing::new([7u8; INDEX_KEY_LEN]));
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&[7u8; INDEX_KEY_LEN]).unwrap();
        mac.update(b"contact");
        mac.update(&3u64.to_be_bytes());
        mac.update(b"bob");
        let expected = mac.finalize().into_bytes();
        assert_eq!(index.tag(b"contact", &[b"bob"]), expected[..TAG_LEN]);
    }

    #[test]
    fn sled_keys_are_prefixed_per_contact_and_distinct() {
        let index = IndexKey::new(Zeroizing::new([1u8; INDEX_KEY_LEN]));
        let bob = |id| StoreKey::Message("bob".into(), MessageId([id; MESSAGE_ID_LEN]));
        let prefix = index.contact_prefix(Namespace::Message, "bob");
        assert!(index.sled_key(&bob(1)).starts_with(&prefix));
        assert_ne!(index.sled_key(&bob(1)), index.sled_key(&bob(2)));
        let carol = StoreKey::Message("carol".into(), MessageId([1; MESSAGE_ID_LEN]));
        assert!(!index.sled_key(&carol).starts_with(&prefix));
        let other = IndexKey::new(Zeroizing::new([2u8; INDEX_KEY_LEN]));
        assert_ne!(index.sled_key(&bob(1)), other.sled_key(&bob(1)));
        assert_ne!(
            index.sled_key(&StoreKey::Contact("bob".into())),
            index.sled_key(&StoreKey::Session("bob".into()))
        );
    }

    #[test]
    fn store_keys_round_trip_and_bad_encodings_are_rejected() {
        let keys = [
            StoreKey::Identity,
            StoreKey::Setting(Setting::OwnName),
            StoreKey::Setting(Setting::RelayAddress),
            StoreKey::Contact("bob".into()),
            StoreKey::Session("b\u{f6}b".into()),
            StoreKey::ConversationMeta("bob".into()),
            StoreKey::Message("bob".into(), MessageId([3; MESSAGE_ID_LEN])),
            StoreKey::Invitation(vec![1, 2, 3]),
            StoreKey::Transfer(vec![4, 5]),
        ];
        for key in keys {
            assert_eq!(StoreKey::decode(&key.encode()), Some(key));
        }
        for bad in [
            &[][..],
            &[0],
            &[1, 0],
            &[2, 9],
            &[3],
            &[4, 0xff],
            &[6, 1, 2],
            &[7],
            &[8],
            &[42, 1],
        ] {
            assert_eq!(StoreKey::decode(bad), None, "{bad:?}");
        }
    }
}
