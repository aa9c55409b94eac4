//! The store's format on disk, and the moves of older formats to format 3: format 1 to format
//! 2's layout, then format 2 to segments.
//!
//! Format 2 to 3, in place: format 2 stored each sealed envelope record under its own `e` key;
//! format 3 keeps the same records, unchanged and under the same keys, as entries of segments
//! (`segment`). The `e` records are moved a segment at a time, each segment written in the
//! same sled batch that removes the keys it took over, and the format record is set to 3 once
//! none is left. Nothing is decrypted or re-sealed, and no vault key changes, so what sled's
//! log keeps of the old keys is as unreadable as the records themselves once their keys are
//! shredded. A crash part-way leaves format 2 with some segments, and the next open carries on.
//!
//! Format 1 kept ids in the clear: queue records keyed by recipient id (with the sender id,
//! recipient key, `last_active` and counters unsealed), a sender id → recipient id index, and
//! envelopes keyed by recipient id and seq with their id and expiry unsealed (only the body was
//! sealed). It lived in `db/` and had no format record. Format 2 (see `codec` and `seal`) lives
//! in its own directory, [`super::DB_DIR`].
//!
//! A format 1 database is not changed in place: sled's log would keep the old records, ids and
//! all. Instead every record is rewritten, sealed, into the format 2 database, whose format
//! record is written last; then the old directory is deleted. Each envelope keeps its vault key
//! (the old sealed copies go with the old files); each queue gets a new one. Records that do
//! not open (a crash's leftovers) are not carried over, and keys nothing refers to any more are
//! shredded by `recovery` on open. A crash before the format record is durable leaves the old
//! database whole and a new one without a format record, which the next open empties and
//! fills again; a crash after it leaves only the old directory to delete.
//!
//! Each database is opened once: sled 0.34 may hold a database's lock for a while after the
//! handle is dropped, so a database is never closed and opened again during start-up.
//!
//! What it does not do: overwrite the old files' blocks (a file system may keep them, see
//! `docs/operations.md`), or migrate anything but format 1.

use std::collections::HashSet;
use std::fs;
use std::path::Path;

use hush_protocol::ids::ID_LEN;
use hush_protocol::{EnvelopeId, RecipientId, SenderId};
use hush_vault::{SlotId, Vault};

use super::codec::{envelope_key, format_value, key_slot, queue_key, segment_key, QueueValue};
use super::codec::{ENVELOPE_PREFIX, FORMAT, FORMAT_2, FORMAT_KEY, SEGMENT_PREFIX};
use super::error::{backend, failed};
use super::mem::coarse_active;
use super::open_db;
use super::seal::{id_at, seal_envelope, seal_queue, u64_at, EnvelopeHead};
use super::segment::{push_entry, SEGMENT_TARGET_BYTES};
use crate::store::StoreError;

/// The directory of a format 1 database.
const V1_DIR: &str = "db";
/// Label of format 1's associated data of a sealed body.
const V1_BODY_LABEL: &[u8; 16] = b"hush-relay env 1";
/// Length of a format 1 queue value.
const V1_QUEUE_LEN: usize = ID_LEN + 64 + 32;
/// Length of a format 1 envelope value's head (id, expiry, slot).
const V1_HEAD_LEN: usize = ID_LEN + 16;

