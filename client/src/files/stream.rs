//! The chunked AEAD that encrypts a file: STREAM (Hoang, Reyhanitabar, Rogaway and Vizár,
//! "Online Authenticated-Encryption and its Nonce-Reuse Misuse-Resistance", 2015) over
//! XChaCha20-Poly1305.
//!
//! Each file gets a fresh random 32-byte [`FileKey`] and a random 19-byte [`NoncePrefix`]. The
//! plaintext is cut into chunks of `chunk` bytes (the last one may be shorter, or empty for an
//! empty file), and chunk `i` is sealed under the 24-byte nonce
//! `prefix (19) || i (u32, big-endian) || last (1 byte: 1 for the final chunk, else 0)`.
//! A chunk therefore opens only at its own position and with its own "last" flag, which makes
//! reordering, swapping (within a file, or from another file under another key), truncation at
//! a chunk boundary, dropping the final chunk and appending after it all fail to decrypt.
//!
//! The blob a relay holds may be padded after the last chunk (see `padding`): the padding is
//! keystream under the nonce `prefix || k || 2`, a flag no chunk uses.
//!
//! With the default chunk of [`PLAIN_CHUNK`](super::PLAIN_CHUNK) bytes, one sealed chunk is
//! exactly [`CIPHER_CHUNK`](super::CIPHER_CHUNK) = `MAX_BLOB_CHUNK` bytes: one relay write,
//! one relay read.
//!
//! What it does not do: read or write files, hash the ciphertext (the transfer code keeps a
//! SHA-256 of it, carried in the file message), or choose keys (the caller passes an RNG).

use std::fmt;

use chacha20::cipher::{KeyIvInit, StreamCipher};
use chacha20::XChaCha20;
use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use rand_core::{CryptoRng, RngCore};
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::error::FileError;
use super::layout::Layout;

/// Length of a [`FileKey`].
pub const FILE_KEY_LEN: usize = 32;
/// Length of a [`NoncePrefix`].
pub const NONCE_PREFIX_LEN: usize = 19;

/// The key of one file. Zeroized on drop; never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct FileKey([u8; FILE_KEY_LEN]);

impl FileKey {
    /// A fresh random key.
    pub fn random<R: RngCore + CryptoRng>(rng: &mut R) -> FileKey {
        let mut k = [0u8; FILE_KEY_LEN];
        rng.fill_bytes(&mut k);
        FileKey(k)
    }

    /// Wraps stored or received bytes.
    pub fn from_bytes(bytes: [u8; FILE_KEY_LEN]) -> FileKey {
        FileKey(bytes)
    }

    /// The raw key, to store it in an encrypted record or a file message.
    pub fn as_bytes(&self) -> &[u8; FILE_KEY_LEN] {
        &self.0
    }
}

impl fmt::Debug for FileKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FileKey(..)")
    }
}

/// The random start of every chunk nonce of one file. Not secret.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct NoncePrefix(pub [u8; NONCE_PREFIX_LEN]);

impl NoncePrefix {
    /// A fresh random prefix.
    pub fn random<R: RngCore + CryptoRng>(rng: &mut R) -> NoncePrefix {
        let mut p = [0u8; NONCE_PREFIX_LEN];
        rng.fill_bytes(&mut p);
        NoncePrefix(p)
    }
}

/// Nonce flag of a chunk that is not the last.
const FLAG_CHUNK: u8 = 0;
/// Nonce flag of the last chunk.
const FLAG_LAST: u8 = 1;
/// Nonce flag of a padding piece's keystream: never the nonce of a chunk.
const FLAG_PADDING: u8 = 2;

/// Seals and opens the chunks of one file, and makes (and checks) its blob's padding.
pub struct ChunkCipher {
    key: FileKey,
    aead: XChaCha20Poly1305,
    prefix: NoncePrefix,
    layout: Layout,
}

impl fmt::Debug for ChunkCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChunkCipher")
            .field("layout", &self.layout)
            .finish_non_exhaustive()
    }
}

impl ChunkCipher {
    /// The cipher of the file with this key, prefix and layout.
    pub fn new(key: &FileKey, prefix: NoncePrefix, layout: Layout) -> ChunkCipher {
        ChunkCipher {
            key: key.clone(),
            aead: XChaCha20Poly1305::new(Key::from_slice(key.as_bytes())),
            prefix,
            layout,
        }
    }

