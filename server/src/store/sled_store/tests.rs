//! Tests specific to [`SledStore`]: restarts, crash leftovers, what a raw-disk reader finds, and
//! group commit under concurrency. The backend-independent behaviour is in `conformance`.

use std::path::Path;
use std::time::{Duration, Instant};

use hush_protocol::{EnvelopeId, RecipientId, SenderId};
use hush_vault::forensic::{self, Pattern};
use hush_vault::{DeviceKey, SlotId, Vault, VaultError, VaultOptions};
use tokio::time::timeout;

use super::codec::SEGMENT_PREFIX;
use super::seal::open_envelope;
use super::segment::{entries, Place};
use super::{SledStore, DB_DIR, KEY_FILE, VAULT_FILE};
use crate::store::{CapHash, NewEnvelope, QueueRecord, QueueStore, Quota, StoreError};

const ROOMY: Quota = Quota {
    max_messages: 10_000,
    max_bytes: 1 << 30,
};
const FAR: u64 = 1_000_000;
const DEADLINE: Duration = Duration::from_secs(30);

fn rid(n: u8) -> RecipientId {
    RecipientId::from_bytes([n; 16])
}
fn sid(n: u8) -> SenderId {
    SenderId::from_bytes([n ^ 0x80; 16])
}
fn cap(n: u8) -> CapHash {
    [n; 32]
}
fn eid(n: u16) -> EnvelopeId {
    let mut id = [0xEE; 16];
    id[..2].copy_from_slice(&n.to_be_bytes());
    EnvelopeId::from_bytes(id)
}

async fn create(s: &SledStore, n: u8) {
    let rec = QueueRecord {
        recipient_id: rid(n),
        sender_id: sid(n),
        recipient_key: [n; 32],
        send_cap_hash: cap(n),
        last_active: 1,
    };
    s.create_queue(rec).await.unwrap();
}

async fn send(s: &SledStore, n: u8, id: u16, body: &[u8], expires_at: u64) {
    let env = NewEnvelope {
        id: eid(id),
        body: body.to_vec(),
        expires_at,
    };
    s.send(sid(n), cap(n), env, None, ROOMY, 1).await.unwrap();
}

#[tokio::test]
async fn reopen_keeps_envelopes_order_and_seqs() {
    let dir = tempfile::tempdir().unwrap();
    let before = {
        let s = SledStore::open(dir.path()).unwrap();
        create(&s, 1).await;
        for id in 1..=5 {
            send(&s, 1, id, &[id as u8; 100], FAR).await;
        }
        assert!(s.ack(rid(1), eid(3), 2).await.unwrap());
        s.pending(rid(1), 0, 100, 2).await.unwrap()
    };
    let s = SledStore::open(dir.path()).unwrap();
    let after = s.pending(rid(1), 0, 100, 2).await.unwrap();
    assert_eq!(after, before);
    assert_eq!(after.len(), 4);
    send(&s, 1, 6, b"later", FAR).await;
    let last = s.pending(rid(1), 0, 100, 2).await.unwrap().pop().unwrap();
    assert_eq!(last.id, eid(6));
    assert!(last.seq > before[3].seq);
    // Five envelopes' keys and the queue's.
    assert_eq!(s.inner.core.vault.slots_in_use(), 6);
}

#[tokio::test]
async fn crash_leftovers_are_dropped_on_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = SledStore::open(dir.path()).unwrap();
        create(&s, 1).await;
        send(&s, 1, 1, b"kept", FAR).await;
        send(&s, 1, 2, b"lost key", FAR).await;
        let lost = s.inner.core.envelope_slot(&rid(1), &eid(2)).unwrap();
        assert!(stored_slots(&s.inner.core.db).contains(&lost));
        // As if the crash hit after the record reached disk but before its key did, and after
        // a key reached disk but before its record did.
        s.inner.core.vault.shred(SlotId::from_index(lost)).unwrap();
        s.inner.core.vault.allocate().unwrap();
        s.inner.core.vault.sync().unwrap();
    }
    let s = SledStore::open(dir.path()).unwrap();
    let pending = s.pending(rid(1), 0, 10, 1).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].body, b"kept");
    // The kept envelope's key and the queue's.
    assert_eq!(s.inner.core.vault.slots_in_use(), 2);
    // The queue's counters were fixed: a two-message quota has room for exactly one more.
    let two = Quota {
        max_messages: 2,
        ..ROOMY
    };
    let env = |id| NewEnvelope {
        id: eid(id),
        body: b"x".to_vec(),
        expires_at: FAR,
    };
    s.send(sid(1), cap(1), env(3), None, two, 1).await.unwrap();
    let full = s.send(sid(1), cap(1), env(4), None, two, 1).await;
    assert!(matches!(full, Err(StoreError::QueueFull)));
}

