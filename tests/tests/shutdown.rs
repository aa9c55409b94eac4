//! Graceful shutdown: every send the relay answered is durable, and nothing it did not answer
//! was stored.

use std::sync::Arc;

use hush_server::store::sled_store::SledStore;
use hush_server::store::QueueStore;
use hush_server::ManualClock;
use hush_tests::{cap, key, TestRelay, START_SECS};

#[tokio::test]
async fn shutdown_finishes_in_flight_sends_and_answers_them() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let clock = ManualClock::at_secs(START_SECS);
    let store = SledStore::open(dir.path()).unwrap();
    let relay = TestRelay::start_on(store, dir.clone(), clock.clone(), |_| {});
    let client = Arc::new(relay.client().await);
    let (k, c) = (key(), cap());
    let (rid, sid) = client.create_queue(&k, &c).await.unwrap();
    let mut sends = Vec::new();
    for i in 0..300u32 {
        let (client, c) = (client.clone(), c.clone());
        sends.push(tokio::spawn(async move {
            client
                .send(sid, &c, 600, None, i.to_be_bytes().to_vec())
                .await
        }));
    }
    // Stop once the first send is answered, while the others are still arriving.
    let mut sends = sends.into_iter();
    let first = sends.next().unwrap().await.unwrap();
    assert!(first.is_ok());
    relay.stop().await;
    let mut answered = 1;
    for s in sends {
        if s.await.unwrap().is_ok() {
            answered += 1;
        }
    }
    drop(client);
    let store = SledStore::open(dir.path()).unwrap();
    let pending = store.pending(rid, 0, usize::MAX, START_SECS).await.unwrap();
    assert_eq!(
        pending.len(),
        answered,
        "answered sends == stored envelopes"
    );
}
