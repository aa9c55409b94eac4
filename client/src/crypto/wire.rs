//! Wire-level type tags and a bounds-checked byte reader shared by the decoders.
//!
//! Every hush wire message starts with a type tag and a version byte, so a receiver can tell a
//! handshake first message from a ratchet message before parsing further. This module does not
//! decrypt anything; it only slices bytes without ever indexing out of bounds.

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

/// A cursor over a byte slice whose reads return `None` instead of panicking on truncation.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    pub(crate) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.buf.len() < n {
            return None;
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Some(head)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    pub(crate) fn u8(&mut self) -> Option<u8> {
        Some(self.array::<1>()?[0])
    }

    pub(crate) fn u16(&mut self) -> Option<u16> {
        Some(u16::from_be_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Option<u64> {
        Some(u64::from_be_bytes(self.array()?))
    }

    pub(crate) fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_reports_truncation_without_consuming_past_the_end() {
        let mut r = Reader::new(&[1, 0, 2, 0, 3]);
        assert_eq!(r.u8(), Some(1));
        assert_eq!(r.u16(), Some(2));
        assert_eq!(r.u64(), None);
        assert_eq!(r.u16(), Some(3));
        assert!(r.is_empty());
        assert_eq!(r.u8(), None);
    }

    #[test]
    fn kind_needs_known_tag_and_version() {
        assert_eq!(message_kind(&[1, 1, 9]), Some(MessageKind::Handshake));
        assert_eq!(message_kind(&[2, 1]), Some(MessageKind::Ratchet));
        assert_eq!(message_kind(&[2, 2]), None);
        assert_eq!(message_kind(&[3, 1]), None);
        assert_eq!(message_kind(&[2]), None);
    }
}
