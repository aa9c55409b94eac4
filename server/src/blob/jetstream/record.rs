//! What the JetStream blob backend writes into NATS, byte by byte.
//!
//! Each blob has two subjects in the `<prefix>_blobs` stream, both named by a domain-separated
//! SHA-256 hash of its id, so NATS never sees the id: `<prefix>.bm.<hash>` holds one *meta*
//! message, `<prefix>.bc.<hash>` the blob's *chunks* in upload order.
//!
//! - Meta: the expiry time (8 bytes, big-endian, in clear so that the sweep on any node finds
//!   expired blobs without knowing their ids), then, sealed with ChaCha20-Poly1305 under a key
//!   derived from the id and bound to the subject, the SHA-256 hashes of the write and read
//!   capabilities, the declared length and the expiry again. Only someone who knows the id can
//!   open it or tell which capabilities it checks.
//! - Chunk: its offset in the blob (8 bytes, big-endian), then the uploaded bytes as the client
//!   sent them. Those bytes are the client's end-to-end ciphertext; the relay adds no layer of
//!   its own (see `docs/decisions.md`), and deletion erases them in place.
//!
//! What it does not do: talk to NATS (`crate::store::jetstream::api`) or enforce anything
//! (`mod.rs`).

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hush_protocol::BlobId;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::blob::{BlobError, CapHash};

/// Length of the random nonce in front of the sealed part.
const NONCE_LEN: usize = 12;
/// Length of the sealed part's plaintext: two capability hashes, length, expiry.
const META_PLAIN_LEN: usize = 32 + 32 + 8 + 8;
/// Length of a meta message: clear expiry, nonce, sealed part, Poly1305 tag.
pub(super) const META_LEN: usize = 8 + NONCE_LEN + META_PLAIN_LEN + 16;
/// Length of a chunk message's header (its offset).
pub(super) const CHUNK_HEADER_LEN: usize = 8;

/// The hex hash that names blob `id` in subjects.
pub(super) fn blob_hash(id: &BlobId) -> String {
    hex::encode(digest(b"hush-js-blob", id))
}

/// The key that seals blob `id`'s meta message: derived from the id, independent of the hash
/// in its subjects.
fn blob_key(id: &BlobId) -> Key {
    digest(b"hush-js-blob-key", id).into()
}

fn digest(domain: &[u8], id: &BlobId) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(domain);
    h.update([0]);
    h.update(id.as_bytes());
    h.finalize().into()
}

fn corrupt(what: &'static str) -> BlobError {
    BlobError::Corrupt(what)
}

/// What the relay keeps about one blob in NATS.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) struct Meta {
    /// SHA-256 of the write capability.
    pub(super) write_hash: CapHash,
    /// SHA-256 of the read capability.
    pub(super) read_hash: CapHash,
    /// Size declared at creation.
    pub(super) total_len: u64,
    /// Unix seconds at which the blob is deleted.
    pub(super) expires_at: u64,
}

impl Meta {
    /// The meta message of blob `id`, published on `subject`.
    pub(super) fn seal(&self, id: &BlobId, subject: &str) -> Vec<u8> {
        let mut plain = Vec::with_capacity(META_PLAIN_LEN);
        plain.extend_from_slice(&self.write_hash);
        plain.extend_from_slice(&self.read_hash);
        plain.extend_from_slice(&self.total_len.to_be_bytes());
        plain.extend_from_slice(&self.expires_at.to_be_bytes());
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let payload = Payload {
            msg: &plain,
            aad: subject.as_bytes(),
        };
        let sealed = ChaCha20Poly1305::new(&blob_key(id))
            .encrypt(Nonce::from_slice(&nonce), payload)
            .unwrap_or_default();
        let mut out = Vec::with_capacity(META_LEN);
        out.extend_from_slice(&self.expires_at.to_be_bytes());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// Opens the meta message of blob `id` read back from `subject`.
    pub(super) fn open(id: &BlobId, subject: &str, bytes: &[u8]) -> Result<Meta, BlobError> {
        if bytes.len() != META_LEN {
            return Err(corrupt("blob meta message has the wrong length"));
        }
        let (nonce, sealed) = bytes[8..].split_at(NONCE_LEN);
        let payload = Payload {
            msg: sealed,
            aad: subject.as_bytes(),
        };
        let plain = ChaCha20Poly1305::new(&blob_key(id))
            .decrypt(Nonce::from_slice(nonce), payload)
            .map_err(|_| corrupt("blob meta message does not open"))?;
        let u64_at = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&plain[i..i + 8]);
            u64::from_be_bytes(b)
        };
        let mut write_hash = [0u8; 32];
        write_hash.copy_from_slice(&plain[..32]);
        let mut read_hash = [0u8; 32];
        read_hash.copy_from_slice(&plain[32..64]);
        Ok(Meta {
            write_hash,
            read_hash,
            total_len: u64_at(64),
            expires_at: u64_at(72),
        })
    }
}

/// The clear expiry at the front of a meta message, readable without the id.
pub(super) fn meta_expiry(bytes: &[u8]) -> Result<u64, BlobError> {
    let b: [u8; 8] = bytes
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| corrupt("blob meta message too short"))?;
    Ok(u64::from_be_bytes(b))
}

/// A chunk message: its offset, then the bytes.
pub(super) fn encode_chunk(offset: u64, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(CHUNK_HEADER_LEN + data.len());
    out.extend_from_slice(&offset.to_be_bytes());
    out.extend_from_slice(data);
    out
}

/// A chunk message read back: its offset and its bytes.
pub(super) fn decode_chunk(mut bytes: Vec<u8>) -> Result<(u64, Vec<u8>), BlobError> {
    if bytes.len() < CHUNK_HEADER_LEN {
        return Err(corrupt("blob chunk message too short"));
    }
    let data = bytes.split_off(CHUNK_HEADER_LEN);
    let offset = meta_expiry(&bytes)?;
    Ok((offset, data))
}

/// The offset of a chunk message, without copying its bytes.
pub(super) fn chunk_offset(bytes: &[u8]) -> Result<u64, BlobError> {
    meta_expiry(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_opens_only_with_its_id_and_subject_and_keeps_its_expiry_in_clear() {
        let id = BlobId([1; 16]);
        let meta = Meta {
            write_hash: [2; 32],
            read_hash: [3; 32],
            total_len: 1000,
            expires_at: 1_800_000_000,
        };
        let sealed = meta.seal(&id, "hush.bm.x");
        assert_eq!(sealed.len(), META_LEN);
        assert_eq!(Meta::open(&id, "hush.bm.x", &sealed).unwrap(), meta);
        assert_eq!(meta_expiry(&sealed).unwrap(), 1_800_000_000);
        assert!(Meta::open(&BlobId([9; 16]), "hush.bm.x", &sealed).is_err());
        assert!(Meta::open(&id, "hush.bm.y", &sealed).is_err());
        assert!(Meta::open(&id, "hush.bm.x", &sealed[1..]).is_err());
        // The capability hashes are not in clear.
        assert!(!sealed.windows(32).any(|w| w == [2; 32] || w == [3; 32]));
        assert_ne!(hex::encode(blob_key(&id)), blob_hash(&id));
    }

    #[test]
    fn chunks_round_trip_and_a_short_one_is_corrupt() {
        let bytes = encode_chunk(65_536, b"abc");
        assert_eq!(chunk_offset(&bytes).unwrap(), 65_536);
        assert_eq!(decode_chunk(bytes).unwrap(), (65_536, b"abc".to_vec()));
        assert!(decode_chunk(vec![1, 2, 3]).is_err());
    }
}
