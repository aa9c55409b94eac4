//! A malicious relay against real clients: the relay runs on a `QueueStore` that the test
//! controls, which captures what senders send and delivers whatever the test decides instead:
//! tampered bytes, replays of envelopes already delivered and acked, reordered, dropped and
//! late envelopes, and envelopes moved to another queue (another contact's, another user's, or
//! another pending invitation's).
//!
//! Every test checks the same three things: no forged, duplicated or misattributed message is
//! ever shown (each receiver's events and history hold exactly the messages really sent to it,
//! once, under the right contact); tampering is reported as `ClientEvent::Tampered`; and the
//! session keeps working afterwards, both ways.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use hush_client::{Client, ClientEvent};
use hush_protocol::{RecipientId, SenderId};
use hush_server::store::memory::MemoryStore;
use hush_server::store::QueueStore;
use hush_tests::clients::*;
use hush_tests::intercept::{Call, Flow, Hooks, Intercept};

/// What the relay has done behind the clients' backs.
#[derive(Default)]
struct Script {
    /// Which queue each sender id names (learned when queues are created).
    senders: HashMap<SenderId, RecipientId>,
    /// While set, sends are answered but not queued: they go to `captured` instead.
    capture: bool,
    /// Captured envelopes, in send order, with the queue they were meant for.
    captured: Vec<(RecipientId, Vec<u8>)>,
}

/// A hostile operator: learns which queue each sender id names, and while capturing, answers
/// sends as an honest relay would but keeps the envelopes.
#[derive(Default)]
struct Operator {
    script: Mutex<Script>,
}

impl Hooks<MemoryStore> for Operator {
    async fn before(&self, store: &MemoryStore, call: &Call) -> Flow {
        let Call::Send {
            sender,
            envelope,
            new_cap_hash,
        } = call
        else {
            return Flow::Go;
        };
        let captured = {
            let s = self.script.lock().unwrap();
            s.senders.get(sender).copied().filter(|_| s.capture)
        };
        let Some(rid) = captured else {
            return Flow::Go;
        };
        // Answer the sender as an honest relay would, but keep the envelope.
        if let Some(new) = new_cap_hash {
            if let Err(e) = store.set_send_cap(rid, *new).await {
                return Flow::Fail(e);
            }
        }
        self.script
            .lock()
            .unwrap()
            .captured
            .push((rid, envelope.body.clone()));
        Flow::Accept(rid)
    }

    async fn after(&self, _: &MemoryStore, call: &Call, ok: bool) {
        if let (Call::CreateQueue(queue), true) = (call, ok) {
            let mut s = self.script.lock().unwrap();
            s.senders.insert(queue.sender_id, queue.recipient_id);
        }
    }
}

/// A [`MemoryStore`] run by a hostile operator.
type EvilStore = Intercept<MemoryStore, Operator>;

/// What the test has the operator do.
trait Evil {
    /// Starts or stops capturing sends.
    fn capture(&self, on: bool);
    /// Everything captured since the last call, in send order.
    fn take(&self) -> Vec<(RecipientId, Vec<u8>)>;
    /// The one envelope captured since the last call.
    fn take_one(&self) -> (RecipientId, Vec<u8>);
}

impl Evil for EvilStore {
    fn capture(&self, on: bool) {
        self.hooks().script.lock().unwrap().capture = on;
    }

    fn take(&self) -> Vec<(RecipientId, Vec<u8>)> {
        std::mem::take(&mut self.hooks().script.lock().unwrap().captured)
    }

    fn take_one(&self) -> (RecipientId, Vec<u8>) {
        let mut all = self.take();
        assert_eq!(all.len(), 1, "expected one captured envelope");
        all.remove(0)
    }
}

/// A relay on the hostile store.
fn evil_relay() -> (TestRelay<EvilStore>, EvilStore) {
    let store = Intercept::new(MemoryStore::new(), Operator::default());
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let relay = TestRelay::wall_clock_on(store.clone(), dir, |_| {});
    (relay, store)
}

