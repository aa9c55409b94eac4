//! Tests of atomic batches: what a crash at each step leaves behind after reopening.

use super::batch::{Stop, JOURNAL_RECORD};
use super::tests::{bob, home};
use super::*;
use crate::conversation::MessageId;

/// The records before the batch, the batch, and the records it leaves.
struct Case {
    kept: StoreKey,
    replaced: StoreKey,
    deleted: StoreKey,
    added: Vec<StoreKey>,
}

fn case() -> Case {
    let (key, id) = bob();
    Case {
        kept: StoreKey::Setting(Setting::OwnName),
        replaced: StoreKey::Contact(id),
        deleted: StoreKey::Invitation(vec![7; 16]),
        added: vec![key.session(), key.meta(), key.message(MessageId([3; 16]))],
    }
}

/// A store holding the records from before the batch.
fn before(home: &std::path::Path, c: &Case) -> LocalStore {
    let store = LocalStore::create(home, KeySource::KeyFile).unwrap();
    store.put(&c.kept, b"kept").unwrap();
    store.put(&c.replaced, b"old contact").unwrap();
    store.put(&c.deleted, b"invitation secrets").unwrap();
    store
}

fn run(store: &LocalStore, c: &Case, stop: Option<Stop>) -> Result<(), StoreError> {
    let mut batch = Batch::new();
    batch.put(&c.replaced, b"new contact").delete(&c.deleted);
    for key in &c.added {
        batch.put(key, b"new record");
    }
    store.write_batch_until(&batch, stop)
}

fn value(store: &LocalStore, key: &StoreKey) -> Option<Vec<u8>> {
    store.get(key).unwrap().map(|v| v.to_vec())
}

/// Every key in the vault belongs to exactly one record, and the journal is gone.
fn assert_no_leftovers(store: &LocalStore) {
    assert!(store.db.get(JOURNAL_RECORD).unwrap().is_none());
    assert_eq!(store.vault.slots_in_use(), store.db.len() as u64);
}

fn assert_all_or_nothing(store: &LocalStore, c: &Case, applied: bool) {
    assert_eq!(value(store, &c.kept), Some(b"kept".to_vec()));
    if applied {
        assert_eq!(value(store, &c.replaced), Some(b"new contact".to_vec()));
        assert_eq!(value(store, &c.deleted), None);
        for key in &c.added {
            assert_eq!(value(store, key), Some(b"new record".to_vec()));
        }
    } else {
        assert_eq!(value(store, &c.replaced), Some(b"old contact".to_vec()));
        assert_eq!(
            value(store, &c.deleted),
            Some(b"invitation secrets".to_vec())
        );
        for key in &c.added {
            assert_eq!(value(store, key), None);
        }
    }
    assert_no_leftovers(store);
}

#[test]
fn a_batch_applies_every_put_and_delete_and_shreds_the_old_keys() {
    let (_dir, home) = home();
    let c = case();
    let store = before(&home, &c);
    let old = store.vault.occupied_slots();
    run(&store, &c, None).unwrap();
    assert_all_or_nothing(&store, &c, true);
    // The replaced and deleted records' keys are gone (only the index and `kept` remain).
    let still: Vec<_> = old
        .iter()
        .filter(|s| store.vault.occupied_slots().contains(s))
        .collect();
    assert_eq!(still.len(), 2, "{still:?}");
    drop(store);
    let store = LocalStore::open(&home, KeySource::KeyFile).unwrap();
    assert_all_or_nothing(&store, &c, true);
}

#[test]
fn a_crash_at_any_step_leaves_all_of_the_batch_or_none_of_it() {
    for (stop, applied) in [
        (Stop::Journal, false),
        (Stop::Sealed, false),
        (Stop::Committed, true),
        (Stop::Shredded, true),
    ] {
        let (_dir, home) = home();
        let c = case();
        let store = before(&home, &c);
        run(&store, &c, Some(stop)).unwrap();
        drop(store);
        let store = LocalStore::open(&home, KeySource::KeyFile)
            .unwrap_or_else(|e| panic!("open after a crash at {stop:?}: {e}"));
        assert_all_or_nothing(&store, &c, applied);
    }
}

#[test]
fn without_its_journal_a_cut_short_batch_would_read_as_lost_records() {
    // What the journal is for: the keys a batch sealed before its commit are more than a
    // single write can leave, so without the journal the store is refused as damaged.
    let (_dir, home) = home();
    let c = case();
    let store = before(&home, &c);
    run(&store, &c, Some(Stop::Sealed)).unwrap();
    store.db.remove(JOURNAL_RECORD).unwrap();
    store.db.flush().unwrap();
    drop(store);
    let err = LocalStore::open(&home, KeySource::KeyFile).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
}

#[test]
fn a_batch_naming_one_record_twice_is_refused_before_any_write() {
    let (_dir, home) = home();
    let c = case();
    let store = before(&home, &c);
    let in_use = store.vault.slots_in_use();
    let mut batch = Batch::new();
    batch.put(&c.replaced, b"a").delete(&c.replaced);
    let err = store.write_batch(&batch).unwrap_err();
    assert!(matches!(err, StoreError::DuplicateInBatch), "{err:?}");
    assert_eq!(store.vault.slots_in_use(), in_use);
    assert!(store.db.get(JOURNAL_RECORD).unwrap().is_none());
    assert_eq!(value(&store, &c.replaced), Some(b"old contact".to_vec()));
}
