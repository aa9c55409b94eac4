//! [`Txn`]: changes staged for one sled `Batch`, readable before they are applied.
//!
//! The writer stages many sends and acks, possibly on the same queue, before applying them as
//! one batch; each must see what the ones before it staged (the queue's next seq, counters, an
//! envelope already removed). A `Txn` keeps the staged value of every key it wrote and answers
//! reads from those first, then from the database. Applying it writes each key once.
//!
//! What it does not do: isolate anything. The caller holds the lock stripes of the queues it
//! touches from the first read to [`Txn::apply`], so nothing else changes those keys meanwhile.
//! Range scans read the database only.

use std::collections::HashMap;

use sled::IVec;

use super::backend;
use crate::store::StoreError;

/// Staged writes over a database.
pub(super) struct Txn<'a> {
    db: &'a sled::Db,
    writes: HashMap<IVec, Option<IVec>>,
}

impl<'a> Txn<'a> {
    /// Nothing staged yet.
    pub(super) fn new(db: &'a sled::Db) -> Txn<'a> {
        Self::with_capacity(db, 0)
    }

    /// Nothing staged yet, with room for `keys` writes without growing.
    pub(super) fn with_capacity(db: &'a sled::Db, keys: usize) -> Txn<'a> {
        Txn {
            db,
            writes: HashMap::with_capacity(keys),
        }
    }

    /// The value of `key`, as staged or else as stored.
    pub(super) fn get(&self, key: &[u8]) -> Result<Option<IVec>, StoreError> {
        match self.writes.get(key) {
            Some(staged) => Ok(staged.clone()),
            None => self.db.get(key).map_err(backend),
        }
    }

    /// Stages `key = value`.
    pub(super) fn insert(&mut self, key: &[u8], value: impl Into<IVec>) {
        self.writes.insert(IVec::from(key), Some(value.into()));
    }

    /// Stages the removal of `key`.
    pub(super) fn remove(&mut self, key: &[u8]) {
        self.writes.insert(IVec::from(key), None);
    }

    /// Applies every staged write as one atomic sled batch (not yet flushed).
    pub(super) fn apply(self) -> Result<(), StoreError> {
        if self.writes.is_empty() {
            return Ok(());
        }
        let mut batch = sled::Batch::default();
        for (key, value) in self.writes {
            match value {
                Some(v) => batch.insert(key, v),
                None => batch.remove(key),
            }
        }
        self.db.apply_batch(batch).map_err(backend)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_see_staged_writes_and_apply_writes_them_once() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new().path(dir.path()).open().unwrap();
        db.insert(b"a", b"stored").unwrap();
        db.insert(b"b", b"stored").unwrap();
        let mut txn = Txn::new(&db);
        assert_eq!(txn.get(b"a").unwrap().as_deref(), Some(&b"stored"[..]));
        txn.insert(b"a", &b"first"[..]);
        txn.insert(b"a", &b"second"[..]);
        txn.remove(b"b");
        txn.insert(b"c", &b"new"[..]);
        assert_eq!(txn.get(b"a").unwrap().as_deref(), Some(&b"second"[..]));
        assert_eq!(txn.get(b"b").unwrap(), None);
        // Nothing reaches the database before apply.
        assert_eq!(db.get(b"a").unwrap().as_deref(), Some(&b"stored"[..]));
        assert_eq!(db.get(b"c").unwrap(), None);
        txn.apply().unwrap();
        assert_eq!(db.get(b"a").unwrap().as_deref(), Some(&b"second"[..]));
        assert_eq!(db.get(b"b").unwrap(), None);
        assert_eq!(db.get(b"c").unwrap().as_deref(), Some(&b"new"[..]));
    }
}
