//! A contact's own identity in the store: a random [`ContactId`] that names its contact record,
//! and a random [`ContactKey`] under which the sled keys of its session, metadata and messages
//! (and the names of its staged downloads) are derived.
//!
//! Both live only inside the contact's sealed record. Once that record's vault slot is
//! shredded, nothing on disk links the id, the tags or the staged names to the contact's name:
//! a guessed name cannot be confirmed from the key file and sled's log, as it could when tags
//! were keyed hashes of the name under the store-lifetime index key.
//!
//! What it does not do: store anything (see `ops`), or keep the key anywhere but in memory and
//! in the contact's record.

use std::fmt;

use hmac::digest::{Key, KeyInit};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::conversation::MessageId;

/// Length of one keyed-hash tag in a sled key.
pub(crate) const TAG_LEN: usize = 16;
/// Length of a [`ContactId`].
pub const CONTACT_ID_LEN: usize = 16;
/// Length of a [`ContactKey`].
pub const CONTACT_KEY_LEN: usize = 32;
/// Block size of SHA-256, the length of an HMAC-SHA256 key after padding.
const HMAC_BLOCK_LEN: usize = 64;

/// A contact's random id: its record lives under `CONTACT ‖ id`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ContactId(pub [u8; CONTACT_ID_LEN]);

impl fmt::Debug for ContactId {
    /// Left out, as in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ContactId(..)")
    }
}

impl ContactId {
    /// A fresh random id.
    pub fn random() -> ContactId {
        let mut id = [0u8; CONTACT_ID_LEN];
        rand::rngs::OsRng.fill_bytes(&mut id);
        ContactId(id)
    }
}

/// What every session, metadata and message record of one contact shares in its sled key: a
/// tag under the contact's [`ContactKey`]. It names nobody.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ContactScope(pub(crate) [u8; TAG_LEN]);

impl fmt::Debug for ContactScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ContactScope(..)")
    }
}

/// A contact's random key, kept in its sealed contact record. Zeroized on drop; never printed.
#[derive(Clone)]
pub struct ContactKey(Zeroizing<[u8; CONTACT_KEY_LEN]>);

impl fmt::Debug for ContactKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ContactKey(..)")
    }
}

impl ContactKey {
    /// A fresh random key.
    pub fn random() -> ContactKey {
        let mut key = Zeroizing::new([0u8; CONTACT_KEY_LEN]);
        rand::rngs::OsRng.fill_bytes(&mut key[..]);
        ContactKey(key)
    }

    /// The key with these bytes (as read back from a contact record).
    pub fn from_bytes(bytes: [u8; CONTACT_KEY_LEN]) -> ContactKey {
        ContactKey(Zeroizing::new(bytes))
    }

    /// The key's bytes, to store in the contact record.
    pub fn as_bytes(&self) -> &[u8; CONTACT_KEY_LEN] {
        &self.0
    }

    /// A [`TAG_LEN`]-byte keyed hash of `parts` under `label`, each part length-prefixed.
    fn tag(&self, label: &[u8], parts: &[&[u8]]) -> [u8; TAG_LEN] {
        tag(&self.0[..], label, parts)
    }

    /// The scope shared by the contact's records.
    pub fn scope(&self) -> ContactScope {
        ContactScope(self.tag(b"hush contact scope", &[]))
    }

    /// The tag that names the contact's message `id` within its scope.
    pub(crate) fn message_tag(&self, id: MessageId) -> [u8; TAG_LEN] {
        self.tag(b"hush message", &[id.as_bytes()])
    }

    /// The file name (hex, no extension) under which the ciphertext of the contact's file
    /// message `id` is staged.
    pub fn staged_name(&self, id: MessageId) -> String {
        self.tag(b"hush staged", &[id.as_bytes()])
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// HMAC-SHA256 of the length-prefixed `parts` under `label` with `key` (at most
/// [`HMAC_BLOCK_LEN`] bytes), cut to [`TAG_LEN`] bytes.
pub(crate) fn tag(key: &[u8], label: &[u8], parts: &[&[u8]]) -> [u8; TAG_LEN] {
    // HMAC pads a short key with zeros to the hash's block size; padding it here gives the
    // same MAC and a key type that cannot be rejected.
    let mut block = Zeroizing::new([0u8; HMAC_BLOCK_LEN]);
    let len = key.len().min(HMAC_BLOCK_LEN);
    block[..len].copy_from_slice(&key[..len]);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_depend_on_the_key_and_the_message() {
        let a = ContactKey::from_bytes([1; CONTACT_KEY_LEN]);
        let b = ContactKey::from_bytes([2; CONTACT_KEY_LEN]);
        let (m1, m2) = (MessageId([1; 16]), MessageId([2; 16]));
        assert_ne!(a.scope(), b.scope());
        assert_ne!(a.message(m1), a.message(m2));
        assert_ne!(a.message(m1), b.message(m1));
        assert_ne!(a.staged_name(m1), b.staged_name(m1));
        assert_eq!(a.staged_name(m1).len(), 2 * TAG_LEN);
        assert_ne!(a.session(), a.meta());
        assert_eq!(a.message(m1).contact(), Some(a.scope()));
        assert_ne!(ContactKey::random().scope(), ContactKey::random().scope());
        assert_ne!(ContactId::random(), ContactId::random());
    }
}
