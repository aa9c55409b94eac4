//! Forensic tests: what someone who copies the home directory (and its key file) can learn.
//!
//! They search every byte of every file for names, ids and plaintexts (with the shared
//! `hush_vault::forensic` search), and play an attacker who holds the device key: every key
//! left in the vault is tried against every ciphertext.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use hush_vault::forensic::{self, Pattern};
use hush_vault::{DeviceKey, RecordKey, Vault, VaultOptions, SLOT_LEN};

use super::record::{decode_body, RawRecord};
use super::tests::{home, pass};
use super::*;
use crate::conversation::{Direction, MessageBody, MessageId, MessageRecord};

const NAME: &str = "Zanzibar-Quill-4471";
const CANARY: &str = "CANARY: the safe code is 8836-ALPHA-TANGO";
const ID: MessageId = MessageId(*b"msgid-canary-123");

/// The canary contact's store key and id.
fn canary() -> (ContactKey, ContactId) {
    (ContactKey::from_bytes([0x5A; 32]), ContactId([0x5A; 16]))
}

/// What the client keeps in a contact record: its name and store key (and more).
fn contact_value() -> Vec<u8> {
    [NAME.as_bytes(), &canary().0.as_bytes()[..]].concat()
}

/// Checks that no file under `home` holds `needle`, after showing that the search sees it there
/// when it is.
fn assert_nowhere(home: &Path, needle: &[u8]) {
    forensic::assert_gone(home, &Pattern::bytes(needle));
}

fn canary_message() -> MessageRecord {
    MessageRecord {
        id: ID,
        direction: Direction::Received,
        sent_at: 1_700_000_000,
        received_at: 1_700_000_001,
        timer: Some(60),
        view_once: false,
        envelope_id: None,
        displayed_at: Some(1_700_000_002),
        body: Some(MessageBody::new(CANARY)),
        file: None,
        group: None,
    }
}

/// A store with the canary contact's four kinds of record and another contact's message.
fn populated(home: &Path) -> LocalStore {
    let store = LocalStore::create(home, KeySource::KeyFile).unwrap();
    let (key, id) = canary();
    store.put(&StoreKey::Contact(id), &contact_value()).unwrap();
    store.put(&key.session(), b"ratchet").unwrap();
    store.put(&key.meta(), b"meta").unwrap();
    store
        .put(&key.message(ID), &canary_message().encode())
        .unwrap();
    let other = ContactKey::from_bytes([7; 32]).message(MessageId([7; 16]));
    store.put(&other, b"unrelated").unwrap();
    store.flush().unwrap();
    store
}

/// Every key the attacker finds in the vault, unlocked with the stolen key file.
fn stolen_keys(home: &Path) -> Vec<RecordKey> {
    let device = DeviceKey::load_or_create_key_file(&home.join("device.key")).unwrap();
    let vault = Vault::open(&home.join("keys.vault"), &device, VaultOptions::default()).unwrap();
    vault
        .occupied_slots()
        .into_iter()
        .map(|slot| vault.get(slot).unwrap())
        .collect()
}

/// Whether any of `keys` opens the sealed `value` stored under `sled_key`.
fn opens_with_any(keys: &[RecordKey], sled_key: &[u8], value: &[u8]) -> bool {
    let raw = RawRecord::parse(value).unwrap();
    keys.iter().any(|k| raw.open(k, sled_key).is_ok())
}

/// Every (sled key, value) left in the database. The store must be closed.
fn database(home: &Path) -> Vec<(Vec<u8>, Vec<u8>)> {
    let db = sled::open(home.join("db")).unwrap();
    db.iter()
        .map(|item| {
            let (k, v) = item.unwrap();
            (k.to_vec(), v.to_vec())
        })
        .collect()
}

/// Decrypts every remaining record with every stolen key and checks that none is `gone`
/// and none holds `needle`.
fn assert_unrecoverable(home: &Path, gone: &[StoreKey], needle: &[u8]) {
    let keys = stolen_keys(home);
    for (sled_key, value) in database(home) {
        let Ok(raw) = RawRecord::parse(&value) else {
            continue;
        };
        for key in &keys {
            let Ok(plain) = raw.open(key, &sled_key) else {
                continue;
            };
            assert!(!Pattern::bytes(needle).found_in(&plain));
            if let Ok((found, _)) = decode_body(&plain) {
                assert!(!gone.contains(&found), "{found:?} is still readable");
            }
        }
    }
}

