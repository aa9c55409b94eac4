//! A relay restarted on the same data directory keeps unacked envelopes, their order and its
//! certificate.
//!
//! The scenario is generic over the store: it takes a function that opens the store for a
//! data directory. It runs on the sled store (the relay's embedded default), and on a shared
//! in-memory store (which survives because the test keeps it, not because it persists).

use std::path::Path;
use std::sync::Arc;

use hush_server::store::memory::MemoryStore;
use hush_server::store::sled_store::SledStore;
use hush_server::store::QueueStore;
use hush_server::ManualClock;
use hush_tests::{cap, envelope, key, TestRelay, START_SECS};

/// Sends, acks some, restarts, and checks what a fresh subscription receives.
pub async fn restart_keeps_unacked_envelopes_in_order<S: QueueStore>(open: impl Fn(&Path) -> S) {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let clock = ManualClock::at_secs(START_SECS);
    let relay = TestRelay::start_on(open(dir.path()), dir.clone(), clock.clone(), |_| {});
    let first_address = relay.handle.address().clone();
    let client = relay.client().await;
    let (k, c) = (key(), cap());
    let (rid, sid) = client.create_queue(&k, &c).await.unwrap();
    for i in 0..10u8 {
        client.send(sid, &c, 3600, None, vec![i]).await.unwrap();
    }
    client.subscribe(&k, rid).await.unwrap();
    for _ in 0..3 {
        let (id, _) = envelope(&client).await;
        client.ack(rid, id).await.unwrap();
    }
    drop(client);
    relay.stop().await;

    let relay = TestRelay::start_on(open(dir.path()), dir.clone(), clock, |_| {});
    assert_eq!(
        relay.handle.address().fingerprint,
        first_address.fingerprint,
        "the certificate is reused"
    );
    let client = relay.client().await;
    client.subscribe(&k, rid).await.unwrap();
    for i in 3..10u8 {
        assert_eq!(envelope(&client).await.1, vec![i]);
    }
    client.send(sid, &c, 3600, None, vec![10]).await.unwrap();
    assert_eq!(envelope(&client).await.1, vec![10]);
    relay.stop().await;
}

#[tokio::test]
async fn restart_on_the_memory_store() {
    let store = MemoryStore::new();
    restart_keeps_unacked_envelopes_in_order(|_| store.clone()).await;
}

#[tokio::test]
async fn restart_on_the_sled_store() {
    restart_keeps_unacked_envelopes_in_order(|dir| SledStore::open(dir).expect("open sled store"))
        .await;
}
