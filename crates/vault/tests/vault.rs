//! Vault behaviour seen from outside: shredding, reopening, wrong keys, slot swaps, limits and
//! file permissions.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use hush_vault::{
    DeviceKey, KdfParams, SlotId, Vault, VaultError, VaultOptions, GROW_SLOTS, SLOT_LEN,
};

const CHEAP: KdfParams = KdfParams {
    memory_kib: 8,
    time_cost: 1,
    lanes: 1,
};
/// Must match the vault's header size, to read raw slots.
const HEADER_LEN: usize = 128;

fn raw_slot(path: &Path, slot: SlotId) -> Vec<u8> {
    let bytes = fs::read(path).unwrap();
    let at = HEADER_LEN + slot.index() as usize * SLOT_LEN;
    bytes[at..at + SLOT_LEN].to_vec()
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn shred_overwrites_the_slot_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vault");
    let key = DeviceKey::load_or_create_key_file(&dir.path().join("key")).unwrap();
    let vault = Vault::open(&path, &key, VaultOptions::default()).unwrap();
    let (a, key_a) = vault.allocate().unwrap();
    let (b, _) = vault.allocate().unwrap();
    vault.sync().unwrap();
    let sealed = key_a.seal(b"rec-a", b"secret body");
    assert!(raw_slot(&path, a).iter().any(|&x| x != 0));

    vault.shred(a).unwrap();
    assert_eq!(raw_slot(&path, a), vec![0u8; SLOT_LEN]);
    assert!(raw_slot(&path, b).iter().any(|&x| x != 0));
    assert!(matches!(vault.get(a), Err(VaultError::EmptySlot(_))));
    // No remaining key opens the record.
    for slot in vault.occupied_slots() {
        assert!(vault.get(slot).unwrap().open(b"rec-a", &sealed).is_err());
    }
    // The shredded slot is reused, with a different key.
    let (c, key_c) = vault.allocate().unwrap();
    assert_eq!(c, a);
    assert!(key_c.open(b"rec-a", &sealed).is_err());
}

#[test]
fn reopen_finds_the_same_keys_and_free_slots() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vault");
    let key_path = dir.path().join("key");
    let sealed;
    let (a, b);
    {
        let key = DeviceKey::load_or_create_key_file(&key_path).unwrap();
        let vault = Vault::open(&path, &key, VaultOptions::default()).unwrap();
        let (sa, ka) = vault.allocate().unwrap();
        let (sb, _) = vault.allocate().unwrap();
        let (sc, _) = vault.allocate().unwrap();
        vault.shred_deferred(sb).unwrap();
        vault.sync().unwrap();
        sealed = ka.seal(b"rec", b"payload");
        (a, b) = (sa, sb);
        assert_eq!(vault.occupied_slots(), vec![sa, sc]);
    }
    let key = DeviceKey::load_or_create_key_file(&key_path).unwrap();
    let vault = Vault::open(&path, &key, VaultOptions::default()).unwrap();
    assert_eq!(
        vault.get(a).unwrap().open(b"rec", &sealed).unwrap(),
        b"payload"
    );
    assert_eq!(vault.slots_in_use(), 2);
    // The free slot is found again and handed out first.
    assert_eq!(vault.allocate().unwrap().0, b);
}

#[test]
fn passphrase_vault_reopens_and_rejects_wrong_passphrase() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vault");
    let opts = VaultOptions::default();
    let (slot, sealed) = {
        let vault = Vault::open_with_passphrase(&path, b"correct horse", CHEAP, opts).unwrap();
        let (slot, key) = vault.allocate().unwrap();
        vault.sync().unwrap();
        (slot, key.seal(b"r", b"m"))
    };
    // The costs come from the header: different `new_params` do not matter on reopen.
    let other = KdfParams {
        time_cost: 2,
        ..CHEAP
    };
    let vault = Vault::open_with_passphrase(&path, b"correct horse", other, opts).unwrap();
    assert_eq!(vault.get(slot).unwrap().open(b"r", &sealed).unwrap(), b"m");
    drop(vault);
    assert!(matches!(
        Vault::open_with_passphrase(&path, b"wrong horse", CHEAP, opts),
        Err(VaultError::WrongKey)
    ));
    let file_key = DeviceKey::load_or_create_key_file(&dir.path().join("key")).unwrap();
    assert!(matches!(
        Vault::open(&path, &file_key, opts),
        Err(VaultError::WrongKey)
    ));
}

