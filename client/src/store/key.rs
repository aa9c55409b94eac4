//! Typed record keys, and how each becomes a sled key that names nothing.
//!
//! Store-wide records are stored under `namespace byte || tag(...)`, where a tag is the first
//! [`TAG_LEN`] bytes of HMAC-SHA256 under the store's index key (which lives sealed in the store
//! itself). A contact's records are keyed by the contact itself (see `contact_key`): its
//! record under `CONTACT || random id`, its session, metadata and messages under tags of its own
//! random key, which share one scope, so "all messages of contact X" is the prefix
//! `MESSAGE || scope(X)`. The real key travels inside the sealed value, where it is checked on
//! every read and recovered by `list`.
//!
//! The `Legacy*` namespaces are the per-contact layout of store format 1 (tags of the contact's
//! name under the index key). A client only reads them to migrate them (`client::migrate`).
//!
//! What it does not do: hide the namespace byte, so the number of records per namespace, and
//! how many messages share one (unnamed) contact, is visible to whoever reads the directory.

use std::fmt;

use zeroize::Zeroizing;

use super::contact_key::{tag, ContactId, ContactKey, ContactScope, TAG_LEN};
use super::limits::{MAX_INVITATION_ID_LEN, MAX_NAME_LEN, MAX_TRANSFER_ID_LEN};
use super::StoreError;
use crate::conversation::{MessageId, MESSAGE_ID_LEN};

/// Length of the index key.
pub(crate) const INDEX_KEY_LEN: usize = 32;
/// sled key of the record that holds the index key itself.
pub(crate) const INDEX_RECORD: [u8; 1] = [0];
/// Length of an owed burn's id.
pub const OWED_ID_LEN: usize = 16;

/// A group of records of one kind.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[non_exhaustive]
pub enum Namespace {
    /// This installation's identity keys (one record).
    Identity,
    /// Settings: own name, own relay address, store format.
    Setting,
    /// Contacts, by random id.
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
    /// Burns still owed to relays (a `Burn` to send, a queue to delete), by random id.
    OwedBurn,
    /// Queues of burned conversations whose late envelopes are dropped, by keyed hash.
    Tombstone,
    /// Groups (name and membership log), by group id.
    Group,
    /// Group steps waiting for a relay (introductions, catch-up sends), by random id.
    GroupWork,
    /// Store format 1: contacts by name.
    LegacyContact,
    /// Store format 1: sessions by contact name.
    LegacySession,
    /// Store format 1: conversation metadata by contact name.
    LegacyMeta,
    /// Store format 1: messages by contact name.
    LegacyMessage,
}

impl Namespace {
    /// Every namespace.
    pub const ALL: [Namespace; 16] = [
        Namespace::Identity,
        Namespace::Setting,
        Namespace::Contact,
        Namespace::Session,
        Namespace::ConversationMeta,
        Namespace::Message,
        Namespace::Invitation,
        Namespace::Transfer,
        Namespace::OwedBurn,
        Namespace::Tombstone,
        Namespace::Group,
        Namespace::GroupWork,
        Namespace::LegacyContact,
        Namespace::LegacySession,
        Namespace::LegacyMeta,
        Namespace::LegacyMessage,
    ];

    /// The first byte of every sled key in this namespace (0 is the index record).
    pub(crate) const fn byte(self) -> u8 {
        match self {
            Namespace::Identity => 1,
            Namespace::Setting => 2,
            Namespace::LegacyContact => 3,
            Namespace::LegacySession => 4,
            Namespace::LegacyMeta => 5,
            Namespace::LegacyMessage => 6,
            Namespace::Invitation => 7,
            Namespace::Transfer => 8,
            Namespace::Contact => 9,
            Namespace::Session => 10,
            Namespace::ConversationMeta => 11,
            Namespace::Message => 12,
            Namespace::OwedBurn => 13,
            Namespace::Tombstone => 14,
            Namespace::Group => 15,
            Namespace::GroupWork => 16,
        }
    }

    fn from_byte(b: u8) -> Option<Namespace> {
        Namespace::ALL.into_iter().find(|ns| ns.byte() == b)
    }

