//! The client's local store: sled holding only sealed records, and a key vault that makes
//! deletion final.
//!
//! What it does: keeps the client's records (identity, settings, contacts, ratchet sessions,
//! conversation metadata, messages, pending invitations) as opaque byte values under typed
//! [`StoreKey`]s. Each record is sealed under its own key in a `hush_vault::Vault` slot.
//! Deleting a record, replacing it, or erasing a contact shreds the slot in place and syncs it,
//! so whatever old bytes sled's log still holds can no longer be decrypted, even with the
//! device key. The vault is locked by a device key from a passphrase (Argon2id) or a 0600 key
//! file. sled keys are keyed hashes, so the directory names no contact and no message. The
//! layout is in `home` and `key`, the format and the crash rules in `docs/local-store.md`.
//!
//! Durability: every `put`, `delete` and `erase_contact` is durable when it returns. After a
//! crash, [`LocalStore::open`] drops a record whose key was being shredded and shreds a key
//! that no record refers to (see `recovery`).
//!
//! What it does not do: encode values (callers own their formats), order `list` results (they
//! come in hash order), expire messages (the conversation decides; the caller deletes), or
//! defeat copy-on-write file systems and SSD wear levelling (see `hush_vault`).

mod batch;
mod contact_key;
mod error;
mod home;
mod key;
pub mod limits;
mod ops;
mod record;
mod recovery;
mod unlock;

#[cfg(test)]
mod batch_tests;
#[cfg(test)]
mod forensic_tests;
#[cfg(test)]
mod model_tests;
#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};

use hush_vault::Vault;
use rand::RngCore;
use zeroize::Zeroizing;

pub use batch::Batch;
pub use contact_key::{ContactId, ContactKey, ContactScope, CONTACT_ID_LEN, CONTACT_KEY_LEN};
pub use error::StoreError;
pub use home::KeyKind;
pub use hush_vault::KdfParams;
pub use key::{Namespace, Setting, StoreKey, OWED_ID_LEN};
pub use ops::Entry;
pub use unlock::{KeySource, Passphrase};

use error::is_lock_error;
use home::Home;
use key::{IndexKey, INDEX_KEY_LEN, INDEX_RECORD};

/// Most memory sled may use for its page cache.
const DB_CACHE_BYTES: u64 = 16 << 20;

/// The client's encrypted local store. All methods take `&self` and may be called from several
/// threads; operations run one at a time.
pub struct LocalStore {
    home: Home,
    db: sled::Db,
    vault: Vault,
    index: IndexKey,
    /// Serialises operations, so that a slot freed by one is never reused by another before
    /// the first is durable.
    op: Mutex<()>,
}

impl std::fmt::Debug for LocalStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalStore")
            .field("home", &self.home.dir)
            .finish_non_exhaustive()
    }
}

impl LocalStore {
    /// Creates a new, empty store in `home` (created with mode 0700 if missing), locked by
    /// `key`. Fails with [`StoreError::AlreadyInitialised`] if `home` holds a store already.
    pub fn create(home: &Path, key: KeySource) -> Result<LocalStore, StoreError> {
        let home = Home::new(home);
        home.prepare_dir()?;
        if home.read_marker()?.is_some() {
            return Err(StoreError::AlreadyInitialised { home: home.dir });
        }
        if holds_records(&home)? {
            return Err(StoreError::corrupt(
                "the marker file is missing but the store holds records",
            ));
        }
        home.remove_leftovers()?;
        let vault = unlock::create_vault(&home, &key)?;
        let db = open_db(&home)?;
        let index = create_index(&db, &vault)?;
        home.tighten_permissions()?;
        // The marker is the commit point: without it, the next `create` starts over.
        home.write_marker(key.kind())?;
        Ok(LocalStore {
            home,
            db,
            vault,
            index,
            op: Mutex::new(()),
        })
    }