#[test]
fn wrong_key_file_is_rejected_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vault");
    let opts = VaultOptions::default();
    let right = DeviceKey::load_or_create_key_file(&dir.path().join("k1")).unwrap();
    let wrong = DeviceKey::load_or_create_key_file(&dir.path().join("k2")).unwrap();
    drop(Vault::open(&path, &right, opts).unwrap());
    assert!(matches!(
        Vault::open(&path, &wrong, opts),
        Err(VaultError::WrongKey)
    ));
    assert!(matches!(
        Vault::open_with_passphrase(&path, b"pw", CHEAP, opts),
        Err(VaultError::WrongKey)
    ));
    assert!(Vault::open(&path, &right, opts).is_ok());

    fs::write(dir.path().join("junk"), [7u8; 200]).unwrap();
    assert!(matches!(
        Vault::open(&dir.path().join("junk"), &right, opts),
        Err(VaultError::NotAVault)
    ));
}

#[test]
fn malformed_or_exposed_key_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let short = dir.path().join("short");
    fs::write(&short, [1u8; 10]).unwrap();
    fs::set_permissions(&short, fs::Permissions::from_mode(0o600)).unwrap();
    assert!(matches!(
        DeviceKey::load_or_create_key_file(&short),
        Err(VaultError::InvalidKeyFile)
    ));
    let exposed = dir.path().join("exposed");
    DeviceKey::load_or_create_key_file(&exposed).unwrap();
    fs::set_permissions(&exposed, fs::Permissions::from_mode(0o644)).unwrap();
    assert!(matches!(
        DeviceKey::load_or_create_key_file(&exposed),
        Err(VaultError::KeyFilePermissions { mode: 0o644 })
    ));
}

#[test]
fn swapped_slots_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vault");
    let key = DeviceKey::load_or_create_key_file(&dir.path().join("key")).unwrap();
    let vault = Vault::open(&path, &key, VaultOptions::default()).unwrap();
    let (a, _) = vault.allocate().unwrap();
    let (b, _) = vault.allocate().unwrap();
    vault.sync().unwrap();
    drop(vault);
    let mut bytes = fs::read(&path).unwrap();
    let (oa, ob) = (
        HEADER_LEN + a.index() as usize * SLOT_LEN,
        HEADER_LEN + b.index() as usize * SLOT_LEN,
    );
    let slot_a = bytes[oa..oa + SLOT_LEN].to_vec();
    bytes[ob..ob + SLOT_LEN].copy_from_slice(&slot_a);
    fs::write(&path, &bytes).unwrap();
    let vault = Vault::open(&path, &key, VaultOptions::default()).unwrap();
    assert!(vault.get(a).is_ok());
    assert!(matches!(vault.get(b), Err(VaultError::CorruptSlot(_))));
    assert!(matches!(
        vault.get(SlotId::from_index(GROW_SLOTS * 10)),
        Err(VaultError::SlotOutOfRange(_))
    ));
}

#[test]
fn slot_limit_is_enforced_and_freed_slots_are_reused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vault");
    let key = DeviceKey::load_or_create_key_file(&dir.path().join("key")).unwrap();
    let vault = Vault::open(&path, &key, VaultOptions { max_slots: 3 }).unwrap();
    let slots: Vec<SlotId> = (0..3).map(|_| vault.allocate().unwrap().0).collect();
    assert!(matches!(
        vault.allocate(),
        Err(VaultError::Full { max_slots: 3 })
    ));
    vault.shred_deferred(slots[1]).unwrap();
    // Shredding twice must not free the slot twice.
    vault.shred_deferred(slots[1]).unwrap();
    assert_eq!(vault.allocate().unwrap().0, slots[1]);
    assert!(matches!(vault.allocate(), Err(VaultError::Full { .. })));
}

