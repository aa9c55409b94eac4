//! Turning a staged ciphertext into the received file: check its length, digest and padding,
//! open every chunk (on two threads) into a file that has no name, and link it into place only if
//! every chunk opened. The destination is never overwritten.
//!
//! On Linux the output is an unnamed file (`O_TMPFILE` in the destination's directory), linked
//! into place with `linkat` once complete: a crash, a kill or a power loss before then leaves
//! no file behind. Where that is not supported (another system, or a file system that refuses
//! `O_TMPFILE`), the output is `.hush-<random>.part` beside the destination, its name on record
//! in the store before the file is created (see `parts`), so that the next open removes it if
//! the save never finished. Either way the output is removed on any error or cancellation.
//!
//! What it does not do: download (see `download`) or touch the network.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use rand::rngs::OsRng;
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::disk::io_error;
use super::hooks;
use super::parts::{Part, Parts};
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

/// Where decrypting puts the plaintext, and what it needs to stop cleanly.
pub(super) struct Sink<'a> {
    /// The destination (checked not to exist).
    pub(super) dest: &'a Path,
    /// Where temporary names go on record.
    pub(super) parts: &'a Parts,
    /// Set when the save is abandoned: decrypting stops and removes what it wrote.
    pub(super) cancel: &'a AtomicBool,
}

/// The file being decrypted into, before it has its name.
enum Output {
    /// An unnamed file in the destination's directory.
    Unnamed(File),
    /// A temporary name on record.
    Named(File, Part),
}

impl Output {
    fn file(&self) -> &File {
        match self {
            Output::Unnamed(f) | Output::Named(f, _) => f,
        }
    }

    /// The output's own path, for errors.
    fn path<'a>(&'a self, dest: &'a Path) -> &'a Path {
        match self {
            Output::Unnamed(_) => dest,
            Output::Named(_, part) => &part.path,
        }
    }

    /// Creates the output in `dir`: an unnamed file if the system can, else a temporary name
    /// put on record first.
    fn create(dir: &Path, parts: &Parts) -> Result<Output, ClientError> {
        if !hooks::named_temp_forced() {
            if let Some(f) = unnamed::open(dir).map_err(io_error(dir))? {
                return Ok(Output::Unnamed(f));
            }
        }
        let tmp = dir.join(format!(".hush-{:016x}.part", OsRng.next_u64()));
        let part = parts.begin(&tmp)?;
        let opened = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&part.path);
        match opened {
            Ok(f) => Ok(Output::Named(f, part)),
            Err(e) => {
                part.finish()?;
                Err(io_error(&tmp)(e))
            }
        }
    }

    /// Gives the complete output the name `dest`, never replacing an existing file.
    fn place(self, dest: &Path) -> Result<(), ClientError> {
        match self {
            Output::Unnamed(f) => match unnamed::link(&f, dest) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(exists(dest)),
                Err(e) => Err(io_error(dest)(e)),
            },
            Output::Named(f, part) => {
                drop(f);
                let placed = place(&part.path, dest);
                if placed.is_err() {
                    let _ = fs::remove_file(&part.path);
                }
                part.finish()?;
                placed
            }
        }
    }

    /// Removes what was written.
    fn discard(self) {
        if let Output::Named(f, part) = self {
            drop(f);
            let _ = fs::remove_file(&part.path);
            if let Err(e) = part.finish() {
                tracing::warn!(error = %e, "a removed temporary file stays on record");
            }
        }
    }
}

fn exists(dest: &Path) -> ClientError {
    ClientError::FileExists {
        path: dest.to_path_buf(),
    }
}

/// Unnamed files: `O_TMPFILE`, then `linkat` through `/proc/self/fd`.
#[cfg(target_os = "linux")]
mod unnamed {
    use std::fs::File;
    use std::io;
    use std::os::fd::AsRawFd;
    use std::path::Path;

    use rustix::fs::{linkat, AtFlags, Mode, OFlags, CWD};
    use rustix::io::Errno;