/// A client and everything it has shown so far.
struct User {
    client: Client,
    seen: Vec<ClientEvent>,
    _home: tempfile::TempDir,
}

impl User {
    async fn new(name: &str, relay: &TestRelay<EvilStore>) -> User {
        let home = tempfile::tempdir().unwrap();
        let client = init(&home.path().join("home"), name, relay.address()).await;
        User {
            client,
            seen: Vec::new(),
            _home: home,
        }
    }

    /// Receives until an event matches; returns the events of this wait.
    async fn until(&mut self, want: impl Fn(&ClientEvent) -> bool) -> Vec<ClientEvent> {
        let events = until(&self.client, want).await;
        self.seen.extend(events.clone());
        events
    }

    /// Receives until the message `text` from `contact` is shown.
    async fn message(&mut self, contact: &str, text: &str) -> Vec<ClientEvent> {
        self.until(|e| is_message(e, contact, text)).await
    }

    /// Receives until a `Tampered` event about `contact` (`None`: a pending invitation).
    async fn tampered(&mut self, contact: Option<&str>) -> Vec<ClientEvent> {
        self.until(|e| matches!(e, ClientEvent::Tampered { contact: c } if c.as_deref() == contact))
            .await
    }

    async fn send(&self, to: &str, text: &str) {
        self.client.send_text(to, text, None, false).await.unwrap();
    }

    /// Every message shown so far, as (contact, text), in order.
    fn shown(&self) -> Vec<(String, String)> {
        shown(&self.seen)
    }

    /// Checks that exactly `expected` were shown, each once, under the right contact, and
    /// that the history of each contact holds exactly those received messages.
    async fn assert_shown_exactly(&self, expected: &[(&str, &str)]) {
        let mut got = self.shown();
        let mut want: Vec<(String, String)> = expected
            .iter()
            .map(|(c, t)| ((*c).to_owned(), (*t).to_owned()))
            .collect();
        got.sort();
        want.sort();
        assert_eq!(got, want, "messages shown to {}", self.client.name());
        let mut contacts: Vec<&str> = expected.iter().map(|(c, _)| *c).collect();
        contacts.sort_unstable();
        contacts.dedup();
        for contact in contacts {
            let mut stored: Vec<String> = self
                .client
                .history(contact)
                .await
                .unwrap()
                .into_iter()
                .filter(|m| !m.outgoing)
                .map(|m| m.body.unwrap().as_str().to_owned())
                .collect();
            let mut want: Vec<String> = expected
                .iter()
                .filter(|(c, _)| *c == contact)
                .map(|(_, t)| (*t).to_owned())
                .collect();
            stored.sort();
            want.sort();
            assert_eq!(
                stored,
                want,
                "{}'s history of {contact}",
                self.client.name()
            );
        }
    }
}

fn is_message(e: &ClientEvent, contact: &str, text: &str) -> bool {
    matches!(e, ClientEvent::Message { contact: c, message }
        if c == contact && message.body.as_ref().is_some_and(|b| b.as_str() == text))
}

fn shown(events: &[ClientEvent]) -> Vec<(String, String)> {
    events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::Message { contact, message } => {
                Some((contact.clone(), message.body.as_ref()?.as_str().to_owned()))
            }
            _ => None,
        })
        .collect()
}

fn borrowed(pairs: &[(String, String)]) -> Vec<(&str, &str)> {
    pairs
        .iter()
        .map(|(c, t)| (c.as_str(), t.as_str()))
        .collect()
}

fn tampered_count(events: &[ClientEvent]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, ClientEvent::Tampered { .. }))
        .count()
}

/// `inviter` invites, `joiner` accepts; they call each other `joiner_name` and `inviter_name`.
async fn connect(inviter: &mut User, joiner_name: &str, joiner: &User, inviter_name: &str) {
    let token = inviter.client.invite(joiner_name).await.unwrap();
    joiner.client.accept(&token, inviter_name).await.unwrap();
    inviter
        .until(|e| matches!(e, ClientEvent::ContactJoined { contact } if contact == joiner_name))
        .await;
}

