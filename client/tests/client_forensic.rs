//! Forensics: after a message expires, is unsent, or its conversation is burned, a byte search
//! of both homes and of the relay's data directory (a sled store) finds no trace of the text.
//! Also the event stream, which front ends use for live chat.

mod client_support;

use std::time::Duration;

use client_support::*;
use hush_client::ClientEvent;

async fn next(events: &mut tokio::sync::mpsc::UnboundedReceiver<ClientEvent>) -> ClientEvent {
    tokio::time::timeout(DEADLINE, events.recv())
        .await
        .expect("no event before the deadline")
        .expect("event stream ended")
}

fn secret(tag: &str) -> String {
    format!("forensic-{tag}-7f3a9c2e51b84d06a1e3c9b7d2f40e68")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_unsent_and_burned_texts_leave_no_trace() {
    let relay = sled_relay();
    let (alice, bob, ha, hb) = pair(relay.address(), relay.address()).await;
    let dirs = [ha.path(), hb.path(), relay.dir.path()];

    // Expiry.
    alice
        .set_timer("bob", Some(Duration::from_secs(1)))
        .await
        .unwrap();
    let text = secret("expired");
    let id = alice.send_text("bob", &text, None, false).await.unwrap();
    message_from(&bob, "alice").await;
    bob.display("alice", id).await.unwrap();
    expired(&alice, "bob", id).await;
    expired(&bob, "alice", id).await;

    // Unsend, after delivery.
    alice.set_timer("bob", None).await.unwrap();
    let unsent = secret("unsent");
    let id = alice.send_text("bob", &unsent, None, false).await.unwrap();
    message_from(&bob, "alice").await;
    alice.unsend("bob", id).await.unwrap();
    until(&bob, |e| matches!(e, ClientEvent::Unsent { .. })).await;

    // Burn.
    let burned = secret("burned");
    bob.send_text("alice", &burned, None, false).await.unwrap();
    message_from(&alice, "bob").await;
    bob.burn("alice").await.unwrap();
    until(&alice, |e| matches!(e, ClientEvent::Burned { .. })).await;

    alice.close().await;
    bob.close().await;
    relay.handle.shutdown().await.unwrap();
    for text in [&text, &unsent, &burned] {
        for dir in dirs {
            assert!(
                !dir_contains(dir, text.as_bytes()),
                "{text} found under {}",
                dir.display()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_delivers_pushes_as_they_arrive() {
    let relay = relay();
    let (alice, bob, _ha, _hb) = pair(relay.address(), relay.address()).await;
    let mut events = bob.subscribe_events();
    alice.send_text("bob", "live", None, false).await.unwrap();
    loop {
        if let ClientEvent::Message { contact, message } = next(&mut events).await {
            assert_eq!(contact, "alice");
            assert_eq!(message.body.unwrap().as_str(), "live");
            break;
        }
    }
    // receive still works while the stream runs (the task steps aside), and whoever processes
    // an envelope, the stream sees its event.
    assert!(bob.receive(None, None).await.unwrap().is_empty());
    alice.send_text("bob", "polled", None, false).await.unwrap();
    loop {
        if let ClientEvent::Message { message, .. } = next(&mut events).await {
            assert_eq!(message.body.unwrap().as_str(), "polled");
            break;
        }
    }
    assert_eq!(bob.history("alice").await.unwrap().len(), 2);
    // Expiries come through the stream on time.
    alice
        .set_timer("bob", Some(Duration::from_secs(1)))
        .await
        .unwrap();
    let id = alice
        .send_text("bob", "fleeting", None, false)
        .await
        .unwrap();
    loop {
        if let ClientEvent::Message { message, .. } = next(&mut events).await {
            assert_eq!(message.id, id);
            break;
        }
    }
    bob.display("alice", id).await.unwrap();
    loop {
        if next(&mut events).await
            == (ClientEvent::Expired {
                contact: "alice".into(),
                id,
            })
        {
            break;
        }
    }
    bob.close().await;
}
