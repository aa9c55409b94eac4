//! The store's format on disk, and the move of a format 1 database to format 2.
//!
//! Format 1 kept ids in the clear: queue records keyed by recipient id (with the sender id,
//! recipient key, `last_active` and counters unsealed), a sender id → recipient id index, and
//! envelopes keyed by recipient id and seq with their id and expiry unsealed (only the body was
//! sealed). It had no format record. Format 2 is described in `codec` and `seal`.
//!
//! A format 1 database is not changed in place: sled's log would keep the old records, ids and
//! all. Instead every record is rewritten, sealed, into a new database beside it
//! ([`STAGED_DIR`]), which is flushed and then swapped in for the old one, whose files are then
//! deleted. Each envelope keeps its vault key (the old sealed copies go with the old files);
//! each queue gets a new one. Records that do not open (a crash's leftovers) are not carried
//! over, and keys nothing refers to any more are shredded by `recovery` on open. A crash at any
//! point leaves either the old database whole (the migration runs again) or the new one whole
//! ([`finish_swap`] completes the swap).
//!
//! What it does not do: overwrite the old files' blocks (a file system may keep them, see
//! `docs/operations.md`), or migrate anything but format 1.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::Path;

use hush_protocol::ids::ID_LEN;
use hush_protocol::{EnvelopeId, RecipientId, SenderId};
use hush_vault::{SlotId, Vault};

use super::codec::{envelope_key, format_value, queue_key, QueueValue, FORMAT, FORMAT_KEY};
use super::error::{backend, failed};
use super::mem::coarse_active;
use super::seal::{seal_envelope, seal_queue, EnvelopeHead};
use super::{open_db, DB_DIR};
use crate::store::StoreError;

/// Where the rewritten database is built before it is swapped in.
const STAGED_DIR: &str = "db.format2";
/// Where the old database goes during the swap, before it is deleted.
const OLD_DIR: &str = "db.format1";
/// Label of format 1's associated data of a sealed body.
const V1_BODY_LABEL: &[u8; 16] = b"hush-relay env 1";
/// Length of a format 1 queue value.
const V1_QUEUE_LEN: usize = ID_LEN + 64 + 32;
/// Length of a format 1 envelope value's head (id, expiry, slot).
const V1_HEAD_LEN: usize = ID_LEN + 16;

/// Brings the database in `dir` to the current format: completes a swap a crash interrupted,
/// stamps a new database, and migrates a format 1 one. Fails on a format it does not know.
pub(super) fn prepare(dir: &Path, vault: &Vault) -> Result<(), StoreError> {
    finish_swap(dir).map_err(|e| failed("cannot finish a store migration", e))?;
    let db = open_db(&dir.join(DB_DIR))?;
    if let Some(v) = db.get(FORMAT_KEY).map_err(backend)? {
        return match <[u8; 4]>::try_from(v.as_ref()).map(u32::from_be_bytes) {
            Ok(FORMAT) => Ok(()),
            Ok(other) => Err(StoreError::permanent(format!(
                "the store in {} has format {other}, which this relay does not know \
                 (it writes format {FORMAT}): run the relay version that wrote it",
                dir.display()
            ))),
            Err(_) => Err(StoreError::permanent("corrupt store format record")),
        };
    }
    if db.is_empty() {
        db.insert(FORMAT_KEY, &format_value()[..])
            .map_err(backend)?;
        db.flush().map_err(backend)?;
        return Ok(());
    }
    let staged = dir.join(STAGED_DIR);
    let (queues, envelopes) = rewrite(&db, &staged, vault)?;
    drop(db);
    swap(dir).map_err(|e| failed("cannot swap in the migrated store", e))?;
    tracing::info!(queues, envelopes, "store migrated to format {FORMAT}");
    Ok(())
}

/// Completes or cleans up after a migration a crash interrupted.
fn finish_swap(dir: &Path) -> io::Result<()> {
    let (db, staged, old) = (dir.join(DB_DIR), dir.join(STAGED_DIR), dir.join(OLD_DIR));
    if !db.exists() {
        // Between the two renames of `swap`: the staged database is complete.
        if staged.exists() {
            fs::rename(&staged, &db)?;
        } else if old.exists() {
            fs::rename(&old, &db)?;
        }
        sync_dir(dir)?;
    }
    for leftover in [staged, old] {
        if leftover.exists() {
            fs::remove_dir_all(leftover)?;
        }
    }
    Ok(())
}