/// How the distinctive envelope leaves the store.
#[derive(Clone, Copy, Debug)]
enum Removal {
    Ack,
    Retract,
    Expire,
    DeleteQueue,
}

#[tokio::test]
async fn removed_bodies_are_gone_from_disk_even_with_the_key_file() {
    for removal in [
        Removal::Ack,
        Removal::Retract,
        Removal::Expire,
        Removal::DeleteQueue,
    ] {
        forensic_check(removal).await;
    }
}

async fn forensic_check(removal: Removal) {
    let dir = tempfile::tempdir().unwrap();
    let body = format!("TOP-SECRET-{removal:?}-7f3a9c1e5b2d8f4a6e0c").into_bytes();
    let slot = {
        let s = SledStore::open(dir.path()).unwrap();
        create(&s, 1).await;
        create(&s, 2).await;
        send(&s, 1, 1, &body, 100).await;
        send(&s, 2, 2, b"still pending", FAR).await;
        let slot = s.inner.core.envelope_slot(&rid(1), &eid(1)).unwrap();
        match removal {
            Removal::Ack => assert!(s.ack(rid(1), eid(1), 2).await.unwrap()),
            Removal::Retract => assert!(s.retract(sid(1), cap(1), eid(1)).await.unwrap()),
            Removal::Expire => assert_eq!(s.sweep(100, FAR).await.unwrap().expired_envelopes, 1),
            Removal::DeleteQueue => assert!(s.delete_queue(rid(1)).await.unwrap()),
        }
        s.flush().await.unwrap();
        slot
    };

    // The search sees the body under the directory when it is there; it is not there.
    let pattern = Pattern::bytes(&body);
    forensic::assert_can_see(dir.path(), &pattern);
    let found = forensic::files_holding(dir.path(), &pattern);
    assert!(found.is_empty(), "{removal:?}: body found in {found:?}");

    // An attacker with the whole data directory, key file included.
    let key = DeviceKey::load_or_create_key_file(&dir.path().join(KEY_FILE)).unwrap();
    let vault = Vault::open(&dir.path().join(VAULT_FILE), &key, VaultOptions::default()).unwrap();
    assert!(matches!(
        vault.get(SlotId::from_index(slot)),
        Err(VaultError::EmptySlot(_))
    ));
    let keys: Vec<_> = vault
        .occupied_slots()
        .into_iter()
        .map(|slot| (slot.index(), vault.get(slot).unwrap()))
        .collect();
    // The other envelope's key and the queues' keys (queue 1's too, unless it was deleted).
    let queues = if matches!(removal, Removal::DeleteQueue) {
        1
    } else {
        2
    };
    assert_eq!(keys.len(), 1 + queues, "{removal:?}");
    // Every envelope sled still holds opens only to the other, still pending, body.
    let db = sled::open(dir.path().join(DB_DIR)).unwrap();
    let mut readable = Vec::new();
    let mut records = 0;
    for (seg, v) in segments(&db) {
        for (slot, at, len) in entries(&v).unwrap() {
            records += 1;
            let sealed = Place { seg, at, len }.slice(&v).unwrap();
            readable.extend(
                keys.iter()
                    .filter_map(|(_, key)| open_envelope(key, slot, sealed).ok())
                    .map(|(_, body)| body),
            );
        }
    }
    assert!(
        records >= 1,
        "{removal:?}: the search found no record at all"
    );
    assert_eq!(readable, vec![b"still pending".to_vec()], "{removal:?}");
}

/// Every segment in `db`: its id and value.
fn segments(db: &sled::Db) -> Vec<(u64, Vec<u8>)> {
    db.scan_prefix(SEGMENT_PREFIX)
        .map(|item| {
            let (k, v) = item.unwrap();
            (u64::from_be_bytes(k[1..9].try_into().unwrap()), v.to_vec())
        })
        .collect()
}

