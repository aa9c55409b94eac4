//! Queue operations end to end: create, send, subscribe, in-order push, ack, retract,
//! re-secure, the one-shot invitation capability, and delete.

use hush_client::net::RelayCallError;
use hush_protocol::{ErrorCode, Push, Reply, Request};
use hush_server::limits::CONNECTION_PIPELINED_REQUESTS;
use hush_server::store::sled_store::SledStore;
use hush_server::store::QueueStore;
use hush_server::ManualClock;
use hush_tests::{any_push, cap, drained, envelope, key, push, TestRelay, START_SECS};

#[tokio::test]
async fn envelopes_are_pushed_in_order_and_ack_deletes_them() {
    let relay = TestRelay::start(|_| {});
    let (alice, bob) = (relay.client().await, relay.client().await);
    let (k, c) = (key(), cap());
    let (rid, sid) = alice.create_queue(&k, &c).await.unwrap();

    // Pending before subscribing, then new ones after: all in send order.
    for i in 0..5u8 {
        bob.send(sid, &c, 60, None, vec![i; 10]).await.unwrap();
    }
    alice.subscribe(&k, rid).await.unwrap();
    for i in 5..40u8 {
        bob.send(sid, &c, 60, None, vec![i; 10]).await.unwrap();
    }
    let mut ids = Vec::new();
    for i in 0..40u8 {
        let (id, body) = envelope(&alice).await;
        assert_eq!(body, vec![i; 10]);
        ids.push(id);
    }
    // Ack the first half; a new subscription (a reconnect) sees only the rest, in order.
    for id in &ids[..20] {
        alice.ack(rid, *id).await.unwrap();
    }
    let again = relay.client().await;
    again.subscribe(&k, rid).await.unwrap();
    for i in 20..40u8 {
        assert_eq!(envelope(&again).await.1, vec![i; 10]);
    }
    relay.stop().await;
}

#[tokio::test]
async fn retract_removes_a_pending_envelope_and_says_so() {
    let relay = TestRelay::start(|_| {});
    let (alice, bob) = (relay.client().await, relay.client().await);
    let (k, c) = (key(), cap());
    let (rid, sid) = alice.create_queue(&k, &c).await.unwrap();
    let gone = bob.send(sid, &c, 60, None, b"oops".to_vec()).await.unwrap();
    let kept = bob.send(sid, &c, 60, None, b"fine".to_vec()).await.unwrap();
    assert!(bob.retract(sid, &c, gone).await.unwrap());
    assert!(!bob.retract(sid, &c, gone).await.unwrap(), "second retract");
    alice.subscribe(&k, rid).await.unwrap();
    let (id, body) = envelope(&alice).await;
    assert_eq!((id, body.as_slice()), (kept, &b"fine"[..]));
    alice.ack(rid, kept).await.unwrap();
    assert!(
        !bob.retract(sid, &c, kept).await.unwrap(),
        "already delivered and acked"
    );
    relay.stop().await;
}

#[tokio::test]
async fn resecure_replaces_the_send_capability() {
    let relay = TestRelay::start(|_| {});
    let client = relay.client().await;
    let (k, old, new) = (key(), cap(), cap());
    let (rid, sid) = client.create_queue(&k, &old).await.unwrap();
    client.resecure(&k, rid, &new).await.unwrap();
    assert_eq!(
        client.send(sid, &old, 60, None, vec![1]).await,
        Err(RelayCallError::Relay(ErrorCode::Auth))
    );
    client.send(sid, &new, 60, None, vec![2]).await.unwrap();
    relay.stop().await;
}

#[tokio::test]
async fn an_invitation_capability_dies_with_its_first_use() {
    let relay = TestRelay::start(|_| {});
    let (inviter, joiner, thief) = (
        relay.client().await,
        relay.client().await,
        relay.client().await,
    );
    let (k, invite_cap, private_cap) = (key(), cap(), cap());
    let (rid, sid) = inviter.create_queue(&k, &invite_cap).await.unwrap();
    joiner
        .send(sid, &invite_cap, 60, Some(&private_cap), b"hello".to_vec())
        .await
        .unwrap();
    assert_eq!(
        thief
            .send(sid, &invite_cap, 60, None, b"me too".to_vec())
            .await,
        Err(RelayCallError::Relay(ErrorCode::Auth))
    );
    joiner
        .send(sid, &private_cap, 60, None, b"second".to_vec())
        .await
        .unwrap();
    inviter.subscribe(&k, rid).await.unwrap();
    assert_eq!(envelope(&inviter).await.1, b"hello");
    assert_eq!(envelope(&inviter).await.1, b"second");
    relay.stop().await;
}

#[tokio::test]
async fn delete_queue_ends_subscriptions_and_rejects_later_use() {
    let relay = TestRelay::start(|_| {});
    let (owner, watcher, sender) = (
        relay.client().await,
        relay.client().await,
        relay.client().await,
    );
    let (k, c) = (key(), cap());
    let (rid, sid) = owner.create_queue(&k, &c).await.unwrap();
    sender.send(sid, &c, 60, None, vec![7]).await.unwrap();
    watcher.subscribe(&k, rid).await.unwrap();
    assert_eq!(envelope(&watcher).await.1, vec![7]);
    owner.delete_queue(&k, rid).await.unwrap();
    assert_eq!(push(&watcher).await, Push::QueueGone { recipient_id: rid });
    // A sender cannot tell a deleted queue from a wrong capability.
    assert_eq!(
        sender.send(sid, &c, 60, None, vec![8]).await,
        Err(RelayCallError::Relay(ErrorCode::Auth))
    );
    assert_eq!(
        owner.subscribe(&k, rid).await,
        Err(RelayCallError::Relay(ErrorCode::NoQueue))
    );
    assert_eq!(
        owner.delete_queue(&k, rid).await,
        Err(RelayCallError::Relay(ErrorCode::NoQueue))
    );
    relay.stop().await;
}

