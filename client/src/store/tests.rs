//! Tests of the local store: round trips across reopen, key sources and their errors, damage,
//! limits and crash leftovers. The forensic tests are in `forensic_tests`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use hush_vault::{SlotId, VaultError};

use super::*;
use crate::conversation::{Direction, MessageBody, MessageId, MessageRecord};

/// An Argon2id cost that keeps tests fast.
pub(super) const CHEAP: KdfParams = KdfParams {
    memory_kib: 8,
    time_cost: 1,
    lanes: 1,
};

pub(super) fn pass(secret: &str) -> KeySource {
    KeySource::Passphrase(Passphrase::new(secret).with_kdf(CHEAP))
}

pub(super) fn home() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    (dir, home)
}

/// Bob's store key and contact id.
pub(super) fn bob() -> (ContactKey, ContactId) {
    (ContactKey::from_bytes([0xB0; 32]), ContactId([0xB0; 16]))
}

/// Carol's store key and contact id.
fn carol() -> (ContactKey, ContactId) {
    (ContactKey::from_bytes([0xCA; 32]), ContactId([0xCA; 16]))
}

/// The value under `key`, copied out.
fn got(store: &LocalStore, key: &StoreKey) -> Option<Vec<u8>> {
    store.get(key).unwrap().map(|v| v.to_vec())
}

fn message(id: u8, text: &str) -> MessageRecord {
    MessageRecord {
        id: MessageId([id; 16]),
        direction: Direction::Received,
        sent_at: 1_700_000_000,
        received_at: 1_700_000_005,
        timer: Some(3600),
        view_once: false,
        envelope_id: None,
        displayed_at: None,
        body: Some(MessageBody::new(text)),
        file: None,
        group: None,
    }
}

/// One record of every kind, and its value.
fn sample() -> Vec<(StoreKey, Vec<u8>)> {
    let m = message(1, "see you at noon");
    let ((bob, bob_id), (_, carol_id)) = (bob(), carol());
    vec![
        (StoreKey::Identity, b"identity keys".to_vec()),
        (StoreKey::Setting(Setting::OwnName), b"alice".to_vec()),
        (
            StoreKey::Setting(Setting::RelayAddress),
            b"hush://relay:4433#ab".to_vec(),
        ),
        (StoreKey::Contact(bob_id), b"bob's keys".to_vec()),
        (bob.session(), b"ratchet".to_vec()),
        (bob.meta(), b"meta".to_vec()),
        (bob.message(m.id), m.encode()),
        (StoreKey::Invitation(vec![9; 16]), b"invite secret".to_vec()),
        (StoreKey::Contact(carol_id), Vec::new()),
        (StoreKey::OwedBurn([5; OWED_ID_LEN]), b"owed".to_vec()),
        (
            StoreKey::LegacyMessage("dave".into(), m.id),
            b"old".to_vec(),
        ),
    ]
}

fn assert_round_trip(make: impl Fn() -> KeySource) {
    let (_dir, home) = home();
    let store = LocalStore::create(&home, make()).unwrap();
    for (k, v) in sample() {
        store.put(&k, &v).unwrap();
    }
    drop(store);
    let store = LocalStore::open(&home, make()).unwrap();
    for (k, v) in sample() {
        assert_eq!(got(&store, &k), Some(v.clone()), "{k:?}");
    }
    let m = message(1, "see you at noon");
    let stored = store.get(&bob().0.message(m.id)).unwrap().unwrap();
    assert_eq!(MessageRecord::decode(&stored).unwrap(), m);
    let mut contacts: Vec<_> = store
        .list(Namespace::Contact, None)
        .unwrap()
        .into_iter()
        .map(|(k, _)| k.encode())
        .collect();
    contacts.sort();
    assert_eq!(
        contacts,
        [
            StoreKey::Contact(bob().1).encode(),
            StoreKey::Contact(carol().1).encode()
        ]
    );
    let dave = StoreKey::Contact(ContactId([0xDA; 16]));
    assert_eq!(store.get(&dave).unwrap(), None);
}

#[test]
fn round_trip_across_reopen_with_key_file() {
    assert_round_trip(|| KeySource::KeyFile);
}

