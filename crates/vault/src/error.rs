//! The one error type of the vault crate.

use std::io;

/// Why a vault, device-key or record operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VaultError {
    /// Reading or writing the vault or key file failed (I/O error, disk full).
    #[error("vault file I/O failed: {0}; check the disk and the file's permissions")]
    Io(#[from] io::Error),
    /// The file is not a hush vault, or was written by an unknown format version.
    #[error("not a hush key vault (bad magic or unsupported version)")]
    NotAVault,
    /// The passphrase or key file does not unlock this vault.
    #[error("wrong passphrase or key file for this vault")]
    WrongKey,
    /// The Argon2id cost parameters are outside the supported range.
    #[error("invalid key-derivation parameters; memory must be 8..={max_kib} KiB per lane")]
    InvalidKdfParams {
        /// The largest supported memory cost, in KiB.
        max_kib: u32,
    },
    /// The key file has the wrong size or format.
    #[error("key file is malformed; restore it from backup (a new key cannot open old data)")]
    InvalidKeyFile,
    /// The key file is readable or writable by other users.
    #[error("key file permissions are too open (mode {mode:o}); run `chmod 600` on it")]
    KeyFilePermissions {
        /// The file's permission bits.
        mode: u32,
    },
    /// Every slot the vault may hold is in use.
    #[error("key vault is full ({max_slots} slots); delete records or raise the slot limit")]
    Full {
        /// The configured slot limit.
        max_slots: u64,
    },
    /// The slot index is beyond the end of the vault.
    #[error("vault slot {0} does not exist")]
    SlotOutOfRange(u64),
    /// The slot holds no key (it was never allocated, or it was shredded).
    #[error("vault slot {0} is empty")]
    EmptySlot(u64),
    /// The slot's contents failed authentication (tampered, moved from another slot, or torn).
    #[error("vault slot {0} failed authentication")]
    CorruptSlot(u64),
    /// A record failed to decrypt: wrong key, wrong associated data, or tampered bytes.
    #[error("record decryption failed")]
    Decrypt,
}
