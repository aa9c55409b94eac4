//! The blob store's fixed parameters: where it keeps its files, how much it may hold, and the
//! hash under which it keeps a capability.
//!
//! What it does not do: read settings (the relay's configuration makes [`BlobLimits`]) or
//! keep the budget (each backend does); it holds the checks every backend makes alike.

use hush_protocol::BlobCapability;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::BlobError;

/// Subdirectory of the data directory that holds the blobs.
pub const BLOB_DIR: &str = "blobs";
/// The blob key vault, inside [`BLOB_DIR`].
pub const VAULT_FILE: &str = "keys.vault";
/// The device key file that unlocks the vault, in the data directory (shared with the queue
/// store's vault).
pub const KEY_FILE: &str = "device.key";
/// Most blobs held at once (65,536): one vault slot, one file and a few hundred bytes of
/// memory each.
pub const MAX_STORED_BLOBS: u64 = 1 << 16;
/// Largest blob any configuration may allow (128 GiB), well inside the at-rest keystream's
/// 256 GiB.
pub const MAX_BLOB_BYTES: u64 = 1 << 37;

/// SHA-256 of a blob capability. The relay never stores the capability itself.
pub type CapHash = [u8; 32];

/// The hash under which the store keeps `cap`.
pub(super) fn cap_hash(cap: &BlobCapability) -> CapHash {
    Sha256::digest(cap.as_bytes()).into()
}

/// The limits a blob store enforces.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct BlobLimits {
    /// Largest `total_len` accepted.
    pub max_bytes: u64,
    /// Most bytes all blobs together may reserve (each counts `total_len + HEADER_LEN`).
    pub budget_bytes: u64,
    /// Longest blob lifetime in seconds; requested TTLs are capped at it.
    pub max_ttl_secs: u64,
}

impl BlobLimits {
    /// Refuses a new blob whose two capabilities are equal (compared in constant time) or
    /// whose length is over [`BlobLimits::max_bytes`].
    pub(super) fn check_new(
        &self,
        write_hash: &CapHash,
        read_hash: &CapHash,
        total_len: u64,
    ) -> Result<(), BlobError> {
        if bool::from(write_hash.ct_eq(read_hash)) {
            return Err(BlobError::Malformed(
                "the read and write capabilities are equal",
            ));
        }
        if total_len > self.max_bytes {
            return Err(BlobError::TooLarge);
        }
        Ok(())
    }

    /// When a blob created at `now` with a requested TTL of `ttl_secs` expires: `0` means
    /// the longest lifetime, and a longer TTL is capped at it.
    pub(super) fn expiry(&self, ttl_secs: u32, now: u64) -> u64 {
        let ttl = match ttl_secs {
            0 => self.max_ttl_secs,
            t => u64::from(t).min(self.max_ttl_secs),
        };
        now.saturating_add(ttl)
    }
}
