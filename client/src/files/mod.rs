//! Files: the cores of encrypted file transfer.
//!
//! What it does: [`stream`] is the chunked AEAD a file is encrypted with (STREAM over
//! XChaCha20-Poly1305, one sealed chunk per relay write); [`layout`] cuts a file into chunks
//! and its blob into pieces; [`padding`] pads the blob to a Padmé length so the relay does not
//! learn the file's size; [`name`] sanitises the file name a contact suggests; `window` keeps
//! pipelined relay requests in order. The transfer itself (upload, resume, download, staging, deletion) is driven by the
//! `Client` (see `docs/files.md`).
//!
//! What it does not do: I/O, clocks or system randomness. Keys and prefixes are drawn from an
//! RNG the caller passes, and the ciphertext's SHA-256 is kept by the caller as it streams.

mod error;
pub mod layout;
pub mod name;
pub mod padding;
pub mod stream;
pub(crate) mod window;

#[cfg(test)]
mod stream_tests;

pub use error::FileError;
pub use layout::{Layout, CIPHER_CHUNK, PLAIN_CHUNK};
pub use name::{sanitise_name, MAX_FILE_NAME_LEN};
pub use padding::{padme, Padding};
pub use stream::{ChunkCipher, FileKey, NoncePrefix, FILE_KEY_LEN, NONCE_PREFIX_LEN};
