//! A removed member cannot read what the group says after its removal, even given the
//! envelopes: the relay (or anyone on the wire) captures the envelope a member sends to another
//! member after the removal and puts it in the removed member's queue from that sender. The
//! removed member's client cannot open it (it was sealed for another pairwise session), shows
//! nothing, and its home never holds the text; the member it was meant for reads it, so the
//! captured envelope did carry the text.

use std::future::{ready, Future};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hush_client::{Client, ClientEvent};
use hush_protocol::{EnvelopeId, RecipientId};
use hush_server::store::memory::MemoryStore;
use hush_tests::attacker::{unique_text, Markers, Seizure};
use hush_tests::clients::{connect, init, message_from, until};
use hush_tests::intercept::{Call, Flow, Hooks, Intercept};
use hush_tests::{TestRelay, DEADLINE};

/// Records every envelope queued (its id and body) and every ack (queue and envelope id).
#[derive(Default)]
struct Capture {
    sent: Mutex<Vec<(EnvelopeId, Vec<u8>)>>,
    acked: Mutex<Vec<(RecipientId, EnvelopeId)>>,
}

impl Hooks<MemoryStore> for Capture {
    fn before(&self, _: &MemoryStore, call: &Call) -> impl Future<Output = Flow> + Send {
        match call {
            Call::Send { envelope, .. } => {
                let copy = (envelope.id, envelope.body.clone());
                self.sent.lock().unwrap().push(copy);
            }
            Call::Ack(rid, id) => self.acked.lock().unwrap().push((*rid, *id)),
            _ => {}
        }
        ready(Flow::Go)
    }
}

type Relay = TestRelay<Intercept<MemoryStore, Capture>>;

fn capture(relay: &Relay) -> &Capture {
    relay.handle.store().hooks()
}

/// Receives until `client` sees a group change whose words contain `what`.
async fn change_seen(client: &Client, what: &str) {
    until(
        client,
        |e| matches!(e, ClientEvent::GroupChanged { what: w, .. } if w.contains(what)),
    )
    .await;
}

/// How many envelopes wait in queue `rid`.
async fn pending(relay: &Relay, rid: RecipientId) -> usize {
    relay.handle.store().pending_count(rid).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_member_cannot_open_a_captured_envelope_sent_after_its_removal() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let relay: Relay = TestRelay::wall_clock_on(
        Intercept::new(MemoryStore::new(), Capture::default()),
        dir,
        |_| {},
    );
    let homes: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let home = |i: usize| homes[i].path().join("home");
    let alice = init(&home(0), "alice", relay.address()).await;
    let bob = init(&home(1), "bob", relay.address()).await;
    let carol = init(&home(2), "carol", relay.address()).await;
    connect(&alice, "bob", &bob, "alice").await;
    connect(&alice, "carol", &carol, "alice").await;
    connect(&bob, "carol", &carol, "bob").await;

    // Carol's queue for Bob's messages: the queue her ack of Bob's next envelope names.
    let marked = capture(&relay).sent.lock().unwrap().len();
    bob.send_text("carol", "hello carol", None, false)
        .await
        .unwrap();
    message_from(&carol, "bob").await;
    let from_bob = capture(&relay).sent.lock().unwrap()[marked].0;
    let end = tokio::time::Instant::now() + DEADLINE;
    let carols_queue = loop {
        let acked = capture(&relay).acked.lock().unwrap().clone();
        if let Some((rid, _)) = acked.into_iter().find(|(_, id)| *id == from_bob) {
            break rid;
        }
        assert!(tokio::time::Instant::now() < end, "Carol never acked");
        carol
            .receive(None, Some(Duration::from_millis(50)))
            .await
            .unwrap();
    };

    alice.create_group("cell", None).await.unwrap();
    alice.add_to_group("cell", &["bob", "carol"]).await.unwrap();
    change_seen(&bob, "added you").await;
    change_seen(&carol, "added you").await;
    alice.remove_from_group("cell", "carol").await.unwrap();
    until(&carol, |e| matches!(e, ClientEvent::GroupRemoved { .. })).await;
    change_seen(&bob, "removed carol").await;

    // Bob writes after the removal: one envelope, to Alice; it is captured.
    let said = unique_text("group-removal", "after");
    let marked = capture(&relay).sent.lock().unwrap().len();
    let sent = bob
        .send_group_text("cell", &said, None, false)
        .await
        .unwrap();
    assert_eq!(sent.reached, ["alice"], "{sent:?}");
    let captured = capture(&relay).sent.lock().unwrap()[marked..].to_vec();
    assert_eq!(captured.len(), 1, "one envelope, to Alice");
    let got = message_from(&alice, "bob").await;
    assert_eq!(got.body.as_ref().map(|b| b.as_str()), Some(said.as_str()));
    let at_alice = Markers::new().text(&said).seen_in(&Seizure::home(&home(0)));

    // The captured envelope, put in Carol's queue from Bob, opens nothing.
    relay
        .handle
        .store()
        .inject(carols_queue, captured[0].1.clone())
        .await;
    assert_eq!(pending(&relay, carols_queue).await, 1);
    let end = tokio::time::Instant::now() + DEADLINE;
    while pending(&relay, carols_queue).await > 0 {
        let events = carol
            .receive(None, Some(Duration::from_millis(200)))
            .await
            .unwrap();
        assert!(
            events
                .iter()
                .all(|e| !matches!(e, ClientEvent::Message { .. })),
            "{events:?}"
        );
        assert!(
            tokio::time::Instant::now() < end,
            "the injected envelope was never dropped"
        );
    }
    let history = carol.history("bob").await.unwrap();
    assert!(history
        .iter()
        .all(|m| m.body.as_ref().map(|b| b.as_str()) != Some(said.as_str())));
    // The search that found the text at Alice's (above) finds nothing at Carol's.
    assert!(!at_alice.found_before().is_empty());
    let at_carol = Markers::new().text(&said).search(&Seizure::home(&home(2)));
    assert!(at_carol.is_empty(), "{at_carol:?}");
    for c in [alice, bob, carol] {
        c.close().await;
    }
    relay.stop().await;
}
