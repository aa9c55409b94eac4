//! hush-client: the library every hush front end uses.
//!
//! What it does: [`crypto`] holds the end-to-end cryptography of a conversation (identities,
//! signed one-time invitations, the PQ-hybrid X3DH handshake, the header-encrypted double
//! ratchet with padded payloads, and safety numbers). Conversations, local storage and relay
//! connections build on it.
//!
//! What it does not do: the cryptographic core does no I/O and reads no clock and no system
//! RNG. Time and randomness come in as arguments, so every security property can be tested as
//! plain function calls with a fake clock and a seeded RNG. The relay never sees plaintext,
//! ratchet keys or counters; see `docs/crypto.md` and `docs/threat-model.md`.

#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod crypto;