    /// An unnamed file in `dir`, or `None` where the system or file system cannot make one.
    pub(super) fn open(dir: &Path) -> io::Result<Option<File>> {
        if !Path::new("/proc/self/fd").is_dir() {
            return Ok(None);
        }
        let flags = OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC;
        match rustix::fs::open(dir, flags, Mode::from_raw_mode(0o600)) {
            Ok(fd) => Ok(Some(File::from(fd))),
            Err(e) if e == Errno::OPNOTSUPP || e == Errno::ISDIR || e == Errno::INVAL => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Gives `file` the name `dest`; fails with `AlreadyExists` if `dest` exists.
    pub(super) fn link(file: &File, dest: &Path) -> io::Result<()> {
        let fd = format!("/proc/self/fd/{}", file.as_raw_fd());
        linkat(CWD, fd.as_str(), CWD, dest, AtFlags::SYMLINK_FOLLOW).map_err(Into::into)
    }
}

/// Elsewhere: no unnamed files.
#[cfg(not(target_os = "linux"))]
mod unnamed {
    use std::fs::File;
    use std::io;
    use std::path::Path;

    pub(super) fn open(_dir: &Path) -> io::Result<Option<File>> {
        Ok(None)
    }

    pub(super) fn link(_file: &File, _dest: &Path) -> io::Result<()> {
        Err(io::ErrorKind::Unsupported.into())
    }
}

/// Checks the staged blob (its length, digest and padding) and only then opens every chunk into
/// an output beside `sink.dest` (see the module docs) and gives it that name. `fetched` is the
/// digest of the staged bytes if the download computed it, else it is computed here. On any
/// error, or once `sink.cancel` is set, the output is removed; a wrong length or digest fails
/// before it is created.
pub(super) fn decrypt_into(
    file: &FileRef,
    layout: Layout,
    staged: &Path,
    sink: &Sink<'_>,
    fetched: Option<[u8; 32]>,
) -> Result<(), ClientError> {
    let input = File::open(staged).map_err(io_error(staged))?;
    let len = input.metadata().map_err(io_error(staged))?.len();
    if len != layout.blob_len() {
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
    check_padding(file, layout, staged, &input)?;
    let dir = match sink.dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let out = Output::create(&dir, sink.parts)?;
    let path = out.path(sink.dest).to_path_buf();
    match decrypt_stream(file, layout, staged, &input, out.file(), &path, sink.cancel) {
        Ok(()) => out.place(sink.dest),
        Err(e) => {
            out.discard();
            Err(e)
        }
    }
}

/// Checks every padding piece after the ciphertext in `input`: each must be the keystream the
/// file key makes for it, or the blob was tampered with.
fn check_padding(
    file: &FileRef,
    layout: Layout,
    staged: &Path,
    input: &File,
) -> Result<(), ClientError> {
    let cipher = ChunkCipher::new(&file.key, file.nonce_prefix, layout);
    let mut buf = Vec::new();
    for i in layout.chunks()..layout.pieces() {
        let len = usize::try_from(layout.piece_len(i)).map_err(|_| ClientError::FileTampered)?;
        buf.resize(len, 0);
        input
            .read_exact_at(&mut buf, layout.piece_offset(i))
            .map_err(io_error(staged))?;
        cipher
            .check_padding(i, &buf)
            .map_err(|_| ClientError::FileTampered)?;
    }
    Ok(())
}

/// How many threads open chunks at once.
const DECRYPT_THREADS: u64 = 2;

/// Opens every chunk of `input` (already checked: its length and digest) into `out`, the
/// chunks split into [`DECRYPT_THREADS`] contiguous ranges opened side by side, each chunk
/// written at its own plaintext offset, then syncs `out`. Stops with an error once `cancel` is
/// set.
fn decrypt_stream(
    file: &FileRef,
    layout: Layout,
    staged: &Path,
    input: &File,
    out: &File,
    tmp: &Path,
    cancel: &AtomicBool,
) -> Result<(), ClientError> {
    let cipher = ChunkCipher::new(&file.key, file.nonce_prefix, layout);
    let chunks = layout.chunks();
    let per = chunks.div_ceil(DECRYPT_THREADS).max(1);
    let open_range = |from: u64, to: u64| -> Result<(), ClientError> {
        let mut buf = Vec::with_capacity(layout.cipher_chunk() as usize);
        for i in from..to {
            if cancel.load(Ordering::Relaxed) {
                return Err(cancelled(tmp));
            }
            buf.resize(layout.cipher_len_of(i), 0);
            input
                .read_exact_at(&mut buf, layout.cipher_offset(i))
                .map_err(io_error(staged))?;
            cipher
                .open(i, &mut buf)
                .map_err(|_| ClientError::FileTampered)?;
            out.write_all_at(&buf, layout.plain_offset(i))
                .map_err(io_error(tmp))?;
            if i == 0 {
                hooks::pause_point(cancel);
            }
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

/// The error of a save abandoned while it decrypted.
fn cancelled(path: &Path) -> ClientError {
    ClientError::FileIo {
        path: path.to_path_buf(),
        source: io::Error::new(io::ErrorKind::Interrupted, "the save was cancelled"),
    }
}

/// Moves `tmp` to `dest` without ever replacing an existing file.
fn place(tmp: &Path, dest: &Path) -> Result<(), ClientError> {
    match fs::hard_link(tmp, dest) {
        Ok(()) => fs::remove_file(tmp).map_err(io_error(tmp)),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(exists(dest)),
        // A file system without hard links: check, then rename.
        Err(_) if fs::symlink_metadata(dest).is_ok() => Err(exists(dest)),
        Err(_) => fs::rename(tmp, dest).map_err(io_error(dest)),
    }
}