/// Puts the staged database in place of the old one and deletes the old one.
fn swap(dir: &Path) -> io::Result<()> {
    let (db, staged, old) = (dir.join(DB_DIR), dir.join(STAGED_DIR), dir.join(OLD_DIR));
    fs::rename(&db, &old)?;
    fs::rename(&staged, &db)?;
    sync_dir(dir)?;
    fs::remove_dir_all(&old)?;
    sync_dir(dir)
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

/// Writes every format 1 queue and envelope of `db`, sealed, into a new database at `staged`.
/// Returns how many of each it carried over.
fn rewrite(db: &sled::Db, staged: &Path, vault: &Vault) -> Result<(u64, u64), StoreError> {
    if staged.exists() {
        fs::remove_dir_all(staged).map_err(backend)?;
    }
    let new = open_db(staged)?;
    let mut queues = HashSet::new();
    for item in db.scan_prefix([b'q']) {
        let (k, v) = item.map_err(backend)?;
        let Some((r, value)) = v1_queue(&k, &v) else {
            continue;
        };
        let (slot, key) = vault.allocate().map_err(backend)?;
        let sealed = seal_queue(&key, slot.index(), &r, &value);
        new.insert(queue_key(slot.index()), sealed)
            .map_err(backend)?;
        queues.insert(r);
    }
    let mut envelopes = 0u64;
    for item in db.scan_prefix([b'e']) {
        let (k, v) = item.map_err(backend)?;
        let Some((head, slot, sealed)) = v1_envelope(&k, &v) else {
            continue;
        };
        let Ok(key) = vault.get(SlotId::from_index(slot)) else {
            continue;
        };
        let Ok(body) = key.open(&v1_body_aad(&head), sealed) else {
            continue;
        };
        if queues.contains(&head.recipient) {
            let value = seal_envelope(&key, slot, &head, &body);
            new.insert(envelope_key(slot), value).map_err(backend)?;
            envelopes += 1;
        }
    }
    new.insert(FORMAT_KEY, &format_value()[..])
        .map_err(backend)?;
    new.flush().map_err(backend)?;
    vault.sync().map_err(backend)?;
    Ok((queues.len() as u64, envelopes))
}

fn id_at(bytes: &[u8], at: usize) -> [u8; ID_LEN] {
    let mut out = [0u8; ID_LEN];
    out.copy_from_slice(&bytes[at..at + ID_LEN]);
    out
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut out = [0u8; 8];
    out.copy_from_slice(&bytes[at..at + 8]);
    u64::from_be_bytes(out)
}

/// A format 1 queue record (`'q' ‖ recipient id` → sender id ‖ recipient key ‖ capability hash
/// ‖ last_active ‖ seq limit ‖ count ‖ bytes), as format 2 stores it.
fn v1_queue(k: &[u8], v: &[u8]) -> Option<(RecipientId, QueueValue)> {
    if k.len() != 1 + ID_LEN || v.len() != V1_QUEUE_LEN {
        return None;
    }
    let mut recipient_key = [0u8; 32];
    recipient_key.copy_from_slice(&v[ID_LEN..ID_LEN + 32]);
    let mut send_cap_hash = [0u8; 32];
    send_cap_hash.copy_from_slice(&v[ID_LEN + 32..ID_LEN + 64]);
    let value = QueueValue {
        sender_id: SenderId::from_bytes(id_at(v, 0)),
        recipient_key,
        send_cap_hash,
        last_active: coarse_active(u64_at(v, ID_LEN + 64)),
        next_seq: u64_at(v, ID_LEN + 72),
        count: 0,
        bytes: 0,
    };
    Some((RecipientId::from_bytes(id_at(k, 1)), value))
}

/// A format 1 envelope record (`'e' ‖ recipient id ‖ seq` → envelope id ‖ expires_at ‖ slot ‖
/// sealed body): its header, its key's slot and its sealed body.
fn v1_envelope<'v>(k: &[u8], v: &'v [u8]) -> Option<(EnvelopeHead, u64, &'v [u8])> {
    if k.len() != 1 + ID_LEN + 8 || v.len() < V1_HEAD_LEN {
        return None;
    }
    let head = EnvelopeHead {
        recipient: RecipientId::from_bytes(id_at(k, 1)),
        id: EnvelopeId::from_bytes(id_at(v, 0)),
        seq: u64_at(k, 1 + ID_LEN),
        expires_at: u64_at(v, ID_LEN),
    };
    Some((head, u64_at(v, ID_LEN + 8), &v[V1_HEAD_LEN..]))
}

