//! Expiry without a running client: a message whose timer ran out while no client had the home
//! open is gone from the home (as an attacker holding the key file reads it) right after
//! `Client::open` returns, before any other call; `Client::expire` counts it once, and retries
//! the blob deletion an expired file message owes its relay.

use std::path::Path;
use std::time::Duration;

use hush_client::{Client, Clock};
use hush_tests::attacker::{Markers, Seizure};
use hush_tests::blobs::blob_files;
use hush_tests::clients::{message_from, pair_clocked, relay, reopen_clocked};
use rand::RngCore;

/// A distinctive message text.
fn secret(tag: &str) -> String {
    hush_tests::attacker::unique_text("expire", tag)
}

fn seize(home: &Path) -> Seizure {
    let seizure = Seizure::home(home);
    seizure.assert_no_orphan_keys();
    seizure
}

const TIMER: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_expired_while_no_client_ran_is_gone_right_after_open() {
    let relay = relay();
    let clock = Clock::system();
    let (alice, bob, ha, hb) = pair_clocked(relay.address(), relay.address(), clock.clone()).await;
    let (alice_home, bob_home) = (ha.path().join("home"), hb.path().join("home"));
    let text = secret("closed");
    let id = alice
        .send_text("bob", &text, Some(TIMER), false)
        .await
        .unwrap()
        .id;
    message_from(&bob, "alice").await;
    bob.display("alice", id).await.unwrap();
    alice.close().await;
    bob.close().await;

    // Both laptops are closed; the timers run out while nothing runs.
    let at_alice = Markers::new().text(&text).seen_in(&seize(&alice_home));
    let at_bob = Markers::new().text(&text).seen_in(&seize(&bob_home));
    clock.advance(TIMER + Duration::from_secs(1));
    // Still on disk while closed: only an open (or `hush expire`) deletes it.
    let still = Markers::new().text(&text).seen_in(&seize(&alice_home));
    drop(still);

    let alice = reopen_clocked(&alice_home, clock.clone()).await;
    at_alice.gone_from(&seize(&alice_home));
    let bob = reopen_clocked(&bob_home, clock.clone()).await;
    at_bob.gone_from(&seize(&bob_home));

    // `expire` reports what the open deleted, once.
    for client in [&alice, &bob] {
        let report = client.expire(Duration::from_secs(5)).await.unwrap();
        assert_eq!(report.messages_expired, 1, "{report:?}");
        assert_eq!(report.relay_deletions_owed, 0, "{report:?}");
        let again = client.expire(Duration::from_secs(5)).await.unwrap();
        assert_eq!(again.messages_expired, 0, "{again:?}");
    }
    alice.close().await;
    bob.close().await;
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expire_deletes_the_blob_of_a_file_message_that_expired_while_closed() {
    let relay = relay();
    let clock = Clock::system();
    let (alice, bob, ha, _hb) = pair_clocked(relay.address(), relay.address(), clock.clone()).await;
    let alice_home = ha.path().join("home");
    let work = tempfile::tempdir().unwrap();
    let path = work.path().join("report.bin");
    let mut content = vec![0u8; 4096];
    rand::rngs::OsRng.fill_bytes(&mut content);
    std::fs::write(&path, &content).unwrap();
    alice
        .send_file("bob", &path, Some(TIMER), false, &|_| {})
        .await
        .unwrap();
    assert_eq!(
        blob_files(relay.data_dir()).len(),
        1,
        "the blob is uploaded"
    );
    alice.close().await;
    clock.advance(TIMER + Duration::from_secs(1));

    let alice: Client = reopen_clocked(&alice_home, clock.clone()).await;
    // Opening never waits on a relay: the blob deletion is owed, not yet done.
    assert_eq!(blob_files(relay.data_dir()).len(), 1);
    let report = alice.expire(Duration::from_secs(10)).await.unwrap();
    assert_eq!(report.messages_expired, 1, "{report:?}");
    assert_eq!(report.relay_deletions_done, 1, "{report:?}");
    assert_eq!(report.relay_deletions_owed, 0, "{report:?}");
    assert!(report.owed_relays.is_empty(), "{report:?}");
    assert!(
        blob_files(relay.data_dir()).is_empty(),
        "the relay deleted the blob"
    );
    alice.close().await;
    bob.close().await;
    relay.stop().await;
}
