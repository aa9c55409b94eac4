//! A behaviour suite that every [`QueueStore`] must pass, whatever its backend.
//!
//! [`run_all`] takes a factory that makes a fresh, empty store (plus a guard, such as its
//! temporary directory, kept alive while the store is used) and runs every case against it,
//! panicking on the first behaviour that differs. Adding a backend to the suite is one test that
//! calls `run_all`: this crate's tests do so for the memory and sled stores, and a backend in
//! another crate does so with this crate's `testing` feature enabled.
//!
//! What it does not cover: durability across restarts and at-rest encryption, which depend on
//! the backend and are tested beside it.

use std::future::Future;
use std::time::Duration;

use hush_protocol::{EnvelopeId, RecipientId, SenderId};

use super::{
    CapHash, NewEnvelope, QueueRecord, QueueStore, Quota, StoreError, StoredEnvelope, SweepStats,
};

/// A quota no case reaches unless it means to.
const ROOMY: Quota = Quota {
    max_messages: 1000,
    max_bytes: 1 << 20,
};
/// An expiry no case reaches unless it means to.
const FAR: u64 = 1_000_000;
/// How long a case waits for a wake-up before failing.
const WAKE_DEADLINE: Duration = Duration::from_secs(10);

fn rid(n: u8) -> RecipientId {
    RecipientId::from_bytes([n; 16])
}

fn sid(n: u8) -> SenderId {
    SenderId::from_bytes([n ^ 0x80; 16])
}

fn eid(n: u8) -> EnvelopeId {
    EnvelopeId::from_bytes([n; 16])
}

fn cap(n: u8) -> CapHash {
    [n; 32]
}

fn record(n: u8, last_active: u64) -> QueueRecord {
    QueueRecord {
        recipient_id: rid(n),
        sender_id: sid(n),
        recipient_key: [n; 32],
        send_cap_hash: cap(n),
        last_active,
    }
}

fn envelope(id: u8, body: &[u8], expires_at: u64) -> NewEnvelope {
    NewEnvelope {
        id: eid(id),
        body: body.to_vec(),
        expires_at,
    }
}

/// Sends envelope `id` to queue `n` with its original capability.
async fn send<S: QueueStore>(s: &S, n: u8, id: u8, body: &[u8]) -> Result<RecipientId, StoreError> {
    s.send(sid(n), cap(n), envelope(id, body, FAR), None, ROOMY, 1)
        .await
}

async fn pending_all<S: QueueStore>(s: &S, n: u8, now: u64) -> Vec<StoredEnvelope> {
    s.pending(rid(n), 0, usize::MAX, now).await.unwrap()
}

fn ids(envs: &[StoredEnvelope]) -> Vec<EnvelopeId> {
    envs.iter().map(|e| e.id).collect()
}

/// Runs every case, each on a fresh store from `make`, inside a tokio runtime (the cases wait
/// for wake-ups with a timeout). Panics, naming the case, when the store misbehaves.
pub async fn run_all<S: QueueStore, G>(make: impl Fn() -> (S, G)) {
    async fn case<S, G, F: Future<Output = ()>>(
        name: &str,
        make: &impl Fn() -> (S, G),
        body: impl FnOnce(S) -> F,
    ) {
        eprintln!("conformance case: {name}");
        let (store, guard) = make();
        body(store).await;
        drop(guard);
    }
    case("create_and_lookup", &make, create_and_lookup).await;
    case("send_checks_capability", &make, send_checks_capability).await;
    case("capability_replacement", &make, capability_replacement).await;
    case("quota", &make, quota).await;
    case("pending_order", &make, pending_order).await;
    case("ack_and_retract", &make, ack_and_retract).await;
    case("expiry", &make, expiry).await;
    case("idle_sweep", &make, idle_sweep).await;
    case("delete_queue", &make, delete_queue).await;
    case("watch", &make, watch).await;
}

