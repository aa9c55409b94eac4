//! hush-protocol: the wire types and framing spoken between hush clients and relays.
//!
//! What it does: defines requests, responses and pushes, their length-delimited framing, the
//! `hush://host:port#fingerprint` relay address, the protocol's limits and its error codes.
//!
//! What it does not do: any I/O, clocks or cryptography. It is pure data, so that every decoder
//! can be fuzzed and tested as plain function calls.

#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod address;
pub mod ids;
pub mod limits;

pub use address::{AddressError, Fingerprint, RelayAddress};
pub use ids::{EnvelopeId, RecipientId, SendCapability, SenderId};