    /// Whether each record of this namespace belongs to one contact's scope.
    pub const fn is_per_contact(self) -> bool {
        matches!(
            self,
            Namespace::Session | Namespace::ConversationMeta | Namespace::Message
        )
    }

    /// Whether this namespace holds store format 1's per-contact records.
    pub const fn is_legacy(self) -> bool {
        matches!(
            self,
            Namespace::LegacyContact
                | Namespace::LegacySession
                | Namespace::LegacyMeta
                | Namespace::LegacyMessage
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
    /// The layout of the store's records (absent: format 1).
    StoreFormat,
    /// The create token for our relay, if its address carried one.
    CreateToken,
    /// Our relay's maximum envelope lifetime in seconds, as it last announced it (absent: the
    /// protocol default).
    RelayTtl,
    /// The certificate pins learned from relays' announced rotations (see `net/pins.rs`).
    RelayPins,
}

impl Setting {
    const fn byte(self) -> u8 {
        match self {
            Setting::OwnName => 1,
            Setting::RelayAddress => 2,
            Setting::StoreFormat => 3,
            Setting::CreateToken => 4,
            Setting::RelayTtl => 5,
            Setting::RelayPins => 6,
        }
    }

    fn from_byte(b: u8) -> Option<Setting> {
        [
            Setting::OwnName,
            Setting::RelayAddress,
            Setting::StoreFormat,
            Setting::CreateToken,
            Setting::RelayTtl,
            Setting::RelayPins,
        ]
        .into_iter()
        .find(|s| s.byte() == b)
    }
}

/// The key of one record.
#[derive(Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StoreKey {
    /// The identity record.
    Identity,
    /// One setting.
    Setting(Setting),
    /// A contact, by its random id.
    Contact(ContactId),
    /// A contact's ratchet session state (see `ContactKey::session`).
    Session(ContactScope),
    /// A contact's conversation metadata (see `ContactKey::meta`).
    ConversationMeta(ContactScope),
    /// One message of a contact: the scope and the message's tag (see `ContactKey::message`).
    Message(ContactScope, [u8; TAG_LEN]),
    /// A pending invitation, by id.
    Invitation(Vec<u8>),
    /// A file transfer or an owed blob deletion, by id.
    Transfer(Vec<u8>),
    /// A burn still owed to relays, by random id.
    OwedBurn([u8; OWED_ID_LEN]),
    /// A burned queue's tombstone, by keyed hash of its recipient id
    /// (`LocalStore::tombstone_key`).
    Tombstone([u8; TAG_LEN]),
    /// A group, by its id.
    Group([u8; 32]),
    /// A group step waiting for a relay, by random id.
    GroupWork([u8; OWED_ID_LEN]),
    /// Store format 1: a contact, by local name.
    LegacyContact(String),
    /// Store format 1: a contact's session, by local name.
    LegacySession(String),
    /// Store format 1: a contact's conversation metadata, by local name.
    LegacyMeta(String),
    /// Store format 1: one message of a contact, by local name.
    LegacyMessage(String, MessageId),
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
            StoreKey::OwedBurn(_) => Namespace::OwedBurn,
            StoreKey::Tombstone(_) => Namespace::Tombstone,
            StoreKey::Group(_) => Namespace::Group,
            StoreKey::GroupWork(_) => Namespace::GroupWork,
            StoreKey::LegacyContact(_) => Namespace::LegacyContact,
            StoreKey::LegacySession(_) => Namespace::LegacySession,
            StoreKey::LegacyMeta(_) => Namespace::LegacyMeta,
            StoreKey::LegacyMessage(..) => Namespace::LegacyMessage,
        }
    }

    /// The contact scope the record belongs to, if any.
    pub fn contact(&self) -> Option<ContactScope> {
        match self {
            StoreKey::Session(s) | StoreKey::ConversationMeta(s) | StoreKey::Message(s, _) => {
                Some(*s)
            }
            _ => None,
        }
    }

    /// The contact name of a store format 1 record, if it is one.
    pub(crate) fn legacy_name(&self) -> Option<&str> {
        match self {
            StoreKey::LegacyContact(n)
            | StoreKey::LegacySession(n)
            | StoreKey::LegacyMeta(n)
            | StoreKey::LegacyMessage(n, _) => Some(n),
            _ => None,
        }
    }

    /// Checks the key against the limits.
    pub(crate) fn validate(&self) -> Result<(), StoreError> {
        if let Some(name) = self.legacy_name() {
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
            StoreKey::Contact(id) => out.extend_from_slice(&id.0),
            StoreKey::Session(s) | StoreKey::ConversationMeta(s) => out.extend_from_slice(&s.0),
            StoreKey::Message(s, t) => {
                out.extend_from_slice(&s.0);
                out.extend_from_slice(t);
            }
            StoreKey::OwedBurn(id) | StoreKey::GroupWork(id) => out.extend_from_slice(id),
            StoreKey::Tombstone(t) => out.extend_from_slice(t),
            StoreKey::Group(id) => out.extend_from_slice(id),
            StoreKey::LegacyContact(n) | StoreKey::LegacySession(n) | StoreKey::LegacyMeta(n) => {
                out.extend_from_slice(n.as_bytes());
            }
            StoreKey::LegacyMessage(n, id) => {
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
        let tag = |b: &[u8]| -> Option<[u8; TAG_LEN]> { b.try_into().ok() };
        let key = match Namespace::from_byte(ns)? {
            Namespace::Identity if rest.is_empty() => StoreKey::Identity,
            Namespace::Identity => return None,
            Namespace::Setting => match rest {
                [b] => StoreKey::Setting(Setting::from_byte(*b)?),
                _ => return None,
            },
            Namespace::Contact => StoreKey::Contact(ContactId(rest.try_into().ok()?)),
            Namespace::Session => StoreKey::Session(ContactScope(tag(rest)?)),
            Namespace::ConversationMeta => StoreKey::ConversationMeta(ContactScope(tag(rest)?)),
            Namespace::Message if rest.len() == 2 * TAG_LEN => {
                StoreKey::Message(ContactScope(tag(&rest[..TAG_LEN])?), tag(&rest[TAG_LEN..])?)
            }
            Namespace::Message => return None,
            Namespace::OwedBurn => StoreKey::OwedBurn(rest.try_into().ok()?),
            Namespace::GroupWork => StoreKey::GroupWork(rest.try_into().ok()?),
            Namespace::Tombstone => StoreKey::Tombstone(tag(rest)?),
            Namespace::Group => StoreKey::Group(rest.try_into().ok()?),
            Namespace::LegacyContact => StoreKey::LegacyContact(name(rest)?),
            Namespace::LegacySession => StoreKey::LegacySession(name(rest)?),
            Namespace::LegacyMeta => StoreKey::LegacyMeta(name(rest)?),
            Namespace::LegacyMessage => {
                let id = rest.get(..MESSAGE_ID_LEN)?.try_into().ok()?;
                StoreKey::LegacyMessage(name(&rest[MESSAGE_ID_LEN..])?, MessageId(id))
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

/// The secret that turns store-wide names and ids into sled keys. Zeroized on drop; never
/// printed.
pub(crate) struct IndexKey(Zeroizing<[u8; INDEX_KEY_LEN]>);

impl IndexKey {
    pub(crate) fn new(bytes: Zeroizing<[u8; INDEX_KEY_LEN]>) -> IndexKey {
        IndexKey(bytes)
    }

    /// A [`TAG_LEN`]-byte keyed hash of `parts` under `label`, each part length-prefixed.
    pub(crate) fn tag(&self, label: &[u8], parts: &[&[u8]]) -> [u8; TAG_LEN] {
        tag(&self.0[..], label, parts)
    }

    /// The prefix shared by every format 1 record of `ns` belonging to `contact`.
    pub(crate) fn legacy_prefix(&self, ns: Namespace, contact: &str) -> Vec<u8> {
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
            // Every other key is already random or a keyed hash: it names itself.
            StoreKey::Contact(_)
            | StoreKey::Session(_)
            | StoreKey::ConversationMeta(_)
            | StoreKey::Message(..)
            | StoreKey::OwedBurn(_)
            | StoreKey::GroupWork(_)
            | StoreKey::Tombstone(_) => key.encode(),
            StoreKey::LegacyContact(n) | StoreKey::LegacySession(n) | StoreKey::LegacyMeta(n) => {
                self.legacy_prefix(ns, n)
            }
            StoreKey::LegacyMessage(n, id) => {
                let mut out = self.legacy_prefix(ns, n);
                out.extend_from_slice(&self.tag(b"message", &[n.as_bytes(), id.as_bytes()]));
                out
            }
            StoreKey::Invitation(id) => self.single(ns, b"invitation", id),
            StoreKey::Transfer(id) => self.single(ns, b"transfer", id),
            // A group id is known to every member: on disk only its keyed hash appears.
            StoreKey::Group(id) => self.single(ns, b"group", id),
        }
    }

    fn single(&self, ns: Namespace, label: &[u8], part: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + TAG_LEN);
        out.push(ns.byte());
        out.extend_from_slice(&self.tag(label, &[part]));
        out
    }
}

/// The sled keys of a contact's records, derived from its [`ContactKey`].
impl ContactKey {
    /// The key of the contact's ratchet session record.
    pub fn session(&self) -> StoreKey {
        StoreKey::Session(self.scope())
    }

    /// The key of the contact's conversation metadata record.
    pub fn meta(&self) -> StoreKey {
        StoreKey::ConversationMeta(self.scope())
    }

    /// The key of the contact's message `id`.
    pub fn message(&self, id: MessageId) -> StoreKey {
        StoreKey::Message(self.scope(), self.message_tag(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ContactKey;
    use hmac::{Hmac, Mac};
    use sha2::Sha256;

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
        let (bob, carol) = (
            ContactKey::from_bytes([1; 32]),
            ContactKey::from_bytes([2; 32]),
        );
        let msg = |k: &ContactKey, id| index.sled_key(&k.message(MessageId([id; MESSAGE_ID_LEN])));
        let mut prefix = vec![Namespace::Message.byte()];
        prefix.extend_from_slice(&bob.scope().0);
        assert!(msg(&bob, 1).starts_with(&prefix));
        assert_ne!(msg(&bob, 1), msg(&bob, 2));
        assert!(!msg(&carol, 1).starts_with(&prefix));
        assert_ne!(index.sled_key(&bob.session()), index.sled_key(&bob.meta()));
        // Format 1 keys still hash the name under the index key.
        let legacy = |n: &str| StoreKey::LegacyMessage(n.into(), MessageId([1; MESSAGE_ID_LEN]));
        let lp = index.legacy_prefix(Namespace::LegacyMessage, "bob");
        assert!(index.sled_key(&legacy("bob")).starts_with(&lp));
        assert!(!index.sled_key(&legacy("carol")).starts_with(&lp));
        let other = IndexKey::new(Zeroizing::new([2u8; INDEX_KEY_LEN]));
        assert_ne!(
            index.sled_key(&legacy("bob")),
            other.sled_key(&legacy("bob"))
        );
    }

    #[test]
    fn store_keys_round_trip_and_bad_encodings_are_rejected() {
        let bob = ContactKey::from_bytes([5; 32]);
        let keys = [
            StoreKey::Identity,
            StoreKey::Setting(Setting::OwnName),
            StoreKey::Setting(Setting::RelayAddress),
            StoreKey::Setting(Setting::StoreFormat),
            StoreKey::Setting(Setting::CreateToken),
            StoreKey::Setting(Setting::RelayTtl),
            StoreKey::Contact(ContactId([9; 16])),
            bob.session(),
            bob.meta(),
            bob.message(MessageId([3; MESSAGE_ID_LEN])),
            StoreKey::Invitation(vec![1, 2, 3]),
            StoreKey::Transfer(vec![4, 5]),
            StoreKey::OwedBurn([6; OWED_ID_LEN]),
            StoreKey::GroupWork([8; OWED_ID_LEN]),
            StoreKey::Tombstone([7; TAG_LEN]),
            StoreKey::LegacyContact("bob".into()),
            StoreKey::LegacySession("b\u{f6}b".into()),
            StoreKey::LegacyMeta("bob".into()),
            StoreKey::LegacyMessage("bob".into(), MessageId([3; MESSAGE_ID_LEN])),
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
            &[9, 1],
            &[10, 1, 2],
            &[12, 1],
            &[13],
            &[14, 0],
            &[42, 1],
        ] {
            assert_eq!(StoreKey::decode(bad), None, "{bad:?}");
        }
    }
}
