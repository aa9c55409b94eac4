//! The file-system side of transfers: the staging directory, removing files that may be gone,
//! and naming the path in an I/O error.
//!
//! What it does not do: decide what is staged or removed (`staging`, `state` and `parts` do).

use std::fs::{self, DirBuilder};
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use crate::client::error::ClientError;

/// The directory of staged downloads, inside the home.
const FILES_DIR: &str = "files";

/// Turns an I/O error on `path` into the client's error that names it.
pub(crate) fn io_error(path: &Path) -> impl FnOnce(io::Error) -> ClientError + '_ {
    move |source| ClientError::FileIo {
        path: path.to_path_buf(),
        source,
    }
}

/// The directory of staged downloads.
pub(super) fn files_dir(home: &Path) -> PathBuf {
    home.join(FILES_DIR)
}

/// Creates the staging directory (mode 0700) if needed.
pub(crate) fn ensure_files_dir(home: &Path) -> io::Result<PathBuf> {
    let dir = files_dir(home);
    DirBuilder::new().recursive(true).mode(0o700).create(&dir)?;
    Ok(dir)
}

/// Removes a file, which may not exist.
pub(crate) fn remove_if_there(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}
