//! What the relay sees of a new contact's first message: nothing that sets it apart from a chat
//! message. The relay's store records every envelope a client sends (its size and its clear
//! leading byte); a first message and a short chat message must land in the same size bucket
//! with the same leading byte.

use std::sync::{Arc, Mutex};

use hush_client::crypto::limits::WIRE_BUCKETS;
use hush_client::ClientEvent;
use hush_server::store::memory::MemoryStore;
use hush_server::store::QueueStore;
use hush_tests::clients::{init, message_from, until};
use hush_tests::intercept::{Call, Flow, Hooks, Intercept};
use hush_tests::TestRelay;

/// One envelope as the relay's store received it.
#[derive(Clone, Debug)]
struct Seen {
    len: usize,
    lead: u8,
    /// Whether the send replaced the queue's capability (a first message does).
    replaces_cap: bool,
}

/// Records every envelope sent through the relay.
#[derive(Default)]
struct Record {
    sends: Mutex<Vec<Seen>>,
}

impl<S: QueueStore> Hooks<S> for Record {
    fn before(&self, _: &S, call: &Call) -> impl std::future::Future<Output = Flow> + Send {
        if let Call::Send {
            envelope,
            new_cap_hash,
            ..
        } = call
        {
            self.sends.lock().unwrap().push(Seen {
                len: envelope.body.len(),
                lead: envelope.body.first().copied().unwrap_or_default(),
                replaces_cap: new_cap_hash.is_some(),
            });
        }
        std::future::ready(Flow::Go)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_message_and_a_chat_message_fill_the_same_bucket_on_the_relay() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let store = Intercept::new(MemoryStore::new(), Record::default());
    let relay = TestRelay::wall_clock_on(store, dir, |_| {});
    let (ha, hb) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let alice = init(&ha.path().join("home"), "alice", relay.address()).await;
    let bob = init(&hb.path().join("home"), "bob", relay.address()).await;

    let token = alice.invite("bob").await.unwrap();
    bob.accept(&token, "alice").await.unwrap();
    until(&alice, |e| matches!(e, ClientEvent::ContactJoined { .. })).await;
    bob.send_text("alice", "hi", None, false).await.unwrap();
    assert_eq!(
        message_from(&alice, "bob").await.body.unwrap().as_str(),
        "hi"
    );
    alice
        .send_text("bob", "hello, and welcome", None, false)
        .await
        .unwrap();
    assert_eq!(
        message_from(&bob, "alice").await.body.unwrap().as_str(),
        "hello, and welcome"
    );

    let sends = relay.handle.store().hooks().sends.lock().unwrap().clone();
    let (first, chat): (Vec<Seen>, Vec<Seen>) = sends.into_iter().partition(|s| s.replaces_cap);
    assert_eq!(first.len(), 1, "one first message: {first:?}");
    assert!(chat.len() >= 2, "both chat messages: {chat:?}");
    let first = &first[0];
    for c in &chat {
        assert_eq!(
            (c.len, c.lead),
            (first.len, first.lead),
            "a chat message looks unlike the first message"
        );
    }
    assert_eq!(first.len, WIRE_BUCKETS[0]);
    relay.stop().await;
}