#[test]
fn round_trip_across_reopen_with_passphrase() {
    assert_round_trip(|| pass("correct horse"));
}

#[test]
fn wrong_passphrase_and_wrong_key_kind_are_typed() {
    let (_dir, home) = home();
    drop(LocalStore::create(&home, pass("right")).unwrap());
    assert_eq!(LocalStore::key_kind(&home).unwrap(), KeyKind::Passphrase);
    let err = LocalStore::open(&home, pass("wrong")).unwrap_err();
    assert!(matches!(err, StoreError::WrongPassphrase), "{err:?}");
    let err = LocalStore::open(&home, KeySource::KeyFile).unwrap_err();
    assert!(matches!(err, StoreError::PassphraseRequired), "{err:?}");
    assert!(err.to_string().contains("protected by a passphrase"));
    LocalStore::open(&home, pass("right")).unwrap();

    let (_dir2, home2) = self::home();
    drop(LocalStore::create(&home2, KeySource::KeyFile).unwrap());
    assert_eq!(LocalStore::key_kind(&home2).unwrap(), KeyKind::KeyFile);
    let err = LocalStore::open(&home2, pass("any")).unwrap_err();
    assert!(matches!(err, StoreError::KeyFileStore), "{err:?}");
}

#[test]
fn missing_store_is_not_initialised_and_create_twice_is_refused() {
    let (_dir, home) = home();
    for h in [home.clone(), home.join("deeper")] {
        let err = LocalStore::open(&h, KeySource::KeyFile).unwrap_err();
        assert!(matches!(err, StoreError::NotInitialised { .. }), "{err:?}");
    }
    fs::create_dir_all(&home).unwrap();
    let err = LocalStore::open(&home, pass("pw")).unwrap_err();
    assert!(matches!(err, StoreError::NotInitialised { .. }), "{err:?}");
    drop(LocalStore::create(&home, KeySource::KeyFile).unwrap());
    let err = LocalStore::create(&home, KeySource::KeyFile).unwrap_err();
    assert!(
        matches!(err, StoreError::AlreadyInitialised { .. }),
        "{err:?}"
    );
}

#[test]
fn missing_or_exposed_key_file_is_refused() {
    let (_dir, home) = home();
    drop(LocalStore::create(&home, KeySource::KeyFile).unwrap());
    let key_file = home.join("device.key");
    fs::set_permissions(&key_file, fs::Permissions::from_mode(0o644)).unwrap();
    let err = LocalStore::open(&home, KeySource::KeyFile).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::KeyFile(VaultError::KeyFilePermissions { .. })
        ),
        "{err:?}"
    );
    fs::remove_file(&key_file).unwrap();
    let err = LocalStore::open(&home, KeySource::KeyFile).unwrap_err();
    assert!(matches!(err, StoreError::KeyFileMissing { .. }), "{err:?}");
    // Opening did not quietly make a new key.
    assert!(!key_file.exists());
}

#[test]
fn interrupted_create_is_started_over() {
    let (_dir, home) = home();
    fs::create_dir_all(home.join("db")).unwrap();
    fs::write(home.join("keys.vault"), b"half-written").unwrap();
    fs::write(home.join("db").join("junk"), b"x").unwrap();
    let store = LocalStore::create(&home, pass("pw")).unwrap();
    store.put(&StoreKey::Identity, b"id").unwrap();
    drop(store);
    let store = LocalStore::open(&home, pass("pw")).unwrap();
    assert_eq!(got(&store, &StoreKey::Identity), Some(b"id".to_vec()));
}

