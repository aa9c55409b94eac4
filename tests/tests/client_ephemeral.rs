//! Ephemerality through the whole stack: timers (sender and reader rules, synced on both
//! sides), view-once, unsend before and after delivery, burn and block.

use std::time::Duration;

use hush_client::{ClientError, ClientEvent, Clock, ContactStatus};
use hush_tests::clients::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timers_sync_and_expire_by_each_rule() {
    let relay = relay();
    let (alice, bob, _ha, _hb) = pair(relay.address(), relay.address()).await;
    alice
        .set_timer("bob", Some(Duration::from_secs(1)))
        .await
        .unwrap();
    let events = until(&bob, |e| matches!(e, ClientEvent::TimerChanged { .. })).await;
    assert!(events.contains(&ClientEvent::TimerChanged {
        contact: "alice".into(),
        timer: Some(Duration::from_secs(1)),
        by_contact: true,
    }));
    assert_eq!(bob.contacts().await[0].timer, Some(Duration::from_secs(1)));

    let id = alice
        .send_text("bob", "short-lived", None, false)
        .await
        .unwrap()
        .id;
    let got = message_from(&bob, "alice").await;
    assert_eq!(got.timer, Some(Duration::from_secs(1)));
    // The sender's copy expires at send + T.
    expired(&alice, "bob", id).await;
    // The reader's copy waits for its first display...
    assert!(bob
        .history("alice")
        .await
        .unwrap()
        .iter()
        .any(|m| m.id == id));
    // ...then expires at display + T.
    let body = bob.display("alice", id).await.unwrap().body;
    assert_eq!(body.unwrap().as_str(), "short-lived");
    expired(&bob, "alice", id).await;
    assert!(bob.display("alice", id).await.is_err());

    // A per-message override applies to that message only: the conversation keeps its timer.
    alice
        .send_text("bob", "ten", Some(Duration::from_secs(10)), false)
        .await
        .unwrap();
    let got = message_from(&bob, "alice").await;
    assert_eq!(got.timer, Some(Duration::from_secs(10)));
    assert_eq!(bob.contacts().await[0].timer, Some(Duration::from_secs(1)));
    assert_eq!(
        alice.contacts().await[0].timer,
        Some(Duration::from_secs(1))
    );
    assert!(bob.next_deadline().await.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn view_once_shows_exactly_once() {
    let relay = relay();
    let (alice, bob, _ha, _hb) = pair(relay.address(), relay.address()).await;
    let id = alice
        .send_text("bob", "burn after reading", None, true)
        .await
        .unwrap()
        .id;
    let got = message_from(&bob, "alice").await;
    assert!(
        got.view_once && got.body.is_none(),
        "announced without its body"
    );
    assert!(bob.history("alice").await.unwrap()[0].body.is_none());
    let body = bob.display("alice", id).await.unwrap().body.unwrap();
    assert_eq!(body.as_str(), "burn after reading");
    assert!(bob.display("alice", id).await.is_err(), "second display");
    assert!(bob.history("alice").await.unwrap().is_empty());
    // The sender keeps a stub without the body.
    let stub = &alice.history("bob").await.unwrap()[0];
    assert!(stub.view_once && stub.body.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsend_before_delivery_never_shows() {
    let relay = relay();
    let (alice, bob, _ha, _hb) = pair(relay.address(), relay.address()).await;
    let id = alice
        .send_text("bob", "oops", None, false)
        .await
        .unwrap()
        .id;
    alice.unsend("bob", id).await.unwrap();
    assert!(alice.history("bob").await.unwrap().is_empty());
    let events = bob.receive(None, None).await.unwrap();
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, ClientEvent::Message { .. })),
        "{events:?}"
    );
    assert!(bob.history("alice").await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsend_after_delivery_deletes_the_copy() {
    let relay = relay();
    let (alice, bob, _ha, _hb) = pair(relay.address(), relay.address()).await;
    let id = alice
        .send_text("bob", "take it back", None, false)
        .await
        .unwrap()
        .id;
    message_from(&bob, "alice").await;
    alice.unsend("bob", id).await.unwrap();
    let events = until(&bob, |e| matches!(e, ClientEvent::Unsent { .. })).await;
    assert!(events.contains(&ClientEvent::Unsent {
        contact: "alice".into(),
        id,
        by_contact: true
    }));
    assert!(bob.history("alice").await.unwrap().is_empty());
    // Only our own messages can be unsent.
    let theirs = bob
        .send_text("alice", "mine", None, false)
        .await
        .unwrap()
        .id;
    message_from(&alice, "bob").await;
    assert!(alice.unsend("bob", theirs).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn burn_erases_both_sides() {
    let relay = relay();
    let (alice, bob, _ha, _hb) = pair(relay.address(), relay.address()).await;
    alice.send_text("bob", "one", None, false).await.unwrap();
    message_from(&bob, "alice").await;
    alice.burn("bob").await.unwrap();
    let events = until(&bob, |e| matches!(e, ClientEvent::Burned { .. })).await;
    assert!(events.contains(&ClientEvent::Burned {
        contact: "alice".into(),
        by_contact: true
    }));
    // Nothing of the contact is left on either side, not even its name.
    for (client, other) in [(&alice, "bob"), (&bob, "alice")] {
        let err = client
            .send_text(other, "again?", None, false)
            .await
            .unwrap_err();
        assert!(matches!(err, ClientError::UnknownContact { .. }), "{err:?}");
        assert!(err.to_string().contains("new invitation"));
        assert!(matches!(
            client.history(other).await,
            Err(ClientError::UnknownContact { .. })
        ));
        assert!(client.contacts().await.is_empty());
    }
    // A new invitation starts over under the same name.
    let token = alice.invite("bob").await.unwrap();
    bob.accept(&token, "alice").await.unwrap();
    until(&alice, |e| matches!(e, ClientEvent::ContactJoined { .. })).await;
    alice
        .send_text("bob", "fresh start", None, false)
        .await
        .unwrap();
    assert_eq!(
        message_from(&bob, "alice").await.body.unwrap().as_str(),
        "fresh start"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_deletes_the_queue_the_contact_sends_to() {
    let relay = relay();
    let (alice, bob, _ha, _hb) = pair(relay.address(), relay.address()).await;
    bob.block("alice").await.unwrap();
    assert_eq!(bob.contacts().await[0].status, ContactStatus::Blocked);
    let err = alice
        .send_text("bob", "hello?", None, false)
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::ContactGone), "{err:?}");
    assert!(alice.history("bob").await.unwrap().is_empty());
    assert!(matches!(
        bob.send_text("alice", "x", None, false).await,
        Err(ClientError::Conversation(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unread_message_hard_expires_and_lapses_while_closed() {
    let relay = relay();
    let clock = Clock::system();
    let (alice, bob, _ha, hb) = pair_clocked(relay.address(), relay.address(), clock.clone()).await;
    alice
        .set_timer("bob", Some(Duration::from_secs(60)))
        .await
        .unwrap();
    let unread = alice
        .send_text("bob", "never read", None, false)
        .await
        .unwrap()
        .id;
    let read = alice
        .send_text("bob", "read", None, false)
        .await
        .unwrap()
        .id;
    until(
        &bob,
        |e| matches!(e, ClientEvent::Message { message, .. } if message.id == read),
    )
    .await;
    bob.display("alice", read).await.unwrap();

    // The sender's copies are gone after the timer; the reader's read copy too.
    clock.advance(Duration::from_secs(61));
    alice.tick().await.unwrap();
    assert!(alice.history("bob").await.unwrap().is_empty());
    let expired_now = bob.tick().await.unwrap();
    assert!(expired_now.contains(&ClientEvent::Expired {
        contact: "alice".into(),
        id: read
    }));
    // The unread one lives until the relay's TTL (7 days) has passed since it arrived...
    clock.advance(Duration::from_secs(6 * 86_400));
    assert!(bob.tick().await.unwrap().is_empty());
    assert_eq!(bob.history("alice").await.unwrap()[0].id, unread);
    // ...and lapses while the client is closed: reopening applies it.
    bob.close().await;
    clock.advance(Duration::from_secs(86_400));
    let bob = reopen_clocked(&hb.path().join("home"), clock).await;
    assert!(bob.history("alice").await.unwrap().is_empty());
}
