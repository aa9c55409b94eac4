//! Encryption of blob bytes at rest: a fresh random [`DataKey`] per blob, wrapped by a key
//! from the blob vault, and a ChaCha20 keystream addressed by byte offset.
//!
//! Why a bare stream cipher and not an AEAD: what clients upload is already ciphertext under
//! their own end-to-end AEAD, so the relay's layer does not need to detect tampering; it exists
//! so that shredding one vault slot makes the blob's file unreadable, wherever copies of its
//! bytes survive. A keystream at the byte offset keeps the file the same size as the blob and
//! lets a read decrypt exactly the range it asked for, with no per-chunk framing. Each blob has
//! its own key, so the fixed nonce is never reused across blobs. The one place a keystream
//! position can be used twice is a write that is repeated after a crash (the relay truncates
//! back to the durable length and the uploader sends those bytes again); both versions are the
//! client's ciphertext, so nothing of the plaintext follows from that.
//!
//! Wrapping: the data key is sealed (XChaCha20-Poly1305) under the vault slot's
//! [`RecordKey`], with the blob id as associated data, and the sealed key is kept in the blob
//! file's header. Shredding the slot leaves that sealed key, and so the whole file, unreadable
//! even to someone holding the device key.
//!
//! What it does not do: keep keys anywhere (the vault and the header do), or authenticate the
//! blob's bytes.

use std::fmt;

use chacha20::cipher::{KeyIvInit, StreamCipher, StreamCipherSeek};
use chacha20::ChaCha20;
use hush_protocol::BlobId;
use hush_vault::{RecordKey, SEAL_OVERHEAD};
use rand::RngCore;
use zeroize::Zeroizing;

use super::error::BlobError;

/// Length of a blob's data key.
pub(super) const DATA_KEY_LEN: usize = 32;
/// Length of a data key sealed under its vault slot's key.
pub(super) const WRAPPED_KEY_LEN: usize = DATA_KEY_LEN + SEAL_OVERHEAD;
/// Label in the associated data of a wrapped key, ahead of the blob id.
const WRAP_LABEL: &[u8] = b"hush relay blob key v1";
/// The keystream nonce; the key is unique to the blob, so one fixed nonce suffices.
const NONCE: [u8; 12] = [0; 12];

/// The key that encrypts one blob's bytes at rest. Zeroized on drop; never printed.
pub(super) struct DataKey(Zeroizing<[u8; DATA_KEY_LEN]>);

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(..)")
    }
}

fn wrap_aad(id: &BlobId) -> Vec<u8> {
    let mut aad = Vec::with_capacity(WRAP_LABEL.len() + 16);
    aad.extend_from_slice(WRAP_LABEL);
    aad.extend_from_slice(id.as_bytes());
    aad
}

impl DataKey {
    /// A fresh random key from the operating system's CSPRNG.
    pub(super) fn generate() -> Self {
        let mut key = Zeroizing::new([0u8; DATA_KEY_LEN]);
        rand::rngs::OsRng.fill_bytes(&mut key[..]);
        DataKey(key)
    }

    /// The key sealed under `slot_key`, bound to blob `id`.
    pub(super) fn wrap(&self, slot_key: &RecordKey, id: &BlobId) -> [u8; WRAPPED_KEY_LEN] {
        let sealed = slot_key.seal(&wrap_aad(id), &self.0[..]);
        let mut out = [0u8; WRAPPED_KEY_LEN];
        // `seal` always returns exactly SEAL_OVERHEAD more bytes than it was given.
        out.copy_from_slice(&sealed[..WRAPPED_KEY_LEN.min(sealed.len())]);
        out
    }

    /// Opens what [`DataKey::wrap`] sealed for blob `id`.
    pub(super) fn unwrap(
        slot_key: &RecordKey,
        id: &BlobId,
        wrapped: &[u8; WRAPPED_KEY_LEN],
    ) -> Result<Self, BlobError> {
        let plain = Zeroizing::new(
            slot_key
                .open(&wrap_aad(id), wrapped)
                .map_err(|_| BlobError::Corrupt("wrapped key does not open"))?,
        );
        let bytes: [u8; DATA_KEY_LEN] = plain
            .as_slice()
            .try_into()
            .map_err(|_| BlobError::Corrupt("wrapped key has the wrong length"))?;
        Ok(DataKey(Zeroizing::new(bytes)))
    }

    /// Encrypts or decrypts `buf` in place as the blob bytes starting at `offset`.
    pub(super) fn apply(&self, offset: u64, buf: &mut [u8]) -> Result<(), BlobError> {
        let mut cipher = ChaCha20::new((&*self.0).into(), (&NONCE).into());
        cipher
            .try_seek(offset)
            .map_err(|_| BlobError::Corrupt("offset beyond the keystream"))?;
        cipher
            .try_apply_keystream(buf)
            .map_err(|_| BlobError::Corrupt("range beyond the keystream"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_range_decrypts_on_its_own() {
        let key = DataKey::generate();
        let plain: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let mut whole = plain.clone();
        key.apply(0, &mut whole).unwrap();
        assert_ne!(whole, plain);
        for (start, end) in [(0, 1), (63, 64), (64, 200), (4097, 9999), (9999, 10_000)] {
            let mut part = whole[start..end].to_vec();
            key.apply(start as u64, &mut part).unwrap();
            assert_eq!(part, plain[start..end]);
        }
        let mut piecewise = plain.clone();
        key.apply(0, &mut piecewise[..333]).unwrap();
        key.apply(333, &mut piecewise[333..]).unwrap();
        assert_eq!(piecewise, whole);
    }

    #[test]
    fn a_wrapped_key_opens_only_under_its_slot_key_and_blob_id() {
        let (slot_key, other_slot) = (RecordKey::generate(), RecordKey::generate());
        let (id, other_id) = (BlobId([1; 16]), BlobId([2; 16]));
        let key = DataKey::generate();
        let wrapped = key.wrap(&slot_key, &id);
        let back = DataKey::unwrap(&slot_key, &id, &wrapped).unwrap();
        assert_eq!(*back.0, *key.0);
        assert!(DataKey::unwrap(&other_slot, &id, &wrapped).is_err());
        assert!(DataKey::unwrap(&slot_key, &other_id, &wrapped).is_err());
        assert_eq!(format!("{key:?}"), "DataKey(..)");
    }
}