#[test]
fn replacing_a_record_shreds_its_old_slot() {
    let (_dir, home) = home();
    let store = LocalStore::create(&home, KeySource::KeyFile).unwrap();
    let key = bob().0.session();
    store.put(&key, b"ratchet state 1").unwrap();
    let sled_key = store.index.sled_key(&key);
    let old_value = store.db.get(&sled_key).unwrap().unwrap();
    let old_slot = record::RawRecord::parse(&old_value).unwrap().slot;
    let old_key = store.vault.get(old_slot).unwrap();
    let in_use = store.vault.slots_in_use();

    store.put(&key, b"ratchet state 2").unwrap();
    assert!(matches!(
        store.vault.get(old_slot),
        Err(VaultError::EmptySlot(_))
    ));
    assert_eq!(store.vault.slots_in_use(), in_use);
    let new_value = store.db.get(&sled_key).unwrap().unwrap();
    let new_raw = record::RawRecord::parse(&new_value).unwrap();
    assert_ne!(new_raw.slot, old_slot);
    // The old ciphertext opened under its key before; no key in the vault opens it now.
    let old_raw = record::RawRecord::parse(&old_value).unwrap();
    assert!(old_raw.open(&old_key, &sled_key).is_ok());
    for slot in store.vault.occupied_slots() {
        let k = store.vault.get(slot).unwrap();
        assert!(old_raw.open(&k, &sled_key).is_err());
    }
    assert_eq!(got(&store, &key), Some(b"ratchet state 2".to_vec()));
}

#[test]
fn delete_and_erase_contact_remove_only_their_records() {
    let (_dir, home) = home();
    let store = LocalStore::create(&home, KeySource::KeyFile).unwrap();
    for (k, v) in sample() {
        store.put(&k, &v).unwrap();
    }
    let ((bob, bob_id), (carol, _)) = (bob(), carol());
    let carol_msg = carol.message(MessageId([2; 16]));
    store.put(&carol_msg, b"hi").unwrap();
    for id in 10..14 {
        store.put(&bob.message(MessageId([id; 16])), b"m").unwrap();
    }
    let bobs = Some(bob.scope());
    assert_eq!(store.list(Namespace::Message, bobs).unwrap().len(), 5);
    assert_eq!(store.list(Namespace::Message, None).unwrap().len(), 6);

    let one = bob.message(MessageId([10; 16]));
    assert!(store.delete(&one).unwrap());
    assert!(!store.delete(&one).unwrap());
    assert_eq!(store.get(&one).unwrap(), None);
    assert_eq!(store.list(Namespace::Message, bobs).unwrap().len(), 4);

    let slots_before = store.vault.slots_in_use();
    // Contact, session, meta and four messages.
    assert_eq!(store.erase_contact(bob_id, bob.scope()).unwrap(), 7);
    assert_eq!(store.vault.slots_in_use(), slots_before - 7);
    assert_eq!(store.erase_contact(bob_id, bob.scope()).unwrap(), 0);
    for ns in Namespace::ALL.into_iter().filter(|ns| ns.is_per_contact()) {
        assert!(store.list(ns, bobs).unwrap().is_empty(), "{ns:?}");
    }
    assert_eq!(got(&store, &carol_msg), Some(b"hi".to_vec()));
    assert!(store.get(&StoreKey::Identity).unwrap().is_some());
    drop(store);
    let store = LocalStore::open(&home, KeySource::KeyFile).unwrap();
    assert!(store.list(Namespace::Session, None).unwrap().is_empty());
    assert_eq!(store.list(Namespace::Contact, None).unwrap().len(), 1);
}

#[test]
fn limits_and_bad_keys_are_typed_errors() {
    let (_dir, home) = home();
    let store = LocalStore::create(&home, KeySource::KeyFile).unwrap();
    let long = "x".repeat(limits::MAX_NAME_LEN + 1);
    for key in [
        StoreKey::LegacyContact(String::new()),
        StoreKey::LegacyMessage(long.clone(), MessageId([0; 16])),
        StoreKey::Invitation(Vec::new()),
        StoreKey::Invitation(vec![0; limits::MAX_INVITATION_ID_LEN + 1]),
    ] {
        let err = store.put(&key, b"v").unwrap_err();
        assert!(matches!(err, StoreError::InvalidKey { .. }), "{err:?}");
    }
    let at_limit = StoreKey::LegacyContact("x".repeat(limits::MAX_NAME_LEN));
    store.put(&at_limit, b"v").unwrap();
    let big = vec![0u8; limits::MAX_VALUE_LEN + 1];
    let err = store.put(&StoreKey::Identity, &big).unwrap_err();
    assert!(matches!(err, StoreError::ValueTooLarge { .. }), "{err:?}");
    let err = store
        .list(Namespace::Identity, Some(bob().0.scope()))
        .unwrap_err();
    assert!(matches!(err, StoreError::NotPerContact { .. }), "{err:?}");
    let err = store
        .put(&StoreKey::LegacyContact(long.clone()), b"v")
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "a contact name must be 1 to 256 bytes long; choose another"
    );
    assert!(matches!(
        store.erase_legacy_contact(&long),
        Err(StoreError::InvalidKey { .. })
    ));
}

