//! Deletion seen by an attacker who holds the key file: after expiry, unsend, view-once and
//! burn, a copy of each home opened with its `device.key` (vault and sled read directly, every
//! record decrypted with every remaining key) holds none of the message's text, id or contact
//! name; after ack, retract, expiry and queue deletion, a copy of the relay's data directory
//! opened with its `device.key` holds none of the envelope's body. Every search first proves
//! it finds its markers before the deletion (see `hush_tests::attacker`).
//!
//! Also the harness's own checks: it finds a planted marker, reports a key without a record,
//! refuses a missing or empty directory, fails when it cannot see or when a marker remains, and
//! never changes what it seizes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hush_client::conversation::MessageId;
use hush_client::net::RetryPolicy;
use hush_client::store::{KdfParams, KeySource, LocalStore, Passphrase, StoreKey};
use hush_client::{Client, ClientEvent, ClientOptions, Clock};
use hush_protocol::Push;
use hush_server::store::memory::MemoryStore;
use hush_server::store::sled_store::SledStore;
use hush_server::{ManualClock, Relay, RelayConfig, RelayHandle};
use hush_tests::attacker::{Markers, Place, Seizure};
use hush_tests::clients::{message_from, until};
use hush_tests::{cap, envelope, key, TestRelay, DEADLINE, START_SECS};
use hush_vault::{DeviceKey, Vault, VaultOptions};
use rand::RngCore;

/// What Alice calls Bob.
const BOB: &str = "contact-bob-5e1f0c7a";
/// What Bob calls Alice.
const ALICE: &str = "contact-alice-93d2b6e4";

/// A distinctive message text.
fn secret(tag: &str) -> String {
    hush_tests::attacker::unique_text("attacker", tag)
}

/// Two clients on one loopback relay, sharing a clock the test moves.
struct Pair {
    alice: Client,
    bob: Client,
    clock: Clock,
    ha: tempfile::TempDir,
    hb: tempfile::TempDir,
    relay: RelayHandle<MemoryStore>,
    _relay_dir: tempfile::TempDir,
}

impl Pair {
    fn alice_home(&self) -> PathBuf {
        self.ha.path().join("home")
    }

    fn bob_home(&self) -> PathBuf {
        self.hb.path().join("home")
    }

    async fn close(self) {
        self.alice.close().await;
        self.bob.close().await;
        self.relay.shutdown().await.expect("relay shutdown");
    }
}

fn options(clock: Clock) -> ClientOptions {
    ClientOptions::with_retry(
        RetryPolicy::new(2, Duration::from_secs(2))
            .with_delays(Duration::from_millis(50), Duration::from_millis(100)),
    )
    .with_clock(clock)
}

/// Alice invites Bob, Bob accepts, and Alice's receive completes it.
async fn pair() -> Pair {
    let relay_dir = tempfile::tempdir().expect("tempdir");
    let relay = Relay::bind(RelayConfig::loopback(relay_dir.path()), MemoryStore::new())
        .expect("bind relay")
        .spawn();
    let clock = Clock::system();
    let (ha, hb) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let init = |home: PathBuf, name: &'static str| {
        let (addr, options) = (relay.address().clone(), options(clock.clone()));
        async move {
            Client::init_with(&home, name, addr, KeySource::KeyFile, options)
                .await
                .expect("init")
        }
    };
    let alice = init(ha.path().join("home"), "alice").await;
    let bob = init(hb.path().join("home"), "bob").await;
    let token = alice.invite(BOB).await.expect("invite");
    bob.accept(&token, ALICE).await.expect("accept");
    until(
        &alice,
        |e| matches!(e, ClientEvent::ContactJoined { contact } if contact == BOB),
    )
    .await;
    Pair {
        alice,
        bob,
        clock,
        ha,
        hb,
        relay,
        _relay_dir: relay_dir,
    }
}

/// Ticks until message `id` of `contact` is gone, failing at the deadline. The clock has been
/// moved past the expiry already, so this polls rather than waits.
async fn expired(client: &Client, contact: &str, id: MessageId) {
    let end = std::time::Instant::now() + DEADLINE;
    loop {
        client.tick().await.expect("tick");
        let history = client.history(contact).await.expect("history");
        if !history.iter().any(|m| m.id == id) {
            return;
        }
        assert!(std::time::Instant::now() < end, "message never expired");
        tokio::task::yield_now().await;
    }
}

/// Seizes `home` and checks its vault holds no key without a record.
fn seize_home(home: &Path) -> Seizure {
    let seizure = Seizure::home(home);
    seizure.assert_no_orphan_keys();
    seizure
}

