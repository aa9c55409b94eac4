//! Property test: a vault driven by random allocate / shred / sync / reopen sequences always
//! agrees with a simple model of which slots hold which keys.

use std::collections::BTreeMap;

use hush_vault::{DeviceKey, SlotId, Vault, VaultError, VaultOptions, SLOT_LEN};
use proptest::prelude::*;

const MAX_SLOTS: u64 = 6;
const HEADER_LEN: usize = 128;

#[derive(Clone, Debug)]
enum Op {
    Allocate,
    Shred(usize),
    ShredDeferred(usize),
    Sync,
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => Just(Op::Allocate),
        2 => any::<usize>().prop_map(Op::Shred),
        2 => any::<usize>().prop_map(Op::ShredDeferred),
        1 => Just(Op::Sync),
        1 => Just(Op::Reopen),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn vault_matches_model(ops in proptest::collection::vec(op(), 1..40)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vault");
        let key = DeviceKey::load_or_create_key_file(&dir.path().join("key")).unwrap();
        let options = VaultOptions { max_slots: MAX_SLOTS };
        let mut vault = Vault::open(&path, &key, options).unwrap();
        // Slot -> a record sealed under that slot's key.
        let mut model: BTreeMap<SlotId, Vec<u8>> = BTreeMap::new();
        let mut shredded: Vec<SlotId> = Vec::new();
        for op in ops {
            match op {
                Op::Allocate => match vault.allocate() {
                    Ok((slot, key)) => {
                        prop_assert!(!model.contains_key(&slot));
                        model.insert(slot, key.seal(b"probe", &slot.index().to_be_bytes()));
                        shredded.retain(|s| *s != slot);
                    }
                    Err(VaultError::Full { .. }) => {
                        prop_assert_eq!(model.len() as u64, MAX_SLOTS);
                    }
                    Err(e) => prop_assert!(false, "allocate failed: {e}"),
                },
                Op::Shred(i) | Op::ShredDeferred(i) if !model.is_empty() => {
                    let slot = *model.keys().nth(i % model.len()).unwrap();
                    if matches!(op, Op::Shred(_)) {
                        vault.shred(slot).unwrap();
                    } else {
                        vault.shred_deferred(slot).unwrap();
                    }
                    model.remove(&slot);
                    shredded.push(slot);
                }
                Op::Shred(_) | Op::ShredDeferred(_) => {}
                Op::Sync => vault.sync().unwrap(),
                Op::Reopen => {
                    vault.sync().unwrap();
                    drop(vault);
                    vault = Vault::open(&path, &key, options).unwrap();
                }
            }
            prop_assert_eq!(vault.occupied_slots(), model.keys().copied().collect::<Vec<_>>());
        }
        for (slot, sealed) in &model {
            let opened = vault.get(*slot).unwrap().open(b"probe", sealed).unwrap();
            prop_assert_eq!(opened, slot.index().to_be_bytes().to_vec());
        }
        let raw = std::fs::read(&path).unwrap();
        for slot in &shredded {
            let at = HEADER_LEN + slot.index() as usize * SLOT_LEN;
            prop_assert!(raw[at..at + SLOT_LEN].iter().all(|&b| b == 0));
            let is_empty = matches!(vault.get(*slot), Err(VaultError::EmptySlot(_)));
            prop_assert!(is_empty);
        }
    }
}