#[tokio::test]
async fn pipelined_requests_are_answered_by_id() {
    let relay = TestRelay::start(|_| {});
    let client = std::sync::Arc::new(relay.client().await);
    let (k, c) = (key(), cap());
    let (rid, sid) = client.create_queue(&k, &c).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..50u32 {
        let (client, c) = (client.clone(), c.clone());
        tasks.push(tokio::spawn(async move {
            client
                .send(sid, &c, 60, None, i.to_be_bytes().to_vec())
                .await
        }));
    }
    let mut ids = std::collections::HashSet::new();
    for t in tasks {
        ids.insert(t.await.unwrap().unwrap());
    }
    assert_eq!(ids.len(), 50);
    client.subscribe(&k, rid).await.unwrap();
    for _ in 0..50 {
        let (id, _) = envelope(&client).await;
        assert!(ids.remove(&id));
    }
    relay.stop().await;
}

/// Pairs of clients exchange envelopes at once; every recipient gets its own, in order.
async fn many_clients_exchange_concurrently<S: QueueStore>(relay: TestRelay<S>) {
    const CLIENTS: usize = 40;
    const MESSAGES: u32 = 25;
    let relay = std::sync::Arc::new(relay);
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let relay = relay.clone();
        tasks.push(tokio::spawn(async move {
            let (recipient, sender) = (relay.client().await, relay.client().await);
            let (k, c) = (key(), cap());
            let (rid, sid) = recipient.create_queue(&k, &c).await.unwrap();
            recipient.subscribe(&k, rid).await.unwrap();
            for i in 0..MESSAGES {
                sender
                    .send(sid, &c, 60, None, i.to_be_bytes().to_vec())
                    .await
                    .unwrap();
            }
            for i in 0..MESSAGES {
                let (id, body) = envelope(&recipient).await;
                assert_eq!(body, i.to_be_bytes());
                recipient.ack(rid, id).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let relay = std::sync::Arc::into_inner(relay).unwrap();
    relay.stop().await;
}

#[tokio::test]
async fn many_clients_on_the_memory_store() {
    many_clients_exchange_concurrently(TestRelay::start(|_| {})).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_clients_on_the_sled_store() {
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let store = SledStore::open(dir.path()).unwrap();
    let relay = TestRelay::start_on(store, dir, ManualClock::at_secs(START_SECS), |_| {});
    many_clients_exchange_concurrently(relay).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_in_flight_on_one_connection_keep_request_order() {
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let store = SledStore::open(dir.path()).unwrap();
    let relay = TestRelay::start_on(store, dir, ManualClock::at_secs(START_SECS), |_| {});
    let (alice, bob) = (relay.client().await, relay.client().await);
    let (k, c) = (key(), cap());
    let (rid, sid) = alice.create_queue(&k, &c).await.unwrap();
    // Written in one go, several times what the relay works on at once for one connection, so
    // many of them wait for durability together.
    let n = 3 * CONNECTION_PIPELINED_REQUESTS as u16;
    let mut frames = Vec::new();
    for i in 0..n {
        let send = Request::Send {
            sender_id: sid,
            send_cap: c.clone(),
            ttl_secs: 60,
            new_send_cap: None,
            body: i.to_be_bytes().to_vec(),
        };
        send.encode_frame(bob.next_request_id(), &mut frames);
    }
    bob.write(&frames).await.unwrap();
    // A ping is answered only after every send before it has taken effect.
    assert_eq!(bob.call(Request::Ping).await, Ok(Reply::Pong));
    alice.subscribe(&k, rid).await.unwrap();
    for i in 0..n {
        assert_eq!(envelope(&alice).await.1, i.to_be_bytes().to_vec());
    }
    // All of them were in the backlog when the subscription started.
    assert!(matches!(any_push(&alice).await, Push::Drained { .. }));
    relay.stop().await;
}

#[tokio::test]
async fn drained_follows_the_backlog_once_even_when_empty() {
    let relay = TestRelay::start(|_| {});
    let (alice, bob) = (relay.client().await, relay.client().await);
    let (k, c) = (key(), cap());
    let (rid, sid) = alice.create_queue(&k, &c).await.unwrap();
    // More than one push batch is waiting.
    let mut sent = Vec::new();
    for i in 0..40u8 {
        sent.push(bob.send(sid, &c, 60, None, vec![i; 4]).await.unwrap());
    }
    alice.subscribe(&k, rid).await.unwrap();
    assert_eq!(drained(&alice, rid).await, sent);
    // Later envelopes follow as usual, with no second Drained.
    let late = bob.send(sid, &c, 60, None, b"late".to_vec()).await.unwrap();
    match any_push(&alice).await {
        Push::Envelope { envelope_id, .. } => assert_eq!(envelope_id, late),
        other => panic!("expected the late envelope, got {other:?}"),
    }
    // An empty queue drains at once.
    let (k2, c2) = (key(), cap());
    let (rid2, _) = alice.create_queue(&k2, &c2).await.unwrap();
    alice.subscribe(&k2, rid2).await.unwrap();
    assert!(drained(&alice, rid2).await.is_empty());
    relay.stop().await;
}
