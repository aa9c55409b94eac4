//! Opening a seized store's vault and sled database directly, and decrypting every live record
//! with every key the vault still holds.
//!
//! Two layouts, read from the formats' own code rather than through it:
//! - a client home (`client/src/store/record.rs`): every sled value is `version (1) ‖ slot (u64
//!   BE) ‖ sealed`, sealed with associated data `"hush-client store v1" ‖ slot ‖ sled key`;
//! - a relay's queue store, format 3 in `db.v2/` (`server/src/store/sled_store/codec.rs`,
//!   `seal.rs` and `segment.rs`): a queue's key is `'q' ‖ slot (u64 BE)`, its value sealed whole
//!   under the key in that vault slot with associated data `"hush-relay que 2" ‖ slot`; a
//!   segment's key is `'s' ‖ id (u64 BE)` and its value a run of `slot (u64 BE) ‖ length (u32
//!   BE) ‖ sealed envelope record`, each record sealed under the key in its slot with
//!   associated data `"hush-relay env 2" ‖ slot` (each is reported as a record of its own);
//!   format 2's `'e' ‖ slot` envelope records are read too. The format record `'f'` is not
//!   sealed.
//!
//! What it does not do: repair, remove or rewrite anything (it works on a copy), or read sled's
//! log for values that are no longer live.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use hush_vault::{DeviceKey, KdfParams, RecordKey, SlotId, Vault, VaultOptions, MAX_SLOTS};

/// How a seized store's vault is unlocked.
pub(super) enum Unlock<'a> {
    /// The `device.key` file in the store's directory.
    KeyFile,
    /// A passphrase (Argon2id costs come from the vault header).
    Passphrase(&'a str),
}

/// Which format the records follow.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Layout {
    /// A client home.
    Client,
    /// A relay's queue store.
    Relay,
}

/// One live sled entry, as the attacker sees it.
pub(super) struct Entry {
    /// What the entry is: its tree, namespace and key, in hex.
    pub(super) label: String,
    /// The sled key.
    pub(super) key: Vec<u8>,
    /// The raw value.
    pub(super) value: Vec<u8>,
    /// Whether the format seals this value.
    pub(super) sealed: bool,
    /// The slot the value's header names, if it has one.
    pub(super) named_slot: Option<u64>,
    /// Every plaintext some vault key opened, with that key's slot.
    pub(super) opened: Vec<(u64, Vec<u8>)>,
}

/// What one store gives up.
pub(super) struct StoreImage {
    /// Every live sled entry.
    pub(super) entries: Vec<Entry>,
    /// Every occupied vault slot.
    pub(super) occupied: Vec<u64>,
}

impl StoreImage {
    /// Occupied slots whose key opens no live record, and whether a live record names them.
    pub(super) fn orphans(&self) -> Vec<(u64, bool)> {
        let opening: BTreeSet<u64> = self
            .entries
            .iter()
            .flat_map(|e| e.opened.iter().map(|(slot, _)| *slot))
            .collect();
        let named: BTreeSet<u64> = self.entries.iter().filter_map(|e| e.named_slot).collect();
        self.occupied
            .iter()
            .filter(|s| !opening.contains(s))
            .map(|&s| (s, named.contains(&s)))
            .collect()
    }
}

/// Opens the store in `dir` (a copy) and decrypts every live record with every key.
pub(super) fn read_store(dir: &Path, layout: Layout, unlock: Unlock<'_>) -> StoreImage {
    let vault = open_vault(dir, unlock);
    let occupied: Vec<u64> = vault.occupied_slots().iter().map(|s| s.index()).collect();
    let keys: Vec<(u64, RecordKey)> = occupied
        .iter()
        .map(|&i| {
            let key = vault.get(SlotId::from_index(i)).unwrap_or_else(|e| {
                panic!(
                    "slot {i} of {} is occupied but does not open: {e}",
                    dir.display()
                )
            });
            (i, key)
        })
        .collect();
    let db_dir = dir.join(match layout {
        Layout::Client => "db",
        Layout::Relay => RELAY_DB_DIR,
    });
    assert!(
        db_dir.is_dir(),
        "no sled database at {} (the seized directory is not a whole store)",
        db_dir.display()
    );
    let db = sled::Config::new()
        .path(&db_dir)
        .open()
        .unwrap_or_else(|e| panic!("sled does not open {}: {e}", db_dir.display()));
    let mut entries = Vec::new();
    for name in db.tree_names() {
        let tree = db
            .open_tree(&name)
            .unwrap_or_else(|e| panic!("sled tree does not open: {e}"));
        for item in tree.iter() {
            let (k, v) = item.unwrap_or_else(|e| panic!("sled iteration failed: {e}"));
            if layout == Layout::Relay && k.first() == Some(&b's') {
                entries.extend(segment_entries(&name, &k, &v, &keys));
            } else {
                entries.push(entry(layout, &name, &k, &v, &keys));
            }
        }
    }
    StoreImage { entries, occupied }
}