/// Format 1's associated data of a sealed body: label ‖ recipient id ‖ seq ‖ envelope id.
fn v1_body_aad(head: &EnvelopeHead) -> Vec<u8> {
    let seq = head.seq.to_be_bytes();
    [
        &V1_BODY_LABEL[..],
        head.recipient.as_bytes(),
        &seq,
        head.id.as_bytes(),
    ]
    .concat()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sled_store::{SledStore, KEY_FILE, VAULT_FILE};
    use crate::store::{CapHash, NewEnvelope, QueueStore, Quota};
    use hush_vault::forensic::{self, Pattern};
    use hush_vault::{DeviceKey, VaultOptions};

    const RID: [u8; ID_LEN] = *b"recipient-id-one";
    const SID: [u8; ID_LEN] = *b"sender-id-number";
    const CAP: CapHash = [0x5C; 32];
    /// Envelope ids: two kept, one whose key a crash lost.
    const EIDS: [[u8; ID_LEN]; 3] = [
        *b"envelope-id-no-1",
        *b"envelope-id-no-2",
        *b"envelope-id-lost",
    ];

    /// Writes a data directory as format 1 did: one queue, its sender index, three envelopes
    /// (the last one's key shredded, as a crash could leave it) and the old on-disk indexes.
    fn write_format_1(dir: &Path) {
        let key = DeviceKey::load_or_create_key_file(&dir.join(KEY_FILE)).unwrap();
        let vault = Vault::open(&dir.join(VAULT_FILE), &key, VaultOptions::default()).unwrap();
        let db = sled::open(dir.join(DB_DIR)).unwrap();
        let mut q = [b'q'; 1 + ID_LEN];
        q[1..].copy_from_slice(&RID);
        let mut v = Vec::new();
        v.extend_from_slice(&SID);
        v.extend_from_slice(&[0x4B; 32]);
        v.extend_from_slice(&CAP);
        for n in [1_000u64, 1 + (1 << 16), 3, 15] {
            v.extend_from_slice(&n.to_be_bytes());
        }
        db.insert(q, v).unwrap();
        db.insert([&b"s"[..], &SID].concat(), &RID[..]).unwrap();
        for (n, eid) in EIDS.iter().enumerate() {
            let seq = n as u64 + 1;
            let (slot, k) = vault.allocate().unwrap();
            let head = EnvelopeHead {
                recipient: RecipientId::from_bytes(RID),
                id: EnvelopeId::from_bytes(*eid),
                seq,
                expires_at: 5_000,
            };
            let mut value = eid.to_vec();
            value.extend_from_slice(&5_000u64.to_be_bytes());
            value.extend_from_slice(&slot.index().to_be_bytes());
            k.seal_into(
                &v1_body_aad(&head),
                format!("body {n}").as_bytes(),
                &mut value,
            );
            let key = [&b"e"[..], &RID, &seq.to_be_bytes()].concat();
            db.insert(key, value).unwrap();
            if n == 2 {
                vault.shred(slot).unwrap();
            }
        }
        db.insert(b"i-old-index", &b"x"[..]).unwrap();
        db.flush().unwrap();
        vault.sync().unwrap();
    }

    #[tokio::test]
    async fn a_format_1_directory_is_rewritten_sealed_and_keeps_its_queues_and_envelopes() {
        let dir = tempfile::tempdir().unwrap();
        write_format_1(dir.path());
        let ids: Vec<&[u8]> = [&RID[..], &SID, &EIDS[0], &EIDS[1]].into();
        // The search sees the ids in format 1's files.
        for id in &ids {
            forensic::assert_can_see(dir.path(), &Pattern::bytes(id));
        }

        let s = SledStore::open(dir.path()).unwrap();
        let (r, sender) = (RecipientId::from_bytes(RID), SenderId::from_bytes(SID));
        let q = s.queue(r).await.unwrap().unwrap();
        assert_eq!(
            (q.sender_id, q.recipient_key, q.send_cap_hash),
            (sender, [0x4B; 32], CAP)
        );
        assert_eq!(q.last_active, coarse_active(1_000));
        let pending = s.pending(r, 0, 10, 1).await.unwrap();
        let got: Vec<_> = pending
            .iter()
            .map(|e| (e.seq, e.id, e.body.clone()))
            .collect();
        let want: Vec<_> = (0..2u8)
            .map(|n| {
                let id = EnvelopeId::from_bytes(EIDS[usize::from(n)]);
                (u64::from(n) + 1, id, format!("body {n}").into_bytes())
            })
            .collect();
        assert_eq!(got, want);
        // Sends and acks go on, with seqs above the old ones.
        let env = NewEnvelope {
            id: EnvelopeId::from_bytes([7; ID_LEN]),
            body: b"new".to_vec(),
            expires_at: 5_000,
        };
        let quota = Quota {
            max_messages: 10,
            max_bytes: 1 << 20,
        };
        assert_eq!(s.send(sender, CAP, env, None, quota, 2).await.unwrap(), r);
        assert!(s.pending(r, 0, 10, 1).await.unwrap()[2].seq > 2);
        assert!(s.ack(r, EnvelopeId::from_bytes(EIDS[0]), 2).await.unwrap());
        // Two envelopes' keys and the queue's: the lost envelope is gone with its key.
        assert_eq!(s.inner.core.vault.slots_in_use(), 3);
        drop(s);

        for id in &ids {
            let found = forensic::files_holding(dir.path(), &Pattern::bytes(id));
            assert!(found.is_empty(), "an id of format 1 is still in {found:?}");
        }
        assert!(!dir.path().join(STAGED_DIR).exists());
        assert!(!dir.path().join(OLD_DIR).exists());
        let s = SledStore::open(dir.path()).unwrap();
        assert_eq!(s.pending(r, 0, 10, 1).await.unwrap().len(), 2);
    }

    #[test]
    fn a_swap_a_crash_interrupted_is_finished_and_leftovers_go() {
        let dir = tempfile::tempdir().unwrap();
        let (db, staged, old) = (
            dir.path().join(DB_DIR),
            dir.path().join(STAGED_DIR),
            dir.path().join(OLD_DIR),
        );
        let mark = |d: &Path, what: &str| {
            fs::create_dir_all(d).unwrap();
            fs::write(d.join("mark"), what).unwrap();
        };
        // Between the renames: the complete new database goes in, the old one goes.
        mark(&staged, "new");
        mark(&old, "old");
        finish_swap(dir.path()).unwrap();
        assert_eq!(fs::read(db.join("mark")).unwrap(), b"new");
        assert!(!staged.exists() && !old.exists());
        // Before the swap: an unfinished rewrite goes, the old database stays.
        mark(&staged, "partial");
        finish_swap(dir.path()).unwrap();
        assert_eq!(fs::read(db.join("mark")).unwrap(), b"new");
        assert!(!staged.exists());
    }

    #[test]
    fn an_unknown_format_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path().join(DB_DIR)).unwrap();
        db.insert(FORMAT_KEY, &9u32.to_be_bytes()[..]).unwrap();
        db.flush().unwrap();
        drop(db);
        let key = DeviceKey::load_or_create_key_file(&dir.path().join(KEY_FILE)).unwrap();
        let vault = Vault::open(&dir.path().join(VAULT_FILE), &key, VaultOptions::default());
        let err = prepare(dir.path(), &vault.unwrap()).unwrap_err();
        assert!(err.to_string().contains("format 9"), "{err}");
    }
}
