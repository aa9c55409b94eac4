//! The one error type of the local store.

use std::io;
use std::path::PathBuf;

use hush_vault::VaultError;

use super::Namespace;

/// Why a local-store operation failed. A failed operation leaves every record as it was,
/// except where a variant says otherwise.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The home directory holds no hush store.
    #[error("no hush store in {home}; create one first (or point to the right directory)")]
    NotInitialised {
        /// The home directory that was opened.
        home: PathBuf,
    },
    /// `create` found a store already in the home directory.
    #[error("a hush store already exists in {home}; open it instead of creating a new one")]
    AlreadyInitialised {
        /// The home directory that was given.
        home: PathBuf,
    },
    /// The passphrase does not unlock this store.
    #[error("wrong passphrase for this store; try again")]
    WrongPassphrase,
    /// The store is protected by a passphrase, but none was given.
    #[error("this store is protected by a passphrase; open it with the passphrase")]
    PassphraseRequired,
    /// A passphrase was given, but the store is unlocked by its key file.
    #[error("this store is unlocked by its key file, not a passphrase; open it without one")]
    KeyFileStore,
    /// The store's key file is missing; without it the store cannot be decrypted.
    #[error("the key file {path} is missing; restore it from backup (the store cannot be read without it)")]
    KeyFileMissing {
        /// Where the key file should be.
        path: PathBuf,
    },
    /// The key file exists but cannot be used (bad permissions, wrong size, wrong key).
    #[error(
        "cannot use the store's key file: {0}. It must be this home's own device.key (restore \
         it from backup if it was replaced)"
    )]
    KeyFile(#[source] VaultError),
    /// The passphrase key-derivation costs are outside the supported range.
    #[error("invalid passphrase key-derivation settings: {0}")]
    KdfParams(#[source] VaultError),
    /// The store is damaged: a record, the key vault or the marker file is not what the store
    /// wrote. Nothing was changed.
    #[error("the hush store is damaged ({what}); restore the directory from backup or remove it and start over")]
    Corrupt {
        /// Which part is damaged (never a name or a value).
        what: String,
    },
    /// Another process has the store open.
    #[error("the hush store is in use by another process; close it first")]
    InUse,
    /// A contact name or invitation id is empty or longer than its limit.
    #[error("{what} must be 1 to {max} bytes long; choose another")]
    InvalidKey {
        /// Which kind of key ("a contact name", "an invitation id").
        what: &'static str,
        /// Its longest allowed length in bytes.
        max: usize,
    },
    /// `list` was given a contact for a namespace whose records belong to no contact.
    #[error("{namespace:?} records belong to no contact; list them without one")]
    NotPerContact {
        /// The namespace that was listed.
        namespace: Namespace,
    },
    /// A value is larger than one record may hold.
    #[error("the value is {len} bytes, more than the {max} a record may hold")]
    ValueTooLarge {
        /// Its length in bytes.
        len: usize,
        /// The most allowed.
        max: usize,
    },
    /// The store holds as many records as it may.
    #[error("the store is full ({max} records); delete old conversations")]
    Full {
        /// The record limit.
        max: u64,
    },
    /// One batch named the same record twice.
    #[error("one batch of writes named the same record twice")]
    DuplicateInBatch,
    /// Reading or writing the home directory failed.
    #[error("store I/O failed: {0}; check the disk and the directory's permissions")]
    Io(#[from] io::Error),
    /// The database reported an error that is neither I/O nor corruption.
    #[error(
        "store database error: {0}; restart hush, and restore the store from backup if it persists"
    )]
    Database(String),
}

impl StoreError {
    /// A [`StoreError::Corrupt`] naming the damaged part.
    pub(crate) fn corrupt(what: impl Into<String>) -> StoreError {
        StoreError::Corrupt { what: what.into() }
    }
}

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> StoreError {
        match e {
            sled::Error::Io(e) if is_lock_error(&e) => StoreError::InUse,
            sled::Error::Io(e) => StoreError::Io(e),
            sled::Error::Corruption { .. } => StoreError::corrupt("database log"),
            other => StoreError::Database(other.to_string()),
        }
    }
}

/// sled reports a held file lock as a plain I/O error with this text.
pub(crate) fn is_lock_error(e: &io::Error) -> bool {
    e.to_string().contains("could not acquire lock")
}

/// Maps a vault error met while using records (not while unlocking).
impl From<VaultError> for StoreError {
    fn from(e: VaultError) -> StoreError {
        match e {
            VaultError::Io(e) => StoreError::Io(e),
            VaultError::Full { max_slots } => StoreError::Full { max: max_slots },
            VaultError::NotAVault => StoreError::corrupt("key vault header"),
            VaultError::SlotOutOfRange(_) => StoreError::corrupt("key vault truncated"),
            VaultError::CorruptSlot(_) => StoreError::corrupt("key vault slot"),
            VaultError::EmptySlot(_) => StoreError::corrupt("record key missing"),
            VaultError::Decrypt => StoreError::corrupt("record"),
            VaultError::WrongKey => StoreError::corrupt("key vault does not match its key"),
            other => StoreError::Database(other.to_string()),
        }
    }
}
