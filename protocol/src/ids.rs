//! Random identifiers and capabilities that name queues and envelopes.
//!
//! The relay knows a queue by two unrelated random ids: the *recipient id*, used for recipient
//! operations, and the *sender id*, used for sends. Envelopes are named by a random id the relay
//! returns on send. A *send capability* is 32 random bytes that authorise sends to a queue.

use std::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop};

/// Length in bytes of queue and envelope identifiers.
pub const ID_LEN: usize = 16;

/// Length in bytes of a send capability.
pub const SEND_CAP_LEN: usize = 32;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub [u8; ID_LEN]);

        impl $name {
            /// Builds the id from its raw bytes.
            pub const fn from_bytes(bytes: [u8; ID_LEN]) -> Self {
                Self(bytes)
            }

            /// The raw bytes of the id.
            pub const fn as_bytes(&self) -> &[u8; ID_LEN] {
                &self.0
            }

            /// Lowercase hex encoding of the id.
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }

            /// Parses a lowercase or uppercase hex encoding of the id.
            pub fn from_hex(s: &str) -> Option<Self> {
                let mut out = [0u8; ID_LEN];
                hex::decode_to_slice(s, &mut out).ok()?;
                Some(Self(out))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                // Ids are random but not secret; the short prefix keeps logs readable.
                write!(f, concat!(stringify!($name), "({}..)"), &self.to_hex()[..8])
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }
    };
}

id_type!(
    /// The id a queue's recipient uses to subscribe, acknowledge and delete.
    RecipientId
);
id_type!(
    /// The id senders use to send to a queue. Unrelated to the [`RecipientId`].
    SenderId
);
id_type!(
    /// The id the relay assigns to an envelope on send; used to acknowledge and retract it.
    EnvelopeId
);

id_type!(
    /// The id the relay assigns to a blob (an uploaded file's ciphertext) when it is created.
    BlobId
);

/// Length in bytes of a blob capability.
pub const BLOB_CAP_LEN: usize = 32;

/// 32 random bytes that authorise one kind of access to one blob: the *write* capability
/// (upload, status, retract) stays with the uploader; the *read* capability (status, download,
/// delete after download) travels to the recipient inside an end-to-end encrypted message.
///
/// The relay stores only hashes of the two, and compares them in constant time. Like
/// [`SendCapability`], it has no `Debug` that prints its bytes.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct BlobCapability(pub [u8; BLOB_CAP_LEN]);

impl BlobCapability {
    /// Builds the capability from its raw bytes.
    pub const fn from_bytes(bytes: [u8; BLOB_CAP_LEN]) -> Self {
        Self(bytes)
    }

    /// The raw bytes of the capability.
    pub const fn as_bytes(&self) -> &[u8; BLOB_CAP_LEN] {
        &self.0
    }
}

impl fmt::Debug for BlobCapability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BlobCapability(..)")
    }
}

/// 32 random bytes that authorise sending to one queue.
///
/// The relay stores only a hash of it. It is a secret: it has no `Debug` that prints its bytes,
/// and it is compared in constant time by whoever verifies it.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SendCapability(pub [u8; SEND_CAP_LEN]);

impl SendCapability {
    /// Builds the capability from its raw bytes.
    pub const fn from_bytes(bytes: [u8; SEND_CAP_LEN]) -> Self {
        Self(bytes)
    }

    /// The raw bytes of the capability.
    pub const fn as_bytes(&self) -> &[u8; SEND_CAP_LEN] {
        &self.0
    }
}

impl fmt::Debug for SendCapability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SendCapability(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let id = RecipientId::from_bytes([7; ID_LEN]);
        assert_eq!(RecipientId::from_hex(&id.to_hex()), Some(id));
        assert_eq!(RecipientId::from_hex("zz"), None);
    }

    #[test]
    fn capability_debug_hides_bytes() {
        let cap = SendCapability::from_bytes([0xAB; SEND_CAP_LEN]);
        assert_eq!(format!("{cap:?}"), "SendCapability(..)");
    }
}
