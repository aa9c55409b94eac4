//! Opening a store: the index key, a check of every record, and reconciliation after a crash.
//!
//! Every operation syncs the vault before it changes sled and flushes sled before it returns,
//! and operations run one at a time, so a crash can leave only two kinds of leftovers:
//! - a record whose slot is empty: its key was shredded by a delete that did not finish. The
//!   record is removed, as the delete intended.
//! - a key that no record refers to: a put that did not finish, or the old key of a replaced
//!   record. It is shredded.
//!
//! Anything else (a record that does not parse or decrypt, a slot beyond the end of the vault,
//! a slot that fails authentication, two records sharing a slot) cannot come from a crash, and
//! opening fails with [`StoreError::Corrupt`] without changing anything.
//!
//! A crash leaves at most [`MAX_CRASH_ORPHANS`] keys without a record, plus, while a batch's
//! journal is there (see `batch`), as many as the journal allows; the journal is removed once
//! they are shredded. More means that records
//! vanished from sled: sled treats a damaged log entry as a torn write and, on open, discards
//! everything written after it. Shredding those keys would make the loss permanent, so opening
//! fails with [`StoreError::Corrupt`] instead, and [`DbCopy`] puts sled's files back as they
//! were: a store found damaged is left exactly as it was found.
//!
//! What it does not do: repair damaged sled files (sled's own recovery runs before this).

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use hush_vault::{SlotId, Vault, VaultError};
use zeroize::Zeroizing;

use super::batch::{journal_allowance, JOURNAL_RECORD};
use super::key::{IndexKey, INDEX_KEY_LEN, INDEX_RECORD};
use super::record::{decode_body, RawRecord};
use super::StoreError;

/// Most keys without a record that an interrupted operation can leave: the new key of a put
/// cut short, and one more whose shred failed on an I/O error before it.
pub(crate) const MAX_CRASH_ORPHANS: usize = 2;

/// Loads the index key, checks every record, drops crash leftovers, and syncs what it changed.
pub(crate) fn reconcile(db: &sled::Db, vault: &Vault) -> Result<IndexKey, StoreError> {
    let (index, index_slot) = load_index(db, vault)?;
    let mut referenced = HashSet::from([index_slot.index()]);
    let mut unfinished = sled::Batch::default();
    let mut dropped = 0usize;
    for item in db.range(&[INDEX_RECORD[0] + 1][..]..) {
        let (sled_key, value) = item?;
        let raw = RawRecord::parse(&value)?;
        let key = match vault.get(raw.slot) {
            Ok(key) => key,
            Err(VaultError::EmptySlot(_)) => {
                unfinished.remove(sled_key);
                dropped += 1;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let (store_key, _value) = decode_body(&raw.open(&key, &sled_key)?)?;
        if index.sled_key(&store_key) != sled_key.as_ref() {
            return Err(StoreError::corrupt("record under the wrong key"));
        }
        if !referenced.insert(raw.slot.index()) {
            return Err(StoreError::corrupt("two records share a key"));
        }
    }
    let orphans: Vec<SlotId> = vault
        .occupied_slots()
        .into_iter()
        .filter(|slot| !referenced.contains(&slot.index()))
        .collect();
    let journal = db.get(JOURNAL_RECORD)?;
    let allowance = match &journal {
        Some(value) => {
            journal_allowance(value).ok_or_else(|| StoreError::corrupt("batch journal"))?
        }
        None => 0,
    };
    if orphans.len() > MAX_CRASH_ORPHANS + allowance {
        return Err(StoreError::corrupt("records are missing from the database"));
    }
    for &slot in &orphans {
        vault.shred_deferred(slot)?;
    }
    if !orphans.is_empty() {
        vault.sync()?;
    }
    if journal.is_some() {
        unfinished.remove(&JOURNAL_RECORD[..]);
    }
    if dropped > 0 || journal.is_some() {
        db.apply_batch(unfinished)?;
        db.flush()?;
    }
    Ok(index)
}

/// Reads and opens the index record.
fn load_index(db: &sled::Db, vault: &Vault) -> Result<(IndexKey, SlotId), StoreError> {
    let value = db
        .get(INDEX_RECORD)?
        .ok_or_else(|| StoreError::corrupt("index record is missing"))?;
    let raw = RawRecord::parse(&value)?;
    let key = vault.get(raw.slot)?;
    let plain = raw.open(&key, &INDEX_RECORD)?;
    let mut bytes = Zeroizing::new([0u8; INDEX_KEY_LEN]);
    if plain.len() != INDEX_KEY_LEN {
        return Err(StoreError::corrupt("index record"));
    }
    bytes.copy_from_slice(&plain);
    Ok((IndexKey::new(bytes), raw.slot))
}

/// The bytes of every file of sled's directory, taken before sled opens it.
pub(crate) struct DbCopy {
    dir: PathBuf,
    files: Vec<(PathBuf, Vec<u8>)>,
}

impl DbCopy {
    /// Reads every file under `dir`.
    pub(crate) fn take(dir: &Path) -> io::Result<DbCopy> {
        let mut files = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for entry in fs::read_dir(&d)? {
                let entry = entry?;
                let kind = entry.file_type()?;
                if kind.is_dir() {
                    stack.push(entry.path());
                } else if kind.is_file() {
                    files.push((entry.path(), fs::read(entry.path())?));
                }
            }
        }
        Ok(DbCopy {
            dir: dir.to_path_buf(),
            files,
        })
    }

    /// Puts the directory back as it was taken: files sled created since are removed, and every
    /// file taken is rewritten with its old bytes. Call it only once sled has closed the files.
    pub(crate) fn put_back(&self) -> io::Result<()> {
        let mut stack = vec![self.dir.clone()];
        while let Some(d) = stack.pop() {
            for entry in fs::read_dir(&d)? {
                let entry = entry?;
                let path = entry.path();
                if entry.file_type()?.is_dir() {
                    stack.push(path);
                } else if !self.files.iter().any(|(p, _)| *p == path) {
                    fs::remove_file(&path)?;
                }
            }
        }
        for (path, bytes) in &self.files {
            fs::write(path, bytes)?;
            fs::File::open(path)?.sync_all()?;
        }
        Ok(())
    }
}
