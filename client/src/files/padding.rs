//! Padding a file's blob, so that the relay does not learn the file's exact size.
//!
//! The blob a relay holds is the file's ciphertext (see `stream`) followed by padding, up to
//! [`padme`] of the ciphertext's length: Padmé, from Nikitin, Barman, Lueks, Underwood, Hubaux
//! and Ford, "Reducing Metadata Leakage from Encrypted Files and Communication with PURBs"
//! (PETS 2019). For a length `L`, with `E = floor(log2 L)` and `S = floor(log2 E) + 1`, `L` is
//! rounded up to a multiple of `2^(E - S)`. Less than `2^-S` is added (12.5% under 256 bytes,
//! 3.1% from 64 KiB to 4 GiB), and a length leaks `O(log log L)` bits instead of `O(log L)`.
//!
//! The blob is cut into *pieces*, one relay write or read each: the file's chunks, then the
//! padding in pieces of one full sealed chunk (the last may be shorter). A padding piece is
//! keystream under the file key and a nonce no chunk uses ([`super::ChunkCipher::padding_piece`]),
//! so to the relay it looks like the rest of the ciphertext; the recipient checks it, and the
//! digest in the file message covers it.
//!
//! What it does not do: read, write or send anything, or pad messages (the ratchet pads those).

use super::stream::Layout;

/// How a blob is padded beyond the file's ciphertext.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
#[non_exhaustive]
pub enum Padding {
    /// No padding: the blob is the ciphertext (files sent before blobs were padded).
    #[default]
    None,
    /// Padded to [`padme`] of the ciphertext's length.
    Padme,
}

/// Padmé: `len` rounded up to a multiple of `2^(E - S)`, where `E = floor(log2 len)` and
/// `S = floor(log2 E) + 1`. Lengths below 2 stay as they are.
pub fn padme(len: u64) -> u64 {
    if len < 2 {
        return len;
    }
    // floor(log2 len), at least 1.
    let e = 63 - len.leading_zeros();
    // floor(log2 e) + 1: the bit length of e, at most e.
    let s = 32 - e.leading_zeros();
    let mask = (1u64 << (e - s)) - 1;
    (len.saturating_add(mask) & !mask).max(len)
}

impl Layout {
    /// The blob's length: the ciphertext and its padding. This is all the relay sees of the
    /// file's size.
    pub fn blob_len(&self) -> u64 {
        match self.padding() {
            Padding::None => self.cipher_len(),
            Padding::Padme => padme(self.cipher_len()),
        }
    }

    /// How many pieces the blob has: the chunks, then the padding pieces.
    pub fn pieces(&self) -> u64 {
        let padding = self.blob_len() - self.cipher_len();
        self.chunks() + padding.div_ceil(self.cipher_chunk())
    }

    /// Whether piece `index` is padding rather than a chunk.
    pub fn is_padding(&self, index: u64) -> bool {
        index >= self.chunks()
    }

    /// Where piece `index` starts in the blob ([`Layout::blob_len`] for `index` =
    /// [`Layout::pieces`]).
    pub fn piece_offset(&self, index: u64) -> u64 {
        if index < self.chunks() {
            return self.cipher_offset(index);
        }
        let into = (index - self.chunks()).saturating_mul(self.cipher_chunk());
        self.cipher_len().saturating_add(into).min(self.blob_len())
    }

    /// Bytes in piece `index` (0 past the end).
    pub fn piece_len(&self, index: u64) -> u64 {
        if index < self.chunks() {
            return self.cipher_len_of(index) as u64;
        }
        let start = self.piece_offset(index);
        (self.blob_len() - start).min(self.cipher_chunk())
    }

    /// The piece that starts at blob offset `offset` ([`Layout::pieces`] at the end of the
    /// blob), or `None` if no piece starts there.
    pub fn piece_at(&self, offset: u64) -> Option<u64> {
        if offset == self.blob_len() {
            return Some(self.pieces());
        }
        if offset > self.blob_len() {
            return None;
        }
        if offset < self.cipher_len() {
            return self.chunk_at(offset);
        }
        let into = offset - self.cipher_len();
        let index = self.chunks() + into / self.cipher_chunk();
        (into % self.cipher_chunk() == 0 && index < self.pieces()).then_some(index)
    }

    /// How many whole pieces the first `len` bytes of the blob hold.
    pub fn whole_pieces(&self, len: u64) -> u64 {
        if len >= self.blob_len() {
            self.pieces()
        } else if len >= self.cipher_len() {
            self.chunks() + (len - self.cipher_len()) / self.cipher_chunk()
        } else {
            len / self.cipher_chunk()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::PLAIN_CHUNK;

    /// The paper's definition, in floating point, for small lengths.
    fn reference(len: u64) -> u64 {
        let e = (len as f64).log2().floor() as u32;
        let s = (e as f64).log2().floor() as u32 + 1;
        let mask = (1u64 << (e - s)) - 1;
        (len + mask) & !mask
    }

    #[test]
    fn padme_matches_the_papers_definition() {
        for len in 2..100_000u64 {
            assert_eq!(padme(len), reference(len), "len {len}");
        }
        for len in [1 << 20, (1 << 20) + 1, 3 << 30, (5 << 33) + 7] {
            assert_eq!(padme(len), reference(len), "len {len}");
        }
        assert_eq!((padme(0), padme(1)), (0, 1));
        assert_eq!(padme(u64::MAX), u64::MAX);
        // At most 12% more, and a few bytes' difference disappears.
        for len in [1000u64, 197_858, 10 << 20, 3 << 30] {
            assert!(padme(len) >= len && padme(len) - len <= len * 12 / 100);
        }
        assert_eq!(padme(197_858), padme(197_864));
    }

    #[test]
    fn pieces_cover_the_blob_exactly_once() {
        let cc = PLAIN_CHUNK as u64 + 16;
        for plain in [
            0,
            1,
            100,
            PLAIN_CHUNK as u64 - 1,
            PLAIN_CHUNK as u64,
            3 << 20,
            7_000_001,
        ] {
            for padding in [Padding::None, Padding::Padme] {
                let l = Layout::standard(plain).unwrap().with_padding(padding);
                let mut at = 0;
                for i in 0..l.pieces() {
                    assert_eq!(l.piece_offset(i), at, "{plain} {padding:?} piece {i}");
                    assert_eq!(l.piece_at(at), Some(i));
                    assert_eq!(l.whole_pieces(at), i);
                    let len = l.piece_len(i);
                    assert!(len > 0 && len <= cc);
                    at += len;
                }
                assert_eq!(at, l.blob_len());
                assert_eq!(l.piece_at(at), Some(l.pieces()));
                assert_eq!(l.whole_pieces(at), l.pieces());
                assert_eq!(l.piece_offset(l.pieces()), l.blob_len());
                assert_eq!(l.piece_at(at + 1), None);
                if padding == Padding::None {
                    assert_eq!((l.blob_len(), l.pieces()), (l.cipher_len(), l.chunks()));
                } else {
                    assert_eq!(l.blob_len(), padme(l.cipher_len()));
                }
            }
        }
    }
}
