//! hush-client: the library every hush front end uses.
//!
//! What it does: the end-to-end cryptography of a conversation ([`crypto`]): identities,
//! signed one-time invitations, the PQ-hybrid X3DH handshake, the header-encrypted double
//! ratchet with padded payloads, and safety numbers.
//!
//! What it does not do (in this module): any I/O, clocks or randomness of its own. Time and
//! randomness come in as arguments, so every security property can be tested as plain function
//! calls with a fake clock and a seeded RNG.

#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod crypto;
