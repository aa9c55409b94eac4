//! How each fixed-size field type of a message is written and read, so that an encoder and its
//! decoder are one line per field: `put(w, sender_id)` beside `sender_id: get(r)?`.
//!
//! Ids and capabilities are their raw bytes, integers big-endian, booleans a 0/1 byte, and an
//! optional field a 0/1 flag byte followed by the value when present.
//!
//! What it does not do: variable-length fields (those carry a cap and go through
//! [`Reader::bytes`] directly) or tags.

use crate::access::{CreateToken, RelayInfo};
use crate::address::Fingerprint;
use crate::codec::{DecodeError, Reader, Writer};
use crate::ids::{BlobCapability, BlobId, EnvelopeId, RecipientId, SendCapability, SenderId};
use crate::limits::MAX_TOKEN_LEN;
use crate::rotation::CertRotation;

/// The writer every message encoder appends to: a frame under construction.
pub(super) type FrameWriter<'a> = Writer<&'a mut Vec<u8>>;

/// A field with one fixed encoding.
pub(super) trait Field: Sized {
    /// Appends the field.
    fn put(&self, w: &mut FrameWriter<'_>);
    /// Reads the field.
    fn get(r: &mut Reader<'_>) -> Result<Self, DecodeError>;
}

/// Appends `v`.
pub(super) fn put<T: Field>(w: &mut FrameWriter<'_>, v: &T) {
    v.put(w);
}

/// Reads a `T`.
pub(super) fn get<T: Field>(r: &mut Reader<'_>) -> Result<T, DecodeError> {
    T::get(r)
}

/// Ids and capabilities: their raw bytes.
macro_rules! fixed_bytes {
    ($($ty:ty),*) => {$(
        impl Field for $ty {
            fn put(&self, w: &mut FrameWriter<'_>) {
                w.raw(self.as_bytes());
            }
            fn get(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                Ok(<$ty>::from_bytes(r.array()?))
            }
        }
    )*};
}

fixed_bytes!(
    SenderId,
    RecipientId,
    EnvelopeId,
    BlobId,
    SendCapability,
    BlobCapability
);

impl<const N: usize> Field for [u8; N] {
    fn put(&self, w: &mut FrameWriter<'_>) {
        w.raw(self);
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.array()
    }
}

/// Integers and booleans: the codec method of the same name writes and reads them.
macro_rules! scalar {
    ($($ty:ident),*) => {$(
        impl Field for $ty {
            fn put(&self, w: &mut FrameWriter<'_>) {
                w.$ty(*self);
            }
            fn get(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                r.$ty()
            }
        }
    )*};
}

scalar!(u32, u64, bool);

/// A create token: `u32` length then its characters, checked as the address parser checks them.
impl Field for CreateToken {
    fn put(&self, w: &mut FrameWriter<'_>) {
        w.bytes(self.as_bytes());
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        CreateToken::from_bytes(r.bytes(MAX_TOKEN_LEN)?).map_err(|_| DecodeError::InvalidValue)
    }
}

/// A relay's announced limits: its fields in declaration order.
impl Field for RelayInfo {
    fn put(&self, w: &mut FrameWriter<'_>) {
        put(w, &self.max_ttl_secs);
        put(w, &self.max_envelope_len);
        put(w, &self.queue_max_messages);
        put(w, &self.queue_max_bytes);
        put(w, &self.blob_max_bytes);
        put(w, &self.blob_ttl_secs);
        put(w, &self.may_create);
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(RelayInfo {
            max_ttl_secs: get(r)?,
            max_envelope_len: get(r)?,
            queue_max_messages: get(r)?,
            queue_max_bytes: get(r)?,
            blob_max_bytes: get(r)?,
            blob_ttl_secs: get(r)?,
            may_create: get(r)?,
        })
    }
}

/// A certificate fingerprint: its 32 bytes.
impl Field for Fingerprint {
    fn put(&self, w: &mut FrameWriter<'_>) {
        w.raw(&self.0);
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Fingerprint(r.array()?))
    }
}

/// A pending rotation: the new fingerprint, then the switch time.
impl Field for CertRotation {
    fn put(&self, w: &mut FrameWriter<'_>) {
        put(w, &self.fingerprint);
        put(w, &self.switch_at);
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(CertRotation {
            fingerprint: get(r)?,
            switch_at: get(r)?,
        })
    }
}

impl<T: Field> Field for Option<T> {
    fn put(&self, w: &mut FrameWriter<'_>) {
        w.bool(self.is_some());
        if let Some(v) = self {
            v.put(w);
        }
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        if r.bool()? {
            Ok(Some(T::get(r)?))
        } else {
            Ok(None)
        }
    }
}
