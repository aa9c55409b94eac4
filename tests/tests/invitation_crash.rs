//! Completing an invitation is one atomic write. When the inviter processes the joiner's first
//! message, it stores the new contact and deletes the used invitation secrets. If a crash left
//! both (as two separate writes could), the next first message on that queue (a relay can
//! replay the real one) would answer the invitation again and restart the conversation.
//!
//! The store-level crash injection (a batch cut short at each step reopens as all or nothing)
//! is in `hush_client`'s store tests. Here the state a crash between two separate writes would
//! leave is rebuilt by hand: after a real join, the invitation record saved before it is put
//! back. Then a hostile relay replays the first message. The stale invitation must be
//! finished off on open, and the replay must change nothing: history kept, session intact.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use hush_client::store::{KeySource, LocalStore, Namespace};
use hush_client::ClientEvent;
use hush_protocol::{RecipientId, SenderId};
use hush_server::store::memory::MemoryStore;
use hush_tests::clients::*;
use hush_tests::intercept::{Call, Flow, Hooks, Intercept};

/// Records every envelope sent, with the queue it went to.
#[derive(Default)]
struct Recorder {
    senders: Mutex<HashMap<SenderId, RecipientId>>,
    sent: Mutex<Vec<(RecipientId, Vec<u8>)>>,
}

impl Hooks<MemoryStore> for Recorder {
    async fn before(&self, _: &MemoryStore, call: &Call) -> Flow {
        if let Call::Send {
            sender, envelope, ..
        } = call
        {
            if let Some(rid) = self.senders.lock().unwrap().get(sender).copied() {
                self.sent.lock().unwrap().push((rid, envelope.body.clone()));
            }
        }
        Flow::Go
    }

    async fn after(&self, _: &MemoryStore, call: &Call, ok: bool) {
        if let (Call::CreateQueue(queue), true) = (call, ok) {
            let mut senders = self.senders.lock().unwrap();
            senders.insert(queue.sender_id, queue.recipient_id);
        }
    }
}

/// The records of one namespace in the (closed) home at `home`, as raw (key, value) pairs.
fn records(home: &Path, ns: Namespace) -> Vec<(hush_client::store::StoreKey, Vec<u8>)> {
    let store = LocalStore::open(home, KeySource::KeyFile).unwrap();
    store
        .list(ns, None)
        .unwrap()
        .into_iter()
        .map(|(k, v)| (k, v.to_vec()))
        .collect()
}

async fn texts_from(client: &hush_client::Client, contact: &str) -> Vec<String> {
    let mut texts: Vec<String> = client
        .history(contact)
        .await
        .unwrap()
        .into_iter()
        .filter(|m| !m.outgoing)
        .map(|m| m.body.unwrap().as_str().to_owned())
        .collect();
    texts.sort();
    texts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_first_message_after_a_torn_invitation_completion_restarts_nothing() {
    let store = Intercept::new(MemoryStore::new(), Recorder::default());
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let relay = hush_tests::TestRelay::wall_clock_on(store.clone(), dir, |_| {});
    let (ha, hb) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (home_a, home_b) = (ha.path().join("home"), hb.path().join("home"));

    let alice = init(&home_a, "alice", relay.address()).await;
    let bob = init(&home_b, "bob", relay.address()).await;
    let token = alice.invite("bob").await.unwrap();
    alice.close().await;
    // The invitation's record as it was before the join.
    let saved = records(&home_a, Namespace::Invitation);
    assert_eq!(saved.len(), 1);

    let alice = reopen(&home_a).await;
    bob.accept(&token, "alice").await.unwrap();
    until(
        &alice,
        |e| matches!(e, ClientEvent::ContactJoined { contact } if contact == "bob"),
    )
    .await;
    let first = store.hooks().sent.lock().unwrap().clone();
    assert_eq!(first.len(), 1, "the joiner's first message");
    let (queue, handshake) = first[0].clone();
    bob.send_text("alice", "one", None, false).await.unwrap();
    message_from(&alice, "bob").await;
    alice.send_text("bob", "hi", None, false).await.unwrap();
    message_from(&bob, "alice").await;
    alice.close().await;
    assert!(records(&home_a, Namespace::Invitation).is_empty());

    // What a crash between two separate writes would have left: the contact and the
    // invitation that it completed, both on disk.
    {
        let st = LocalStore::open(&home_a, KeySource::KeyFile).unwrap();
        st.put(&saved[0].0, &saved[0].1).unwrap();
    }
    let contacts_before = records(&home_a, Namespace::Contact);

    let alice = reopen(&home_a).await;
    assert!(
        alice.pending_invitations().await.is_empty(),
        "an invitation its contact already completed is finished off on open"
    );
    // A hostile relay replays the first message on the same queue.
    store.inject(queue, handshake).await;
    let mut events = alice.receive(None, None).await.unwrap();
    bob.send_text("alice", "two", None, false).await.unwrap();
    events.extend(until(&alice, |e| matches!(e, ClientEvent::Message { .. })).await);
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, ClientEvent::ContactJoined { .. })),
        "the replay joined again: {events:?}"
    );
    assert_eq!(texts_from(&alice, "bob").await, ["one", "two"]);
    alice
        .send_text("bob", "still here", None, false)
        .await
        .unwrap();
    message_from(&bob, "alice").await;
    alice.close().await;
    assert!(records(&home_a, Namespace::Invitation).is_empty());
    let contacts_after = records(&home_a, Namespace::Contact);
    assert_eq!(contacts_after.len(), 1);
    assert_eq!(
        contacts_after[0].0, contacts_before[0].0,
        "same contact record"
    );
    bob.close().await;
}