/// Flips one bit of a copy of `body`.
fn flip(body: &[u8], at: usize) -> Vec<u8> {
    let mut bad = body.to_vec();
    bad[at] ^= 0x04;
    bad
}

/// Offsets in a ratchet message: the clear version byte, the encrypted header (nonce,
/// ciphertext, tag) and the body (ciphertext of the text and of the padding, tag).
fn ratchet_offsets(len: usize) -> Vec<(&'static str, usize)> {
    vec![
        ("version", 0),
        ("header nonce, first byte", 1),
        ("header nonce", 1 + 5),
        ("header ciphertext", 1 + 24 + 10),
        ("header tag", 1 + 24 + 40 + 3),
        ("body ciphertext", 1 + 80 + 7),
        ("body ciphertext of the padding", len - 16 - 9),
        ("body tag", len - 1),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_envelopes_are_reported_and_the_session_goes_on() {
    let (relay, evil) = evil_relay();
    let mut alice = User::new("alice", &relay).await;
    let mut bob = User::new("bob", &relay).await;
    connect(&mut alice, "bob", &bob, "alice").await;
    let mut expected_bob: Vec<(String, String)> = Vec::new();
    let mut expected_alice: Vec<(String, String)> = Vec::new();

    // Both directions: Alice's first chain, then Bob's (after a DH step).
    for round in 0..2 {
        let (sender, receiver, contact, expected) = if round == 0 {
            (&alice, &mut bob, "alice", &mut expected_bob)
        } else {
            (&bob, &mut alice, "bob", &mut expected_alice)
        };
        let to = if round == 0 { "bob" } else { "alice" };
        evil.capture(true);
        let texts: Vec<String> = (0..8).map(|i| format!("round {round} real {i}")).collect();
        let mut captured = Vec::new();
        for text in &texts {
            sender.send(to, text).await;
            captured.push(evil.take_one());
        }
        evil.capture(false);
        for ((rid, body), text) in captured.iter().zip(&texts) {
            let (part, at) = ratchet_offsets(body.len())[expected.len() % 8];
            // The tampered copy comes first: reported, and nothing of it is shown.
            evil.inject(*rid, flip(body, at)).await;
            let events = receiver.tampered(Some(contact)).await;
            assert!(shown(&events).is_empty(), "{part}: {events:?}");
            // The session is unchanged: the real envelope still decrypts, once.
            evil.inject(*rid, body.clone()).await;
            let events = receiver.message(contact, text).await;
            assert_eq!(tampered_count(&events), 0, "{part}: {events:?}");
            expected.push((contact.into(), text.clone()));
        }
        // A reply in the clear direction, so the next round starts a new chain.
        let reply = format!("reply {round}");
        receiver.send(contact, &reply).await;
        let (back, from) = if round == 0 {
            (&mut alice, "bob")
        } else {
            (&mut bob, "alice")
        };
        back.message(from, &reply).await;
        if round == 0 {
            expected_alice.push(("bob".into(), reply));
        } else {
            expected_bob.push(("alice".into(), reply));
        }
    }
    // Whole-body damage: truncated, extended, empty.
    evil.capture(true);
    alice.send("bob", "cut").await;
    let (rid, body) = evil.take_one();
    evil.capture(false);
    for bad in [
        body[..body.len() - 1].to_vec(),
        [body.as_slice(), &[0]].concat(),
        Vec::new(),
    ] {
        evil.inject(rid, bad).await;
        bob.tampered(Some("alice")).await;
    }
    evil.inject(rid, body).await;
    bob.message("alice", "cut").await;
    expected_bob.push(("alice".into(), "cut".into()));

    alice.send("bob", "still fine").await;
    bob.message("alice", "still fine").await;
    bob.send("alice", "fine here too").await;
    alice.message("bob", "fine here too").await;
    expected_bob.push(("alice".into(), "still fine".into()));
    expected_alice.push(("bob".into(), "fine here too".into()));
    bob.assert_shown_exactly(&borrowed(&expected_bob)).await;
    alice.assert_shown_exactly(&borrowed(&expected_alice)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_reordered_dropped_and_late_envelopes_show_each_message_once() {
    let (relay, evil) = evil_relay();
    let mut alice = User::new("alice", &relay).await;
    let mut bob = User::new("bob", &relay).await;
    connect(&mut alice, "bob", &bob, "alice").await;

    evil.capture(true);
    let texts: Vec<String> = (0..6).map(|i| format!("m{i}")).collect();
    let mut c = Vec::new();
    for t in &texts {
        alice.send("bob", t).await;
        c.push(evil.take_one());
    }
    evil.capture(false);
    let rid = c[0].0;
    // Reordered: 3, 0, 5, 4; 1 and 2 are held back (dropped, for now).
    for i in [3, 0, 5, 4] {
        evil.inject(rid, c[i].1.clone()).await;
        bob.message("alice", &texts[i]).await;
    }
    // Replays of envelopes that were delivered and acked, then a fence: a real message.
    for i in [3, 0, 5, 4, 3] {
        evil.inject(rid, c[i].1.clone()).await;
    }
    evil.capture(true);
    alice.send("bob", "fence 1").await;
    let fence = evil.take_one();
    evil.capture(false);
    evil.inject(rid, fence.1.clone()).await;
    let events = bob.message("alice", "fence 1").await;
    assert_eq!(shown(&events), vec![("alice".into(), "fence 1".into())]);

    // A DH step both ways, then the held-back envelopes arrive late, twice each.
    bob.send("alice", "reply").await;
    alice.message("bob", "reply").await;
    alice.send("bob", "new chain").await;
    bob.message("alice", "new chain").await;
    for i in [2, 1, 2, 1] {
        evil.inject(rid, c[i].1.clone()).await;
    }
    evil.inject(rid, fence.1).await;
    alice.send("bob", "fence 2").await;
    let events = bob.message("alice", "fence 2").await;
    let mut got = shown(&events);
    got.sort();
    assert_eq!(
        got,
        vec![
            ("alice".into(), "fence 2".into()),
            ("alice".into(), "m1".into()),
            ("alice".into(), "m2".into()),
        ],
        "late messages shown once each: {events:?}"
    );

    // After further DH steps, replaying everything old shows nothing.
    bob.send("alice", "reply 2").await;
    alice.message("bob", "reply 2").await;
    alice.send("bob", "third chain").await;
    bob.message("alice", "third chain").await;
    for (_, body) in &c {
        evil.inject(rid, body.clone()).await;
    }
    alice.send("bob", "fence 3").await;
    let events = bob.message("alice", "fence 3").await;
    assert_eq!(shown(&events), vec![("alice".into(), "fence 3".into())]);

    let mut want: Vec<(&str, &str)> = texts.iter().map(|t| ("alice", t.as_str())).collect();
    want.extend([
        ("alice", "fence 1"),
        ("alice", "new chain"),
        ("alice", "fence 2"),
        ("alice", "third chain"),
        ("alice", "fence 3"),
    ]);
    bob.assert_shown_exactly(&want).await;
    alice
        .assert_shown_exactly(&[("bob", "reply"), ("bob", "reply 2")])
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envelopes_moved_between_queues_are_never_misattributed() {
    let (relay, evil) = evil_relay();
    let mut alice = User::new("alice", &relay).await;
    let mut bob = User::new("bob", &relay).await;
    let mut carol = User::new("carol", &relay).await;
    connect(&mut alice, "bob", &bob, "alice").await;
    connect(&mut carol, "bob", &bob, "carol").await;
    connect(&mut alice, "carol", &carol, "alice").await;

    evil.capture(true);
    alice.send("bob", "alice to bob").await;
    let (bob_from_alice, a_to_b) = evil.take_one();
    carol.send("bob", "carol to bob").await;
    let (bob_from_carol, c_to_b) = evil.take_one();
    alice.send("carol", "alice to carol").await;
    let (carol_from_alice, a_to_c) = evil.take_one();
    evil.capture(false);
    assert!(bob_from_alice != bob_from_carol && bob_from_alice != carol_from_alice);

    // Alice's message to Bob on the queue Carol sends Bob, and Carol's on Alice's.
    evil.inject(bob_from_carol, a_to_b.clone()).await;
    let events = bob.tampered(Some("carol")).await;
    assert!(shown(&events).is_empty(), "{events:?}");
    evil.inject(bob_from_alice, c_to_b.clone()).await;
    let events = bob.tampered(Some("alice")).await;
    assert!(shown(&events).is_empty(), "{events:?}");
    // Alice's message to Bob delivered to Carol, on the queue Alice sends Carol.
    evil.inject(carol_from_alice, a_to_b.clone()).await;
    let events = carol.tampered(Some("alice")).await;
    assert!(shown(&events).is_empty(), "{events:?}");
    // Carol's message to Alice's contact Bob, on Carol's own queue from Bob.
    let carol_from_bob = {
        evil.capture(true);
        bob.send("carol", "bob to carol").await;
        let (rid, body) = evil.take_one();
        evil.capture(false);
        evil.inject(rid, c_to_b.clone()).await;
        let events = carol.tampered(Some("bob")).await;
        assert!(shown(&events).is_empty(), "{events:?}");
        evil.inject(rid, body).await;
        carol.message("bob", "bob to carol").await;
        rid
    };

    // The real envelopes, on their real queues, are shown once, from the right contact.
    evil.inject(bob_from_alice, a_to_b).await;
    bob.message("alice", "alice to bob").await;
    evil.inject(bob_from_carol, c_to_b).await;
    bob.message("carol", "carol to bob").await;
    evil.inject(carol_from_alice, a_to_c).await;
    carol.message("alice", "alice to carol").await;
    assert_ne!(carol_from_bob, carol_from_alice);

    // Every session still works, both ways.
    alice.send("bob", "a-b after").await;
    bob.message("alice", "a-b after").await;
    carol.send("alice", "c-a after").await;
    alice.message("carol", "c-a after").await;
    bob.send("alice", "b-a after").await;
    alice.message("bob", "b-a after").await;
    bob.send("carol", "b-c after").await;
    carol.message("bob", "b-c after").await;
    carol.send("bob", "c-b after").await;
    bob.message("carol", "c-b after").await;
    alice.send("carol", "a-c after").await;
    carol.message("alice", "a-c after").await;

    bob.assert_shown_exactly(&[
        ("alice", "alice to bob"),
        ("carol", "carol to bob"),
        ("alice", "a-b after"),
        ("carol", "c-b after"),
    ])
    .await;
    carol
        .assert_shown_exactly(&[
            ("alice", "alice to carol"),
            ("bob", "bob to carol"),
            ("bob", "b-c after"),
            ("alice", "a-c after"),
        ])
        .await;
    alice
        .assert_shown_exactly(&[("carol", "c-a after"), ("bob", "b-a after")])
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_misdirected_first_messages_create_no_contact() {
    let (relay, evil) = evil_relay();
    let mut alice = User::new("alice", &relay).await;
    let mut bob = User::new("bob", &relay).await;
    let mut carol = User::new("carol", &relay).await;
    let for_bob = alice.client.invite("bob").await.unwrap();
    let for_carol = alice.client.invite("carol").await.unwrap();

    // Bob's first message is captured; Carol's invitation queue is learned the same way.
    evil.capture(true);
    bob.client.accept(&for_bob, "alice").await.unwrap();
    let (bob_queue, first) = evil.take_one();
    bob.send("alice", "sent right after accepting").await;
    let (_, early) = evil.take_one();
    evil.capture(false);

    // Tampered anywhere (tag, ephemeral key, KEM ciphertext, sealed identity, ratchet part).
    for at in [0, 1, 2 + 7, 34 + 500, 34 + 1088 + 30, first.len() - 1] {
        evil.inject(bob_queue, flip(&first, at)).await;
        let events = alice.tampered(None).await;
        assert!(
            !events
                .iter()
                .any(|e| matches!(e, ClientEvent::ContactJoined { .. })),
            "byte {at}: {events:?}"
        );
    }
    // Bob's genuine first message, on the queue of the invitation made for Carol.
    let carol_queue = {
        let pending = alice.client.pending_invitations().await;
        assert_eq!(pending.len(), 2);
        evil.capture(true);
        carol.client.accept(&for_carol, "alice").await.unwrap();
        let (rid, carol_first) = evil.take_one();
        evil.capture(false);
        evil.inject(rid, first.clone()).await;
        let events = alice.tampered(None).await;
        assert!(
            !events
                .iter()
                .any(|e| matches!(e, ClientEvent::ContactJoined { .. })),
            "{events:?}"
        );
        assert!(alice.client.contacts().await.is_empty());
        assert_eq!(alice.client.pending_invitations().await.len(), 2);
        (rid, carol_first)
    };

    // The real one, where it belongs: Bob joins as "bob", and nobody else does.
    evil.inject(bob_queue, first.clone()).await;
    let events = alice
        .until(|e| matches!(e, ClientEvent::ContactJoined { .. }))
        .await;
    assert!(events.contains(&ClientEvent::ContactJoined {
        contact: "bob".into()
    }));
    assert_eq!(
        alice.client.safety_number("bob").await.unwrap().digits(),
        bob.client.safety_number("alice").await.unwrap().digits()
    );
    // Replayed on Bob's queue (now the contact's) and again on Carol's: no second contact.
    evil.inject(bob_queue, first.clone()).await;
    evil.inject(carol_queue.0, first).await;
    alice.tampered(None).await;
    evil.inject(bob_queue, early).await;
    alice.message("bob", "sent right after accepting").await;

    evil.inject(carol_queue.0, carol_queue.1).await;
    alice
        .until(|e| matches!(e, ClientEvent::ContactJoined { contact } if contact == "carol"))
        .await;
    assert_eq!(
        alice.client.safety_number("carol").await.unwrap().digits(),
        carol.client.safety_number("alice").await.unwrap().digits()
    );
    let joined: Vec<_> = alice
        .seen
        .iter()
        .filter(|e| matches!(e, ClientEvent::ContactJoined { .. }))
        .collect();
    assert_eq!(joined.len(), 2, "{joined:?}");

    alice.send("bob", "hello bob").await;
    bob.message("alice", "hello bob").await;
    alice.send("carol", "hello carol").await;
    carol.message("alice", "hello carol").await;
    bob.send("alice", "hi from bob").await;
    alice.message("bob", "hi from bob").await;
    carol.send("alice", "hi from carol").await;
    alice.message("carol", "hi from carol").await;
    alice
        .assert_shown_exactly(&[
            ("bob", "sent right after accepting"),
            ("bob", "hi from bob"),
            ("carol", "hi from carol"),
        ])
        .await;
    bob.assert_shown_exactly(&[("alice", "hello bob")]).await;
    carol
        .assert_shown_exactly(&[("alice", "hello carol")])
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_that_drops_more_than_the_skip_cap_is_reported_not_silent() {
    let (relay, evil) = evil_relay();
    let mut alice = User::new("alice", &relay).await;
    let mut bob = User::new("bob", &relay).await;
    connect(&mut alice, "bob", &bob, "alice").await;
    alice.send("bob", "before").await;
    bob.message("alice", "before").await;

    // The relay swallows one more message than the receiver keeps skipped keys for.
    evil.capture(true);
    for i in 0..=1_000 {
        alice.send("bob", &format!("lost {i}")).await;
    }
    assert_eq!(evil.take().len(), 1_001);
    evil.capture(false);
    alice.send("bob", "after").await;

    // Bob is told, instead of waiting for a message that can never be read.
    let events = bob
        .until(|e| matches!(e, ClientEvent::OutOfStep { contact } if contact == "alice"))
        .await;
    assert!(
        !shown(&events).iter().any(|(_, t)| t == "after"),
        "a message past the skip cap cannot be shown"
    );
    assert_eq!(tampered_count(&bob.seen), 0, "this is loss, not tampering");
    bob.assert_shown_exactly(&[("alice", "before")]).await;
}