/// The vault slots of every envelope record the segments in `db` hold.
fn stored_slots(db: &sled::Db) -> Vec<u64> {
    let records = segments(db)
        .into_iter()
        .flat_map(|(_, v)| entries(&v).unwrap());
    records.map(|(slot, _, _)| slot).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sends_share_flushes() {
    let dir = tempfile::tempdir().unwrap();
    let s = SledStore::open(dir.path()).unwrap();
    for n in 0..4 {
        create(&s, n).await;
    }
    let flushes_before = s.flush_count();
    let paused = s.inner.commit.pause();
    let tasks: Vec<_> = (0..200u16)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move { send(&s, (i % 4) as u8, i, &i.to_be_bytes(), FAR).await })
        })
        .collect();
    let deadline = Instant::now() + DEADLINE;
    while s.inner.commit.waiting() < 200 {
        assert!(Instant::now() < deadline, "sends never reached the flush");
        // The spawned sends run on the runtime's workers; this thread only watches.
        std::thread::sleep(Duration::from_millis(1));
    }
    // Every append is done, yet no send has returned: none is durable yet.
    assert!(tasks.iter().all(|t| !t.is_finished()));
    drop(paused);
    for t in tasks {
        t.await.unwrap();
    }
    let flushes = s.flush_count() - flushes_before;
    assert!(
        (1..=2).contains(&flushes),
        "{flushes} flushes for 200 sends"
    );

    // Sequential senders racing each other keep their own order within each queue.
    let tasks: Vec<_> = (0..4u8)
        .map(|n| {
            let s = s.clone();
            tokio::spawn(async move {
                for k in 0..25u16 {
                    send(&s, n, 1000 + k, b"ordered", FAR).await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    drop(s);
    let s = SledStore::open(dir.path()).unwrap();
    for n in 0..4u8 {
        let pending = s.pending(rid(n), 0, 1000, 1).await.unwrap();
        assert_eq!(pending.len(), 75);
        assert!(pending.windows(2).all(|w| w[0].seq < w[1].seq));
        let mut first: Vec<u16> = pending[..50]
            .iter()
            .map(|e| u16::from_be_bytes([e.body[0], e.body[1]]))
            .collect();
        first.sort_unstable();
        assert_eq!(
            first,
            (0..200)
                .filter(|i| i % 4 == u16::from(n))
                .collect::<Vec<_>>()
        );
        let ordered: Vec<EnvelopeId> = pending[50..].iter().map(|e| e.id).collect();
        assert_eq!(ordered, (1000..1025).map(eid).collect::<Vec<_>>());
    }
}

#[tokio::test]
async fn data_directory_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("relay-data");
    let s = SledStore::open_async(dir.clone()).await.unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join(KEY_FILE)), 0o600);
    assert_eq!(mode(&dir.join(VAULT_FILE)), 0o600);
    drop(s);
}

#[tokio::test]
async fn storage_failure_is_an_error_and_leaves_no_trace() {
    let dir = tempfile::tempdir().unwrap();
    // Room for the queue's key and two envelopes' keys.
    let s = SledStore::open_with(dir.path(), VaultOptions { max_slots: 3 }).unwrap();
    create(&s, 1).await;
    send(&s, 1, 1, b"one", FAR).await;
    send(&s, 1, 2, b"two", FAR).await;
    let mut w = s.watch(rid(1));
    // The key vault is full: the send fails as a backend error, and nothing changes.
    let env = NewEnvelope {
        id: eid(3),
        body: b"three".to_vec(),
        expires_at: FAR,
    };
    let failed = s
        .send(sid(1), cap(1), env.clone(), Some(cap(9)), ROOMY, 5)
        .await;
    assert!(matches!(failed, Err(StoreError::Backend { .. })));
    // ... one worth retrying: acks and expiry free slots.
    assert!(failed.is_err_and(|e| e.is_transient()));
    let pending = s.pending(rid(1), 0, 10, 1).await.unwrap();
    assert_eq!(
        pending.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![eid(1), eid(2)]
    );
    let q = s.queue(rid(1)).await.unwrap().unwrap();
    assert_eq!((q.send_cap_hash, q.last_active), (cap(1), 1));
    // Once a slot is free again the same send goes through, with the next seq, and wakes.
    assert!(s.ack(rid(1), eid(1), 2).await.unwrap());
    s.send(sid(1), cap(1), env, None, ROOMY, 5).await.unwrap();
    assert_eq!(timeout(DEADLINE, w.changed()).await.ok(), Some(true));
    let pending = s.pending(rid(1), 0, 10, 1).await.unwrap();
    assert_eq!(
        pending.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![eid(2), eid(3)]
    );
    assert!(pending[1].seq > pending[0].seq);
}

#[tokio::test]
async fn large_envelopes_survive_reopen() {
    // Bodies this large make sled write some nodes to separate blob files.
    let dir = tempfile::tempdir().unwrap();
    let body = |k: u16| vec![k as u8; 64 * 1024];
    {
        let s = SledStore::open(dir.path()).unwrap();
        create(&s, 1).await;
        for k in 0..12 {
            send(&s, 1, k, &body(k), FAR).await;
        }
    }
    let s = SledStore::open(dir.path()).unwrap();
    let pending = s.pending(rid(1), 0, 100, 1).await.unwrap();
    assert_eq!(pending.len(), 12);
    for (k, e) in (0..12).zip(&pending) {
        assert_eq!((e.id, &e.body), (eid(k), &body(k)));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sends_and_acks_keep_quotas_and_remove_once() {
    let dir = tempfile::tempdir().unwrap();
    let s = SledStore::open(dir.path()).unwrap();
    create(&s, 1).await;
    let quota = Quota {
        max_messages: 5,
        max_bytes: 1 << 20,
    };
    // Held back from the flush, the sends pile up and the writer stages many in one round; the
    // quota must still count each one staged before it.
    let paused = s.inner.commit.pause();
    let sends: Vec<_> = (0..12u16)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move {
                let env = NewEnvelope {
                    id: eid(i),
                    body: vec![1; 10],
                    expires_at: FAR,
                };
                s.send(sid(1), cap(1), env, None, quota, 1).await
            })
        })
        .collect();
    let deadline = Instant::now() + DEADLINE;
    while s.inner.commit.waiting() < 12 {
        assert!(Instant::now() < deadline, "sends never reached the flush");
        std::thread::sleep(Duration::from_millis(1));
    }
    drop(paused);
    let mut accepted = Vec::new();
    for (i, t) in sends.into_iter().enumerate() {
        match t.await.unwrap() {
            Ok(r) => {
                assert_eq!(r, rid(1));
                accepted.push(eid(i as u16));
            }
            Err(e) => assert!(matches!(e, StoreError::QueueFull), "{e:?}"),
        }
    }
    assert_eq!(accepted.len(), 5);
    // The same envelope acked many times at once is removed once.
    let paused = s.inner.commit.pause();
    let acks: Vec<_> = (0..8)
        .map(|_| {
            let (s, id) = (s.clone(), accepted[0]);
            tokio::spawn(async move { s.ack(rid(1), id, 2).await })
        })
        .collect();
    while s.inner.commit.waiting() < 8 {
        assert!(Instant::now() < deadline, "acks never reached the flush");
        std::thread::sleep(Duration::from_millis(1));
    }
    // Nothing is answered before the flush that makes the removal durable.
    assert!(acks.iter().all(|t| !t.is_finished()));
    drop(paused);
    let mut removed = 0;
    for t in acks {
        if t.await.unwrap().unwrap() {
            removed += 1;
        }
    }
    assert_eq!(removed, 1);
    // The rest stay, in submission order (not necessarily spawn order), with increasing seqs.
    let pending = s.pending(rid(1), 0, 100, 1).await.unwrap();
    assert!(pending.windows(2).all(|w| w[0].seq < w[1].seq));
    let mut left: Vec<EnvelopeId> = pending.iter().map(|e| e.id).collect();
    left.sort_unstable();
    let mut expected = accepted[1..].to_vec();
    expected.sort_unstable();
    assert_eq!(left, expected);
    // Four envelopes' keys and the queue's.
    assert_eq!(s.inner.core.vault.slots_in_use(), 5);
}

