//! Forensics: after a message expires, is unsent, or its conversation is burned, a byte search
//! of both homes and of the relay's data directory (a sled store) finds no trace of the text.
//! Also the event stream, which front ends use for live chat.

use std::time::Duration;

use hush_client::store::{KeySource, LocalStore, Namespace};
use hush_client::ClientEvent;
use hush_tests::clients::*;

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
    let id = alice.send_text("bob", &text, None, false).await.unwrap().id;
    message_from(&bob, "alice").await;
    bob.display("alice", id).await.unwrap();
    expired(&alice, "bob", id).await;
    expired(&bob, "alice", id).await;

    // Unsend, after delivery.
    alice.set_timer("bob", None).await.unwrap();
    let unsent = secret("unsent");
    let id = alice
        .send_text("bob", &unsent, None, false)
        .await
        .unwrap()
        .id;
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
        let pattern = Pattern::bytes(text.as_bytes());
        for dir in dirs {
            // The search sees the text under `dir` when it is there.
            forensic::assert_can_see(dir, &pattern);
            let found = forensic::files_holding(dir, &pattern);
            assert!(
                found.is_empty(),
                "{text} found under {}: {found:?}",
                dir.display()
            );
        }
    }
}

/// The records an attacker holding the home's key file can still open for its one contact: its
/// ratchet session and its messages. (Their sled keys come from the contact's random key, kept
/// in its contact record; with one contact, every session and message record is its.)
fn readable_state(home: &std::path::Path) -> (Option<Vec<u8>>, usize) {
    let store = LocalStore::open(home, KeySource::KeyFile).unwrap();
    let sessions = store.list(Namespace::Session, None).unwrap();
    assert!(sessions.len() <= 1, "one contact, one session");
    let session = sessions.into_iter().next().map(|(_, b)| b.to_vec());
    let messages = store.list(Namespace::Message, None).unwrap().len();
    (session, messages)
}

/// Whether any 32-byte window of `secret` occurs in a file under `dir`, after showing that the
/// search sees one when it is there.
fn any_window_under(dir: &std::path::Path, secret: &[u8]) -> bool {
    let pattern = Pattern::windows(secret, 32);
    forensic::assert_can_see(dir, &pattern);
    !forensic::files_holding(dir, &pattern).is_empty()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn burn_leaves_no_ratchet_state_even_for_the_key_file_holder() {
    let relay = sled_relay();
    let (alice, bob, ha, hb) = pair(relay.address(), relay.address()).await;
    alice
        .send_text("bob", "before the burn", None, false)
        .await
        .unwrap();
    message_from(&bob, "alice").await;
    bob.send_text("alice", "reply", None, false).await.unwrap();
    message_from(&alice, "bob").await;
    alice.close().await;
    bob.close().await;

    // With the key file, both ratchet states and the messages are readable before the burn:
    // the check below can fail.
    let (home_a, home_b) = (ha.path().join("home"), hb.path().join("home"));
    let (alice_session, alice_msgs) = readable_state(&home_a);
    let (bob_session, bob_msgs) = readable_state(&home_b);
    let (alice_session, bob_session) = (alice_session.unwrap(), bob_session.unwrap());
    assert!(alice_msgs > 0 && bob_msgs > 0);

    let alice = reopen(&home_a).await;
    let bob = reopen(&home_b).await;
    bob.burn("alice").await.unwrap();
    until(&alice, |e| matches!(e, ClientEvent::Burned { .. })).await;
    alice.close().await;
    bob.close().await;
    relay.handle.shutdown().await.unwrap();

    // After it, the holder of the key file finds neither the sessions (root, chain, header and
    // skipped message keys) nor any message, and no raw piece of either session is on disk.
    assert_eq!(readable_state(&home_a), (None, 0));
    assert_eq!(readable_state(&home_b), (None, 0));
    for dir in [ha.path(), hb.path(), relay.dir.path()] {
        for session in [&alice_session, &bob_session] {
            assert!(
                !any_window_under(dir, session),
                "session bytes under {}",
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
        .unwrap()
        .id;
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
