//! [`BlobError`]: why a blob operation failed, and the wire code each failure becomes.
//!
//! What it does not do: log. The request handler logs storage failures (without ids or
//! capabilities); the refusals a client causes are not worth a log line.

use std::io;

use hush_protocol::ErrorCode;
use hush_vault::VaultError;

/// Why a blob operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BlobError {
    /// No live blob has that id, or the capability does not authorise the operation. The two
    /// are deliberately the same error.
    #[error("no such blob, or the capability does not match")]
    NotFound,
    /// A write did not start at the blob's committed length.
    #[error("write offset is not the blob's committed length {committed}")]
    Offset {
        /// Where the next write must start.
        committed: u64,
    },
    /// A read before the upload finished.
    #[error("the blob's upload has not finished")]
    Incomplete,
    /// The blob is larger than the relay accepts, or a write runs past its declared length.
    #[error("blob larger than this relay accepts, or write past the declared length")]
    TooLarge,
    /// The blob budget, the blob count limit or the disk cannot hold the blob.
    #[error("no space for the blob")]
    NoSpace,
    /// The request is self-contradictory (equal capabilities, a read past the end, a read
    /// longer than the chunk limit).
    #[error("invalid blob request: {0}")]
    Malformed(&'static str),
    /// Reading or writing a blob file failed.
    #[error("blob file I/O failed: {0}")]
    Io(io::Error),
    /// The blob key vault failed.
    #[error("blob key vault failed: {0}")]
    Vault(VaultError),
    /// A blob file's header is damaged or does not match its key.
    #[error("blob file is damaged: {0}")]
    Corrupt(&'static str),
    /// A blocking task panicked or was cancelled.
    #[error("blob task failed: {0}")]
    Task(String),
    /// The shared blob backend (NATS JetStream) could not be reached or failed the request.
    /// Nothing the client did is at fault: it retries later.
    #[error("blob backend failed: {0}")]
    Backend(String),
}

/// Whether an I/O error means the disk (or the user's quota on it) is full.
fn is_disk_full(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::StorageFull || e.kind() == io::ErrorKind::QuotaExceeded
}

/// A JetStream call of the blob backend failed: retryable, as every store failure is.
impl From<crate::store::StoreError> for BlobError {
    fn from(e: crate::store::StoreError) -> BlobError {
        BlobError::Backend(e.to_string())
    }
}

impl From<io::Error> for BlobError {
    /// A full disk becomes [`BlobError::NoSpace`]; anything else stays an I/O error.
    fn from(e: io::Error) -> Self {
        if is_disk_full(&e) {
            BlobError::NoSpace
        } else {
            BlobError::Io(e)
        }
    }
}

impl From<VaultError> for BlobError {
    /// A full vault (the blob count limit) or a full disk under it become
    /// [`BlobError::NoSpace`].
    fn from(e: VaultError) -> Self {
        match e {
            VaultError::Full { .. } => BlobError::NoSpace,
            VaultError::Io(io) if is_disk_full(&io) => BlobError::NoSpace,
            other => BlobError::Vault(other),
        }
    }
}

impl BlobError {
    /// The code the client receives.
    pub fn code(&self) -> ErrorCode {
        match self {
            BlobError::NotFound => ErrorCode::NoBlob,
            BlobError::Offset { .. } => ErrorCode::BlobOffset,
            BlobError::Incomplete => ErrorCode::BlobIncomplete,
            BlobError::TooLarge => ErrorCode::TooLarge,
            BlobError::NoSpace => ErrorCode::NoSpace,
            BlobError::Malformed(_) => ErrorCode::Malformed,
            BlobError::Io(_)
            | BlobError::Vault(_)
            | BlobError::Corrupt(_)
            | BlobError::Task(_)
            | BlobError::Backend(_) => ErrorCode::Storage,
        }
    }

    /// Whether this is the relay's own failure rather than a refusal of the request.
    pub fn is_internal(&self) -> bool {
        self.code() == ErrorCode::Storage
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_is_no_space_and_other_io_errors_are_storage() {
        let full = BlobError::from(io::Error::from(io::ErrorKind::StorageFull));
        assert_eq!(full.code(), ErrorCode::NoSpace);
        let quota = BlobError::from(io::Error::from(io::ErrorKind::QuotaExceeded));
        assert_eq!(quota.code(), ErrorCode::NoSpace);
        let enospc = BlobError::from(io::Error::from_raw_os_error(28));
        assert_eq!(enospc.code(), ErrorCode::NoSpace);
        let other = BlobError::from(io::Error::from(io::ErrorKind::PermissionDenied));
        assert_eq!(other.code(), ErrorCode::Storage);
        assert!(other.is_internal() && !full.is_internal());
        let vault_full = BlobError::from(VaultError::Full { max_slots: 1 });
        assert_eq!(vault_full.code(), ErrorCode::NoSpace);
        let backend = BlobError::Backend("nats gone".to_owned());
        assert_eq!(backend.code(), ErrorCode::Storage);
        assert!(backend.is_internal());
    }
}
