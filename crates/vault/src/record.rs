//! Per-record keys and the authenticated encryption of records under them.
//!
//! A [`RecordKey`] encrypts one record with XChaCha20-Poly1305 and a random 192-bit nonce, so
//! nonces never need coordinating. The caller passes the record's identity as associated data,
//! so a ciphertext moved to another record's place fails to open.
//!
//! What it does not do: store keys (that is [`crate::Vault`]'s job) or pad plaintexts.

use std::fmt;

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{Key, Tag, XChaCha20Poly1305, XNonce};
use rand::RngCore;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::VaultError;

/// Length of a record key in bytes.
pub const RECORD_KEY_LEN: usize = 32;
/// Length of the random nonce prefixed to every sealed record.
pub const NONCE_LEN: usize = 24;
/// Length of the authentication tag appended to every sealed record.
pub const TAG_LEN: usize = 16;
/// Bytes that sealing adds to a plaintext.
pub const SEAL_OVERHEAD: usize = NONCE_LEN + TAG_LEN;

/// A 32-byte key that encrypts exactly one record. Zeroized on drop; never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct RecordKey([u8; RECORD_KEY_LEN]);

impl RecordKey {
    /// A fresh random key from the thread-local CSPRNG.
    pub fn generate() -> Self {
        let mut key = [0u8; RECORD_KEY_LEN];
        rand::thread_rng().fill_bytes(&mut key);
        Self(key)
    }

    pub(crate) fn from_bytes(bytes: [u8; RECORD_KEY_LEN]) -> Self {
        Self(bytes)
    }

    pub(crate) fn as_bytes(&self) -> &[u8; RECORD_KEY_LEN] {
        &self.0
    }

    /// Encrypts `plaintext`, binding `aad` (the record's identity). Returns
    /// `nonce || ciphertext || tag`, [`SEAL_OVERHEAD`] bytes longer than the plaintext.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        seal_with(&self.0, aad, plaintext)
    }

    /// Like [`RecordKey::seal`], but appends the sealed record to `out`, so a caller can put
    /// its own header in front without another copy.
    pub fn seal_into(&self, aad: &[u8], plaintext: &[u8], out: &mut Vec<u8>) {
        seal_append(&self.0, aad, plaintext, out);
    }

    /// Decrypts what [`RecordKey::seal`] produced with the same `aad`.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, VaultError> {
        open_with(&self.0, aad, sealed)
    }
}

impl fmt::Debug for RecordKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecordKey(..)")
    }
}

/// Seals under a raw 32-byte key; shared with the vault's slot and header encryption.
pub(crate) fn seal_with(key: &[u8; RECORD_KEY_LEN], aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(SEAL_OVERHEAD + plaintext.len());
    seal_append(key, aad, plaintext, &mut out);
    out
}

/// Appends `nonce || ciphertext || tag` to `out`.
fn seal_append(key: &[u8; RECORD_KEY_LEN], aad: &[u8], plaintext: &[u8], out: &mut Vec<u8>) {
    let cipher = XChaCha20Poly1305::new(Key::from_slice(key));
    let mut nonce = [0u8; NONCE_LEN];
    rand::thread_rng().fill_bytes(&mut nonce);
    out.reserve(SEAL_OVERHEAD + plaintext.len());
    out.extend_from_slice(&nonce);
    let start = out.len();
    out.extend_from_slice(plaintext);
    // Encryption only fails for plaintexts beyond 256 GiB, which a `Vec` in memory never is;
    // should it fail anyway, the output stays undecryptable rather than leaking plaintext.
    match cipher.encrypt_in_place_detached(XNonce::from_slice(&nonce), aad, &mut out[start..]) {
        Ok(tag) => out.extend_from_slice(&tag),
        Err(_) => {
            out[start..].zeroize();
            out.extend_from_slice(&[0u8; TAG_LEN]);
        }
    }
}

/// Opens what [`seal_with`] produced.
pub(crate) fn open_with(
    key: &[u8; RECORD_KEY_LEN],
    aad: &[u8],
    sealed: &[u8],
) -> Result<Vec<u8>, VaultError> {
    if sealed.len() < SEAL_OVERHEAD {
        return Err(VaultError::Decrypt);
    }
    let (nonce, rest) = sealed.split_at(NONCE_LEN);
    let (body, tag) = rest.split_at(rest.len() - TAG_LEN);
    let cipher = XChaCha20Poly1305::new(Key::from_slice(key));
    let mut out = body.to_vec();
    cipher
        .decrypt_in_place_detached(
            XNonce::from_slice(nonce),
            aad,
            &mut out,
            Tag::from_slice(tag),
        )
        .map_err(|_| VaultError::Decrypt)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip() {
        let key = RecordKey::generate();
        let sealed = key.seal(b"id-1", b"hello");
        assert_eq!(sealed.len(), 5 + SEAL_OVERHEAD);
        assert_eq!(key.open(b"id-1", &sealed).unwrap(), b"hello");
        let mut out = b"head".to_vec();
        key.seal_into(b"id-1", b"hello", &mut out);
        assert_eq!(&out[..4], b"head");
        assert_eq!(key.open(b"id-1", &out[4..]).unwrap(), b"hello");
    }

    #[test]
    fn wrong_aad_key_or_tampering_fails() {
        let key = RecordKey::generate();
        let sealed = key.seal(b"id-1", b"hello");
        assert!(matches!(
            key.open(b"id-2", &sealed),
            Err(VaultError::Decrypt)
        ));
        let other = RecordKey::generate();
        assert!(matches!(
            other.open(b"id-1", &sealed),
            Err(VaultError::Decrypt)
        ));
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 1;
            assert!(key.open(b"id-1", &bad).is_err(), "flip at {i} accepted");
        }
        assert!(key.open(b"id-1", &sealed[..SEAL_OVERHEAD - 1]).is_err());
    }

    #[test]
    fn nonces_are_fresh_and_debug_hides_key() {
        let key = RecordKey::from_bytes([0xAB; RECORD_KEY_LEN]);
        assert_ne!(key.seal(b"", b"x"), key.seal(b"", b"x"));
        assert_eq!(format!("{key:?}"), "RecordKey(..)");
        assert_eq!(key.as_bytes(), &[0xAB; RECORD_KEY_LEN]);
    }
}