fn open_vault(dir: &Path, unlock: Unlock<'_>) -> Vault {
    let path = dir.join("keys.vault");
    // Vault::open would create a missing or empty vault: check first.
    let len = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    assert!(len > 0, "no key vault at {}", path.display());
    let options = VaultOptions {
        max_slots: MAX_SLOTS,
    };
    let opened = match unlock {
        Unlock::KeyFile => {
            let key_file = dir.join("device.key");
            // load_or_create_key_file creates a missing file: check first.
            assert!(
                key_file.is_file(),
                "no key file at {} (seize a passphrase home with Seizure::home_with_passphrase)",
                key_file.display()
            );
            let key = DeviceKey::load_or_create_key_file(&key_file)
                .unwrap_or_else(|e| panic!("key file {} unusable: {e}", key_file.display()));
            Vault::open(&path, &key, options)
        }
        Unlock::Passphrase(p) => {
            Vault::open_with_passphrase(&path, p.as_bytes(), KdfParams::RECOMMENDED, options)
        }
    };
    opened.unwrap_or_else(|e| panic!("vault {} does not open: {e}", path.display()))
}

/// Label of the client store's associated data.
const CLIENT_AAD_LABEL: &[u8] = b"hush-client store v1";
/// The directory of a relay's sled database (formats 2 and 3).
const RELAY_DB_DIR: &str = "db.v2";
/// Label of the associated data of a relay's queue record.
const RELAY_QUEUE_LABEL: &[u8] = b"hush-relay que 2";
/// Label of the associated data of a relay's envelope record.
const RELAY_ENVELOPE_LABEL: &[u8] = b"hush-relay env 2";

fn client_aad(slot: u64, key: &[u8]) -> Vec<u8> {
    [CLIENT_AAD_LABEL, &slot.to_be_bytes(), key].concat()
}

fn entry(layout: Layout, tree: &[u8], k: &[u8], v: &[u8], keys: &[(u64, RecordKey)]) -> Entry {
    let mut e = Entry {
        label: label(layout, tree, k),
        key: k.to_vec(),
        value: v.to_vec(),
        sealed: false,
        named_slot: None,
        opened: Vec::new(),
    };
    match layout {
        Layout::Client => {
            // Every client value is sealed; one that does not parse is still tried whole.
            e.sealed = true;
            let (named, sealed) = match v.split_first() {
                Some((1, rest)) if rest.len() >= 8 => {
                    let slot = u64::from_be_bytes(rest[..8].try_into().expect("8 bytes"));
                    (Some(slot), &rest[8..])
                }
                _ => (None, v),
            };
            e.named_slot = named;
            for (slot, key) in keys {
                // The slot in the associated data is the one the header names; an attacker
                // also tries the slot the key came from, in case the header was altered.
                let aads = named
                    .into_iter()
                    .chain((named != Some(*slot)).then_some(*slot))
                    .map(|s| client_aad(s, k));
                if let Some(plain) = aads.into_iter().find_map(|aad| key.open(&aad, sealed).ok()) {
                    e.opened.push((*slot, plain));
                }
            }
        }
        Layout::Relay => {
            let label: Option<&[u8]> = match k.first() {
                Some(b'q') => Some(RELAY_QUEUE_LABEL),
                Some(b'e') => Some(RELAY_ENVELOPE_LABEL),
                _ => None,
            };
            if let (Some(label), Ok(slot)) = (label, <[u8; 8]>::try_from(&k[1..])) {
                e.sealed = true;
                let named = u64::from_be_bytes(slot);
                e.named_slot = Some(named);
                for (slot, key) in keys {
                    // As for the client: the named slot, and the key's own in case the key was
                    // altered.
                    let aads = std::iter::once(named)
                        .chain((named != *slot).then_some(*slot))
                        .map(|s| [label, &s.to_be_bytes()].concat());
                    if let Some(plain) = aads.into_iter().find_map(|aad| key.open(&aad, v).ok()) {
                        e.opened.push((*slot, plain));
                    }
                }
            }
        }
    }
    e
}

