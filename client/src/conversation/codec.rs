//! The byte-level reader and writer shared by every encoding in this module, and its error.
//!
//! All integers are big-endian. Options are a flag byte (0 absent, 1 present) followed by the
//! value; booleans are one byte, 0 or 1. Variable-length fields are a length prefix followed by
//! that many bytes, and the length is checked against its cap and against the bytes left before
//! anything is allocated. The reader never panics on any input.
//!
//! What it does not do: know about payloads or records; those live in their own files.

use super::limits::ENCODING_VERSION;

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

/// Appends fields to a byte vector.
pub(crate) struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// A writer whose output starts with the encoding version byte.
    pub(crate) fn versioned(capacity: usize) -> Self {
        let mut buf = Vec::with_capacity(capacity);
        buf.push(ENCODING_VERSION);
        Self { buf }
    }

    pub(crate) fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    pub(crate) fn bool(&mut self, v: bool) {
        self.buf.push(u8::from(v));
    }

    pub(crate) fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub(crate) fn bytes(&mut self, v: &[u8]) {
        self.buf.extend_from_slice(v);
    }

    pub(crate) fn opt_u64(&mut self, v: Option<u64>) {
        match v {
            None => self.u8(0),
            Some(x) => {
                self.u8(1);
                self.u64(x);
            }
        }
    }

    /// A length-prefixed byte string with a 4-byte length. Callers keep `v` within its cap.
    pub(crate) fn var_bytes(&mut self, v: &[u8]) {
        let len = u32::try_from(v.len()).unwrap_or(u32::MAX);
        self.buf.extend_from_slice(&len.to_be_bytes());
        self.buf.extend_from_slice(v);
    }

    pub(crate) fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// Reads fields from a byte slice without ever panicking.
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader that first checks the encoding version byte.
    pub(crate) fn versioned(input: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Self { rest: input };
        let version = r.u8()?;
        if version != ENCODING_VERSION {
            return Err(DecodeError::UnknownVersion(version));
        }
        Ok(r)
    }

    pub(crate) fn remaining(&self) -> usize {
        self.rest.len()
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.rest.len() {
            return Err(DecodeError::Truncated);
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn bool(&mut self) -> Result<bool, DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError::InvalidFlag),
        }
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    pub(crate) fn opt_u64(&mut self) -> Result<Option<u64>, DecodeError> {
        if self.bool()? {
            Ok(Some(self.u64()?))
        } else {
            Ok(None)
        }
    }

    /// A 4-byte-length-prefixed byte string of at most `max` bytes, checked before copying.
    pub(crate) fn var_bytes(&mut self, max: usize) -> Result<&'a [u8], DecodeError> {
        let len = usize::try_from(self.u32()?).unwrap_or(usize::MAX);
        if len > max {
            return Err(DecodeError::TooLong { len, max });
        }
        self.take(len)
    }

    /// A length-prefixed UTF-8 string of at most `max` bytes.
    pub(crate) fn string(&mut self, max: usize) -> Result<String, DecodeError> {
        let raw = self.var_bytes(max)?;
        let s = std::str::from_utf8(raw).map_err(|_| DecodeError::InvalidUtf8)?;
        Ok(s.to_owned())
    }

    /// Fails unless every byte has been read.
    pub(crate) fn finish(self) -> Result<(), DecodeError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes)
        }
    }
}
