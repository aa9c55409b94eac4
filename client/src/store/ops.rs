//! The record operations of [`LocalStore`]: put, get, delete, list and erase a contact.
//!
//! Order of writes, which `recovery` relies on: a put seals under a fresh slot, syncs the
//! vault, writes and flushes sled, and only then shreds the slot of the value it replaced. A
//! delete shreds (and syncs) the slot first, then removes the sled entry and flushes.
//!
//! What it does not do: interpret values.

use hush_vault::SlotId;
use zeroize::Zeroizing;

use super::contact_key::{ContactId, ContactScope};
use super::key::{Namespace, StoreKey};
use super::limits::MAX_VALUE_LEN;
use super::record::{self, decode_body, encode_body, RawRecord};
use super::{LocalStore, StoreError};

/// A record as `list` returns it: its key and its value.
pub type Entry = (StoreKey, Zeroizing<Vec<u8>>);

impl LocalStore {
    /// Stores `value` under `key`, replacing (and shredding) any previous value. Durable when it
    /// returns.
    pub fn put(&self, key: &StoreKey, value: &[u8]) -> Result<(), StoreError> {
        key.validate()?;
        if value.len() > MAX_VALUE_LEN {
            return Err(StoreError::ValueTooLarge {
                len: value.len(),
                max: MAX_VALUE_LEN,
            });
        }
        let sled_key = self.index.sled_key(key);
        let _op = self.lock();
        let old = self.db.get(&sled_key)?;
        let (slot, record_key) = self.vault.allocate()?;
        let sealed = record::seal(&record_key, slot, &sled_key, &encode_body(key, value));
        let written = self
            .vault
            .sync()
            .map_err(StoreError::from)
            .and_then(|()| Ok(self.db.insert(&sled_key[..], sealed)?))
            .and_then(|_| Ok(self.db.flush()?));
        if let Err(e) = written {
            // Put the old value back (best effort) and shred the new key. If sled kept the new
            // record after all, the next open finds its key gone and drops it.
            let _ = match &old {
                Some(old) => self.db.insert(&sled_key[..], old.clone()).map(|_| ()),
                None => self.db.remove(&sled_key[..]).map(|_| ()),
            };
            let _ = self.vault.shred(slot);
            return Err(e);
        }
        if let Some(old) = old {
            // An unreadable old value leaves an orphaned key, which the next open shreds.
            if let Ok(raw) = RawRecord::parse(&old) {
                self.vault.shred(raw.slot)?;
            }
        }
        Ok(())
    }

