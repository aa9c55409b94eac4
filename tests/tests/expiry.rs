//! Retention on a clock the test controls: TTLs capped at the relay maximum, the sweep, and
//! idle queues.

use std::time::Duration;

use hush_client::net::RelayCallError;
use hush_protocol::{ErrorCode, Push};
use hush_tests::{cap, key, push, TestRelay, START_SECS};

#[tokio::test]
async fn expired_envelopes_are_not_delivered_and_the_sweep_removes_them() {
    let relay = TestRelay::start(|_| {});
    let client = relay.client().await;
    let (k, c) = (key(), cap());
    let (rid, sid) = client.create_queue(&k, &c).await.unwrap();
    client
        .send(sid, &c, 10, None, b"short".to_vec())
        .await
        .unwrap();
    client
        .send(sid, &c, 1000, None, b"long".to_vec())
        .await
        .unwrap();
    relay.clock().advance(Duration::from_secs(10));
    // The short one is expired (expires_at <= now) and never pushed.
    client.subscribe(&k, rid).await.unwrap();
    match push(&client).await {
        Push::Envelope {
            body, expires_at, ..
        } => {
            assert_eq!(body, b"long");
            assert_eq!(expires_at, START_SECS + 1000);
        }
        other => panic!("{other:?}"),
    }
    let stats = relay.handle.sweep_now().await.unwrap();
    assert_eq!((stats.expired_envelopes, stats.idle_queues), (1, 0));
    relay.clock().advance(Duration::from_secs(990));
    let stats = relay.handle.sweep_now().await.unwrap();
    assert_eq!((stats.expired_envelopes, stats.idle_queues), (1, 0));
    relay.stop().await;
}

#[tokio::test]
async fn ttls_are_capped_at_the_relay_maximum() {
    let relay = TestRelay::start(|c| c.max_ttl = Duration::from_secs(3600));
    let client = relay.client().await;
    let (k, c) = (key(), cap());
    let (rid, sid) = client.create_queue(&k, &c).await.unwrap();
    client.send(sid, &c, u32::MAX, None, vec![1]).await.unwrap();
    client.send(sid, &c, 0, None, vec![2]).await.unwrap();
    client.send(sid, &c, 60, None, vec![3]).await.unwrap();
    client.subscribe(&k, rid).await.unwrap();
    for want in [START_SECS + 3600, START_SECS + 3600, START_SECS + 60] {
        match push(&client).await {
            Push::Envelope { expires_at, .. } => assert_eq!(expires_at, want),
            other => panic!("{other:?}"),
        }
    }
    relay.clock().advance(Duration::from_secs(3600));
    let stats = relay.handle.sweep_now().await.unwrap();
    assert_eq!(stats.expired_envelopes, 3);
    relay.stop().await;
}

#[tokio::test]
async fn idle_queues_are_removed_and_activity_keeps_them() {
    let relay = TestRelay::start(|c| c.queue_idle = Duration::from_secs(100));
    let client = relay.client().await;
    let (k, c) = (key(), cap());
    let (idle, idle_sid) = client.create_queue(&k, &c).await.unwrap();
    let (_, busy_sid) = client.create_queue(&k, &c).await.unwrap();
    let watcher = relay.client().await;
    watcher.subscribe(&k, idle).await.unwrap();
    relay.clock().advance(Duration::from_secs(60));
    client
        .send(busy_sid, &c, 1000, None, vec![1])
        .await
        .unwrap();
    relay.clock().advance(Duration::from_secs(60));
    let stats = relay.handle.sweep_now().await.unwrap();
    assert_eq!(stats.idle_queues, 1);
    assert_eq!(push(&watcher).await, Push::QueueGone { recipient_id: idle });
    assert_eq!(
        client.subscribe(&k, idle).await,
        Err(RelayCallError::Relay(ErrorCode::NoQueue))
    );
    assert_eq!(
        client.send(idle_sid, &c, 60, None, vec![1]).await,
        Err(RelayCallError::Relay(ErrorCode::Auth))
    );
    client.send(busy_sid, &c, 60, None, vec![2]).await.unwrap();
    relay.stop().await;
}