async fn create_and_lookup<S: QueueStore>(s: S) {
    s.create_queue(record(1, 5)).await.unwrap();
    assert_eq!(s.queue(rid(1)).await.unwrap(), Some(record(1, 5)));
    assert_eq!(s.queue(rid(2)).await.unwrap(), None);
    let same_recipient = QueueRecord {
        sender_id: sid(9),
        ..record(1, 5)
    };
    let same_sender = QueueRecord {
        recipient_id: rid(9),
        ..record(1, 5)
    };
    for dup in [record(1, 5), same_recipient, same_sender] {
        assert!(matches!(s.create_queue(dup).await, Err(StoreError::Exists)));
    }
    assert_eq!(s.queue(rid(9)).await.unwrap(), None);
    s.create_queue(record(2, 5)).await.unwrap();
    assert_eq!(s.queue(rid(2)).await.unwrap(), Some(record(2, 5)));
}

async fn send_checks_capability<S: QueueStore>(s: S) {
    s.create_queue(record(1, 0)).await.unwrap();
    s.create_queue(record(2, 0)).await.unwrap();
    assert_eq!(send(&s, 1, 1, b"a").await.unwrap(), rid(1));
    let wrong_cap = s.send(sid(1), cap(2), envelope(2, b"b", FAR), None, ROOMY, 1);
    assert!(matches!(wrong_cap.await, Err(StoreError::Auth)));
    let unknown = s.send(sid(7), cap(7), envelope(3, b"c", FAR), None, ROOMY, 1);
    assert!(matches!(unknown.await, Err(StoreError::Auth)));
    assert_eq!(ids(&pending_all(&s, 1, 1).await), vec![eid(1)]);
    assert!(pending_all(&s, 2, 1).await.is_empty());
    assert_eq!(s.queue(rid(1)).await.unwrap().unwrap().last_active, 1);
}

async fn capability_replacement<S: QueueStore>(s: S) {
    s.create_queue(record(1, 0)).await.unwrap();
    let first = s.send(
        sid(1),
        cap(1),
        envelope(1, b"a", FAR),
        Some(cap(50)),
        ROOMY,
        1,
    );
    first.await.unwrap();
    assert!(matches!(send(&s, 1, 2, b"b").await, Err(StoreError::Auth)));
    let replaced = s.send(sid(1), cap(50), envelope(3, b"c", FAR), None, ROOMY, 1);
    replaced.await.unwrap();
    assert_eq!(
        s.queue(rid(1)).await.unwrap().unwrap().send_cap_hash,
        cap(50)
    );
    // A send refused for quota must not replace the capability either.
    let full = Quota {
        max_messages: 2,
        ..ROOMY
    };
    let refused = s.send(
        sid(1),
        cap(50),
        envelope(4, b"d", FAR),
        Some(cap(60)),
        full,
        1,
    );
    assert!(matches!(refused.await, Err(StoreError::QueueFull)));
    assert!(s.retract(sid(1), cap(60), eid(3)).await.is_err());
    // The recipient can re-secure the queue.
    s.set_send_cap(rid(1), cap(70)).await.unwrap();
    assert!(matches!(
        s.retract(sid(1), cap(50), eid(3)).await,
        Err(StoreError::Auth)
    ));
    assert!(s.retract(sid(1), cap(70), eid(3)).await.unwrap());
    assert_eq!(ids(&pending_all(&s, 1, 1).await), vec![eid(1)]);
}