#[tokio::test]
async fn a_seq_is_never_handed_out_twice_across_restarts_even_once_the_queue_is_empty() {
    let dir = tempfile::tempdir().unwrap();
    let mut last_seq = 0;
    for round in 0..3u16 {
        let s = SledStore::open(dir.path()).unwrap();
        if round == 0 {
            create(&s, 1).await;
        }
        for k in 0..3 {
            send(&s, 1, round * 10 + k, b"x", FAR).await;
        }
        let pending = s.pending(rid(1), 0, 100, 1).await.unwrap();
        assert_eq!(pending.len(), 3);
        for e in &pending {
            assert!(e.seq > last_seq, "seq {} after {last_seq}", e.seq);
            last_seq = e.seq;
            assert!(s.ack(rid(1), e.id, 1).await.unwrap());
        }
    }
}

#[tokio::test]
async fn the_index_is_rebuilt_on_open_and_old_on_disk_indexes_are_dropped() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = SledStore::open(dir.path()).unwrap();
        create(&s, 1).await;
        create(&s, 2).await;
        send(&s, 1, 1, b"soon", 5).await;
        send(&s, 1, 2, b"later", FAR).await;
        send(&s, 2, 3, b"other", FAR).await;
        // What versions with on-disk indexes left behind.
        s.inner.core.db.insert(b"i-old-index", &b"x"[..]).unwrap();
        s.inner.core.db.insert(b"x-old-expiry", &b""[..]).unwrap();
        s.flush().await.unwrap();
    }
    let s = SledStore::open(dir.path()).unwrap();
    assert!(s.inner.core.db.scan_prefix(b"i").next().is_none());
    assert!(s.inner.core.db.scan_prefix(b"x").next().is_none());
    // Sends, quotas, acks and expiry work from the rebuilt index.
    let two = Quota {
        max_messages: 2,
        ..ROOMY
    };
    let env = NewEnvelope {
        id: eid(4),
        body: b"y".to_vec(),
        expires_at: FAR,
    };
    let full = s.send(sid(1), cap(1), env, None, two, 1).await;
    assert!(matches!(full, Err(StoreError::QueueFull)));
    assert!(s.ack(rid(2), eid(3), 1).await.unwrap());
    assert!(!s.ack(rid(2), eid(3), 1).await.unwrap());
    let stats = s.sweep(10, FAR).await.unwrap();
    assert_eq!(stats.expired_envelopes, 1);
    let pending = s.pending(rid(1), 0, 100, 10).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].body, b"later");
    // One envelope's key and the two queues'.
    assert_eq!(s.inner.core.vault.slots_in_use(), 3);
    let rec = s.queue(rid(1)).await.unwrap().unwrap();
    assert_eq!((rec.sender_id, rec.send_cap_hash), (sid(1), cap(1)));
}

