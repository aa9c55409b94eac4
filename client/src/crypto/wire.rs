//! The clear framing of the client's wire messages: one version byte, and a size bucket.
//!
//! A current (version 2) wire message is the byte [`WIRE_VERSION`] followed by bytes that look
//! random, padded to one of [`WIRE_BUCKETS`] in total. A handshake first message and a ratchet
//! message look alike: the same leading byte, the same sizes, no type tag. A receiver tells
//! them apart by what opens them (the queue's invitation secrets or the contact's session; see
//! `docs/crypto.md`). Version 1 messages, which began with a clear type tag, are still read.
//!
//! This module does not decrypt or parse anything further.

use super::limits::WIRE_BUCKETS;

/// The first byte of every current wire message, whatever its kind. Version 1 messages begin
/// with their type tag (0x01 or 0x02) and then the version 0x01; 0x03 is the first value that
/// no version 1 message begins with, so this byte alone tells the two versions apart.
pub const WIRE_VERSION: u8 = 0x03;

/// Type tag of a version 1 handshake first message (read, never sent).
pub(crate) const V1_TAG_HANDSHAKE: u8 = 0x01;

/// Type tag of a version 1 ratchet message (read, never sent).
pub(crate) const V1_TAG_RATCHET: u8 = 0x02;

/// The version byte that followed a version 1 type tag.
pub(crate) const V1_VERSION: u8 = 0x01;

/// Which format a wire message is in, from its clear bytes only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WireFormat {
    /// The current format: a first message or a ratchet message, which only opening tells.
    Current,
    /// A version 1 handshake first message (clear tag 0x01).
    V1Handshake,
    /// A version 1 ratchet message (clear tag 0x02).
    V1Ratchet,
}

/// Classifies a wire message by its leading bytes (and, for the current format, its total
/// length, which must be a bucket), or `None` if it is no hush message of a known version.
pub fn wire_format(wire: &[u8]) -> Option<WireFormat> {
    match wire {
        [WIRE_VERSION, ..] if WIRE_BUCKETS.contains(&wire.len()) => Some(WireFormat::Current),
        [V1_TAG_HANDSHAKE, V1_VERSION, ..] => Some(WireFormat::V1Handshake),
        [V1_TAG_RATCHET, V1_VERSION, ..] => Some(WireFormat::V1Ratchet),
        _ => None,
    }
}

/// The total size a message of `len` unpadded bytes is padded to: the smallest bucket that
/// holds it, or `None` if none does.
pub(crate) fn wire_bucket(len: usize) -> Option<usize> {
    WIRE_BUCKETS.iter().copied().find(|&b| b >= len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_needs_a_known_lead_and_a_bucket_length() {
        let mut current = vec![0u8; WIRE_BUCKETS[0]];
        current[0] = WIRE_VERSION;
        assert_eq!(wire_format(&current), Some(WireFormat::Current));
        assert_eq!(wire_format(&current[..100]), None);
        assert_eq!(wire_format(&[1, 1, 9]), Some(WireFormat::V1Handshake));
        assert_eq!(wire_format(&[2, 1]), Some(WireFormat::V1Ratchet));
        assert_eq!(wire_format(&[2, 2]), None);
        assert_eq!(wire_format(&[4, 1]), None);
        assert_eq!(wire_format(&[2]), None);
        assert_eq!(wire_format(&[]), None);
    }

    #[test]
    fn lengths_round_up_to_the_smallest_bucket() {
        assert_eq!(wire_bucket(0), Some(WIRE_BUCKETS[0]));
        assert_eq!(wire_bucket(WIRE_BUCKETS[0]), Some(WIRE_BUCKETS[0]));
        assert_eq!(wire_bucket(WIRE_BUCKETS[0] + 1), Some(WIRE_BUCKETS[1]));
        assert_eq!(wire_bucket(WIRE_BUCKETS[3] + 1), None);
    }
}