async fn quota<S: QueueStore>(s: S) {
    s.create_queue(record(1, 0)).await.unwrap();
    let two = Quota {
        max_messages: 2,
        max_bytes: 1 << 20,
    };
    for id in 1..=2 {
        s.send(sid(1), cap(1), envelope(id, b"x", FAR), None, two, 1)
            .await
            .unwrap();
    }
    let third = s.send(sid(1), cap(1), envelope(3, b"x", FAR), None, two, 1);
    assert!(matches!(third.await, Err(StoreError::QueueFull)));
    assert!(s.ack(rid(1), eid(1), 1).await.unwrap());
    let third = s.send(sid(1), cap(1), envelope(3, b"x", FAR), None, two, 1);
    third.await.unwrap();

    s.create_queue(record(2, 0)).await.unwrap();
    let ten = Quota {
        max_messages: 100,
        max_bytes: 10,
    };
    let send_bytes = |id: u8, len: usize| {
        s.send(
            sid(2),
            cap(2),
            envelope(id, &vec![7; len], FAR),
            None,
            ten,
            1,
        )
    };
    send_bytes(1, 6).await.unwrap();
    assert!(matches!(send_bytes(2, 5).await, Err(StoreError::QueueFull)));
    send_bytes(3, 4).await.unwrap();
    assert!(matches!(send_bytes(4, 1).await, Err(StoreError::QueueFull)));
    assert!(s.retract(sid(2), cap(2), eid(1)).await.unwrap());
    send_bytes(5, 6).await.unwrap();
    assert_eq!(ids(&pending_all(&s, 2, 1).await), vec![eid(3), eid(5)]);
}

async fn pending_order<S: QueueStore>(s: S) {
    s.create_queue(record(1, 0)).await.unwrap();
    for id in 1..=5 {
        send(&s, 1, id, &[id; 3]).await.unwrap();
    }
    let all = pending_all(&s, 1, 1).await;
    assert_eq!(ids(&all), (1..=5).map(eid).collect::<Vec<_>>());
    assert!(all.windows(2).all(|w| w[0].seq < w[1].seq));
    assert!(all
        .iter()
        .all(|e| e.body == [e.id.0[0]; 3] && e.expires_at == FAR));
    let from_third = s.pending(rid(1), all[2].seq, 100, 1).await.unwrap();
    assert_eq!(from_third, all[2..].to_vec());
    let first_two = s.pending(rid(1), 0, 2, 1).await.unwrap();
    assert_eq!(first_two, all[..2].to_vec());
    // Seqs are never reused, even once the queue is empty.
    for e in &all {
        assert!(s.ack(rid(1), e.id, 1).await.unwrap());
    }
    send(&s, 1, 6, b"z").await.unwrap();
    let after = pending_all(&s, 1, 1).await;
    assert_eq!(ids(&after), vec![eid(6)]);
    assert!(after[0].seq > all[4].seq);
}

async fn ack_and_retract<S: QueueStore>(s: S) {
    s.create_queue(record(1, 0)).await.unwrap();
    for id in 1..=3 {
        send(&s, 1, id, b"m").await.unwrap();
    }
    assert!(s.ack(rid(1), eid(1), 2).await.unwrap());
    assert!(!s.ack(rid(1), eid(1), 2).await.unwrap());
    assert!(!s.ack(rid(1), eid(99), 2).await.unwrap());
    assert!(!s.ack(rid(5), eid(2), 2).await.unwrap());
    assert!(matches!(
        s.retract(sid(1), cap(9), eid(2)).await,
        Err(StoreError::Auth)
    ));
    assert!(s.retract(sid(1), cap(1), eid(2)).await.unwrap());
    assert!(!s.retract(sid(1), cap(1), eid(2)).await.unwrap());
    assert!(!s.retract(sid(1), cap(1), eid(1)).await.unwrap());
    assert_eq!(ids(&pending_all(&s, 1, 2).await), vec![eid(3)]);
    assert_eq!(s.queue(rid(1)).await.unwrap().unwrap().last_active, 2);
}

