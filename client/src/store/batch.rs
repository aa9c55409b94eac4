//! Several puts and deletes applied as one: after a crash, either all of them are in the store
//! or none is.
//!
//! A single [`LocalStore::put`] or [`LocalStore::delete`] can leave at most two keys without a
//! record, which is what `recovery` accepts after a crash. A batch seals many records before
//! any of them is visible, so a crash can leave more. Before it touches the vault, a batch
//! therefore writes a journal record saying how many extra orphans it may leave; `recovery`
//! accepts that many more while the journal is there, shreds them, and removes the journal.
//!
//! The steps, each durable before the next:
//! 1. the journal (sled, flushed);
//! 2. a fresh key for every put, sealed and synced in the vault;
//! 3. one sled batch with every put and every delete: the commit point;
//! 4. the keys of replaced and deleted records shredded, with one vault sync;
//! 5. the journal removed.
//!
//! A crash before step 3 leaves none of the batch (its new keys are shredded on open); a crash
//! after it leaves all of it (the old keys are shredded on open).
//!
//! What it does not do: read, or check that a delete finds a record (deleting nothing is fine).

use std::collections::HashSet;

use hush_vault::SlotId;

use super::key::StoreKey;
use super::limits::MAX_VALUE_LEN;
use super::record::{self, encode_body, RawRecord};
use super::{LocalStore, StoreError};

/// sled key of the batch journal. It sorts after the index record and before every other
/// record, so the record scans of `recovery` and `list` never meet it.
pub(crate) const JOURNAL_RECORD: [u8; 2] = [0, 1];

/// Length of the journal's value: the number of keys the batch may leave behind.
const JOURNAL_LEN: usize = 4;

/// Where a batch stops, to test what a crash at that point leaves behind.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(not(test), allow(dead_code))]
pub(super) enum Stop {
    /// After the journal is written.
    Journal,
    /// After the new keys are synced, before the records are written.
    Sealed,
    /// After the records are written, before the old keys are shredded.
    Committed,
    /// After the old keys are shredded, before the journal goes.
    Shredded,
}

/// The puts and deletes of one atomic write.
#[derive(Default)]
pub struct Batch<'a> {
    puts: Vec<(&'a StoreKey, &'a [u8])>,
    deletes: Vec<&'a StoreKey>,
}

impl<'a> Batch<'a> {
    /// An empty batch.
    pub fn new() -> Batch<'a> {
        Batch::default()
    }

    /// Adds a put of `value` under `key`.
    pub fn put(&mut self, key: &'a StoreKey, value: &'a [u8]) -> &mut Batch<'a> {
        self.puts.push((key, value));
        self
    }

    /// Adds a delete of the record under `key`.
    pub fn delete(&mut self, key: &'a StoreKey) -> &mut Batch<'a> {
        self.deletes.push(key);
        self
    }
}

impl LocalStore {
    /// Applies every put and delete of `batch` at once: after a crash, the store holds all of
    /// them or none. Keys of replaced and deleted records are shredded. Durable when it
    /// returns.
    pub fn write_batch(&self, batch: &Batch<'_>) -> Result<(), StoreError> {
        self.write_batch_until(batch, None)
    }

