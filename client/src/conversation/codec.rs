//! The conversation encodings' error and their common frame: a leading version byte, then
//! fields read and written with [`hush_protocol::codec`].
//!
//! All integers are big-endian. Options are a flag byte (0 absent, 1 present) followed by the
//! value; booleans are one byte, 0 or 1. Variable-length fields are a 4-byte length prefix
//! followed by that many bytes, and the length is checked against its cap and against the bytes
//! left before anything is allocated. The decoders never panic on any input.
//!
//! What it does not do: read or write bytes itself (the protocol crate's codec does), or know
//! about payloads or records; those live in their own files.

use hush_protocol::codec::{self, Reader, Writer};
use hush_protocol::RelayAddress;

use super::limits::{ENCODING_VERSION, MAX_RELAY_ADDRESS_LEN};

/// Why bytes did not decode. Every decoder in this module returns it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended in the middle of a field.
    #[error("the message is truncated")]
    Truncated,
    /// Bytes were left over after the last field.
    #[error("the message has trailing bytes")]
    TrailingBytes,
    /// The leading version byte is not one this build understands.
    #[error("unsupported encoding version {0}; the sender may need a newer hush")]
    UnknownVersion(u8),
    /// A kind tag is not one this build understands.
    #[error("unknown message kind {0}; the sender may need a newer hush, or this one is outdated")]
    UnknownTag(u8),
    /// A length prefix is larger than the field's cap.
    #[error("a field is {len} bytes long, more than the {max} allowed")]
    TooLong {
        /// The length the input claimed.
        len: usize,
        /// The cap for that field.
        max: usize,
    },
    /// A count of entries is larger than its cap.
    #[error("{count} entries, more than the {max} allowed")]
    TooMany {
        /// The count the input claimed.
        count: usize,
        /// The cap for that list.
        max: usize,
    },
    /// A text field is not valid UTF-8.
    #[error("a text field is not valid UTF-8")]
    InvalidUtf8,
    /// A flag or boolean byte is neither 0 nor 1.
    #[error("a flag byte is neither 0 nor 1")]
    InvalidFlag,
    /// A disappearing timer is outside the allowed range.
    #[error("a disappearing timer is out of range")]
    InvalidTimer,
    /// A relay address does not parse.
    #[error("an introduced relay address is invalid")]
    InvalidRelayAddress,
    /// A field holds a value that is structurally valid but not allowed.
    #[error("a field holds a value that is not allowed")]
    InvalidValue,
}

impl From<codec::DecodeError> for DecodeError {
    fn from(e: codec::DecodeError) -> Self {
        match e {
            codec::DecodeError::Truncated => DecodeError::Truncated,
            codec::DecodeError::TrailingBytes => DecodeError::TrailingBytes,
            codec::DecodeError::UnknownTag(t) => DecodeError::UnknownTag(t),
            codec::DecodeError::TooLong { len, max } => DecodeError::TooLong { len, max },
            codec::DecodeError::InvalidUtf8 => DecodeError::InvalidUtf8,
            // The only value the byte codec itself judges is a flag's (0 or 1); every other
            // check on a field's value is made by the decoders here, which say which.
            codec::DecodeError::InvalidValue => DecodeError::InvalidFlag,
            _ => DecodeError::InvalidValue,
        }
    }
}

/// A writer whose output starts with the encoding version byte.
pub(crate) fn versioned_writer(capacity: usize) -> Writer {
    let mut w = Writer::with_capacity(capacity);
    w.u8(ENCODING_VERSION);
    w
}

/// A reader past the encoding version byte, which must be the one this build writes.
pub(crate) fn versioned_reader(input: &[u8]) -> Result<Reader<'_>, DecodeError> {
    let mut r = Reader::new(input);
    let version = r.u8()?;
    if version != ENCODING_VERSION {
        return Err(DecodeError::UnknownVersion(version));
    }
    Ok(r)
}

/// Writes a relay address as a length-prefixed string.
pub(crate) fn write_relay(w: &mut Writer, relay: &RelayAddress) {
    w.bytes(relay.to_string().as_bytes());
}

/// Reads what [`write_relay`] wrote; at most [`MAX_RELAY_ADDRESS_LEN`] bytes.
pub(crate) fn read_relay(r: &mut Reader<'_>) -> Result<RelayAddress, DecodeError> {
    r.str(MAX_RELAY_ADDRESS_LEN)?
        .parse()
        .map_err(|_| DecodeError::InvalidRelayAddress)
}