async fn expiry<S: QueueStore>(s: S) {
    s.create_queue(record(1, 0)).await.unwrap();
    s.create_queue(record(2, 0)).await.unwrap();
    for (n, id, expires_at) in [(1, 1, 100), (1, 2, 200), (2, 4, 120), (1, 3, 100)] {
        let env = envelope(id, b"e", expires_at);
        s.send(sid(n), cap(n), env, None, ROOMY, 1).await.unwrap();
    }
    assert_eq!(pending_all(&s, 1, 99).await.len(), 3);
    // `expires_at <= now` is expired.
    assert_eq!(ids(&pending_all(&s, 1, 100).await), vec![eid(2)]);
    assert_eq!(ids(&pending_all(&s, 2, 100).await), vec![eid(4)]);
    let stats = s.sweep(150, FAR).await.unwrap();
    assert_eq!(
        stats,
        SweepStats {
            expired_envelopes: 3,
            idle_queues: 0
        }
    );
    assert_eq!(ids(&pending_all(&s, 1, 0).await), vec![eid(2)]);
    assert!(pending_all(&s, 2, 0).await.is_empty());
    assert!(!s.ack(rid(1), eid(1), 150).await.unwrap());
    assert_eq!(s.sweep(150, FAR).await.unwrap(), SweepStats::default());
    assert!(s.queue(rid(1)).await.unwrap().is_some());
}

async fn idle_sweep<S: QueueStore>(s: S) {
    for n in 1..=3 {
        s.create_queue(record(n, 10)).await.unwrap();
    }
    send(&s, 1, 1, b"left behind").await.unwrap();
    s.touch(rid(2), 950).await.unwrap();
    s.send(sid(3), cap(3), envelope(2, b"s", FAR), None, ROOMY, 960)
        .await
        .unwrap();
    let stats = s.sweep(1000, 100).await.unwrap();
    assert_eq!(
        stats,
        SweepStats {
            expired_envelopes: 0,
            idle_queues: 1
        }
    );
    assert_eq!(s.queue(rid(1)).await.unwrap(), None);
    assert!(pending_all(&s, 1, 0).await.is_empty());
    assert!(matches!(send(&s, 1, 3, b"x").await, Err(StoreError::Auth)));
    assert_eq!(s.queue(rid(2)).await.unwrap().unwrap().last_active, 950);
    assert_eq!(s.queue(rid(3)).await.unwrap().unwrap().last_active, 960);
}

async fn delete_queue<S: QueueStore>(s: S) {
    s.create_queue(record(1, 0)).await.unwrap();
    s.create_queue(record(2, 0)).await.unwrap();
    for id in 1..=3 {
        send(&s, 1, id, b"doomed").await.unwrap();
    }
    send(&s, 2, 9, b"kept").await.unwrap();
    assert!(s.delete_queue(rid(1)).await.unwrap());
    assert!(!s.delete_queue(rid(1)).await.unwrap());
    assert_eq!(s.queue(rid(1)).await.unwrap(), None);
    assert!(pending_all(&s, 1, 0).await.is_empty());
    assert!(matches!(send(&s, 1, 4, b"x").await, Err(StoreError::Auth)));
    assert_eq!(ids(&pending_all(&s, 2, 0).await), vec![eid(9)]);
    // Both ids are free again.
    s.create_queue(record(1, 0)).await.unwrap();
    assert!(pending_all(&s, 1, 0).await.is_empty());
    send(&s, 1, 5, b"new").await.unwrap();
    assert_eq!(ids(&pending_all(&s, 1, 0).await), vec![eid(5)]);
}

async fn watch<S: QueueStore>(s: S) {
    s.create_queue(record(1, 0)).await.unwrap();
    let mut w = s.watch(rid(1));
    send(&s, 1, 1, b"ping").await.unwrap();
    let woke = tokio::time::timeout(WAKE_DEADLINE, w.changed()).await;
    assert_eq!(woke.ok(), Some(true), "no wake-up after send");
    // The wake-up comes after the append: the envelope is there to read.
    assert_eq!(ids(&pending_all(&s, 1, 1).await), vec![eid(1)]);
    assert!(s.delete_queue(rid(1)).await.unwrap());
    let woke = tokio::time::timeout(WAKE_DEADLINE, w.changed()).await;
    assert_eq!(woke.ok(), Some(true), "no wake-up after delete");
}