#[test]
fn deleted_message_is_unrecoverable_from_the_directory() {
    let (_dir, home) = home();
    let store = populated(&home);
    // Nothing names the contact or the message, even while they exist.
    assert_nowhere(&home, NAME.as_bytes());
    assert_nowhere(&home, CANARY.as_bytes());
    assert_nowhere(&home, &ID.0);

    let msg = canary().0.message(ID);
    let sled_key = store.index.sled_key(&msg);
    let sealed = store.db.get(&sled_key).unwrap().unwrap().to_vec();
    let slot = RawRecord::parse(&sealed).unwrap().slot;
    // While it exists, the stolen key file does open it: the attack below is a real one.
    assert!(opens_with_any(&stolen_keys(&home), &sled_key, &sealed));

    assert!(store.delete(&msg).unwrap());
    store.flush().unwrap();
    drop(store);

    assert_nowhere(&home, NAME.as_bytes());
    assert_nowhere(&home, CANARY.as_bytes());
    // Its key is zeros on disk, and no key left opens the old ciphertext.
    let vault = fs::read(home.join("keys.vault")).unwrap();
    let at = 128 + slot.index() as usize * SLOT_LEN;
    assert!(vault[at..at + SLOT_LEN].iter().all(|&b| b == 0));
    assert!(!opens_with_any(&stolen_keys(&home), &sled_key, &sealed));
    assert_unrecoverable(&home, &[msg], CANARY.as_bytes());
    // The rest of the conversation is intact.
    let store = LocalStore::open(&home, KeySource::KeyFile).unwrap();
    assert!(store.get(&canary().0.session()).unwrap().is_some());
}

#[test]
fn erased_contact_is_unrecoverable_from_the_directory() {
    let (_dir, home) = home();
    let store = populated(&home);
    let (key, id) = canary();
    let doomed = [
        StoreKey::Contact(id),
        key.session(),
        key.meta(),
        key.message(ID),
    ];
    let old: Vec<(Vec<u8>, Vec<u8>)> = doomed
        .iter()
        .map(|k| {
            let sled_key = store.index.sled_key(k);
            let value = store.db.get(&sled_key).unwrap().unwrap().to_vec();
            (sled_key, value)
        })
        .collect();
    let keys = stolen_keys(&home);
    assert!(old.iter().all(|(k, v)| opens_with_any(&keys, k, v)));

    // The attacker's guess, as store format 1 keyed it: a tag of the name under the index key.
    let guesses: Vec<Vec<u8>> = Namespace::ALL
        .into_iter()
        .map(|ns| store.index.legacy_prefix(ns, NAME))
        .collect();
    assert_eq!(store.erase_contact(id, key.scope()).unwrap(), doomed.len());
    store.flush().unwrap();
    drop(store);

    assert_nowhere(&home, NAME.as_bytes());
    assert_nowhere(&home, CANARY.as_bytes());
    let keys = stolen_keys(&home);
    for (sled_key, value) in &old {
        assert!(!opens_with_any(&keys, sled_key, value));
    }
    assert_unrecoverable(&home, &doomed, CANARY.as_bytes());
    // Neither the name nor the contact's key survives in any readable record, and no sled key
    // (nor anything in sled's log) is derived from the name: a guess cannot be confirmed.
    assert_unrecoverable(&home, &[], &key.as_bytes()[..]);
    assert_unrecoverable(&home, &[], NAME.as_bytes());
    for guess in &guesses {
        forensic::assert_absent(&home, &Pattern::bytes(&guess[1..]));
    }
    let store = LocalStore::open(&home, KeySource::KeyFile).unwrap();
    // The same search does see such a tag where format 1 wrote one.
    let legacy = StoreKey::LegacyContact("Guessable-Name-99".into());
    store.put(&legacy, b"v").unwrap();
    store.flush().unwrap();
    let tag = store.index.sled_key(&legacy)[1..].to_vec();
    forensic::assert_can_see(&home, &Pattern::bytes(&tag));
    store.delete(&legacy).unwrap();
    let left = store.list(Namespace::Message, None).unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(
        left[0].0.contact(),
        Some(ContactKey::from_bytes([7; 32]).scope())
    );
}

fn assert_private(home: &Path) {
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode(home), 0o700, "{home:?}");
    let mut stack = vec![home.to_path_buf()];
    let mut files = 0;
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                assert_eq!(mode(&path), 0o700, "{path:?}");
                stack.push(path);
            } else {
                assert_eq!(mode(&path), 0o600, "{path:?}");
                files += 1;
            }
        }
    }
    // The marker, the vault and sled's files at least.
    assert!(files >= 3);
}

#[test]
fn home_is_0700_and_every_file_0600() {
    for source in [|| KeySource::KeyFile, || pass("pw")] {
        let (_dir, home) = home();
        // A pre-existing, too open home directory is tightened.
        fs::create_dir_all(&home).unwrap();
        fs::set_permissions(&home, fs::Permissions::from_mode(0o755)).unwrap();
        let store = LocalStore::create(&home, source()).unwrap();
        assert_private(&home);
        let bob = ContactKey::from_bytes([0xB0; 32]);
        for i in 0..50u8 {
            store
                .put(&bob.message(MessageId([i; 16])), &[i; 2000])
                .unwrap();
        }
        store
            .erase_contact(ContactId([0xB0; 16]), bob.scope())
            .unwrap();
        store.flush().unwrap();
        assert_private(&home);
        drop(store);
        drop(LocalStore::open(&home, source()).unwrap());
        assert_private(&home);
    }
}
