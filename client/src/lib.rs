//! hush-client: the library every hush front end uses.
//!
//! Layer: a library above hush-protocol and hush-vault, below the `hush` and `hush-bench`
//! programs. It never depends on hush-server, not even for tests (see `docs/architecture.md`).
//!
//! What it does: [`crypto`] holds the end-to-end cryptography of a conversation (identities,
//! signed one-time invitations, the PQ-hybrid X3DH handshake, the header-encrypted double
//! ratchet with padded payloads, and safety numbers). [`conversation`] is the per-contact state
//! machine for disappearing timers, view-once, unsend, burn and block. [`files`] holds the
//! chunked AEAD that encrypts files; [`group`] the signed membership log of a group; and a private `transfer` module moves them to and from
//! relays (resumable uploads and downloads). [`store`] is the local
//! encrypted store whose deletions are final (crypto-shredding). [`net`] holds the relay
//! connections (certificate pinning, a pool with reconnection). [`Client`] ties them together:
//! the async API and event stream every front end uses (see `docs/client.md`).
//!
//! What it does not do: the cryptographic and conversation cores do no I/O and read no clock
//! and no system RNG; only [`Client`] (with its transfers) and [`net`] do I/O, and only
//! [`Client`] reads the clock. Time and randomness come in as arguments, so every security
//! property can be tested as plain function calls with a fake clock and a seeded RNG. The
//! relay never sees plaintext, ratchet keys or counters; see `docs/crypto.md` and `docs/threat-model.md`.

#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod conversation;
pub mod crypto;
pub mod files;
pub mod group;
pub mod net;

mod client;
mod clock;
mod transfer;

pub use client::{
    BurnReport, Client, ClientError, ClientEvent, ClientOptions, Clock, ContactStatus, ContactView,
    Delivery, ExpiryReport, FileView, GroupSent, GroupView, MemberView, MessageView, PendingView,
    DEFAULT_INVITATION_LIFETIME, OWED_RETRY_SECS, RELAY_TTL_SECS,
};
pub use transfer::{ProgressFn, TransferProgress};
pub mod store;