/// Opens the store's database at `db_dir` in the data directory `dir`, in the current format:
/// stamps a new one, rewrites a format 1 database into it, and moves a format 2 database's
/// envelopes into segments. Fails on a format it does not know.
pub(super) fn open_current(
    dir: &Path,
    db_dir: &Path,
    vault: &Vault,
) -> Result<sled::Db, StoreError> {
    let db = open_db(db_dir)?;
    let old = dir.join(V1_DIR);
    if let Some(v) = db.get(FORMAT_KEY).map_err(backend)? {
        match <[u8; 4]>::try_from(v.as_ref()).map(u32::from_be_bytes) {
            Ok(FORMAT) => {}
            Ok(FORMAT_2) => {
                let envelopes = to_segments(&db)?;
                stamp(&db)?;
                tracing::info!(envelopes, "store migrated from format 2 to format {FORMAT}");
            }
            Ok(other) => {
                return Err(StoreError::permanent(format!(
                    "the store in {} has format {other}, which this relay does not know \
                     (it writes format {FORMAT}): run the relay version that wrote it",
                    dir.display()
                )))
            }
            Err(_) => return Err(StoreError::permanent("corrupt store format record")),
        }
        // A migration finished, but the old directory was not yet deleted.
        remove_old(dir, &old)?;
        return Ok(db);
    }
    // New, or what an interrupted migration left: start from nothing.
    db.clear().map_err(backend)?;
    if old.exists() {
        let v1 = open_db(&old)?;
        let (queues, envelopes) = rewrite(&v1, &db, vault)?;
        to_segments(&db)?;
        tracing::info!(queues, envelopes, "store migrated to format {FORMAT}");
    }
    stamp(&db)?;
    remove_old(dir, &old)?;
    Ok(db)
}

/// Writes the current format record and makes it durable.
fn stamp(db: &sled::Db) -> Result<(), StoreError> {
    db.insert(FORMAT_KEY, &format_value(FORMAT)[..])
        .map_err(backend)?;
    db.flush().map_err(backend)?;
    Ok(())
}

/// Moves every format 2 envelope record (`e` ‖ slot) into segments, unchanged, each segment
/// in one batch with the removal of the keys it took over. Returns how many it moved.
fn to_segments(db: &sled::Db) -> Result<u64, StoreError> {
    let last = db.scan_prefix(SEGMENT_PREFIX).keys().next_back();
    let mut next = match last {
        Some(k) => key_slot(&k.map_err(backend)?)?.saturating_add(1),
        None => 0,
    };
    let mut moved = 0u64;
    let (mut value, mut batch) = (Vec::new(), sled::Batch::default());
    for item in db.scan_prefix(ENVELOPE_PREFIX) {
        let (k, v) = item.map_err(backend)?;
        // A key of another length is no record of format 2; `recovery` drops it.
        if k.len() != envelope_key(0).len() {
            continue;
        }
        let slot = key_slot(&k)?;
        if !value.is_empty() && value.len() + v.len() > SEGMENT_TARGET_BYTES {
            batch.insert(&segment_key(next)[..], std::mem::take(&mut value));
            db.apply_batch(std::mem::take(&mut batch))
                .map_err(backend)?;
            next += 1;
        }
        push_entry(&mut value, slot, |out| out.extend_from_slice(&v));
        batch.remove(k);
        moved += 1;
    }
    if !value.is_empty() {
        batch.insert(&segment_key(next)[..], value);
        db.apply_batch(batch).map_err(backend)?;
    }
    db.flush().map_err(backend)?;
    Ok(moved)
}

/// Deletes the format 1 directory `old` of the data directory `dir`, if it is there.
fn remove_old(dir: &Path, old: &Path) -> Result<(), StoreError> {
    if !old.exists() {
        return Ok(());
    }
    let removed = fs::remove_dir_all(old).and_then(|()| fs::File::open(dir)?.sync_all());
    removed.map_err(|e| failed("cannot delete the format 1 store", e))
}

