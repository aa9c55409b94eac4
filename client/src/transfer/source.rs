//! The file an upload reads: opened once, identified by its [`FileStamp`] (size, modification
//! and change times, device and inode), and read one piece of the blob at a time.
//!
//! A piece is a sealed chunk, read at its own offset and sealed under the file key, or a
//! padding piece, which is made from the key alone (see `crate::files::padding`).
//! [`Source::check`] compares the file (through the open handle and through its path) with the
//! stamp taken when it was opened: an upload calls it before every attempt and once the last
//! piece is on the relay, and stops with [`ClientError::FileChanged`] if anything moved.
//!
//! What it does not do: remember what was sent (see `seals`) or talk to a relay.

use std::fs::{File, Metadata};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use super::disk::io_error;
use crate::client::error::ClientError;
use crate::files::{sanitise_name, ChunkCipher, FileError};

/// What identifies one version of a file: if any of it differs, the content may differ.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub(crate) struct FileStamp {
    /// Size in bytes.
    pub(crate) size: u64,
    /// Last modification (seconds, nanoseconds since the epoch).
    pub(crate) mtime: (u64, u32),
    /// Last status change (seconds, nanoseconds since the epoch); 0 where the system has none.
    pub(crate) ctime: (u64, u32),
    /// The device holding the file; 0 where the system has none.
    pub(crate) dev: u64,
    /// The file's inode; 0 where the system has none.
    pub(crate) inode: u64,
}

/// Seconds and nanoseconds from a signed Unix time, clamped at the epoch.
#[cfg(unix)]
fn unix_time(secs: i64, nanos: i64) -> (u64, u32) {
    match (u64::try_from(secs), u32::try_from(nanos)) {
        (Ok(s), Ok(n)) => (s, n),
        _ => (0, 0),
    }
}

impl FileStamp {
    /// The stamp of a file with this metadata.
    pub(crate) fn of(meta: &Metadata) -> FileStamp {
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or((0, 0), |d| (d.as_secs(), d.subsec_nanos()));
        let stamp = FileStamp {
            size: meta.len(),
            mtime,
            ..FileStamp::default()
        };
        Self::with_system_fields(stamp, meta)
    }

    #[cfg(unix)]
    fn with_system_fields(stamp: FileStamp, meta: &Metadata) -> FileStamp {
        use std::os::unix::fs::MetadataExt;
        FileStamp {
            ctime: unix_time(meta.ctime(), meta.ctime_nsec()),
            dev: meta.dev(),
            inode: meta.ino(),
            ..stamp
        }
    }

    #[cfg(not(unix))]
    fn with_system_fields(stamp: FileStamp, _meta: &Metadata) -> FileStamp {
        stamp
    }
}

/// The source file, opened, with the stamp of the version being sent.
pub(super) struct Source {
    pub(super) path: PathBuf,
    file: File,
    pub(super) stamp: FileStamp,
}

impl Source {
    /// Opens the regular file at `path` (made canonical) and takes its stamp.
    pub(super) fn open(path: &Path) -> Result<Source, ClientError> {
        let path = std::fs::canonicalize(path).map_err(io_error(path))?;
        let file = File::open(&path).map_err(io_error(&path))?;
        let meta = file.metadata().map_err(io_error(&path))?;
        if !meta.is_file() {
            let e = io::Error::new(io::ErrorKind::InvalidInput, "not a regular file");
            return Err(ClientError::FileIo { path, source: e });
        }
        Ok(Source {
            stamp: FileStamp::of(&meta),
            path,
            file,
        })
    }

    /// The error of a source that changed.
    pub(super) fn changed(&self) -> ClientError {
        ClientError::FileChanged {
            path: self.path.clone(),
        }
    }

    /// Fails with [`ClientError::FileChanged`] unless both the open file and the file now at
    /// the path still have the stamp taken when it was opened.
    pub(super) fn check(&self) -> Result<(), ClientError> {
        let open = self.file.metadata().map_err(io_error(&self.path))?;
        let named = std::fs::metadata(&self.path).map_err(|_| self.changed())?;
        if FileStamp::of(&open) == self.stamp && FileStamp::of(&named) == self.stamp {
            Ok(())
        } else {
            Err(self.changed())
        }
    }

    /// Piece `index` of the blob: chunk `index` read and sealed, or a padding piece.
    pub(super) fn piece(&self, cipher: &ChunkCipher, index: u64) -> Result<Vec<u8>, ClientError> {
        let layout = cipher.layout();
        if layout.is_padding(index) {
            return cipher
                .padding_piece(index)
                .map_err(|e| self.layout_error(e));
        }
        let mut buf = vec![0u8; layout.plain_len_of(index)];
        match self
            .file
            .read_exact_at(&mut buf, layout.plain_offset(index))
        {
            Ok(()) => {}
            // Shorter than it was: it changed.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Err(self.changed()),
            Err(e) => return Err(io_error(&self.path)(e)),
        }
        cipher
            .seal(index, &mut buf)
            .map_err(|e| self.layout_error(e))?;
        Ok(buf)
    }

    /// A piece that does not fit the layout: the caller's mistake, reported as an I/O error.
    fn layout_error(&self, e: FileError) -> ClientError {
        ClientError::FileIo {
            path: self.path.clone(),
            source: io::Error::new(io::ErrorKind::InvalidInput, e),
        }
    }

    /// The name the file message suggests.
    pub(super) fn file_name(&self) -> String {
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        sanitise_name(&name)
    }
}
