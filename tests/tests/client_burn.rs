//! Burn erases locally first, always: when the contact blocked us, when the contact burned
//! first, and with every relay down (the owed burn is delivered by a later tick once the relay
//! is back). Nothing of the contact stays, not even its name: the attacker holding each home's
//! key file finds no name, text or id, `contacts` does not list it and the name is free at
//! once. A late envelope on the burned queue is dropped and acked; a damaged owed burn is
//! removed, never a panic.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hush_client::conversation::MessageId;
use hush_client::store::{KeySource, LocalStore, Namespace, StoreKey};
use hush_client::{Client, ClientError, ClientEvent, Clock, Delivery, OWED_RETRY_SECS};
use hush_protocol::RecipientId;
use hush_server::store::sled_store::SledStore;
use hush_server::store::{QueueStore, StoreError};
use hush_tests::attacker::{Markers, Seizure};
use hush_tests::clients::{init_clocked, message_from, reopen_clocked, sled_relay_in, until};
use hush_tests::intercept::{Call, Flow, Hooks, Intercept};
use hush_tests::{TestRelay, DEADLINE};

/// What Alice calls Bob.
const BOB: &str = "burn-contact-bob-2f9a61";
/// What Bob calls Alice.
const ALICE: &str = "burn-contact-alice-c47e08";

/// A distinctive message text.
fn secret(tag: &str) -> String {
    hush_tests::attacker::unique_text("burn", tag)
}

/// Alice and Bob, both receiving on `relay`, sharing `clock`; each has written once and read
/// the other. Returns the clients, their homes, and the texts and ids written.
struct Pair {
    alice: Client,
    bob: Client,
    clock: Clock,
    ha: tempfile::TempDir,
    hb: tempfile::TempDir,
    said: Vec<(String, MessageId)>,
}

impl Pair {
    async fn new(relay: hush_protocol::RelayAddress) -> Pair {
        let clock = Clock::system();
        let (ha, hb) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let alice = init_clocked(
            &ha.path().join("home"),
            "alice",
            relay.clone(),
            clock.clone(),
        )
        .await;
        let bob = init_clocked(&hb.path().join("home"), "bob", relay, clock.clone()).await;
        let token = alice.invite(BOB).await.unwrap();
        bob.accept(&token, ALICE).await.unwrap();
        until(&alice, |e| matches!(e, ClientEvent::ContactJoined { .. })).await;
        let (a, b) = (secret("to-bob"), secret("to-alice"));
        let ida = alice.send_text(BOB, &a, None, false).await.unwrap().id;
        message_from(&bob, ALICE).await;
        let idb = bob.send_text(ALICE, &b, None, false).await.unwrap().id;
        message_from(&alice, BOB).await;
        Pair {
            alice,
            bob,
            clock,
            ha,
            hb,
            said: vec![(a, ida), (b, idb)],
        }
    }

    fn alice_home(&self) -> PathBuf {
        self.ha.path().join("home")
    }

    fn bob_home(&self) -> PathBuf {
        self.hb.path().join("home")
    }

    /// Everything said, and the name `contact`.
    fn markers(&self, contact: &str) -> Markers {
        self.said
            .iter()
            .fold(Markers::new().contact(contact), |m, (text, id)| {
                m.text(text).message_id(id.as_bytes())
            })
    }
}

fn seize(home: &Path) -> Seizure {
    let seizure = Seizure::home(home);
    seizure.assert_no_orphan_keys();
    seizure
}

/// A sled relay in `dir`, on `listen` or a fresh port.
fn relay_in(
    dir: &Arc<tempfile::TempDir>,
    listen: Option<std::net::SocketAddr>,
) -> TestRelay<SledStore> {
    sled_relay_in(dir.clone(), listen)
}

/// The owed burns in the (closed) home at `home`.
fn owed_burns(home: &Path) -> usize {
    let store = LocalStore::open(home, KeySource::KeyFile).unwrap();
    store.list(Namespace::OwedBurn, None).unwrap().len()
}

