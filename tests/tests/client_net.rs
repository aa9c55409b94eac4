//! Relay connections: the pool reuses and renews connections, pins certificates, names an
//! unreachable relay; and a forged first message on an invitation's queue is reported and
//! leaves the invitation usable.

use std::time::Duration;

use hush_client::crypto::limits::WIRE_BUCKETS;
use hush_client::crypto::{Invitation, WIRE_VERSION};
use hush_client::net::{NetError, PoolEvent, RelayPool, RetryPolicy};
use hush_client::ClientEvent;
use hush_protocol::{Fingerprint, RelayAddress};
use hush_tests::clients::*;

fn fast() -> RetryPolicy {
    RetryPolicy::new(2, Duration::from_secs(2))
        .with_delays(Duration::from_millis(20), Duration::from_millis(40))
}

#[tokio::test]
async fn the_pool_reuses_a_live_connection_and_renews_a_dead_one() {
    let relay = relay();
    let (pool, mut events) = RelayPool::new(fast());
    let a = pool.connection(&relay.address()).await.unwrap();
    let b = pool.connection(&relay.address()).await.unwrap();
    assert_eq!(a.generation(), b.generation(), "one connection per relay");
    a.client().close();
    let lost = tokio::time::timeout(DEADLINE, events.recv()).await.unwrap();
    assert!(
        matches!(lost, Some(PoolEvent::Lost { generation, .. }) if generation == a.generation())
    );
    let c = pool.connection(&relay.address()).await.unwrap();
    assert_ne!(c.generation(), a.generation(), "reconnected");
    // `run` gets through on the new connection.
    let pong = pool
        .run(&relay.address(), |conn| async move {
            conn.client().call(hush_protocol::Request::Ping).await
        })
        .await
        .unwrap();
    assert_eq!(pong, hush_protocol::Reply::Pong);
}

#[tokio::test]
async fn a_wrong_pin_is_a_changed_certificate_and_a_dead_port_unreachable_both_named() {
    let relay = relay();
    let mut wrong_pin = relay.address();
    wrong_pin.fingerprint = Fingerprint([0x42; 32]);
    let dead: RelayAddress = {
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = sock.local_addr().unwrap().port();
        drop(sock);
        let mut a = relay.address();
        a.port = port;
        a
    };
    let (pool, _events) = RelayPool::new(fast());
    let err = pool.connection(&wrong_pin).await.unwrap_err();
    assert_eq!(
        err,
        NetError::CertificateChanged {
            relay: wrong_pin.clone()
        }
    );
    let msg = err.to_string();
    assert!(
        msg.contains(&wrong_pin.to_string())
            && msg.contains("ask them for the relay's new address")
    );
    for addr in [dead] {
        let err = pool.connection(&addr).await.unwrap_err();
        assert_eq!(
            err,
            NetError::Unreachable {
                relay: addr.clone()
            }
        );
        let msg = err.to_string();
        assert!(msg.contains(&addr.to_string()) && msg.contains("nothing was lost"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_first_message_is_reported_and_the_invitation_still_works() {
    let relay = relay();
    let (ha, hb) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let alice = init(&ha.path().join("home"), "alice", relay.address()).await;
    let token = alice.invite("bob").await.unwrap();

    // Someone who saw the token sends a forged handshake to its queue.
    let inv = Invitation::parse(&token).unwrap();
    let (pool, _events) = RelayPool::new(fast());
    let conn = pool.connection(inv.relay()).await.unwrap();
    let mut forged = vec![WIRE_VERSION];
    forged.resize(WIRE_BUCKETS[0], 0x5a);
    conn.client()
        .send(inv.sender_id(), inv.send_capability(), 0, None, forged)
        .await
        .unwrap();
    let events = alice.receive(None, None).await.unwrap();
    assert!(
        events.contains(&ClientEvent::Tampered { contact: None }),
        "{events:?}"
    );
    assert_eq!(alice.pending_invitations().await.len(), 1);

    let bob = init(&hb.path().join("home"), "bob", relay.address()).await;
    bob.accept(&token, "alice").await.unwrap();
    until(&alice, |e| matches!(e, ClientEvent::ContactJoined { .. })).await;
    // The invitation's capability was replaced by the first message: it is used up.
    let hc = tempfile::tempdir().unwrap();
    let carol = init(&hc.path().join("home"), "carol", relay.address()).await;
    let err = carol.accept(&token, "alice").await.unwrap_err();
    assert!(
        matches!(err, hush_client::ClientError::InvitationUsed),
        "{err:?}"
    );
    assert!(carol.contacts().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_reconnect_and_resubscribe_after_a_relay_restart() {
    let relay = sled_relay();
    let (alice, bob, _ha, _hb) = pair(relay.address(), relay.address()).await;
    let mut stream = bob.subscribe_events();
    alice.send_text("bob", "before", None, false).await.unwrap();
    message_from_stream(&mut stream, "before").await;

    // The relay goes away and comes back on the same port, data directory and certificate.
    let listen = relay.handle.local_addr();
    let TestRelay { handle, dir, .. } = relay;
    handle.shutdown().await.unwrap();
    let relay = sled_relay_in(dir, Some(listen));

    // Alice's pool reconnects for the send; Bob's event task resubscribes on its own.
    alice.send_text("bob", "after", None, false).await.unwrap();
    message_from_stream(&mut stream, "after").await;
    drop(relay);
}

async fn message_from_stream(
    stream: &mut tokio::sync::mpsc::UnboundedReceiver<ClientEvent>,
    text: &str,
) {
    loop {
        let ev = tokio::time::timeout(DEADLINE, stream.recv())
            .await
            .expect("no event before the deadline")
            .expect("stream ended");
        if let ClientEvent::Message { message, .. } = ev {
            assert_eq!(message.body.unwrap().as_str(), text);
            return;
        }
    }
}
