//! Turning a staged ciphertext into the received file: check its length and digest, open
//! every chunk (on two threads) into a temporary file beside the destination, and link the
//! result into place only if every chunk opened. The temporary file is removed on any error,
//! and the destination is never overwritten.
//!
//! What it does not do: download (see `download`) or touch the network.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use rand::rngs::OsRng;
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::staging::io_error;
use crate::client::error::ClientError;
use crate::conversation::FileRef;
use crate::files::{ChunkCipher, Layout};

/// Size of the buffer the ciphertext is read and written through.
pub(super) const WRITE_BUFFER: usize = 256 * 1024;

/// Feeds the first `len` bytes of `file` to `hasher`.
pub(super) fn hash_prefix(file: &File, len: u64, hasher: &mut Sha256) -> io::Result<()> {
    let mut buf = vec![0u8; WRITE_BUFFER];
    let mut at = 0u64;
    while at < len {
        let n = usize::try_from(len - at).map_or(buf.len(), |r| r.min(buf.len()));
        file.read_exact_at(&mut buf[..n], at)?;
        hasher.update(&buf[..n]);
        at += n as u64;
    }
    Ok(())
}

/// Checks the staged ciphertext (its length and digest) and only then opens every chunk into
/// a temporary file beside `dest` and links the result into place. `fetched` is the digest of
/// the staged bytes if the download computed it, else it is computed here. On any error the
/// temporary file is removed; a wrong length or digest fails before it is created.
pub(super) fn decrypt_into(
    file: &FileRef,
    layout: Layout,
    staged: &Path,
    dest: &Path,
    fetched: Option<[u8; 32]>,
) -> Result<(), ClientError> {
    let input = File::open(staged).map_err(io_error(staged))?;
    let len = input.metadata().map_err(io_error(staged))?.len();
    if len != layout.cipher_len() {
        return Err(ClientError::FileTampered);
    }
    let digest = match fetched {
        Some(d) => d,
        None => {
            let mut hasher = Sha256::new();
            hash_prefix(&input, len, &mut hasher).map_err(io_error(staged))?;
            hasher.finalize().into()
        }
    };
    if digest != file.digest {
        return Err(ClientError::FileTampered);
    }
    let dir = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let tmp = dir.join(format!(".hush-{:016x}.part", OsRng.next_u64()));
    let out = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io_error(&tmp))?;
    let result =
        decrypt_stream(file, layout, staged, &input, out, &tmp).and_then(|()| place(&tmp, dest));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// How many threads open chunks at once.
const DECRYPT_THREADS: u64 = 2;

/// Opens every chunk of `input` (already checked: its length and digest) into `out`, the
/// chunks split into [`DECRYPT_THREADS`] contiguous ranges opened side by side, each chunk
/// written at its own plaintext offset, then syncs `out`.
fn decrypt_stream(
    file: &FileRef,
    layout: Layout,
    staged: &Path,
    input: &File,
    out: File,
    tmp: &Path,
) -> Result<(), ClientError> {
    let cipher = ChunkCipher::new(&file.key, file.nonce_prefix, layout);
    let chunks = layout.chunks();
    let per = chunks.div_ceil(DECRYPT_THREADS).max(1);
    let open_range = |from: u64, to: u64| -> Result<(), ClientError> {
        let mut buf = Vec::with_capacity(layout.cipher_chunk() as usize);
        for i in from..to {
            buf.resize(layout.cipher_len_of(i), 0);
            input
                .read_exact_at(&mut buf, layout.cipher_offset(i))
                .map_err(io_error(staged))?;
            cipher
                .open(i, &mut buf)
                .map_err(|_| ClientError::FileTampered)?;
            out.write_all_at(&buf, layout.plain_offset(i))
                .map_err(io_error(tmp))?;
        }
        Ok(())
    };
    let results: Vec<Result<(), ClientError>> = std::thread::scope(|s| {
        let handles: Vec<_> = (1..DECRYPT_THREADS)
            .map(|t| {
                let (from, to) = ((t * per).min(chunks), ((t + 1) * per).min(chunks));
                let open_range = &open_range;
                s.spawn(move || open_range(from, to))
            })
            .collect();
        let mut results = vec![open_range(0, per.min(chunks))];
        for h in handles {
            results.push(h.join().unwrap_or_else(|_| {
                Err(ClientError::FileIo {
                    path: tmp.to_path_buf(),
                    source: io::Error::other("a decryption thread panicked"),
                })
            }));
        }
        results
    });
    for r in results {
        r?;
    }
    out.sync_all().map_err(io_error(tmp))
}

/// Moves `tmp` to `dest` without ever replacing an existing file.
fn place(tmp: &Path, dest: &Path) -> Result<(), ClientError> {
    match fs::hard_link(tmp, dest) {
        Ok(()) => fs::remove_file(tmp).map_err(io_error(tmp)),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(ClientError::FileExists {
            path: dest.to_path_buf(),
        }),
        // A file system without hard links: check, then rename.
        Err(_) if fs::symlink_metadata(dest).is_ok() => Err(ClientError::FileExists {
            path: dest.to_path_buf(),
        }),
        Err(_) => fs::rename(tmp, dest).map_err(io_error(dest)),
    }
}