#[test]
fn second_open_while_in_use_is_refused() {
    let (_dir, home) = home();
    let store = LocalStore::create(&home, KeySource::KeyFile).unwrap();
    let err = LocalStore::open(&home, KeySource::KeyFile).unwrap_err();
    assert!(matches!(err, StoreError::InUse), "{err:?}");
    drop(store);
    LocalStore::open(&home, KeySource::KeyFile).unwrap();
}

#[test]
fn crash_leftovers_are_reconciled_on_open() {
    let (_dir, home) = home();
    let store = LocalStore::create(&home, KeySource::KeyFile).unwrap();
    let kept = StoreKey::Contact(bob().1);
    let half_deleted = bob().0.message(MessageId([1; 16]));
    store.put(&kept, b"keys").unwrap();
    store.put(&half_deleted, b"going").unwrap();
    // A put that allocated a key, then crashed before its record landed.
    let (orphan, _) = store.vault.allocate().unwrap();
    store.vault.sync().unwrap();
    // A delete that shredded the key, then crashed before removing the record.
    let value = store
        .db
        .get(store.index.sled_key(&half_deleted))
        .unwrap()
        .unwrap();
    let slot = record::RawRecord::parse(&value).unwrap().slot;
    store.vault.shred(slot).unwrap();
    let in_use = store.vault.slots_in_use();
    drop(store);

    let store = LocalStore::open(&home, KeySource::KeyFile).unwrap();
    assert_eq!(store.get(&half_deleted).unwrap(), None);
    assert!(store.list(Namespace::Message, None).unwrap().is_empty());
    assert!(matches!(
        store.vault.get(orphan),
        Err(VaultError::EmptySlot(_))
    ));
    assert_eq!(store.vault.slots_in_use(), in_use - 1);
    assert!(!store.vault.occupied_slots().contains(&slot));
    assert_eq!(got(&store, &kept), Some(b"keys".to_vec()));
}

fn corrupt_open(home: &Path) -> StoreError {
    LocalStore::open(home, KeySource::KeyFile).unwrap_err()
}

#[test]
fn corrupted_record_is_a_typed_error() {
    let (_dir, home) = home();
    let store = LocalStore::create(&home, KeySource::KeyFile).unwrap();
    let key = bob().0.meta();
    store.put(&key, b"meta").unwrap();
    let sled_key = store.index.sled_key(&key);
    let mut value = store.db.get(&sled_key).unwrap().unwrap().to_vec();
    let last = value.len() - 1;
    value[last] ^= 1;
    store.db.insert(&sled_key[..], value).unwrap();
    let err = store.get(&key).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    assert!(store.list(Namespace::ConversationMeta, None).is_err());
    // A value moved under another key does not open there either.
    let moved = store.db.get(&sled_key).unwrap().unwrap();
    store.db.insert(&[9u8, 9, 9][..], moved).unwrap();
    store.db.insert(&sled_key[..], &[1u8, 2][..]).unwrap();
    assert!(matches!(store.get(&key), Err(StoreError::Corrupt { .. })));
    store.db.flush().unwrap();
    drop(store);
    let err = corrupt_open(&home);
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    assert!(err.to_string().contains("damaged"));
}

/// Offset of vault slot `i`, from the vault's documented layout (128-byte header).
fn slot_offset(slot: SlotId) -> u64 {
    128 + slot.index() * hush_vault::SLOT_LEN as u64
}

