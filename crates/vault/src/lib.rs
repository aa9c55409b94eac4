//! hush-vault: a fixed-slot key vault and per-record encryption that make deletion final.
//!
//! Layer: the base, beside hush-protocol. It depends on no other hush crate; the client's local
//! store and the relay's stores build on it. It sits in `crates/` only because that folder holds
//! every crate besides the three main parts (see `docs/architecture.md`).
//!
//! What it does: every record a caller stores is sealed under its own random [`RecordKey`]
//! ([`RecordKey::seal`]). Those keys live in a [`Vault`] file of fixed-size slots, each sealed
//! under a [`DeviceKey`] that comes from a passphrase (Argon2id) or a 0600 key file. Deleting a
//! record shreds its slot: the slot is overwritten with zeros in place and synced, after which
//! any copy of the record's ciphertext (in a database log, say) can no longer be decrypted, even
//! by someone holding the device key.
//!
//! What it does not do: store the records themselves (the caller keeps the ciphertext where it
//! likes, sled for hush), hide record sizes, or protect against an attacker who reads memory or
//! the disk while a record is still live.
//!
//! Durability: [`Vault::allocate`] and [`Vault::shred_deferred`] write through to the file, and
//! [`Vault::sync`] makes everything so far durable, so callers can group-commit many operations
//! into one fdatasync. [`Vault::shred`] syncs by itself.
//!
//! For tests, the `testing` feature adds `forensic`: a byte search of a directory that shows
//! what a copy of the disk still holds after a deletion.

#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod device_key;
mod error;
#[cfg(any(test, feature = "testing"))]
pub mod forensic;
mod header;
pub mod process;
mod record;
mod vault;

pub use device_key::{
    DeviceKey, KdfParams, DEVICE_KEY_LEN, MAX_KDF_LANES, MAX_KDF_MEMORY_KIB, MAX_KDF_TIME_COST,
    SALT_LEN,
};
pub use error::VaultError;
pub use record::{RecordKey, NONCE_LEN, RECORD_KEY_LEN, SEAL_OVERHEAD, TAG_LEN};
pub use vault::{SlotId, Vault, VaultOptions, DEFAULT_MAX_SLOTS, GROW_SLOTS, MAX_SLOTS, SLOT_LEN};
