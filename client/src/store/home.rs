//! The store's home directory: its layout, the plaintext marker file, and file permissions.
//!
//! ```text
//! <home>/            0700
//!   store.marker     0600  magic and key source; written last, so its presence means "created"
//!   device.key       0600  the device key (key-file stores only)
//!   keys.vault       0600  the key vault: one sealed key per record
//!   db/              0700  sled; every value sealed, every key a keyed hash
//! ```
//!
//! What it does not do: hold secrets. The marker says only whether a passphrase is needed, so
//! that a front end can ask for one before trying.

use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::StoreError;

/// The marker file's name.
const MARKER_FILE: &str = "store.marker";
/// The marker file's name while it is being written.
const MARKER_TMP: &str = "store.marker.tmp";
/// The device key file (key-file stores only).
const KEY_FILE: &str = "device.key";
/// The key vault file.
const VAULT_FILE: &str = "keys.vault";
/// The sled database directory.
const DB_DIR: &str = "db";
/// Magic at the start of the marker file.
const MARKER_MAGIC: &[u8; 8] = b"HUSHSTO1";
/// Mode of every directory of the store.
pub(crate) const DIR_MODE: u32 = 0o700;
/// Mode of every file of the store.
pub(crate) const FILE_MODE: u32 = 0o600;

/// How a store's device key is obtained, as recorded in its marker file.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum KeyKind {
    /// A random key in the 0600 file `device.key` in the home directory.
    KeyFile,
    /// A key derived from a passphrase with Argon2id.
    Passphrase,
}

impl KeyKind {
    const fn byte(self) -> u8 {
        match self {
            KeyKind::KeyFile => 0,
            KeyKind::Passphrase => 1,
        }
    }
}

/// The paths of one store.
#[derive(Clone, Debug)]
pub(crate) struct Home {
    pub(crate) dir: PathBuf,
}

impl Home {
    pub(crate) fn new(dir: &Path) -> Home {
        Home {
            dir: dir.to_path_buf(),
        }
    }

    pub(crate) fn key_file(&self) -> PathBuf {
        self.dir.join(KEY_FILE)
    }

    pub(crate) fn vault_file(&self) -> PathBuf {
        self.dir.join(VAULT_FILE)
    }

    pub(crate) fn db_dir(&self) -> PathBuf {
        self.dir.join(DB_DIR)
    }

    fn marker(&self) -> PathBuf {
        self.dir.join(MARKER_FILE)
    }

    /// Creates the directory (mode 0700), or tightens an existing one to 0700.
    pub(crate) fn prepare_dir(&self) -> Result<(), StoreError> {
        DirBuilder::new()
            .recursive(true)
            .mode(DIR_MODE)
            .create(&self.dir)?;
        set_mode(&self.dir, DIR_MODE)?;
        Ok(())
    }

    /// The key kind in the marker file; `None` if there is no store here.
    pub(crate) fn read_marker(&self) -> Result<Option<KeyKind>, StoreError> {
        let bytes = match fs::read(self.marker()) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let kind = match bytes.split_first_chunk::<8>() {
            Some((magic, [b])) if magic == MARKER_MAGIC => [KeyKind::KeyFile, KeyKind::Passphrase]
                .into_iter()
                .find(|k| k.byte() == *b),
            _ => None,
        };
        kind.map(Some)
            .ok_or_else(|| StoreError::corrupt("marker file"))
    }

    /// Writes the marker file durably (temporary file, fsync, rename, directory fsync).
    pub(crate) fn write_marker(&self, kind: KeyKind) -> Result<(), StoreError> {
        let tmp = self.dir.join(MARKER_TMP);
        let _ = fs::remove_file(&tmp);
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(FILE_MODE)
            .open(&tmp)?;
        file.write_all(MARKER_MAGIC)?;
        file.write_all(&[kind.byte()])?;
        file.sync_all()?;
        fs::rename(&tmp, self.marker())?;
        fs::File::open(&self.dir)?.sync_all()?;
        Ok(())
    }

    /// Removes what an interrupted `create` may have left (there is no marker yet).
    pub(crate) fn remove_leftovers(&self) -> Result<(), StoreError> {
        for file in [
            self.key_file(),
            self.vault_file(),
            self.dir.join(MARKER_TMP),
        ] {
            match fs::remove_file(&file) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e.into()),
                _ => {}
            }
        }
        match fs::remove_dir_all(self.db_dir()) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    /// Sets every directory of the store to 0700 and every file to 0600.
    ///
    /// sled creates its files with the process umask; the home directory's 0700 already keeps
    /// other users out, and this makes each file private as well.
    pub(crate) fn tighten_permissions(&self) -> Result<(), StoreError> {
        set_mode(&self.dir, DIR_MODE)?;
        for file in [self.marker(), self.key_file(), self.vault_file()] {
            match fs::symlink_metadata(&file) {
                Ok(meta) if meta.is_file() => set_mode(&file, FILE_MODE)?,
                Ok(_) => return Err(StoreError::corrupt("store file is not a regular file")),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        tighten_tree(&self.db_dir())
    }
}

/// Sets `dir` to 0700 and everything below it to 0700 (directories) or 0600 (files). Symbolic
/// links are left alone and not followed.
fn tighten_tree(dir: &Path) -> Result<(), StoreError> {
    set_mode(dir, DIR_MODE)?;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            tighten_tree(&entry.path())?;
        } else if kind.is_file() {
            set_mode(&entry.path(), FILE_MODE)?;
        }
    }
    Ok(())
}

/// Sets `path`'s permission bits to `mode` unless they already are.
fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    let meta = fs::metadata(path)?;
    if meta.permissions().mode() & 0o7777 != mode {
        fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}