/// Writes every format 1 queue and envelope of `v1`, sealed, into `db`, and makes them and
/// their keys durable. Returns how many of each it carried over.
fn rewrite(v1: &sled::Db, db: &sled::Db, vault: &Vault) -> Result<(u64, u64), StoreError> {
    let mut queues = HashSet::new();
    for item in v1.scan_prefix([b'q']) {
        let (k, v) = item.map_err(backend)?;
        let Some((r, value)) = v1_queue(&k, &v) else {
            continue;
        };
        let (slot, key) = vault.allocate().map_err(backend)?;
        let sealed = seal_queue(&key, slot.index(), &r, &value);
        db.insert(queue_key(slot.index()), sealed)
            .map_err(backend)?;
        queues.insert(r);
    }
    let mut envelopes = 0u64;
    for item in v1.scan_prefix([b'e']) {
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
            db.insert(envelope_key(slot), value).map_err(backend)?;
            envelopes += 1;
        }
    }
    db.flush().map_err(backend)?;
    vault.sync().map_err(backend)?;
    Ok((queues.len() as u64, envelopes))
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
    use crate::store::sled_store::{SledStore, DB_DIR, KEY_FILE, VAULT_FILE};
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
        let db = sled::open(dir.join(V1_DIR)).unwrap();
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
        assert!(!dir.path().join(V1_DIR).exists());
        let s = SledStore::open(dir.path()).unwrap();
        assert_eq!(s.pending(r, 0, 10, 1).await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn a_migration_a_crash_interrupted_starts_again() {
        let dir = tempfile::tempdir().unwrap();
        write_format_1(dir.path());
        {
            // What a crash before the format record left: part of the rewrite.
            let partial = sled::open(dir.path().join(DB_DIR)).unwrap();
            partial.insert(queue_key(99), &b"half-written"[..]).unwrap();
            partial.flush().unwrap();
        }
        let s = SledStore::open(dir.path()).unwrap();
        let r = RecipientId::from_bytes(RID);
        assert_eq!(s.pending(r, 0, 10, 1).await.unwrap().len(), 2);
        assert!(s.inner.core.db.get(queue_key(99)).unwrap().is_none());
        assert!(!dir.path().join(V1_DIR).exists());
    }

    #[tokio::test]
    async fn an_old_directory_left_after_a_finished_migration_is_deleted() {
        let dir = tempfile::tempdir().unwrap();
        {
            // What a crash after the format record but before the deletion left.
            let done = sled::open(dir.path().join(DB_DIR)).unwrap();
            done.insert(FORMAT_KEY, &format_value(FORMAT)[..]).unwrap();
            done.flush().unwrap();
        }
        write_format_1(dir.path());
        let s = SledStore::open(dir.path()).unwrap();
        assert!(!dir.path().join(V1_DIR).exists());
        let r = RecipientId::from_bytes(RID);
        assert!(s.queue(r).await.unwrap().is_none(), "not migrated twice");
    }

    /// Writes a data directory as format 2 did: one queue record and an `e` record per
    /// envelope (`bodies`, seqs from 1), each sealed under its own key; with `segment`, one
    /// envelope already moved to a segment, as a migration a crash interrupted leaves it.
    fn write_format_2(dir: &Path, bodies: &[&str], segment: bool) {
        let key = DeviceKey::load_or_create_key_file(&dir.join(KEY_FILE)).unwrap();
        let vault = Vault::open(&dir.join(VAULT_FILE), &key, VaultOptions::default()).unwrap();
        let db = sled::open(dir.join(DB_DIR)).unwrap();
        let (r, sender) = (RecipientId::from_bytes(RID), SenderId::from_bytes(SID));
        let value = QueueValue {
            sender_id: sender,
            recipient_key: [0x4B; 32],
            send_cap_hash: CAP,
            last_active: coarse_active(1_000),
            next_seq: 1 + (1 << 16),
            count: 0,
            bytes: 0,
        };
        let (slot, k) = vault.allocate().unwrap();
        db.insert(
            queue_key(slot.index()),
            seal_queue(&k, slot.index(), &r, &value),
        )
        .unwrap();
        for (n, body) in bodies.iter().enumerate() {
            let (slot, k) = vault.allocate().unwrap();
            let head = EnvelopeHead {
                recipient: r,
                id: EnvelopeId::from_bytes([n as u8; ID_LEN]),
                seq: n as u64 + 1,
                expires_at: 5_000,
            };
            let sealed = seal_envelope(&k, slot.index(), &head, body.as_bytes());
            if segment && n == 0 {
                let mut v = Vec::new();
                push_entry(&mut v, slot.index(), |out| out.extend_from_slice(&sealed));
                db.insert(segment_key(0), v).unwrap();
            } else {
                db.insert(envelope_key(slot.index()), sealed).unwrap();
            }
        }
        db.insert(FORMAT_KEY, &format_value(FORMAT_2)[..]).unwrap();
        db.flush().unwrap();
        vault.sync().unwrap();
    }

    async fn bodies(s: &SledStore) -> Vec<(u64, String)> {
        let r = RecipientId::from_bytes(RID);
        let pending = s.pending(r, 0, 1_000, 1).await.unwrap();
        let text = |b: &[u8]| String::from_utf8(b.to_vec()).unwrap();
        pending.iter().map(|e| (e.seq, text(&e.body))).collect()
    }

    #[tokio::test]
    async fn a_format_2_directory_moves_its_envelopes_into_segments() {
        let dir = tempfile::tempdir().unwrap();
        // Enough bodies for more than one segment.
        let long: Vec<String> = (0..40).map(|n| format!("{n:0>200}")).collect();
        let all: Vec<&str> = long.iter().map(String::as_str).collect();
        write_format_2(dir.path(), &all, false);
        {
            let db = sled::open(dir.path().join(DB_DIR)).unwrap();
            assert_eq!(db.scan_prefix(ENVELOPE_PREFIX).count(), 40);
        }
        let s = SledStore::open(dir.path()).unwrap();
        let want: Vec<(u64, String)> = (1..=40).zip(long.iter().cloned()).collect();
        assert_eq!(bodies(&s).await, want);
        let db = &s.inner.core.db;
        assert_eq!(db.scan_prefix(ENVELOPE_PREFIX).count(), 0);
        let segments = db.scan_prefix(SEGMENT_PREFIX).count();
        assert!((2..40).contains(&segments), "{segments} segments");
        let format = db.get(FORMAT_KEY).unwrap().unwrap();
        assert_eq!(format.as_ref(), format_value(FORMAT));
        // Acks and sends go on; the keys stayed where they were.
        let r = RecipientId::from_bytes(RID);
        assert!(s
            .ack(r, EnvelopeId::from_bytes([0; ID_LEN]), 1)
            .await
            .unwrap());
        let env = NewEnvelope {
            id: EnvelopeId::from_bytes([0xAA; ID_LEN]),
            body: b"new".to_vec(),
            expires_at: 5_000,
        };
        let quota = Quota {
            max_messages: 100,
            max_bytes: 1 << 20,
        };
        let sender = SenderId::from_bytes(SID);
        assert_eq!(s.send(sender, CAP, env, None, quota, 2).await.unwrap(), r);
        assert_eq!(s.inner.core.vault.slots_in_use(), 41);
        drop(s);
        let s = SledStore::open(dir.path()).unwrap();
        let after = bodies(&s).await;
        assert_eq!(after.len(), 40);
        assert_eq!(after[..39], want[1..]);
        assert!(after[39].0 > 40);
    }

    #[tokio::test]
    async fn a_format_2_migration_a_crash_interrupted_carries_on() {
        let dir = tempfile::tempdir().unwrap();
        write_format_2(dir.path(), &["moved", "still e 1", "still e 2"], true);
        let s = SledStore::open(dir.path()).unwrap();
        let got: Vec<String> = bodies(&s).await.into_iter().map(|(_, b)| b).collect();
        assert_eq!(got, ["moved", "still e 1", "still e 2"]);
        assert_eq!(s.inner.core.db.scan_prefix(ENVELOPE_PREFIX).count(), 0);
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
        let err = open_current(dir.path(), &dir.path().join(DB_DIR), &vault.unwrap()).unwrap_err();
        assert!(err.to_string().contains("format 9"), "{err}");
    }
}
