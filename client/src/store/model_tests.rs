//! A model-based test: random sequences of operations, with reopens in between, must leave the
//! store agreeing with a plain map, and the vault holding exactly one key per record.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::tests::home;
use super::*;
use crate::conversation::MessageId;

#[derive(Clone, Debug)]
enum Op {
    Put(StoreKey, Vec<u8>),
    Delete(StoreKey),
    Erase(u8),
    Reopen,
}

fn contact() -> impl Strategy<Value = u8> {
    prop_oneof![Just(1u8), Just(2u8)]
}

/// Contact `c`'s store key and id.
fn keys(c: u8) -> (ContactKey, ContactId) {
    (ContactKey::from_bytes([c; 32]), ContactId([c; 16]))
}

fn store_key() -> impl Strategy<Value = StoreKey> {
    prop_oneof![
        Just(StoreKey::Identity),
        Just(StoreKey::Setting(Setting::OwnName)),
        contact().prop_map(|c| StoreKey::Contact(keys(c).1)),
        contact().prop_map(|c| keys(c).0.session()),
        contact().prop_map(|c| keys(c).0.meta()),
        (contact(), 0u8..4).prop_map(|(c, id)| keys(c).0.message(MessageId([id; 16]))),
        (1u8..3).prop_map(|id| StoreKey::OwedBurn([id; OWED_ID_LEN])),
        (1u8..3).prop_map(|id| StoreKey::Invitation(vec![id])),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (store_key(), proptest::collection::vec(any::<u8>(), 0..40))
            .prop_map(|(k, v)| Op::Put(k, v)),
        2 => store_key().prop_map(Op::Delete),
        1 => contact().prop_map(Op::Erase),
        1 => Just(Op::Reopen),
    ]
}

/// The model's view, keyed by the record's own encoding so that it sorts.
type Model = BTreeMap<Vec<u8>, (StoreKey, Vec<u8>)>;

fn apply(store: &LocalStore, model: &mut Model, op: &Op) {
    match op {
        Op::Put(k, v) => {
            store.put(k, v).unwrap();
            model.insert(k.encode(), (k.clone(), v.clone()));
        }
        Op::Delete(k) => {
            let existed = model.remove(&k.encode()).is_some();
            assert_eq!(store.delete(k).unwrap(), existed);
        }
        Op::Erase(c) => {
            let (key, id) = keys(*c);
            let before = model.len();
            model.retain(|_, (k, _)| {
                k.contact() != Some(key.scope()) && *k != StoreKey::Contact(id)
            });
            let erased = store.erase_contact(id, key.scope()).unwrap();
            assert_eq!(erased, before - model.len());
        }
        Op::Reopen => {}
    }
}

fn check(store: &LocalStore, model: &Model) {
    let mut listed = Model::new();
    for ns in Namespace::ALL {
        for (k, v) in store.list(ns, None).unwrap() {
            assert_eq!(store.get(&k).unwrap().map(|g| g.to_vec()), Some(v.to_vec()));
            listed.insert(k.encode(), (k, v.to_vec()));
        }
    }
    assert_eq!(&listed, model);
    // One key per record, plus the index key.
    assert_eq!(store.vault.slots_in_use(), model.len() as u64 + 1);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn store_agrees_with_a_map(ops in proptest::collection::vec(op(), 1..30)) {
        let (_dir, home) = home();
        let mut store = LocalStore::create(&home, KeySource::KeyFile).unwrap();
        let mut model = Model::new();
        for op in &ops {
            if let Op::Reopen = op {
                drop(store);
                store = LocalStore::open(&home, KeySource::KeyFile).unwrap();
            }
            apply(&store, &mut model, op);
            check(&store, &model);
        }
    }
}
