//! Fixtures for the blob tests: fresh capability pairs, chunked upload and download over a
//! [`RelayClient`], and a raw search of a data directory for pieces of some bytes.
//!
//! What it does not do: retry or resume on its own; a test that wants a resume asks for the
//! blob's status and passes the offset.

use std::path::{Path, PathBuf};

use hush_client::net::{RelayCallError, RelayClient};
use hush_protocol::limits::MAX_BLOB_CHUNK;
use hush_protocol::{BlobCapability, BlobId};
use rand::rngs::OsRng;
use rand::RngCore;

/// A fresh (write, read) capability pair.
pub fn blob_caps() -> (BlobCapability, BlobCapability) {
    let (mut w, mut r) = ([0u8; 32], [0u8; 32]);
    OsRng.fill_bytes(&mut w);
    OsRng.fill_bytes(&mut r);
    (BlobCapability::from_bytes(w), BlobCapability::from_bytes(r))
}

/// `n` random bytes.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    OsRng.fill_bytes(&mut v);
    v
}

/// Uploads `data[from..]` in chunks of at most `MAX_BLOB_CHUNK`, checking each answer.
pub async fn upload(
    client: &RelayClient,
    id: BlobId,
    write_cap: &BlobCapability,
    data: &[u8],
    from: usize,
) -> Result<(), RelayCallError> {
    let mut at = from;
    while at < data.len() {
        let end = (at + MAX_BLOB_CHUNK).min(data.len());
        let committed = client
            .blob_write(id, write_cap, at as u64, data[at..end].to_vec())
            .await?;
        assert_eq!(committed, end as u64, "committed length after a write");
        at = end;
    }
    Ok(())
}

/// Downloads a complete blob of `len` bytes in reads of `chunk` bytes.
pub async fn download(
    client: &RelayClient,
    id: BlobId,
    read_cap: &BlobCapability,
    len: usize,
    chunk: u32,
) -> Result<Vec<u8>, RelayCallError> {
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        let part = client
            .blob_read(id, read_cap, out.len() as u64, chunk)
            .await?;
        assert!(!part.is_empty(), "a read before the end returned nothing");
        assert!(
            part.len() <= chunk as usize,
            "a read returned more than asked"
        );
        out.extend_from_slice(&part);
    }
    Ok(out)
}

/// Every file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// The files under `dir` holding any 32-byte piece of `needle` that starts at a multiple of
/// 32, so a surviving copy of any 63 consecutive bytes of it is found. Panics if `dir` holds no
/// readable file or a file could not be read (see [`crate::forensic::files_holding`]).
#[track_caller]
pub fn files_with_a_piece_of(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    crate::forensic::files_holding(dir, &crate::forensic::Pattern::pieces(needle, 32))
}

/// The blob files in a relay's data directory.
pub fn blob_files(data_dir: &Path) -> Vec<PathBuf> {
    files_under(&data_dir.join(hush_server::blob::BLOB_DIR))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "blob"))
        .collect()
}