/// Nothing of `name` is left in `client`: not listed, the name is unknown, and says so.
async fn forgotten(client: &Client, name: &str) {
    assert!(client.contacts().await.iter().all(|c| c.name != name));
    let err = client
        .send_text(name, "anyone?", None, false)
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::UnknownContact { .. }), "{err:?}");
    assert!(err.to_string().contains("new invitation"), "{err}");
    assert!(matches!(
        client.burn(name).await,
        Err(ClientError::UnknownContact { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn burn_when_the_contact_blocked_us_erases_everything_here() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let relay = relay_in(&dir, None);
    let p = Pair::new(relay.address()).await;
    let at_alice = p.markers(BOB).seen_in(&seize(&p.alice_home()));

    p.bob.block(ALICE).await.unwrap();
    let report = p.alice.burn(BOB).await.unwrap();
    assert_eq!(report.contact_told, Delivery::Gone, "Bob's queue is gone");
    assert_eq!(report.queue_deleted, Delivery::Done);
    forgotten(&p.alice, BOB).await;
    at_alice.gone_from(&seize(&p.alice_home()));

    // Bob, who blocked, can burn too: his side goes as well.
    let at_bob = p.markers(ALICE).seen_in(&seize(&p.bob_home()));
    let report = p.bob.burn(ALICE).await.unwrap();
    assert_eq!(report.contact_told, Delivery::Gone, "Alice's queue is gone");
    forgotten(&p.bob, ALICE).await;
    at_bob.gone_from(&seize(&p.bob_home()));
    let (alice_home, bob_home) = (p.alice_home(), p.bob_home());
    let Pair {
        alice,
        bob,
        ha: _ha,
        hb: _hb,
        ..
    } = p;
    alice.close().await;
    bob.close().await;
    assert_eq!(owed_burns(&alice_home), 0);
    assert_eq!(owed_burns(&bob_home), 0);
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn burn_when_the_contact_burned_first_and_the_name_is_free_at_once() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let relay = relay_in(&dir, None);
    let p = Pair::new(relay.address()).await;
    let at_alice = p.markers(BOB).seen_in(&seize(&p.alice_home()));
    let at_bob = p.markers(ALICE).seen_in(&seize(&p.bob_home()));

    // Bob burns; Alice has not received his `Burn` when she burns too.
    let report = p.bob.burn(ALICE).await.unwrap();
    assert_eq!(report.contact_told, Delivery::Done);
    assert_eq!(report.queue_deleted, Delivery::Done);
    let report = p.alice.burn(BOB).await.unwrap();
    assert_eq!(report.contact_told, Delivery::Gone, "Bob deleted his queue");
    assert_eq!(report.queue_deleted, Delivery::Done);
    forgotten(&p.alice, BOB).await;
    forgotten(&p.bob, ALICE).await;
    at_alice.gone_from(&seize(&p.alice_home()));
    at_bob.gone_from(&seize(&p.bob_home()));

    // Both names are free at once: a new invitation under the same names works.
    let token = p.alice.invite(BOB).await.unwrap();
    p.bob.accept(&token, ALICE).await.unwrap();
    until(
        &p.alice,
        |e| matches!(e, ClientEvent::ContactJoined { contact } if contact == BOB),
    )
    .await;
    let fresh = secret("fresh");
    p.alice.send_text(BOB, &fresh, None, false).await.unwrap();
    let got = message_from(&p.bob, ALICE).await;
    assert_eq!(got.body.unwrap().as_str(), fresh);
    assert_eq!(p.alice.contacts().await.len(), 1);
    p.alice.close().await;
    p.bob.close().await;
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn burn_with_every_relay_down_erases_here_and_is_delivered_by_a_later_tick() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let relay = relay_in(&dir, None);
    let listen = relay.handle.local_addr();
    let p = Pair::new(relay.address()).await;
    let at_alice = p.markers(BOB).seen_in(&seize(&p.alice_home()));
    let at_bob = p.markers(ALICE).seen_in(&seize(&p.bob_home()));
    let (alice_home, bob_home) = (p.alice_home(), p.bob_home());
    relay.stop().await;

    let report = p.alice.burn(BOB).await.unwrap();
    assert_eq!(report.contact_told, Delivery::Owed);
    assert_eq!(report.queue_deleted, Delivery::Owed);
    forgotten(&p.alice, BOB).await;
    at_alice.gone_from(&seize(&alice_home));
    // The owed burn is kept across a restart (and names nobody: the seizure found no name).
    let Pair {
        alice,
        bob,
        clock,
        ha: _ha,
        hb: _hb,
        ..
    } = p;
    alice.close().await;
    assert_eq!(owed_burns(&alice_home), 1);
    let alice = reopen_clocked(&alice_home, clock.clone()).await;
    assert!(alice.contacts().await.is_empty());

    // The relay comes back; a later tick delivers the burn.
    let relay = relay_in(&dir, Some(listen));
    let end = std::time::Instant::now() + DEADLINE;
    let mut alice = alice;
    loop {
        clock.advance(Duration::from_secs(OWED_RETRY_SECS + 1));
        alice.tick().await.unwrap();
        alice.close().await;
        if owed_burns(&alice_home) == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < end,
            "the owed burn was never delivered"
        );
        alice = reopen_clocked(&alice_home, clock.clone()).await;
    }
    // Bob's conversation is burned by the delivered `Burn`, and his side is gone too.
    let events = until(&bob, |e| matches!(e, ClientEvent::Burned { .. })).await;
    assert!(events.contains(&ClientEvent::Burned {
        contact: ALICE.into(),
        by_contact: true
    }));
    forgotten(&bob, ALICE).await;
    bob.close().await;
    at_bob.gone_from(&seize(&bob_home));
    assert_eq!(
        owed_burns(&bob_home),
        0,
        "Bob's queue deletion was delivered"
    );
    relay.stop().await;
}

/// How many envelopes wait in queue `rid` of `relay`.
async fn pending(relay: &TestRelay<Intercept<SledStore, KeepQueues>>, rid: RecipientId) -> usize {
    relay.handle.store().pending_count(rid).await
}

/// Fails every deletion of a queue, and remembers which queues it refused to delete.
#[derive(Default)]
struct KeepQueues {
    kept: Mutex<Vec<RecipientId>>,
}

impl<S: QueueStore> Hooks<S> for KeepQueues {
    fn before(&self, _: &S, call: &Call) -> impl std::future::Future<Output = Flow> + Send {
        let flow = match call {
            Call::DeleteQueue(rid) => {
                self.kept.lock().unwrap().push(*rid);
                Flow::Fail(StoreError::transient("kept for the test"))
            }
            _ => Flow::Go,
        };
        std::future::ready(flow)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_message_on_the_burned_queue_is_dropped_and_acked() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let store = SledStore::open(&dir.path().join("queues")).unwrap();
    let relay = TestRelay::wall_clock_on(Intercept::new(store, KeepQueues::default()), dir, |_| {});
    let p = Pair::new(relay.address()).await;

    // Alice burns; the relay refuses to delete her queue, so it is still there.
    let report = p.alice.burn(BOB).await.unwrap();
    assert_eq!(report.queue_deleted, Delivery::Owed);
    let kept = relay.handle.store().hooks().kept.lock().unwrap().clone();
    let [old_queue] = kept[..] else {
        panic!("one queue deletion expected, got {kept:?}");
    };
    // Bob, who has not read Alice's `Burn` yet, writes to it.
    let late = secret("late");
    p.bob.send_text(ALICE, &late, None, false).await.unwrap();
    assert_eq!(
        pending(&relay, old_queue).await,
        1,
        "the late envelope reached the burned queue"
    );
    let end = std::time::Instant::now() + DEADLINE;
    while pending(&relay, old_queue).await > 0 {
        let events = p
            .alice
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
            std::time::Instant::now() < end,
            "the late envelope was never acked"
        );
    }
    forgotten(&p.alice, BOB).await;
    let at_alice = Markers::new().text(&late);
    // Never decrypted, never stored: the text was never on Alice's disk at all.
    assert!(at_alice.search(&seize(&p.alice_home())).is_empty());
    p.alice.close().await;
    p.bob.close().await;
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_owed_burn_is_removed_on_open_never_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let relay: hush_protocol::RelayAddress = format!("hush://127.0.0.1:9#{}", "ab".repeat(32))
        .parse()
        .unwrap();
    init_clocked(&home, "alice", relay, Clock::system())
        .await
        .close()
        .await;
    let store = LocalStore::open(&home, KeySource::KeyFile).unwrap();
    for (i, junk) in [&b""[..], b"\x01", b"\x09garbage", &[1u8; 40]]
        .iter()
        .enumerate()
    {
        store.put(&StoreKey::OwedBurn([i as u8; 16]), junk).unwrap();
    }
    drop(store);
    assert_eq!(owed_burns(&home), 4);
    let client = reopen_clocked(&home, Clock::system()).await;
    client.tick().await.unwrap();
    client.close().await;
    assert_eq!(owed_burns(&home), 0);
    seize(&home);
}