#[tokio::test]
async fn sled_store_conforms() {
    crate::store::conformance::run_all(|| {
        let dir = tempfile::tempdir().unwrap();
        (SledStore::open(dir.path()).unwrap(), dir)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_round_is_one_segment_that_goes_only_when_all_its_envelopes_are_gone() {
    let dir = tempfile::tempdir().unwrap();
    let s = SledStore::open(dir.path()).unwrap();
    create(&s, 1).await;
    create(&s, 2).await;
    // With the stripes held, the writer cannot finish a round: every send submitted meanwhile
    // is staged in at most two rounds (one it may already have taken, and the rest).
    let held = s.inner.core.all_stripes();
    let mut durable = Vec::new();
    for i in 0..20u16 {
        let n = 1 + (i % 2) as u8;
        let env = NewEnvelope {
            id: eid(i),
            body: format!("body {i}").into_bytes(),
            expires_at: if i == 5 { 50 } else { FAR },
        };
        durable.push(s.start_send(sid(n), cap(n), env, None, ROOMY, 1).await);
    }
    drop(held);
    for d in durable {
        d.await.unwrap();
    }
    let db = &s.inner.core.db;
    let segs = segments(db).len();
    assert!((1..=2).contains(&segs), "{segs} segments for 20 sends");
    assert_eq!(stored_slots(db).len(), 20);

    // Acks, a retraction and expiry remove all but one envelope: the segments stay.
    for i in (0..20u16).filter(|i| ![3, 4, 5].contains(i)) {
        assert!(s.ack(rid(1 + (i % 2) as u8), eid(i), 1).await.unwrap());
    }
    assert!(s.retract(sid(2), cap(2), eid(3)).await.unwrap());
    assert_eq!(s.sweep(60, FAR).await.unwrap().expired_envelopes, 1);
    assert!(!segments(db).is_empty());
    drop(s);

    // Reopened: only the one left is there, with its segment.
    let s = SledStore::open(dir.path()).unwrap();
    let pending = s.pending(rid(1), 0, 100, 1).await.unwrap();
    let bodies: Vec<_> = pending.iter().map(|e| e.body.clone()).collect();
    assert_eq!(bodies, vec![b"body 4".to_vec()]);
    assert!(s.pending(rid(2), 0, 100, 1).await.unwrap().is_empty());
    assert_eq!(segments(&s.inner.core.db).len(), 1);
    // Its ack removes the last segment.
    assert!(s.ack(rid(1), eid(4), 1).await.unwrap());
    assert!(segments(&s.inner.core.db).is_empty());
    assert_eq!(s.inner.core.vault.slots_in_use(), 2, "the two queues' keys");
}
