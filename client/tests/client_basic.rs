//! The vertical slice: init, invite, accept, and messages both ways over a real relay; also
//! two relays, restart persistence, wrong passphrase, and an unreachable relay.

mod client_support;

use client_support::*;
use hush_client::store::{KdfParams, KeySource, Passphrase};
use hush_client::{Client, ClientError, ClientEvent, ContactStatus};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invite_accept_and_messages_both_ways() {
    let relay = relay();
    let (alice, bob, _ha, _hb) = pair(relay.address(), relay.address()).await;

    let id = alice
        .send_text("bob", "hello bob", None, false)
        .await
        .unwrap();
    let got = message_from(&bob, "alice").await;
    assert_eq!(got.id, id);
    assert_eq!(got.body.as_ref().unwrap().as_str(), "hello bob");
    assert!(!got.outgoing);

    bob.send_text("alice", "hi alice", None, false)
        .await
        .unwrap();
    let got = message_from(&alice, "bob").await;
    assert_eq!(got.body.unwrap().as_str(), "hi alice");

    // Both histories hold both messages; safety numbers agree.
    assert_eq!(alice.history("bob").await.unwrap().len(), 2);
    assert_eq!(bob.history("alice").await.unwrap().len(), 2);
    assert_eq!(
        alice.safety_number("bob").await.unwrap().digits(),
        bob.safety_number("alice").await.unwrap().digits()
    );
    alice.mark_verified("bob").await.unwrap();
    let contacts = alice.contacts().await;
    assert_eq!(contacts.len(), 1);
    assert!(contacts[0].verified && contacts[0].status == ContactStatus::Active);

    // Nothing pending: receive returns without waiting and without events.
    assert!(bob.receive(None, None).await.unwrap().is_empty());
    assert!(matches!(
        alice.send_text("carol", "x", None, false).await,
        Err(ClientError::UnknownContact { .. })
    ));
}