/// How a delivered message is made to go.
#[derive(Clone, Copy, Debug)]
enum Deletion {
    /// Its 30-second timer runs out (the clock is moved past it).
    Expiry,
    /// Alice unsends it.
    Unsend,
}

/// Alice sends a text, Bob receives and displays it, both homes are searched for
/// `markers(text, id)`, then the message goes by `deletion` and both homes are searched again.
async fn gone_from_both_homes(deletion: Deletion, markers: impl Fn(&str, MessageId) -> Markers) {
    let p = pair().await;
    let text = secret("delivered");
    let timer = Some(Duration::from_secs(30));
    let id = p
        .alice
        .send_text(BOB, &text, timer, false)
        .await
        .unwrap()
        .id;
    message_from(&p.bob, ALICE).await;
    p.bob.display(ALICE, id).await.unwrap();
    let markers = markers(&text, id);
    let at_alice = markers.clone().seen_in(&seize_home(&p.alice_home()));
    let at_bob = markers.seen_in(&seize_home(&p.bob_home()));

    match deletion {
        Deletion::Expiry => {
            p.clock.advance(Duration::from_secs(31));
            expired(&p.alice, BOB, id).await;
            expired(&p.bob, ALICE, id).await;
        }
        Deletion::Unsend => {
            p.alice.unsend(BOB, id).await.unwrap();
            until(
                &p.bob,
                |e| matches!(e, ClientEvent::Unsent { id: i, .. } if *i == id),
            )
            .await;
        }
    }
    at_alice.gone_from(&seize_home(&p.alice_home()));
    at_bob.gone_from(&seize_home(&p.bob_home()));
    p.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_text_is_gone_from_both_homes() {
    gone_from_both_homes(Deletion::Expiry, |text, _| Markers::new().text(text)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_message_id_is_gone_from_both_homes() {
    gone_from_both_homes(Deletion::Expiry, |_, id| {
        Markers::new().message_id(id.as_bytes())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsent_text_is_gone_from_both_homes_after_delivery() {
    gone_from_both_homes(Deletion::Unsend, |text, _| Markers::new().text(text)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsent_message_id_is_gone_from_both_homes_after_delivery() {
    gone_from_both_homes(Deletion::Unsend, |_, id| {
        Markers::new().message_id(id.as_bytes())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn view_once_text_is_gone_from_the_recipients_home_after_display() {
    let p = pair().await;
    let text = secret("view-once");
    let id = p.alice.send_text(BOB, &text, None, true).await.unwrap().id;
    let shown = message_from(&p.bob, ALICE).await;
    assert!(
        shown.body.is_none(),
        "a view-once message arrives without its body"
    );
    let at_bob = Markers::new()
        .text(&text)
        .seen_in(&seize_home(&p.bob_home()));

    let body = p
        .bob
        .display(ALICE, id)
        .await
        .unwrap()
        .body
        .expect("the body, once");
    assert_eq!(body.as_str(), text);
    at_bob.gone_from(&seize_home(&p.bob_home()));
    p.close().await;
}

/// A conversation both sides wrote in, then burned by Bob; returns the pair and what was said.
async fn burned_conversation() -> (Pair, [(String, MessageId); 2]) {
    let p = pair().await;
    let (to_bob, to_alice) = (secret("burn-a"), secret("burn-b"));
    let a = p
        .alice
        .send_text(BOB, &to_bob, None, false)
        .await
        .unwrap()
        .id;
    message_from(&p.bob, ALICE).await;
    let b = p
        .bob
        .send_text(ALICE, &to_alice, None, false)
        .await
        .unwrap()
        .id;
    message_from(&p.alice, BOB).await;
    (p, [(to_bob, a), (to_alice, b)])
}

async fn burn(p: &Pair) {
    p.bob.burn(ALICE).await.unwrap();
    until(&p.alice, |e| matches!(e, ClientEvent::Burned { .. })).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn burned_messages_are_gone_from_both_homes() {
    let (p, said) = burned_conversation().await;
    let markers = said.iter().fold(Markers::new(), |m, (text, id)| {
        m.text(text).message_id(id.as_bytes())
    });
    let at_alice = markers.clone().seen_in(&seize_home(&p.alice_home()));
    let at_bob = markers.seen_in(&seize_home(&p.bob_home()));

    burn(&p).await;
    at_alice.gone_from(&seize_home(&p.alice_home()));
    at_bob.gone_from(&seize_home(&p.bob_home()));
    p.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn burned_contact_names_are_gone_from_both_homes() {
    let (p, _) = burned_conversation().await;
    let at_alice = Markers::new()
        .contact(BOB)
        .seen_in(&seize_home(&p.alice_home()));
    let at_bob = Markers::new()
        .contact(ALICE)
        .seen_in(&seize_home(&p.bob_home()));

    burn(&p).await;
    at_alice.gone_from(&seize_home(&p.alice_home()));
    at_bob.gone_from(&seize_home(&p.bob_home()));
    p.close().await;
}

// The relay: an envelope's body is readable from its data directory while it is pending, and
// from nothing there once it is acked, retracted, expired or its queue deleted.

/// A relay on a sled store in its own data directory (as `hush-server` lays it out), with a
/// manual clock.
fn sled_relay() -> TestRelay<SledStore> {
    let dir = Arc::new(tempfile::tempdir().expect("tempdir"));
    let store = SledStore::open(dir.path()).expect("open sled store");
    TestRelay::start_on(store, dir, ManualClock::at_secs(START_SECS), |_| {})
}

/// A distinctive envelope body.
fn body() -> Vec<u8> {
    let mut b = vec![0u8; 300];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b
}

/// How a pending envelope is made to go.
#[derive(Clone, Copy, Debug)]
enum Removal {
    Ack,
    Retract,
    Expiry,
    QueueDeletion,
}

async fn relay_forgets_after(removal: Removal) {
    let relay = sled_relay();
    let client = relay.client().await;
    let (k, c) = (key(), cap());
    let (rid, sid) = client.create_queue(&k, &c).await.unwrap();
    // Another queue's envelope stays: the relay's store is not simply empty afterwards.
    let (_, other_sid) = client.create_queue(&k, &c).await.unwrap();
    client
        .send(other_sid, &c, 3600, None, body())
        .await
        .unwrap();
    let sent = body();
    let id = client.send(sid, &c, 60, None, sent.clone()).await.unwrap();
    client.subscribe(&k, rid).await.unwrap();
    let (pushed_id, pushed) = envelope(&client).await;
    assert_eq!((pushed_id, &pushed), (id, &sent));

    let before = Seizure::relay(relay.data_dir());
    before.assert_no_orphan_keys();
    let seen = Markers::new()
        .bytes("the envelope's body", &pushed)
        .seen_in(&before);
    assert!(
        seen.found_before()
            .iter()
            .all(|f| matches!(f.place, Place::Record { .. })),
        "the body is sealed at rest: only its plaintext may hold it, not {:?}",
        seen.found_before()
    );

    match removal {
        Removal::Ack => client.ack(rid, id).await.unwrap(),
        Removal::Retract => assert!(client.retract(sid, &c, id).await.unwrap()),
        Removal::Expiry => {
            relay.clock().advance(Duration::from_secs(61));
            let stats = relay.handle.sweep_now().await.unwrap();
            assert_eq!(stats.expired_envelopes, 1);
        }
        Removal::QueueDeletion => {
            client.delete_queue(&k, rid).await.unwrap();
            // The subscription learns the queue is gone.
            assert_eq!(
                hush_tests::push(&client).await,
                Push::QueueGone { recipient_id: rid }
            );
        }
    }
    let after = Seizure::relay(relay.data_dir());
    after.assert_no_orphan_keys();
    assert!(after.live_records() > 0, "the other queue is still there");
    seen.gone_from(&after);
    drop(client);
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_forgets_an_acked_envelope() {
    relay_forgets_after(Removal::Ack).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_forgets_a_retracted_envelope() {
    relay_forgets_after(Removal::Retract).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_forgets_an_expired_envelope_after_the_sweep() {
    relay_forgets_after(Removal::Expiry).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_forgets_the_envelopes_of_a_deleted_queue() {
    relay_forgets_after(Removal::QueueDeletion).await;
}

// The harness itself.

/// A new key-file home in a temporary directory, holding one invitation record whose value is
/// `marker`.
fn planted_home(marker: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let store = LocalStore::create(&home, KeySource::KeyFile).unwrap();
    store
        .put(&StoreKey::Invitation(b"planted".to_vec()), marker)
        .unwrap();
    drop(store);
    (dir, home)
}

#[test]
fn harness_finds_a_marker_planted_in_a_live_record_and_sees_it_go() {
    let marker = secret("planted");
    let (_dir, home) = planted_home(marker.as_bytes());
    let before = Seizure::home(&home);
    assert!(before.files_searched() >= 3, "{before}");
    assert!(before.unopened_records().is_empty(), "{before}");
    before.assert_no_orphan_keys();
    let seen = Markers::new().text(&marker).seen_in(&before);
    // Sealed at rest: only the decrypted record holds it.
    let places: Vec<&Place> = seen.found_before().iter().map(|f| &f.place).collect();
    assert!(
        !places.is_empty() && places.iter().all(|p| matches!(p, Place::Record { .. })),
        "{places:?}"
    );

    let store = LocalStore::open(&home, KeySource::KeyFile).unwrap();
    store
        .delete(&StoreKey::Invitation(b"planted".to_vec()))
        .unwrap();
    drop(store);
    let after = Seizure::home(&home);
    after.assert_no_orphan_keys();
    seen.gone_from(&after);
}

#[test]
#[should_panic(expected = "marker hit(s) remain after the deletion")]
fn harness_fails_when_a_marker_remains() {
    let marker = secret("remains");
    let (_dir, home) = planted_home(marker.as_bytes());
    let seen = Markers::new().text(&marker).seen_in(&Seizure::home(&home));
    seen.gone_from(&Seizure::home(&home));
}

#[test]
#[should_panic(expected = "the search cannot see this marker")]
fn harness_fails_when_it_cannot_see() {
    let (_dir, home) = planted_home(secret("present").as_bytes());
    let _ = Markers::new()
        .text(&secret("never-written"))
        .seen_in(&Seizure::home(&home));
}

#[test]
fn harness_reports_a_vault_slot_allocated_without_a_record() {
    let (_dir, home) = planted_home(secret("orphan").as_bytes());
    assert!(Seizure::home(&home).orphans().is_empty());
    let key = DeviceKey::load_or_create_key_file(&home.join("device.key")).unwrap();
    let vault = Vault::open(&home.join("keys.vault"), &key, VaultOptions::default()).unwrap();
    let (slot, _) = vault.allocate().unwrap();
    vault.sync().unwrap();
    drop(vault);

    let seizure = Seizure::home(&home);
    let orphans = seizure.orphans();
    assert_eq!(orphans.len(), 1, "{seizure}");
    assert_eq!(orphans[0].slot, slot.index());
    assert!(!orphans[0].named_by_live_record);
    let failed = std::panic::catch_unwind(|| seizure.assert_no_orphan_keys());
    let message = failed.expect_err("an orphan key must fail the assertion");
    let message = message
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(
        message.contains(&format!("slot {}", slot.index())),
        "{message}"
    );
}

#[test]
#[should_panic(expected = "does not exist")]
fn harness_panics_on_a_missing_directory() {
    let dir = tempfile::tempdir().unwrap();
    let _ = Seizure::home(&dir.path().join("nowhere"));
}

#[test]
#[should_panic(expected = "no file could be read")]
fn harness_panics_on_a_directory_without_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("db")).unwrap();
    let _ = Seizure::relay(dir.path());
}

#[test]
#[should_panic(expected = "no key file")]
fn harness_panics_on_a_home_without_its_key_file() {
    let (_dir, home) = planted_home(secret("keyless").as_bytes());
    std::fs::remove_file(home.join("device.key")).unwrap();
    let _ = Seizure::home(&home);
}

#[test]
fn harness_opens_a_passphrase_home() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let cheap = KdfParams {
        memory_kib: 64,
        time_cost: 1,
        lanes: 1,
    };
    let pass = "correct horse battery staple";
    let store = LocalStore::create(
        &home,
        KeySource::Passphrase(Passphrase::new(pass).with_kdf(cheap)),
    )
    .unwrap();
    let marker = secret("passphrase");
    store
        .put(&StoreKey::Invitation(b"pp".to_vec()), marker.as_bytes())
        .unwrap();
    drop(store);
    let _ = Markers::new()
        .text(&marker)
        .seen_in(&Seizure::home_with_passphrase(&home, pass));
    let wrong = std::panic::catch_unwind(|| Seizure::home(&home));
    assert!(wrong.is_err(), "a passphrase home has no key file to use");
}

/// Every file under `dir` with its bytes, and every name.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Option<Vec<u8>>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                out.push((path.clone(), None));
                stack.push(path);
            } else {
                out.push((path.clone(), Some(std::fs::read(&path).unwrap())));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn harness_never_changes_what_it_seizes() {
    let (_dir, home) = planted_home(secret("untouched").as_bytes());
    // Leave a key without a record: opening through the store would repair (shred) it.
    let key = DeviceKey::load_or_create_key_file(&home.join("device.key")).unwrap();
    let vault = Vault::open(&home.join("keys.vault"), &key, VaultOptions::default()).unwrap();
    vault.allocate().unwrap();
    vault.sync().unwrap();
    drop(vault);
    let before = snapshot(&home);
    let seizure = Seizure::home(&home);
    assert_eq!(seizure.orphans().len(), 1);
    assert_eq!(snapshot(&home), before);
}
