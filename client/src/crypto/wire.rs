//! Wire-level type tags of the client's encrypted messages.
//!
//! Every hush wire message starts with a type tag and a version byte, so a receiver can tell a
//! handshake first message from a ratchet message before parsing further. This module does not
//! decrypt or parse anything further: the decoders read their fields with
//! [`hush_protocol::codec::Reader`].

/// Type tag of a handshake first message (the joiner's first message to an inviter).
pub const TAG_HANDSHAKE: u8 = 0x01;

/// Type tag of a double-ratchet message.
pub const TAG_RATCHET: u8 = 0x02;

/// The wire format version this code speaks.
pub const WIRE_VERSION: u8 = 0x01;

/// What kind of wire message a byte string claims to be, from its first two bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MessageKind {
    /// A handshake first message: hand it to [`crate::crypto::respond`].
    Handshake,
    /// A double-ratchet message: hand it to [`crate::crypto::Session::decrypt`].
    Ratchet,
}

/// Classifies a wire message by its tag, or `None` if the tag or version is unknown.
pub fn message_kind(wire: &[u8]) -> Option<MessageKind> {
    match wire {
        [TAG_HANDSHAKE, WIRE_VERSION, ..] => Some(MessageKind::Handshake),
        [TAG_RATCHET, WIRE_VERSION, ..] => Some(MessageKind::Ratchet),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_needs_known_tag_and_version() {
        assert_eq!(message_kind(&[1, 1, 9]), Some(MessageKind::Handshake));
        assert_eq!(message_kind(&[2, 1]), Some(MessageKind::Ratchet));
        assert_eq!(message_kind(&[2, 2]), None);
        assert_eq!(message_kind(&[3, 1]), None);
        assert_eq!(message_kind(&[2]), None);
    }
}
