//! Named limits of the local store.
//!
//! Callers are local code, not peers, but a limit still keeps one bad caller (or a corrupted
//! record) from making the store allocate without bound.

/// Longest contact name, in bytes of UTF-8.
pub const MAX_NAME_LEN: usize = 256;
/// Longest pending-invitation id, in bytes.
pub const MAX_INVITATION_ID_LEN: usize = 64;
/// Longest file-transfer id, in bytes.
pub const MAX_TRANSFER_ID_LEN: usize = 64;
/// Largest value one record may hold, in bytes (a ratchet state with its full set of skipped
/// keys is far below this).
pub const MAX_VALUE_LEN: usize = 4 << 20;
/// Most records the store may hold at once: the key vault's slot limit.
pub const MAX_RECORDS: u64 = 1 << 22;