#[test]
fn corrupted_or_truncated_vault_is_a_typed_error() {
    let (_dir, home) = home();
    let store = LocalStore::create(&home, KeySource::KeyFile).unwrap();
    let key = StoreKey::Contact(bob().1);
    store.put(&key, b"keys").unwrap();
    let value = store.db.get(store.index.sled_key(&key)).unwrap().unwrap();
    let slot = record::RawRecord::parse(&value).unwrap().slot;
    drop(store);
    let vault = home.join("keys.vault");
    let pristine = fs::read(&vault).unwrap();

    let mut flipped = pristine.clone();
    flipped[slot_offset(slot) as usize + 30] ^= 0x40;
    fs::write(&vault, &flipped).unwrap();
    assert!(matches!(corrupt_open(&home), StoreError::Corrupt { .. }));

    // Cut just before the record's slot ends; the header survives.
    fs::write(&vault, &pristine[..slot_offset(slot) as usize + 10]).unwrap();
    assert!(matches!(corrupt_open(&home), StoreError::Corrupt { .. }));
    for len in [0, 60] {
        fs::write(&vault, &pristine[..len]).unwrap();
        let err = corrupt_open(&home);
        assert!(matches!(err, StoreError::Corrupt { .. }), "{len}: {err:?}");
    }
    // A failed open changed nothing: the intact vault opens again.
    fs::write(&vault, &pristine).unwrap();
    let store = LocalStore::open(&home, KeySource::KeyFile).unwrap();
    assert_eq!(got(&store, &key), Some(b"keys".to_vec()));
}

#[test]
fn damaged_marker_or_missing_database_is_a_typed_error() {
    let (_dir, home) = home();
    drop(LocalStore::create(&home, KeySource::KeyFile).unwrap());
    let marker = home.join("store.marker");
    let good = fs::read(&marker).unwrap();
    fs::write(&marker, b"HUSHSTO1\x07").unwrap();
    assert!(matches!(corrupt_open(&home), StoreError::Corrupt { .. }));
    assert!(matches!(
        LocalStore::key_kind(&home),
        Err(StoreError::Corrupt { .. })
    ));
    fs::write(&marker, good).unwrap();
    fs::remove_dir_all(home.join("db")).unwrap();
    assert!(matches!(corrupt_open(&home), StoreError::Corrupt { .. }));
}

#[test]
fn debug_output_names_nothing() {
    let key = StoreKey::LegacyMessage("zebulon".into(), MessageId([0xAB; 16]));
    let shown = format!("{key:?}");
    assert!(
        shown.contains("Message") && !shown.contains("zebulon"),
        "{shown}"
    );
    let (bob, id) = bob();
    for shown in [
        format!("{bob:?}"),
        format!("{id:?}"),
        format!("{:?}", bob.scope()),
    ] {
        assert!(!shown.contains("176") && !shown.contains("b0"), "{shown}");
    }
    let shown = format!("{:?}", pass("hunter2-secret"));
    assert!(
        shown.contains("Passphrase") && !shown.contains("hunter2"),
        "{shown}"
    );
}

#[test]
fn create_does_not_wipe_a_store_that_lost_its_marker() {
    let (_dir, home) = home();
    let store = LocalStore::create(&home, KeySource::KeyFile).unwrap();
    store.put(&StoreKey::Identity, b"id").unwrap();
    drop(store);
    let marker = home.join("store.marker");
    let saved = fs::read(&marker).unwrap();
    fs::remove_file(&marker).unwrap();
    let err = LocalStore::create(&home, KeySource::KeyFile).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    fs::write(&marker, saved).unwrap();
    let store = LocalStore::open(&home, KeySource::KeyFile).unwrap();
    assert_eq!(got(&store, &StoreKey::Identity), Some(b"id".to_vec()));
}

#[test]
fn store_is_shareable_between_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<LocalStore>();
    let (_dir, home) = home();
    let store = LocalStore::create(&home, KeySource::KeyFile).unwrap();
    std::thread::scope(|s| {
        for t in 0..4u8 {
            let store = &store;
            s.spawn(move || {
                for i in 0..10u8 {
                    let key = ContactKey::from_bytes([t; 32]).message(MessageId([i; 16]));
                    store.put(&key, &[t, i]).unwrap();
                }
            });
        }
    });
    for t in 0..4u8 {
        let scope = ContactKey::from_bytes([t; 32]).scope();
        let msgs = store.list(Namespace::Message, Some(scope)).unwrap();
        assert_eq!(msgs.len(), 10);
        assert!(msgs.iter().all(|(_, v)| v[0] == t));
    }
}
