//! What a relay's data directory keeps of a conversation, read by an attacker who holds the
//! directory and its `device.key` (`hush_tests::attacker`): while the conversation is live,
//! every queue id, sender id and envelope id the clients used is readable, but only by opening
//! a live record with its vault key, never as raw bytes of a file; once both sides have burned
//! the conversation, none of them is found anywhere, raw or in hex, in any file, any name, or
//! any record a remaining key opens (sled's log included, read as raw bytes).
//!
//! How the search proves it can see: the relay's store is wrapped (`intercept`) so that the
//! test learns each id as the clients' requests bring it, and seizes the data directory right
//! before every ack and queue deletion, while the envelope or queue in question is still
//! stored. Every id must be found in those live seizures ([`Markers::seen_in`] panics
//! otherwise), and each hit there must be the plaintext of a live record (the store seals
//! everything under per-record keys and keys its records by vault slot alone). Only then is the
//! directory searched after the burn. The store keeps no keyed hash of any id, so there is no
//! other form to search for.

use std::future::{ready, Future};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hush_client::ClientEvent;
use hush_protocol::{EnvelopeId, RecipientId, SenderId};
use hush_server::store::sled_store::SledStore;
use hush_server::store::QueueStore;
use hush_tests::attacker::{unique_text, Markers, Place, Seizure};
use hush_tests::clients::{message_from, pair, until};
use hush_tests::intercept::{Call, Flow, Hooks, Intercept};
use hush_tests::{TestRelay, DEADLINE};

/// The ids the relay was given, and seizures of its data directory taken while they were live.
#[derive(Default)]
struct Log {
    queues: Vec<RecipientId>,
    senders: Vec<SenderId>,
    envelopes: Vec<EnvelopeId>,
    live: Vec<Seizure>,
}

/// Learns every id the clients' requests carry, and seizes the data directory before each
/// ack and queue deletion.
struct Watcher {
    dir: PathBuf,
    log: Mutex<Log>,
}

impl Hooks<SledStore> for Watcher {
    fn before(&self, _: &SledStore, call: &Call) -> impl Future<Output = Flow> + Send {
        if matches!(call, Call::Ack(..) | Call::DeleteQueue(_)) {
            let seized = tokio::task::block_in_place(|| Seizure::relay(&self.dir));
            self.log.lock().unwrap().live.push(seized);
        }
        ready(Flow::Go)
    }

    fn after(&self, _: &SledStore, call: &Call, ok: bool) -> impl Future<Output = ()> + Send {
        let mut log = self.log.lock().unwrap();
        match call {
            Call::CreateQueue(q) if ok => {
                log.queues.push(q.recipient_id);
                log.senders.push(q.sender_id);
            }
            Call::Send {
                sender, envelope, ..
            } if ok => {
                assert!(
                    log.senders.contains(sender),
                    "a send to a queue never created"
                );
                log.envelopes.push(envelope.id);
            }
            _ => {}
        }
        ready(())
    }
}

type Relay = TestRelay<Intercept<SledStore, Watcher>>;

/// A relay on a sled store in its own data directory (as `hush-server` lays it out), reading
/// the wall clock as the clients do.
fn relay() -> Relay {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let store = SledStore::open(dir.path()).unwrap();
    let watcher = Watcher {
        dir: dir.path().to_path_buf(),
        log: Mutex::default(),
    };
    TestRelay::wall_clock_on(Intercept::new(store, watcher), dir, |_| {})
}

fn log(relay: &Relay) -> std::sync::MutexGuard<'_, Log> {
    relay.handle.store().hooks().log.lock().unwrap()
}

/// Polls until the relay's store holds none of `queues`, failing at the deadline.
async fn all_deleted(relay: &Relay, queues: &[RecipientId]) {
    let store = relay.handle.store().store();
    let end = tokio::time::Instant::now() + DEADLINE;
    loop {
        let mut left = 0;
        for q in queues {
            left += usize::from(store.queue(*q).await.unwrap().is_some());
        }
        if left == 0 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < end,
            "{left} queue(s) never deleted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burned_conversation_leaves_no_id_in_the_relays_data_directory() {
    let relay = relay();
    let (alice, bob, _ha, _hb) = pair(relay.address(), relay.address()).await;
    for n in 0..3 {
        let text = unique_text("relay-meta", &format!("to-bob-{n}"));
        alice.send_text("bob", &text, None, false).await.unwrap();
        assert_eq!(
            message_from(&bob, "alice").await.body.unwrap().as_str(),
            text
        );
        let text = unique_text("relay-meta", &format!("to-alice-{n}"));
        bob.send_text("alice", &text, None, false).await.unwrap();
        assert_eq!(
            message_from(&alice, "bob").await.body.unwrap().as_str(),
            text
        );
    }

    // Both sides burn: Alice burns, and Bob's side goes when her `Burn` reaches him.
    alice.burn("bob").await.unwrap();
    until(&bob, |e| matches!(e, ClientEvent::Burned { .. })).await;
    let queues = log(&relay).queues.clone();
    assert_eq!(queues.len(), 2, "one queue each way");
    all_deleted(&relay, &queues).await;

    let (markers, live) = {
        let mut log = log(&relay);
        assert!(
            log.envelopes.len() >= 6,
            "{} envelopes",
            log.envelopes.len()
        );
        let markers = log
            .queues
            .iter()
            .fold(Markers::new(), |m, q| m.id("queue", q.as_bytes()));
        let markers = log
            .senders
            .iter()
            .fold(markers, |m, s| m.id("sender", s.as_bytes()));
        let markers = log
            .envelopes
            .iter()
            .fold(markers, |m, e| m.id("envelope", e.as_bytes()));
        let mut live = std::mem::take(&mut log.live).into_iter();
        let first = live.next().expect("no ack or deletion reached the relay");
        (markers, live.fold(first, Seizure::and))
    };
    // Live: every id is readable with the device key, and only by opening a live record.
    let seen = markers.seen_in(&live);
    let raw: Vec<String> = seen
        .found_before()
        .iter()
        .filter(|f| !matches!(f.place, Place::Record { .. }))
        .map(ToString::to_string)
        .collect();
    assert!(
        raw.is_empty(),
        "ids stored outside sealed records:\n  {}",
        raw.join("\n  ")
    );

    // Burned: none is left, in any form.
    let after = Seizure::relay(relay.data_dir());
    after.assert_no_orphan_keys();
    seen.gone_from(&after);
    alice.close().await;
    bob.close().await;
    relay.stop().await;
}
