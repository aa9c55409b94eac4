//! End-to-end cryptography, sans-IO: identities, invitations, the PQ-hybrid X3DH handshake,
//! the header-encrypted double ratchet, and safety numbers.
//!
//! What it does: takes bytes, `now` (unix seconds) and an RNG, and returns bytes. Every secret
//! type zeroizes on drop and has no derived `Debug`; a failed decryption leaves state unchanged.
//! The exact constructions, labels and byte formats are in `docs/crypto.md`.
//!
//! What it does not do: touch sockets, files, clocks or tokio; decide trust (the caller shows
//! the safety number); or persist anything (callers store the `to_bytes` encodings, encrypted).
//!
//! Typical flow: the inviter calls [`Invitation::create`] and shares [`Invitation::encode`];
//! the joiner calls [`Invitation::parse`] then [`accept`] and sends the first message; the
//! inviter calls [`respond`]. Both then use [`Session::encrypt`] and [`Session::decrypt`].

mod handshake;
mod identity;
mod invitation;
mod kdf;
pub mod limits;
mod ratchet;
mod safety;
mod wire;

pub use handshake::{accept, respond, HandshakeError};
pub use identity::{Identity, IdentityError, PublicIdentity, IDENTITY_LEN, PUBLIC_IDENTITY_LEN};
pub use invitation::{Invitation, InvitationError, InvitationSecrets, INVITATION_PREFIX};
pub use ratchet::{DecryptError, EncryptError, Session, SessionDecodeError};
pub use safety::{safety_number, SafetyNumber, QR_PAYLOAD_LEN};
pub use wire::{wire_format, WireFormat, WIRE_VERSION};
