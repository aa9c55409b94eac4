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

#[cfg(test)]
mod tests {
    use super::*;

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
}