    /// Opens the store in `home` with `key`, finishing or undoing whatever a crash interrupted.
    ///
    /// Fails with [`StoreError::NotInitialised`] if there is no store,
    /// [`StoreError::WrongPassphrase`] if the passphrase does not unlock it,
    /// [`StoreError::PassphraseRequired`] or [`StoreError::KeyFileStore`] if `key` is of the
    /// other kind, and [`StoreError::Corrupt`] if any part of it is damaged.
    pub fn open(home: &Path, key: KeySource) -> Result<LocalStore, StoreError> {
        let home = Home::new(home);
        let kind = LocalStore::key_kind(&home.dir)?;
        let vault = unlock::open_vault(&home, kind, &key)?;
        drop(key);
        if !home.db_dir().is_dir() {
            return Err(StoreError::corrupt("database directory is missing"));
        }
        // sled discards whatever follows a damaged log entry, in place, when it opens: keep the
        // bytes, so that a store found damaged is put back as it was.
        let copy = recovery::DbCopy::take(&home.db_dir())?;
        let opened = open_db(&home).and_then(|db| {
            let index = recovery::reconcile(&db, &vault)?;
            Ok((db, index))
        });
        let (db, index) = match opened {
            Ok(opened) => opened,
            Err(e @ (StoreError::Corrupt { .. } | StoreError::Database(_))) => {
                // sled has closed its files: `db` was dropped when reconcile failed.
                copy.put_back()?;
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        home.tighten_permissions()?;
        Ok(LocalStore {
            home,
            db,
            vault,
            index,
            op: Mutex::new(()),
        })
    }

    /// How the store in `home` is unlocked, so that a front end knows whether to ask for a
    /// passphrase. [`StoreError::NotInitialised`] if there is no store.
    pub fn key_kind(home: &Path) -> Result<KeyKind, StoreError> {
        Home::new(home)
            .read_marker()?
            .ok_or_else(|| StoreError::NotInitialised {
                home: home.to_path_buf(),
            })
    }

    /// The store's home directory.
    pub fn home(&self) -> &Path {
        &self.home.dir
    }

    /// Makes everything durable (a vault fdatasync and a sled flush) and re-applies the
    /// 0600/0700 permissions to any file sled has created since.
    pub fn flush(&self) -> Result<(), StoreError> {
        let _op = self.lock();
        self.vault.sync()?;
        self.db.flush()?;
        self.home.tighten_permissions()
    }

    fn lock(&self) -> MutexGuard<'_, ()> {
        self.op.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn open_db(home: &Home) -> Result<sled::Db, StoreError> {
    Ok(sled::Config::new()
        .path(home.db_dir())
        .cache_capacity(DB_CACHE_BYTES)
        // Each operation flushes; a timer flush would only race ahead of the vault.
        .flush_every_ms(None)
        .open()?)
}

/// Whether a home without a marker has a database with more than an interrupted `create`
/// writes (the index record), which `create` must not wipe.
fn holds_records(home: &Home) -> Result<bool, StoreError> {
    if !home.db_dir().is_dir() {
        return Ok(false);
    }
    match sled::Config::new().path(home.db_dir()).open() {
        Ok(db) => Ok(db.len() > 1),
        Err(sled::Error::Io(e)) if is_lock_error(&e) => Err(StoreError::InUse),
        // Not a database we can read: whatever it held is beyond use.
        Err(_) => Ok(false),
    }
}

/// Makes the random index key of a new store and stores it, sealed, as its first record.
fn create_index(db: &sled::Db, vault: &Vault) -> Result<IndexKey, StoreError> {
    let mut bytes = Zeroizing::new([0u8; INDEX_KEY_LEN]);
    rand::rngs::OsRng.fill_bytes(&mut bytes[..]);
    let (slot, key) = vault.allocate()?;
    let value = record::seal(&key, slot, &INDEX_RECORD, &bytes[..]);
    vault.sync()?;
    db.insert(INDEX_RECORD, value)?;
    db.flush()?;
    Ok(IndexKey::new(bytes))
}