#[test]
fn growth_spans_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vault");
    let key = DeviceKey::load_or_create_key_file(&dir.path().join("key")).unwrap();
    let vault = Vault::open(&path, &key, VaultOptions::default()).unwrap();
    let n = GROW_SLOTS + 5;
    let keys: Vec<_> = (0..n).map(|_| vault.allocate().unwrap()).collect();
    vault.sync().unwrap();
    let len = fs::metadata(&path).unwrap().len() as usize;
    assert_eq!(len, HEADER_LEN + 2 * GROW_SLOTS as usize * SLOT_LEN);
    let (slot, rk) = &keys[n as usize - 1];
    let sealed = rk.seal(b"x", b"y");
    assert_eq!(vault.get(*slot).unwrap().open(b"x", &sealed).unwrap(), b"y");
}

#[test]
fn files_and_directories_are_private() {
    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("a/b/key");
    DeviceKey::load_or_create_key_file(&key_path).unwrap();
    assert_eq!(mode(&key_path), 0o600);
    assert_eq!(mode(&dir.path().join("a/b")), 0o700);
    let key = DeviceKey::load_or_create_key_file(&key_path).unwrap();
    let vault_path = dir.path().join("c/vault");
    drop(Vault::open(&vault_path, &key, VaultOptions::default()).unwrap());
    assert_eq!(mode(&vault_path), 0o600);
    assert_eq!(mode(&dir.path().join("c")), 0o700);
}

#[test]
fn concurrent_allocations_get_distinct_slots() {
    let dir = tempfile::tempdir().unwrap();
    let key = DeviceKey::load_or_create_key_file(&dir.path().join("key")).unwrap();
    let vault = Vault::open(&dir.path().join("v"), &key, VaultOptions::default()).unwrap();
    let mut all: Vec<SlotId> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    (0..200)
                        .map(|_| vault.allocate().unwrap().0)
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 800);
    for slot in all {
        vault.get(slot).unwrap();
    }
}

#[test]
fn batched_allocation_and_shredding_write_what_single_calls_do() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vault");
    let key = DeviceKey::load_or_create_key_file(&dir.path().join("key")).unwrap();
    let options = VaultOptions { max_slots: 6 };
    let vault = Vault::open(&path, &key, options).unwrap();
    let (single, _) = vault.allocate().unwrap();
    // Only five slots are left: the batch gets five, not an error.
    let many = vault.allocate_many(8).unwrap();
    assert_eq!(many.len(), 5);
    vault.sync().unwrap();
    for (slot, k) in &many {
        assert_ne!(*slot, single);
        assert!(raw_slot(&path, *slot).iter().any(|&x| x != 0));
        let sealed = k.seal(b"rec", b"body");
        assert_eq!(
            vault.get(*slot).unwrap().open(b"rec", &sealed).unwrap(),
            b"body"
        );
    }
    assert!(matches!(vault.allocate(), Err(VaultError::Full { .. })));
    // Shred slots 1, 2 and 4 (two runs) and a free-to-be slot twice.
    let gone: Vec<SlotId> = [1, 2, 4, 2].map(SlotId::from_index).into();
    vault.shred_many(&gone).unwrap();
    vault.sync().unwrap();
    for slot in [1, 2, 4].map(SlotId::from_index) {
        assert!(raw_slot(&path, slot).iter().all(|&x| x == 0));
        assert!(matches!(vault.get(slot), Err(VaultError::EmptySlot(_))));
    }
    for slot in [0, 3, 5].map(SlotId::from_index) {
        assert!(vault.get(slot).is_ok(), "slot {slot:?} was not shredded");
    }
    assert_eq!(vault.slots_in_use(), 3);
    assert_eq!(vault.allocate_many(4).unwrap().len(), 3);
    let out_of_range = vault.shred_many(&[SlotId::from_index(99)]);
    assert!(matches!(out_of_range, Err(VaultError::SlotOutOfRange(99))));
}