    /// The layout.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    fn nonce(&self, index: u64, last: bool) -> Result<XNonce, FileError> {
        self.nonce_with(index, if last { FLAG_LAST } else { FLAG_CHUNK })
    }

    fn nonce_with(&self, index: u64, flag: u8) -> Result<XNonce, FileError> {
        let counter = u32::try_from(index).map_err(|_| FileError::Tampered)?;
        let mut n = [0u8; 24];
        n[..NONCE_PREFIX_LEN].copy_from_slice(&self.prefix.0);
        n[NONCE_PREFIX_LEN..NONCE_PREFIX_LEN + 4].copy_from_slice(&counter.to_be_bytes());
        n[23] = flag;
        Ok(XNonce::from(n))
    }

    /// The bytes of blob piece `index`, a padding piece (see `padding`): the XChaCha20
    /// keystream under the file key and the nonce `prefix || index - chunks || 2`, which no
    /// chunk uses. Deterministic, so a resumed upload hashes it again, and a download checks it.
    pub fn padding_piece(&self, index: u64) -> Result<Vec<u8>, FileError> {
        let layout = &self.layout;
        if !layout.is_padding(index) || index >= layout.pieces() {
            return Err(FileError::ChunkMismatch);
        }
        let len = usize::try_from(layout.piece_len(index)).map_err(|_| FileError::ChunkMismatch)?;
        let nonce = self.nonce_with(index - layout.chunks(), FLAG_PADDING)?;
        let mut buf = vec![0u8; len];
        XChaCha20::new(Key::from_slice(self.key.as_bytes()), &nonce).apply_keystream(&mut buf);
        Ok(buf)
    }

    /// Checks that `buf` is padding piece `index`: [`FileError::Tampered`] if not.
    pub fn check_padding(&self, index: u64, buf: &[u8]) -> Result<(), FileError> {
        let want = self.padding_piece(index).map_err(|_| FileError::Tampered)?;
        if want == buf {
            Ok(())
        } else {
            Err(FileError::Tampered)
        }
    }

    /// Seals chunk `index` in place: `buf` holds its plaintext (exactly
    /// [`Layout::plain_len_of`] bytes) and gets the tag appended.
    pub fn seal(&self, index: u64, buf: &mut Vec<u8>) -> Result<(), FileError> {
        if index >= self.layout.chunks() || buf.len() != self.layout.plain_len_of(index) {
            return Err(FileError::ChunkMismatch);
        }
        let last = index + 1 == self.layout.chunks();
        let nonce = self.nonce(index, last)?;
        self.aead
            .encrypt_in_place(&nonce, b"", buf)
            .map_err(|_| FileError::ChunkMismatch)
    }

    /// Opens chunk `index` in place: `buf` holds its sealed bytes and keeps the plaintext.
    /// Any change to the chunk, its position or its "last" flag is [`FileError::Tampered`].
    pub fn open(&self, index: u64, buf: &mut Vec<u8>) -> Result<(), FileError> {
        self.open_as(index, index + 1 == self.layout.chunks(), buf)
    }

    /// Opens `buf` as chunk `index`, final or not; the layout is not consulted.
    fn open_as(&self, index: u64, last: bool, buf: &mut Vec<u8>) -> Result<(), FileError> {
        let nonce = self.nonce(index, last)?;
        self.aead
            .decrypt_in_place(&nonce, b"", buf)
            .map_err(|_| FileError::Tampered)
    }

    /// Opens a whole ciphertext of unknown length, as STREAM defines decryption: pieces of one
    /// sealed chunk each, the final piece opened as the last chunk. Used by the tests to check
    /// the construction on its own, without the size the file message carries.
    #[cfg(test)]
    pub(crate) fn open_stream(&self, ciphertext: &[u8]) -> Result<Vec<u8>, FileError> {
        let step = usize::try_from(self.layout.cipher_chunk()).map_err(|_| FileError::Tampered)?;
        let pieces: Vec<&[u8]> = if ciphertext.is_empty() {
            vec![ciphertext]
        } else {
            ciphertext.chunks(step).collect()
        };
        let mut out = Vec::new();
        for (i, piece) in pieces.iter().enumerate() {
            let mut buf = piece.to_vec();
            self.open_as(i as u64, i + 1 == pieces.len(), &mut buf)?;
            out.extend_from_slice(&buf);
        }
        Ok(out)
    }
}
