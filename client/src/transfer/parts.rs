//! The names of decrypted temporary files, on record before their first byte.
//!
//! Where the file system cannot make an unnamed file (see `decrypt`), a save decrypts into
//! `.hush-<random>.part` beside the destination. That name is written to the encrypted store
//! (`Transfer` namespace) before the file is created, and the record is removed only once the
//! file is linked into place and removed, or removed after a failure. A save cut off by a crash,
//! a kill or a power loss leaves the record, and [`Parts::clean`] (run when a home is opened and
//! on every tick) removes the file it names. A save in progress in this process is never
//! touched. A record that does not decode is removed.
//!
//! What it does not do: write the file (see `decrypt`).

use std::collections::HashSet;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use zeroize::Zeroizing;

use super::disk::{io_error, remove_if_there};
use super::state::random_key;
use crate::client::error::ClientError;
use crate::conversation::codec::{versioned_reader, versioned_writer, DecodeError};
use crate::store::{LocalStore, Namespace, StoreKey};

/// First byte of a temporary file's record id.
pub(super) const PART_TAG: u8 = b'p';
/// Longest path kept in a record, in bytes.
const MAX_PART_PATH_LEN: usize = 4096;

/// The temporary files on record, and which of them a save in this process is writing.
#[derive(Clone)]
pub(crate) struct Parts {
    store: Arc<LocalStore>,
    active: Arc<Mutex<HashSet<Vec<u8>>>>,
}

/// A temporary file on record, being written by this process.
pub(crate) struct Part {
    parts: Parts,
    key: StoreKey,
    /// Where the file is.
    pub(crate) path: PathBuf,
}

fn id_of(key: &StoreKey) -> Vec<u8> {
    match key {
        StoreKey::Transfer(id) => id.clone(),
        _ => Vec::new(),
    }
}

fn encode(path: &Path) -> Zeroizing<Vec<u8>> {
    let mut w = versioned_writer(64);
    w.bytes(path.as_os_str().as_bytes());
    Zeroizing::new(w.finish())
}

fn decode(bytes: &[u8]) -> Result<PathBuf, DecodeError> {
    let mut r = versioned_reader(bytes)?;
    let path = PathBuf::from(OsStr::from_bytes(r.bytes(MAX_PART_PATH_LEN)?));
    r.finish()?;
    if !path.is_absolute() {
        return Err(DecodeError::InvalidValue);
    }
    Ok(path)
}

impl Parts {
    /// The records in `store`.
    pub(crate) fn new(store: Arc<LocalStore>) -> Parts {
        Parts {
            store,
            active: Arc::default(),
        }
    }

    fn active(&self) -> std::sync::MutexGuard<'_, HashSet<Vec<u8>>> {
        self.active.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Puts `path` (which must not exist yet) on record, before anything creates it.
    pub(crate) fn begin(&self, path: &Path) -> Result<Part, ClientError> {
        let path = std::path::absolute(path).map_err(io_error(path))?;
        let key = random_key(PART_TAG);
        self.active().insert(id_of(&key));
        let part = Part {
            parts: self.clone(),
            key,
            path,
        };
        self.store.put(&part.key, &encode(&part.path))?;
        Ok(part)
    }

    /// Removes every temporary file on record that no save in this process is writing, and
    /// its record. A damaged record is removed.
    pub(crate) fn clean(&self) -> Result<(), ClientError> {
        for (key, value) in self.store.list(Namespace::Transfer, None)? {
            let StoreKey::Transfer(id) = &key else {
                continue;
            };
            if id.first() != Some(&PART_TAG) || self.active().contains(id) {
                continue;
            }
            match decode(&value) {
                Ok(path) => remove_if_there(&path).map_err(io_error(&path))?,
                Err(e) => tracing::warn!(error = %e, "removing a damaged temporary file record"),
            }
            self.store.delete(&key)?;
        }
        Ok(())
    }
}

impl Part {
    /// Takes the record off once the file is gone (linked into place and removed, or removed).
    pub(crate) fn finish(self) -> Result<(), ClientError> {
        self.parts.store.delete(&self.key)?;
        Ok(())
    }
}

impl Drop for Part {
    fn drop(&mut self) {
        self.parts.active().remove(&id_of(&self.key));
    }
}
