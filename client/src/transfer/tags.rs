//! The first byte of every record id in the store's `Transfer` namespace, one per kind of
//! record, so that each module can tell its records from the others'.

/// An upload's record (see `state`).
pub(super) const UPLOAD_TAG: u8 = b'u';
/// A download's record (see `state`).
pub(super) const DOWNLOAD_TAG: u8 = b'g';
/// A segment of an upload's piece hashes (see `seals`).
pub(super) const SEAL_TAG: u8 = b'h';
