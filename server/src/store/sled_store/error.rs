//! How the sled store's failures become [`StoreError::Backend`], and which of them are worth
//! retrying.
//!
//! I/O errors (from sled, the key vault or the store's own files) are classified by their kind
//! ([`BackendFailure::of_io`]): a full disk or a timeout is transient. A full key vault is
//! transient too: slots come back as envelopes are acked, retracted or expire. Everything else
//! (corrupt records, unusable keys, a refused or unsupported operation, a panicked task, a
//! store that has stopped) is permanent.
//!
//! What it does not do: decide what the relay answers (every backend failure is a `Storage`
//! error to the client) or retry anything.

use std::fmt::Display;
use std::io;

use hush_vault::VaultError;

use crate::store::{BackendFailure, StoreError};

/// A failure of one of the store's layers, and whether it may clear.
pub(super) trait Failure: Display {
    /// Whether the same operation may succeed if tried again.
    fn kind(&self) -> BackendFailure;
}

impl Failure for sled::Error {
    fn kind(&self) -> BackendFailure {
        match self {
            sled::Error::Io(e) => BackendFailure::of_io(e),
            // Corruption, an unsupported operation, a reportable bug or a missing tree.
            _ => BackendFailure::Permanent,
        }
    }
}

impl Failure for io::Error {
    fn kind(&self) -> BackendFailure {
        BackendFailure::of_io(self)
    }
}

impl Failure for VaultError {
    fn kind(&self) -> BackendFailure {
        match self {
            VaultError::Io(e) => BackendFailure::of_io(e),
            VaultError::Full { .. } => BackendFailure::Transient,
            _ => BackendFailure::Permanent,
        }
    }
}

impl Failure for tokio::task::JoinError {
    /// The task panicked, or the runtime is shutting down.
    fn kind(&self) -> BackendFailure {
        BackendFailure::Permanent
    }
}

/// A failure the store itself describes: corrupt or unexpected records, a stopped thread.
impl Failure for &str {
    fn kind(&self) -> BackendFailure {
        BackendFailure::Permanent
    }
}

/// As for `&str`.
impl Failure for String {
    fn kind(&self) -> BackendFailure {
        BackendFailure::Permanent
    }
}

/// `e` as a store error.
pub(super) fn backend(e: impl Failure) -> StoreError {
    StoreError::Backend {
        kind: e.kind(),
        detail: e.to_string(),
    }
}

/// `e` as a store error, its detail prefixed with what was being done.
pub(super) fn failed(what: &str, e: impl Failure) -> StoreError {
    StoreError::Backend {
        kind: e.kind(),
        detail: format!("{what}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_disks_and_full_vaults_are_transient_corruption_is_permanent() {
        let full = io::Error::from(io::ErrorKind::StorageFull);
        assert!(backend(full).is_transient());
        assert!(backend(VaultError::Full { max_slots: 1 }).is_transient());
        let timeout = sled::Error::Io(io::Error::from(io::ErrorKind::TimedOut));
        assert!(failed("database flush failed", timeout).is_transient());
        let corrupt = sled::Error::Unsupported("x".into());
        assert!(!backend(corrupt).is_transient());
        assert!(!backend(VaultError::CorruptSlot(3)).is_transient());
        assert!(!backend("corrupt queue record").is_transient());
        let denied = io::Error::from(io::ErrorKind::PermissionDenied);
        assert!(!backend(denied).is_transient());
    }
}
