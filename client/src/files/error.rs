//! What can go wrong in the file cores (the chunked AEAD and its layout).
//!
//! What it does not do: describe transfer failures (relay, disk, interruption); the `Client`
//! says those in its own error.

/// Why a file could not be sealed or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// A chunk failed authentication: the ciphertext was altered, reordered, cut short or
    /// extended, or the key is not the file's.
    #[error("the file was tampered with or corrupted; nothing was written")]
    Tampered,
    /// The file is larger than a file message can describe.
    #[error("the file is {size} bytes, more than the {max} bytes hush can send")]
    TooLarge {
        /// The file's size.
        size: u64,
        /// The most bytes allowed.
        max: u64,
    },
    /// A file message names a chunk size this client cannot use.
    #[error("the file message names an invalid chunk size ({chunk} bytes)")]
    InvalidChunkSize {
        /// The chunk size it named.
        chunk: u32,
    },
    /// A chunk handed to the sealer does not match the file's layout (a caller's mistake).
    #[error("a chunk does not match the file's layout")]
    ChunkMismatch,
}
