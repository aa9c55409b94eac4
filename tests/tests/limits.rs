//! Every limit answers with a typed error, and the relay keeps serving everyone else.

use std::time::Duration;

use hush_client::net::{RelayCallError, RelayClient};
use hush_protocol::limits::{MAX_ENVELOPE_LEN, MAX_FRAME_LEN};
use hush_protocol::{BlobCapability, BlobId, ErrorCode, Reply, Request};
use hush_tests::{cap, envelope, key, TestRelay, DEADLINE};

const FULL: Result<hush_protocol::EnvelopeId, RelayCallError> =
    Err(RelayCallError::Relay(ErrorCode::QueueFull));

#[tokio::test]
async fn envelopes_above_the_limit_are_too_large() {
    let relay = TestRelay::start(|_| {});
    let client = relay.client().await;
    let (k, c) = (key(), cap());
    let (_, sid) = client.create_queue(&k, &c).await.unwrap();
    client
        .send(sid, &c, 60, None, vec![0; MAX_ENVELOPE_LEN])
        .await
        .unwrap();
    assert_eq!(
        client
            .send(sid, &c, 60, None, vec![0; MAX_ENVELOPE_LEN + 1])
            .await,
        Err(RelayCallError::Relay(ErrorCode::TooLarge))
    );
    relay.stop().await;

    let relay = TestRelay::start(|c| c.max_envelope_len = 1000);
    let client = relay.client().await;
    let (_, sid) = client.create_queue(&k, &c).await.unwrap();
    client.send(sid, &c, 60, None, vec![0; 1000]).await.unwrap();
    assert_eq!(
        client.send(sid, &c, 60, None, vec![0; 1001]).await,
        Err(RelayCallError::Relay(ErrorCode::TooLarge))
    );
    relay.stop().await;
}

#[tokio::test]
async fn queue_quotas_cap_pending_messages_and_bytes() {
    let relay = TestRelay::start(|c| {
        c.queue_max_messages = 3;
        c.queue_max_bytes = 100;
    });
    let client = relay.client().await;
    let (k, c) = (key(), cap());
    let (rid, sid) = client.create_queue(&k, &c).await.unwrap();
    for _ in 0..3 {
        client.send(sid, &c, 60, None, vec![1; 10]).await.unwrap();
    }
    assert_eq!(client.send(sid, &c, 60, None, vec![1; 10]).await, FULL);
    // Acking one makes room for one.
    client.subscribe(&k, rid).await.unwrap();
    let (first, _) = envelope(&client).await;
    client.ack(rid, first).await.unwrap();
    client.send(sid, &c, 60, None, vec![1; 10]).await.unwrap();

    let (_, sid2) = client.create_queue(&k, &c).await.unwrap();
    client.send(sid2, &c, 60, None, vec![2; 60]).await.unwrap();
    assert_eq!(client.send(sid2, &c, 60, None, vec![2; 41]).await, FULL);
    client.send(sid2, &c, 60, None, vec![2; 40]).await.unwrap();
    relay.stop().await;
}

#[tokio::test]
async fn the_request_rate_is_limited_per_connection() {
    let relay = TestRelay::start(|c| {
        c.requests_per_sec = 1;
        c.request_burst = 5;
    });
    let (greedy, other) = (relay.client().await, relay.client().await);
    let results = pings(&greedy, 8).await;
    let ok = results.iter().filter(|r| **r == Ok(Reply::Pong)).count();
    let limited = results
        .iter()
        .filter(|r| **r == Err(RelayCallError::Relay(ErrorCode::RateLimited)))
        .count();
    assert_eq!((ok, limited), (5, 3));
    // Other connections are unaffected, and time refills the bucket.
    assert_eq!(other.call(Request::Ping).await, Ok(Reply::Pong));
    relay.clock().advance(Duration::from_secs(1));
    assert_eq!(greedy.call(Request::Ping).await, Ok(Reply::Pong));
    assert_eq!(
        greedy.call(Request::Ping).await,
        Err(RelayCallError::Relay(ErrorCode::RateLimited))
    );
    relay.stop().await;
}

#[tokio::test]
async fn blob_chunks_do_not_count_against_the_request_rate() {
    let relay = TestRelay::start(|c| {
        c.requests_per_sec = 1;
        c.request_burst = 2;
    });
    let client = relay.client().await;
    let chunk = |i: u8| {
        if i % 2 == 0 {
            Request::BlobWrite {
                blob_id: BlobId::from_bytes([i; 16]),
                write_cap: BlobCapability::from_bytes([i; 32]),
                offset: 0,
                data: vec![i; 1024],
            }
        } else {
            Request::BlobRead {
                blob_id: BlobId::from_bytes([i; 16]),
                read_cap: BlobCapability::from_bytes([i; 32]),
                offset: 0,
                len: 1024,
            }
        }
    };
    // Far more chunk requests than the burst allows: none is refused for the rate (these blobs
    // do not exist, so each gets some other answer).
    for i in 0..20u8 {
        assert_ne!(
            client.call(chunk(i)).await,
            Err(RelayCallError::Relay(ErrorCode::RateLimited))
        );
    }
    // They took no tokens: the whole burst is still there for other requests.
    let results = pings(&client, 3).await;
    assert_eq!(
        results,
        vec![
            Ok(Reply::Pong),
            Ok(Reply::Pong),
            Err(RelayCallError::Relay(ErrorCode::RateLimited))
        ]
    );
    relay.stop().await;
}