/// Every envelope record of a relay's segment (key `k`, value `v`), each as an entry of its
/// own: its value the sealed record, its named slot the one the segment gives it. A segment
/// that does not parse is one unsealed entry, searched whole.
fn segment_entries(tree: &[u8], k: &[u8], v: &[u8], keys: &[(u64, RecordKey)]) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while at < v.len() {
        let Some(head) = v.get(at..at + 12) else {
            break;
        };
        let slot = u64::from_be_bytes(head[..8].try_into().expect("8 bytes"));
        let len = u32::from_be_bytes(head[8..].try_into().expect("4 bytes")) as usize;
        let Some(sealed) = v.get(at + 12..at + 12 + len) else {
            break;
        };
        let mut e = Entry {
            label: format!("{} entry {}", label(Layout::Relay, tree, k), out.len()),
            key: k.to_vec(),
            value: sealed.to_vec(),
            sealed: true,
            named_slot: Some(slot),
            opened: Vec::new(),
        };
        for (key_slot, key) in keys {
            let aads = std::iter::once(slot)
                .chain((slot != *key_slot).then_some(*key_slot))
                .map(|s| [RELAY_ENVELOPE_LABEL, &s.to_be_bytes()].concat());
            if let Some(plain) = aads.into_iter().find_map(|aad| key.open(&aad, sealed).ok()) {
                e.opened.push((*key_slot, plain));
            }
        }
        out.push(e);
        at += 12 + len;
    }
    if at != v.len() {
        out.push(Entry {
            label: format!("{} (unparsed)", label(Layout::Relay, tree, k)),
            key: k.to_vec(),
            value: v.to_vec(),
            sealed: false,
            named_slot: None,
            opened: Vec::new(),
        });
    }
    out
}

/// What a record is, for reports: its tree (if not the default), namespace and key in hex.
fn label(layout: Layout, tree: &[u8], k: &[u8]) -> String {
    let kind = match (layout, k.first()) {
        (_, None) => "empty key".to_owned(),
        (Layout::Client, Some(&b)) => match b {
            0 => "index key".to_owned(),
            1 => "identity".to_owned(),
            2 => "setting".to_owned(),
            3 => "format 1 contact".to_owned(),
            4 => "format 1 session".to_owned(),
            5 => "format 1 conversation meta".to_owned(),
            6 => "format 1 message".to_owned(),
            7 => "invitation".to_owned(),
            8 => "transfer".to_owned(),
            9 => "contact".to_owned(),
            10 => "session".to_owned(),
            11 => "conversation meta".to_owned(),
            12 => "message".to_owned(),
            13 => "owed burn".to_owned(),
            14 => "tombstone".to_owned(),
            other => format!("namespace {other}"),
        },
        (Layout::Relay, Some(b'q')) => "queue".to_owned(),
        (Layout::Relay, Some(b'e')) => "envelope".to_owned(),
        (Layout::Relay, Some(b's')) => "segment".to_owned(),
        (Layout::Relay, Some(b'f')) => "store format".to_owned(),
        (Layout::Relay, Some(&b)) => format!("kind {b:#04x}"),
    };
    let tree = if tree == b"__sled__default" {
        String::new()
    } else {
        format!("tree {} ", String::from_utf8_lossy(tree))
    };
    format!("{tree}{kind} record {}", hex(k))
}

/// Lowercase hex.
pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