    /// [`LocalStore::write_batch`], stopping at `stop` as a crash there would.
    pub(super) fn write_batch_until(
        &self,
        batch: &Batch<'_>,
        stop: Option<Stop>,
    ) -> Result<(), StoreError> {
        self.check_batch(batch)?;
        let _op = self.lock();
        let mut records = sled::Batch::default();
        let old_slots = self.old_slots(batch, &mut records)?;
        let leftovers = batch.puts.len() + old_slots.len();
        let journal = u32::try_from(leftovers)
            .map_err(|_| StoreError::corrupt("batch too large"))?
            .to_be_bytes();
        self.db.insert(JOURNAL_RECORD, &journal[..])?;
        self.db.flush()?;
        if stop == Some(Stop::Journal) {
            return Ok(());
        }
        let mut new_slots = Vec::with_capacity(batch.puts.len());
        let sealed = self.seal_puts(batch, &mut records, &mut new_slots);
        let committed = sealed.and_then(|()| {
            if stop == Some(Stop::Sealed) {
                return Ok(false);
            }
            self.db.apply_batch(records)?;
            self.db.flush()?;
            Ok(true)
        });
        match committed {
            Ok(true) => {}
            Ok(false) => return Ok(()),
            Err(e) => {
                // Nothing is visible yet: shred the new keys (best effort; the journal lets the
                // next open shred whatever is left).
                for slot in new_slots {
                    let _ = self.vault.shred_deferred(slot);
                }
                let _ = self.vault.sync();
                let _ = self.db.remove(JOURNAL_RECORD);
                return Err(e);
            }
        }
        if stop == Some(Stop::Committed) {
            return Ok(());
        }
        for slot in old_slots {
            self.vault.shred_deferred(slot)?;
        }
        self.vault.sync()?;
        if stop == Some(Stop::Shredded) {
            return Ok(());
        }
        self.db.remove(JOURNAL_RECORD)?;
        self.db.flush()?;
        Ok(())
    }

    /// Refuses a batch with a bad key, a value too large, or a record named twice.
    fn check_batch(&self, batch: &Batch<'_>) -> Result<(), StoreError> {
        for (key, value) in &batch.puts {
            key.validate()?;
            if value.len() > MAX_VALUE_LEN {
                return Err(StoreError::ValueTooLarge {
                    len: value.len(),
                    max: MAX_VALUE_LEN,
                });
            }
        }
        for key in &batch.deletes {
            key.validate()?;
        }
        let mut named = HashSet::new();
        let keys = batch
            .puts
            .iter()
            .map(|(k, _)| *k)
            .chain(batch.deletes.iter().copied());
        if !keys
            .map(|k| self.index.sled_key(k))
            .all(|k| named.insert(k))
        {
            return Err(StoreError::DuplicateInBatch);
        }
        Ok(())
    }

    /// The slots of the records the batch deletes or replaces; the deletes are added to
    /// `records`.
    fn old_slots(
        &self,
        batch: &Batch<'_>,
        records: &mut sled::Batch,
    ) -> Result<Vec<SlotId>, StoreError> {
        let mut old_slots = Vec::new();
        for key in &batch.deletes {
            let sled_key = self.index.sled_key(key);
            if let Some(old) = self.db.get(&sled_key)? {
                old_slots.push(RawRecord::parse(&old)?.slot);
            }
            records.remove(sled_key);
        }
        for (key, _) in &batch.puts {
            if let Some(old) = self.db.get(self.index.sled_key(key))? {
                old_slots.push(RawRecord::parse(&old)?.slot);
            }
        }
        Ok(old_slots)
    }

    /// Seals every put of `batch` under a fresh key, adds it to `records`, and syncs the
    /// vault. The new slots are pushed to `new_slots` as they are allocated.
    fn seal_puts(
        &self,
        batch: &Batch<'_>,
        records: &mut sled::Batch,
        new_slots: &mut Vec<SlotId>,
    ) -> Result<(), StoreError> {
        for (key, value) in &batch.puts {
            let sled_key = self.index.sled_key(key);
            let (slot, record_key) = self.vault.allocate()?;
            new_slots.push(slot);
            let sealed = record::seal(&record_key, slot, &sled_key, &encode_body(key, value));
            records.insert(sled_key, sealed);
        }
        self.vault.sync()?;
        Ok(())
    }
}

/// The number of leftover keys a journal value allows, or `None` if it does not parse.
pub(crate) fn journal_allowance(value: &[u8]) -> Option<usize> {
    let bytes: [u8; JOURNAL_LEN] = value.try_into().ok()?;
    usize::try_from(u32::from_be_bytes(bytes)).ok()
}
