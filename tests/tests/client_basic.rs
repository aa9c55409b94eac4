//! The vertical slice: init, invite, accept, and messages both ways over a real relay; also
//! two relays, restart persistence, wrong passphrase, and an unreachable relay.

use hush_client::store::{KdfParams, KeySource, Passphrase};
use hush_client::{Client, ClientError, ClientEvent, ContactStatus};
use hush_tests::clients::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invite_accept_and_messages_both_ways() {
    let relay = relay();
    let (alice, bob, _ha, _hb) = pair(relay.address(), relay.address()).await;

    let id = alice
        .send_text("bob", "hello bob", None, false)
        .await
        .unwrap()
        .id;
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
    // A filter narrows what is returned, not what is processed: the message is stored.
    alice
        .send_text("bob", "filtered", None, false)
        .await
        .unwrap();
    let end = std::time::Instant::now() + DEADLINE;
    while bob.history("alice").await.unwrap().len() < 3 {
        let events = bob.receive(Some("someone else"), None).await.unwrap();
        assert!(events.is_empty(), "{events:?}");
        assert!(std::time::Instant::now() < end, "the message never arrived");
        tokio::task::yield_now().await;
    }
    assert!(matches!(
        alice.send_text("carol", "x", None, false).await,
        Err(ClientError::UnknownContact { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_relays_each_side_receives_on_its_own() {
    let (ra, rb) = (relay(), relay());
    let (alice, bob, _ha, _hb) = pair(ra.address(), rb.address()).await;
    let contacts = alice.contacts().await;
    assert_eq!(
        contacts[0].relay.as_ref(),
        Some(&rb.address()),
        "Bob receives on his relay"
    );
    assert_eq!(bob.contacts().await[0].relay.as_ref(), Some(&ra.address()));

    alice
        .send_text("bob", "via Bob's relay", None, false)
        .await
        .unwrap();
    bob.send_text("alice", "via Alice's relay", None, false)
        .await
        .unwrap();
    let (a, b) = (
        message_from(&alice, "bob").await,
        message_from(&bob, "alice").await,
    );
    assert_eq!(a.body.unwrap().as_str(), "via Alice's relay");
    assert_eq!(b.body.unwrap().as_str(), "via Bob's relay");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_survives_a_restart() {
    let relay = relay();
    let (alice, bob, ha, _hb) = pair(relay.address(), relay.address()).await;
    alice.send_text("bob", "before", None, false).await.unwrap();
    message_from(&bob, "alice").await;
    // A pending invitation survives too.
    let token = alice.invite("carol").await.unwrap();
    alice.close().await;

    let hc = tempfile::tempdir().unwrap();
    let carol = init(&hc.path().join("home"), "carol", relay.address()).await;
    carol.accept(&token, "alice").await.unwrap();

    let alice = reopen(&ha.path().join("home")).await;
    assert_eq!(alice.name(), "alice");
    let history = alice.history("bob").await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].body.as_ref().unwrap().as_str(), "before");
    until(&alice, |e| {
        e == &ClientEvent::ContactJoined {
            contact: "carol".into(),
        }
    })
    .await;
    assert!(alice.pending_invitations().await.is_empty());

    // The ratchet continues where it stopped, in both directions.
    bob.send_text("alice", "after", None, false).await.unwrap();
    assert_eq!(
        message_from(&alice, "bob").await.body.unwrap().as_str(),
        "after"
    );
    alice
        .send_text("carol", "hi carol", None, false)
        .await
        .unwrap();
    assert_eq!(
        message_from(&carol, "alice").await.body.unwrap().as_str(),
        "hi carol"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_passphrase_is_refused() {
    let relay = relay();
    let home = tempfile::tempdir().unwrap();
    let path = home.path().join("home");
    let cheap = KdfParams {
        memory_kib: 8,
        time_cost: 1,
        lanes: 1,
    };
    let key = KeySource::Passphrase(Passphrase::new("right horse").with_kdf(cheap));
    let client = Client::init(&path, "alice", relay.address(), key)
        .await
        .unwrap();
    client.close().await;
    let wrong = KeySource::Passphrase(Passphrase::new("wrong horse"));
    let err = Client::open(&path, wrong).await.unwrap_err();
    assert!(matches!(err, ClientError::WrongPassphrase), "{err:?}");
    assert!(err.to_string().contains("wrong passphrase"));
    let right = KeySource::Passphrase(Passphrase::new("right horse"));
    assert_eq!(Client::open(&path, right).await.unwrap().name(), "alice");
    let missing = Client::open(&home.path().join("nowhere"), KeySource::KeyFile).await;
    assert!(matches!(missing, Err(ClientError::NotInitialised { .. })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_relay_is_named_and_nothing_is_lost() {
    let (ra, rb) = (relay(), relay());
    let (alice, bob, _ha, _hb) = pair(ra.address(), rb.address()).await;
    alice.send_text("bob", "kept", None, false).await.unwrap();
    let bob_relay = rb.address();
    rb.handle.shutdown().await.unwrap();

    let err = alice
        .send_text("bob", "lost?", None, false)
        .await
        .unwrap_err();
    match &err {
        ClientError::Unreachable { relay } => assert_eq!(relay, &bob_relay),
        other => panic!("expected Unreachable, got {other:?}"),
    }
    assert!(err.to_string().contains("nothing was lost"));
    let history = alice.history("bob").await.unwrap();
    assert_eq!(history.len(), 1, "the failed message left no trace");
    assert_eq!(history[0].body.as_ref().unwrap().as_str(), "kept");

    let err = bob.receive(None, None).await.unwrap_err();
    assert!(matches!(err, ClientError::Unreachable { relay } if relay == bob_relay));
    assert_eq!(bob.contacts().await.len(), 1);
}
