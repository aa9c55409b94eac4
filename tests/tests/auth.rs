//! Authorisation failures: wrong capability, wrong signature, a signature replayed on another
//! connection, a wrong certificate pin and a wrong protocol version.

use hush_client::net::{client_config, client_config_with_alpn, RelayCallError, RelayClient};
use hush_protocol::{ErrorCode, Fingerprint, Request};
use hush_tests::{cap, key, TestRelay};

#[tokio::test]
async fn a_wrong_capability_is_refused_like_a_missing_queue() {
    let relay = TestRelay::start(|_| {});
    let client = relay.client().await;
    let (k, c) = (key(), cap());
    let (_, sid) = client.create_queue(&k, &c).await.unwrap();
    let env = client.send(sid, &c, 60, None, vec![1]).await.unwrap();
    let wrong = cap();
    let missing = hush_protocol::SenderId([0xEE; 16]);
    for (s, cp) in [(sid, &wrong), (missing, &c)] {
        assert_eq!(
            client.send(s, cp, 60, None, vec![2]).await,
            Err(RelayCallError::Relay(ErrorCode::Auth))
        );
        assert_eq!(
            client.retract(s, cp, env).await,
            Err(RelayCallError::Relay(ErrorCode::Auth))
        );
    }
    relay.stop().await;
}

#[tokio::test]
async fn a_signature_by_the_wrong_key_or_over_other_bytes_is_refused() {
    let relay = TestRelay::start(|_| {});
    let client = relay.client().await;
    let (k, c) = (key(), cap());
    let (rid, _) = client.create_queue(&k, &c).await.unwrap();
    let other = key();
    assert_eq!(
        client.subscribe(&other, rid).await,
        Err(RelayCallError::Relay(ErrorCode::Auth))
    );
    assert_eq!(
        client.delete_queue(&other, rid).await,
        Err(RelayCallError::Relay(ErrorCode::Auth))
    );
    assert_eq!(
        client.resecure(&other, rid, &cap()).await,
        Err(RelayCallError::Relay(ErrorCode::Auth))
    );
    // Signed for one request id, sent under another.
    let id = client.next_request_id();
    let mut req = Request::Subscribe {
        recipient_id: rid,
        signature: [0; 64],
    };
    client.sign(&k, id, &mut req);
    assert_eq!(
        client.call_with_id(id + 1000, req).await,
        Err(RelayCallError::Relay(ErrorCode::Auth))
    );
    // Create must be signed by the key it registers (proof of possession).
    let mut create = Request::CreateQueue {
        recipient_key: k.verifying_key().to_bytes(),
        send_cap: c.clone(),
        signature: [0; 64],
    };
    let id = client.next_request_id();
    client.sign(&other, id, &mut create);
    assert_eq!(
        client.call_with_id(id, create).await,
        Err(RelayCallError::Relay(ErrorCode::Auth))
    );
    // An ack needs a subscription on this connection.
    assert_eq!(
        client.ack(rid, hush_protocol::EnvelopeId([1; 16])).await,
        Err(RelayCallError::Relay(ErrorCode::NotSubscribed))
    );
    // The right key still works.
    client.subscribe(&k, rid).await.unwrap();
    relay.stop().await;
}

#[tokio::test]
async fn a_signature_replayed_on_another_connection_is_refused() {
    let relay = TestRelay::start(|_| {});
    let (first, second) = (relay.client().await, relay.client().await);
    assert_ne!(first.exporter(), second.exporter());
    let (k, c) = (key(), cap());
    let (rid, _) = first.create_queue(&k, &c).await.unwrap();
    for make in [
        |rid| Request::Subscribe {
            recipient_id: rid,
            signature: [0; 64],
        },
        |rid| Request::DeleteQueue {
            recipient_id: rid,
            signature: [0; 64],
        },
    ] {
        let id = first.next_request_id();
        let mut req = make(rid);
        first.sign(&k, id, &mut req);
        // The same bytes, under the same request id, on a different TLS session.
        assert_eq!(
            second.call_with_id(id, req.clone()).await,
            Err(RelayCallError::Relay(ErrorCode::Auth))
        );
        if matches!(req, Request::Subscribe { .. }) {
            first.call_with_id(id, req).await.unwrap();
        }
    }
    // The queue survived the replayed delete.
    first.subscribe(&k, rid).await.unwrap();
    relay.stop().await;
}

#[tokio::test]
async fn a_wrong_pin_or_protocol_version_fails_the_handshake() {
    let relay = TestRelay::start(|_| {});
    let addr = relay.handle.address().clone();
    let sock = relay.handle.local_addr();
    let wrong_pin = client_config(Fingerprint([0; 32])).unwrap();
    assert!(matches!(
        RelayClient::connect_with(sock, &addr.host, wrong_pin).await,
        Err(RelayCallError::Connect(_))
    ));
    let wrong_alpn = client_config_with_alpn(addr.fingerprint, b"hush/0").unwrap();
    assert!(matches!(
        RelayClient::connect_with(sock, &addr.host, wrong_alpn).await,
        Err(RelayCallError::Version)
    ));
    // The relay keeps serving correct clients.
    let ok = relay.client().await;
    assert_eq!(ok.call(Request::Ping).await, Ok(hush_protocol::Reply::Pong));
    relay.stop().await;
}