    /// The value under `key`, or `None` if there is none.
    pub fn get(&self, key: &StoreKey) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        key.validate()?;
        let sled_key = self.index.sled_key(key);
        let _op = self.lock();
        let Some(value) = self.db.get(&sled_key)? else {
            return Ok(None);
        };
        let (found, value) = self.open_record(&sled_key, &value)?;
        if found != *key {
            return Err(StoreError::corrupt("record under the wrong key"));
        }
        Ok(Some(value))
    }

    /// Deletes the record under `key`: its key is shredded (overwritten in place and synced)
    /// before its sled entry goes. Returns whether there was one. Durable when it returns.
    pub fn delete(&self, key: &StoreKey) -> Result<bool, StoreError> {
        key.validate()?;
        let sled_key = self.index.sled_key(key);
        let _op = self.lock();
        let Some(value) = self.db.get(&sled_key)? else {
            return Ok(false);
        };
        let raw = RawRecord::parse(&value)?;
        self.vault.shred(raw.slot)?;
        self.db.remove(&sled_key[..])?;
        self.db.flush()?;
        Ok(true)
    }

    /// Every record of `namespace`, or with `contact`, every record of `namespace` in that
    /// contact's scope (all its messages, say). The order is arbitrary.
    ///
    /// A `contact` with a namespace that is not per-contact is [`StoreError::NotPerContact`].
    pub fn list(
        &self,
        namespace: Namespace,
        contact: Option<ContactScope>,
    ) -> Result<Vec<Entry>, StoreError> {
        let prefix = match contact {
            None => vec![namespace.byte()],
            Some(_) if !namespace.is_per_contact() => {
                return Err(StoreError::NotPerContact { namespace })
            }
            Some(scope) => scope_prefix(namespace, scope),
        };
        self.list_prefix(&prefix, namespace, |found| {
            contact.is_none_or(|c| found.contact() == Some(c))
        })
    }

    /// Every store format 1 record of `namespace` belonging to the contact named `name`.
    pub(crate) fn list_legacy(
        &self,
        namespace: Namespace,
        name: &str,
    ) -> Result<Vec<Entry>, StoreError> {
        StoreKey::LegacyContact(name.to_owned()).validate()?;
        let prefix = self.index.legacy_prefix(namespace, name);
        self.list_prefix(&prefix, namespace, |found| {
            found.legacy_name() == Some(name)
        })
    }

    fn list_prefix(
        &self,
        prefix: &[u8],
        namespace: Namespace,
        belongs: impl Fn(&StoreKey) -> bool,
    ) -> Result<Vec<Entry>, StoreError> {
        let _op = self.lock();
        let mut out = Vec::new();
        for item in self.db.scan_prefix(prefix) {
            let (sled_key, value) = item?;
            let (found, value) = self.open_record(&sled_key, &value)?;
            if found.namespace() != namespace || !belongs(&found) {
                return Err(StoreError::corrupt("record under the wrong key"));
            }
            out.push((found, value));
        }
        Ok(out)
    }

    /// Erases every record of one contact: its record `id`, and its session, conversation
    /// metadata and all its messages (`scope`). Every key is shredded, with one sync, before
    /// the sled entries go. Returns how many records were erased. Durable when it returns.
    pub fn erase_contact(&self, id: ContactId, scope: ContactScope) -> Result<usize, StoreError> {
        let mut prefixes = vec![self.index.sled_key(&StoreKey::Contact(id))];
        prefixes.extend(
            Namespace::ALL
                .into_iter()
                .filter(|ns| ns.is_per_contact())
                .map(|ns| scope_prefix(ns, scope)),
        );
        self.erase_prefixes(&prefixes)
    }

    /// Erases every store format 1 record of the contact named `name`, as
    /// [`LocalStore::erase_contact`] does.
    pub(crate) fn erase_legacy_contact(&self, name: &str) -> Result<usize, StoreError> {
        StoreKey::LegacyContact(name.to_owned()).validate()?;
        let prefixes: Vec<Vec<u8>> = Namespace::ALL
            .into_iter()
            .filter(|ns| ns.is_legacy())
            .map(|ns| self.index.legacy_prefix(ns, name))
            .collect();
        self.erase_prefixes(&prefixes)
    }

    /// The key of the tombstone of the queue whose recipient id is `queue`: a keyed hash under
    /// the index key, so that the record names no queue.
    pub fn tombstone_key(&self, queue: &[u8]) -> StoreKey {
        StoreKey::Tombstone(self.index.tag(b"hush burned queue", &[queue]))
    }

    fn erase_prefixes(&self, prefixes: &[Vec<u8>]) -> Result<usize, StoreError> {
        let _op = self.lock();
        let mut doomed: Vec<(sled::IVec, SlotId)> = Vec::new();
        for prefix in prefixes {
            for item in self.db.scan_prefix(prefix) {
                let (sled_key, value) = item?;
                let slot = RawRecord::parse(&value)?.slot;
                doomed.push((sled_key, slot));
            }
        }
        if doomed.is_empty() {
            return Ok(0);
        }
        for (_, slot) in &doomed {
            self.vault.shred_deferred(*slot)?;
        }
        self.vault.sync()?;
        let mut batch = sled::Batch::default();
        for (sled_key, _) in &doomed {
            batch.remove(sled_key.clone());
        }
        self.db.apply_batch(batch)?;
        self.db.flush()?;
        Ok(doomed.len())
    }

    /// Decrypts one stored record.
    fn open_record(
        &self,
        sled_key: &[u8],
        value: &[u8],
    ) -> Result<(StoreKey, Zeroizing<Vec<u8>>), StoreError> {
        let raw = RawRecord::parse(value)?;
        let record_key = self.vault.get(raw.slot)?;
        decode_body(&raw.open(&record_key, sled_key)?)
    }
}

/// The sled prefix of every record of `ns` in `scope`.
fn scope_prefix(ns: Namespace, scope: ContactScope) -> Vec<u8> {
    let mut out = vec![ns.byte()];
    out.extend_from_slice(&scope.0);
    out
}