/// Sends `n` pings, one after another, and collects the answers.
async fn pings(client: &RelayClient, n: usize) -> Vec<Result<Reply, RelayCallError>> {
    let mut set = Vec::new();
    for _ in 0..n {
        set.push(client.call(Request::Ping));
    }
    let mut out = Vec::new();
    for f in set {
        out.push(f.await);
    }
    out
}

#[tokio::test]
async fn connections_past_the_limit_are_refused() {
    let relay = TestRelay::start(|c| c.max_connections = 1);
    let first = relay.client().await;
    let refused = RelayClient::connect(relay.handle.address()).await;
    assert_eq!(refused.err(), Some(RelayCallError::Refused));
    assert_eq!(first.call(Request::Ping).await, Ok(Reply::Pong));
    // Once the first leaves, its slot frees up.
    drop(first);
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        match RelayClient::connect(relay.handle.address()).await {
            Ok(c) => {
                assert_eq!(c.call(Request::Ping).await, Ok(Reply::Pong));
                break;
            }
            Err(RelayCallError::Refused) if tokio::time::Instant::now() < deadline => {
                tokio::task::yield_now().await;
            }
            Err(e) => panic!("slot never freed: {e}"),
        }
    }
    relay.stop().await;

    let relay = TestRelay::start(|c| c.max_handshakes = 0);
    let refused = RelayClient::connect(relay.handle.address()).await;
    assert_eq!(refused.err(), Some(RelayCallError::Refused));
    relay.stop().await;
}

#[tokio::test]
async fn queues_created_and_subscriptions_held_are_capped_per_connection() {
    let relay = TestRelay::start(|c| {
        c.max_queues_per_connection = 2;
        c.max_subscriptions_per_connection = 1;
    });
    let client = relay.client().await;
    let (k, c) = (key(), cap());
    let (a, _) = client.create_queue(&k, &c).await.unwrap();
    let (b, _) = client.create_queue(&k, &c).await.unwrap();
    assert_eq!(
        client.create_queue(&k, &c).await,
        Err(RelayCallError::Relay(ErrorCode::TooManyQueues))
    );
    client.subscribe(&k, a).await.unwrap();
    client.subscribe(&k, a).await.unwrap();
    assert_eq!(
        client.subscribe(&k, b).await,
        Err(RelayCallError::Relay(ErrorCode::TooManySubscriptions))
    );
    let fresh = relay.client().await;
    fresh.create_queue(&k, &c).await.unwrap();
    fresh.subscribe(&k, b).await.unwrap();
    relay.stop().await;
}

#[tokio::test]
async fn malformed_requests_get_typed_errors_and_bad_framing_closes_only_that_connection() {
    let relay = TestRelay::start(|_| {});
    let (bad, good) = (relay.client().await, relay.client().await);
    // A well-framed request with an unknown tag: answered, connection kept.
    let mut frame = 5u32.to_be_bytes().to_vec();
    frame.extend(77u32.to_be_bytes());
    frame.push(0xEE);
    bad.write(&frame).await.unwrap();
    assert_eq!(bad.call(Request::Ping).await, Ok(Reply::Pong));
    // A length prefix above the frame limit: the connection is closed as malformed.
    bad.write(&((MAX_FRAME_LEN + 1) as u32).to_be_bytes())
        .await
        .unwrap();
    let why = tokio::time::timeout(DEADLINE, bad.closed()).await.unwrap();
    assert_eq!(
        why,
        RelayCallError::Closed {
            code: Some(ErrorCode::Malformed)
        }
    );
    assert_eq!(good.call(Request::Ping).await, Ok(Reply::Pong));
    relay.stop().await;
}

#[tokio::test]
async fn a_large_backlog_is_pushed_in_order_while_sends_continue() {
    let relay = TestRelay::start(|_| {});
    let (reader, sender) = (relay.client().await, relay.client().await);
    let (k, c) = (key(), cap());
    let (rid, sid) = reader.create_queue(&k, &c).await.unwrap();
    reader.subscribe(&k, rid).await.unwrap();
    // The reader takes nothing while 3,000 envelopes of 1 KiB arrive: many push batches and
    // far more than the relay's per-connection outgoing queue, yet every send is answered.
    for i in 0..3000u32 {
        let mut body = vec![0; 1024];
        body[..4].copy_from_slice(&i.to_be_bytes());
        sender.send(sid, &c, 600, None, body).await.unwrap();
    }
    for i in 0..3000u32 {
        let (id, body) = envelope(&reader).await;
        assert_eq!(body[..4], i.to_be_bytes());
        reader.ack(rid, id).await.unwrap();
    }
    relay.stop().await;
}
