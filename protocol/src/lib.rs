//! hush-protocol: the wire types and framing spoken between hush clients and relays.
//!
//! Layer: the base. It depends on no other hush crate; hush-client, hush-server and the
//! programs above them depend on it (see `docs/architecture.md`).
//!
//! What it does: defines requests, responses and pushes ([`message`]), their length-delimited
//! framing ([`frame`]), the protocol version and the channel-bound signing input ([`auth`]),
//! the `hush://host:port#fingerprint` relay address ([`address`]), the create token and the
//! relay's announced limits ([`access`]), a relay's announced certificate rotation
//! ([`rotation`]), the protocol's limits
//! ([`limits`]), its error codes ([`error`]), and the one bounded byte reader and writer
//! ([`codec`]) that every hand-written binary encoding in hush, client and relay alike, goes
//! through.
//!
//! What it does not do: any I/O, clocks or cryptography. It is pure data, so that every decoder
//! can be fuzzed and tested as plain function calls. Decoders never panic and check every
//! length against its limit before allocating.

#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod access;
pub mod address;
pub mod auth;
pub mod codec;
pub mod error;
pub mod frame;
pub mod ids;
pub mod limits;
pub mod message;
#[cfg(test)]
mod message_tests;
pub mod rotation;

pub use access::{CreateToken, HomeRelay, RelayInfo};
pub use address::{AddressError, Fingerprint, RelayAddress};
pub use codec::DecodeError;
pub use error::ErrorCode;
pub use frame::{FrameDecoder, FrameError};
pub use ids::{BlobCapability, BlobId, EnvelopeId, RecipientId, SendCapability, SenderId};
pub use message::{Push, PushedEnvelope, Reply, Request, ServerFrame};
pub use rotation::CertRotation;
