//! How a file is cut into chunks, and its blob into pieces.
//!
//! A [`Layout`] is the arithmetic of one file: its chunks (the file's ciphertext, see `stream`)
//! and, after them, the pieces of padding that make up the rest of the blob (see `padding`).
//! Each piece is one relay write or read.
//!
//! What it does not do: encrypt, read or write anything.

use hush_protocol::limits::MAX_BLOB_CHUNK;

use super::error::FileError;
use super::padding::{padme, Padding};

/// Poly1305 tag added to every chunk.
pub const TAG_LEN: usize = 16;
/// One sealed chunk: exactly one relay write.
pub const CIPHER_CHUNK: usize = MAX_BLOB_CHUNK;
/// Plaintext bytes per chunk, so that a sealed chunk is [`CIPHER_CHUNK`] bytes.
pub const PLAIN_CHUNK: usize = CIPHER_CHUNK - TAG_LEN;
/// Most chunks in one file: the counter is 32 bits.
pub const MAX_CHUNKS: u64 = u32::MAX as u64;

/// How a file of `plain_len` bytes is cut into chunks of `chunk` bytes, and how its blob is
/// padded (see `padding`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Layout {
    plain_len: u64,
    chunk: u32,
    chunks: u64,
    padding: Padding,
}

impl Layout {
    /// The layout of `plain_len` bytes in chunks of `chunk` plaintext bytes. Fails if the chunk
    /// is empty or its sealed form would not fit one relay read, or if the file needs more
    /// than [`MAX_CHUNKS`] chunks.
    pub fn new(plain_len: u64, chunk: u32) -> Result<Layout, FileError> {
        if chunk == 0 || chunk as usize > PLAIN_CHUNK {
            return Err(FileError::InvalidChunkSize { chunk });
        }
        let chunks = plain_len.div_ceil(u64::from(chunk)).max(1);
        if chunks > MAX_CHUNKS {
            return Err(FileError::TooLarge {
                size: plain_len,
                max: MAX_CHUNKS.saturating_mul(u64::from(chunk)),
            });
        }
        Ok(Layout {
            plain_len,
            chunk,
            chunks,
            padding: Padding::None,
        })
    }

    /// The same layout with its blob padded as `padding` says.
    pub fn with_padding(self, padding: Padding) -> Layout {
        Layout { padding, ..self }
    }

    /// How the blob is padded.
    pub fn padding(&self) -> Padding {
        self.padding
    }

    /// The layout with the default chunk, [`PLAIN_CHUNK`].
    pub fn standard(plain_len: u64) -> Result<Layout, FileError> {
        Layout::new(plain_len, PLAIN_CHUNK as u32)
    }

    /// The plaintext size.
    pub fn plain_len(&self) -> u64 {
        self.plain_len
    }

    /// Plaintext bytes per chunk (the last chunk may be shorter).
    pub fn chunk(&self) -> u32 {
        self.chunk
    }

    /// How many chunks (at least one, even for an empty file).
    pub fn chunks(&self) -> u64 {
        self.chunks
    }

    /// Sealed bytes per full chunk.
    pub fn cipher_chunk(&self) -> u64 {
        u64::from(self.chunk) + TAG_LEN as u64
    }

    /// The size of the whole ciphertext.
    pub fn cipher_len(&self) -> u64 {
        self.plain_len + self.chunks * TAG_LEN as u64
    }

    /// Plaintext bytes in chunk `index`.
    pub fn plain_len_of(&self, index: u64) -> usize {
        let start = index.saturating_mul(u64::from(self.chunk));
        let len = self
            .plain_len
            .saturating_sub(start)
            .min(u64::from(self.chunk));
        // At most `chunk`, a u32.
        usize::try_from(len).unwrap_or(0)
    }

    /// Sealed bytes in chunk `index`.
    pub fn cipher_len_of(&self, index: u64) -> usize {
        self.plain_len_of(index) + TAG_LEN
    }

    /// Where chunk `index` starts in the ciphertext.
    pub fn cipher_offset(&self, index: u64) -> u64 {
        index.saturating_mul(self.cipher_chunk())
    }

    /// Where chunk `index` starts in the plaintext.
    pub fn plain_offset(&self, index: u64) -> u64 {
        index.saturating_mul(u64::from(self.chunk))
    }

    /// The chunk that starts at ciphertext offset `offset` ([`Layout::chunks`] at the end of
    /// the ciphertext), or `None` if no chunk boundary is there.
    pub fn chunk_at(&self, offset: u64) -> Option<u64> {
        if offset == self.cipher_len() {
            return Some(self.chunks);
        }
        let index = offset / self.cipher_chunk();
        (offset % self.cipher_chunk() == 0 && index < self.chunks).then_some(index)
    }
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
