//! Group work that needs a relay survives the relay being down and the client restarting:
//!
//! - the owner's burn of a group reaches a member whose relay is down: the group is erased at
//!   the owner's at once, the burn is owed to that member (kept across a restart), and a later
//!   tick delivers it once the relay is back, which erases the member's copy (the attacker
//!   holding the member's key file finds the group's text before, and not after);
//! - an introduction whose step cannot reach the adder's relay is kept, across a restart, and
//!   completed once the relay is back.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hush_client::store::{KeySource, LocalStore, Namespace};
use hush_client::{Client, ClientError, ClientEvent, Clock, OWED_RETRY_SECS};
use hush_tests::attacker::{unique_text, Markers, Seizure};
use hush_tests::clients::{
    connect, contact_names, init_clocked, reopen_clocked, sled_relay_in, until,
};
use hush_tests::DEADLINE;

/// The records in namespace `ns` of the (closed) home at `home`.
fn records(home: &Path, ns: Namespace) -> usize {
    let store = LocalStore::open(home, KeySource::KeyFile).unwrap();
    store.list(ns, None).unwrap().len()
}

/// The owed burns in the (closed) home at `home`.
fn owed_burns(home: &Path) -> usize {
    records(home, Namespace::OwedBurn)
}

/// Receives until `client` sees group `group` burned.
async fn burned(client: &Client, group: &str) {
    until(
        client,
        |e| matches!(e, ClientEvent::GroupBurned { group: g, .. } if g == group),
    )
    .await;
    assert!(matches!(
        client.group_history(group).await,
        Err(ClientError::UnknownGroup { .. })
    ));
    assert!(client.groups().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burn_is_owed_to_a_member_whose_relay_is_down_and_delivered_later() {
    // Alice and Bob receive on relay one, Carol on relay two, which goes down.
    let one = sled_relay_in(Arc::new(tempfile::tempdir().unwrap()), None);
    let two_dir = Arc::new(tempfile::tempdir().unwrap());
    let two = sled_relay_in(two_dir.clone(), None);
    let two_listen = two.handle.local_addr();
    let clock = Clock::system();
    let homes: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let home = |i: usize| homes[i].path().join("home");
    let alice = init_clocked(&home(0), "alice", one.address(), clock.clone()).await;
    let bob = init_clocked(&home(1), "bob", one.address(), clock.clone()).await;
    let carol = init_clocked(&home(2), "carol", two.address(), clock.clone()).await;
    connect(&alice, "bob", &bob, "alice").await;
    connect(&alice, "carol", &carol, "alice").await;
    connect(&bob, "carol", &carol, "bob").await;

    alice.create_group("board", None).await.unwrap();
    alice
        .add_to_group("board", &["bob", "carol"])
        .await
        .unwrap();
    let said = unique_text("group-burn", "minutes");
    let sent = alice
        .send_group_text("board", &said, None, false)
        .await
        .unwrap();
    assert_eq!(sent.reached, ["bob", "carol"]);
    until(&carol, |e| {
        matches!(e, ClientEvent::Message { message, .. } if message.body.as_ref().map(|b| b.as_str()) == Some(said.as_str()))
    })
    .await;
    let at_carol = Markers::new().text(&said).seen_in(&Seizure::home(&home(2)));

    // Carol's relay goes down; Alice burns. Bob is told at once, Carol is owed.
    two.stop().await;
    let sent = alice.burn_group("board").await.unwrap();
    assert_eq!(sent.reached, ["bob"], "{sent:?}");
    assert_eq!(sent.owed, ["carol"], "{sent:?}");
    assert!(alice.groups().await.is_empty());
    burned(&bob, "board").await;

    // The owed burn survives a restart of Alice's client.
    alice.close().await;
    assert_eq!(owed_burns(&home(0)), 1);
    let mut alice = reopen_clocked(&home(0), clock.clone()).await;
    assert!(alice.groups().await.is_empty());

    // The relay comes back; a later tick delivers the burn and Carol's copy is erased.
    let two = sled_relay_in(two_dir, Some(two_listen));
    let end = std::time::Instant::now() + DEADLINE;
    loop {
        clock.advance(Duration::from_secs(OWED_RETRY_SECS + 1));
        alice.tick().await.unwrap();
        alice.close().await;
        if owed_burns(&home(0)) == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < end,
            "the owed burn was never delivered"
        );
        alice = reopen_clocked(&home(0), clock.clone()).await;
    }
    burned(&carol, "board").await;
    carol.close().await;
    bob.close().await;
    at_carol.gone_from(&Seizure::home(&home(2)));
    two.stop().await;
    one.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_introduction_cut_off_by_a_relay_down_and_a_restart_completes_later() {
    // Alice and Bob receive on relay one; Dave, who knows only Alice, on relay two.
    let one_dir = Arc::new(tempfile::tempdir().unwrap());
    let one = sled_relay_in(one_dir.clone(), None);
    let one_listen = one.handle.local_addr();
    let two = sled_relay_in(Arc::new(tempfile::tempdir().unwrap()), None);
    let clock = Clock::system();
    let homes: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let home = |i: usize| homes[i].path().join("home");
    let alice = init_clocked(&home(0), "alice", one.address(), clock.clone()).await;
    let bob = init_clocked(&home(1), "bob", one.address(), clock.clone()).await;
    let dave = init_clocked(&home(2), "dave", two.address(), clock.clone()).await;
    connect(&alice, "bob", &bob, "alice").await;
    connect(&alice, "dave", &dave, "alice").await;
    alice.create_group("ops", None).await.unwrap();
    alice.add_to_group("ops", &["bob"]).await.unwrap();
    until(
        &bob,
        |e| matches!(e, ClientEvent::GroupChanged { what, .. } if what.contains("added you")),
    )
    .await;
    alice.add_to_group("ops", &["dave"]).await.unwrap();

    // Relay one goes down before Dave hears of the group: his invitation for Bob cannot reach
    // Alice, so the step waits in his store, and survives his restart.
    one.stop().await;
    until(
        &dave,
        |e| matches!(e, ClientEvent::GroupChanged { what, .. } if what.contains("added you")),
    )
    .await;
    dave.tick().await.unwrap();
    dave.close().await;
    assert_eq!(records(&home(2), Namespace::GroupWork), 1);
    let dave = reopen_clocked(&home(2), clock.clone()).await;

    // Relay one is back: the step goes on, and Dave and Bob become contacts.
    let one = sled_relay_in(one_dir, Some(one_listen));
    let end = tokio::time::Instant::now() + DEADLINE;
    loop {
        let (d, b) = (contact_names(&dave).await, contact_names(&bob).await);
        if d.contains(&"bob".to_owned()) && b.contains(&"dave".to_owned()) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < end,
            "the introduction never completed"
        );
        clock.advance(Duration::from_secs(OWED_RETRY_SECS + 1));
        for u in [&alice, &bob, &dave] {
            u.receive(None, None).await.unwrap();
        }
    }
    let sent = dave
        .send_group_text("ops", "made it", None, false)
        .await
        .unwrap();
    assert_eq!(sent.reached, ["alice", "bob"], "{sent:?}");
    dave.close().await;
    assert_eq!(records(&home(2), Namespace::GroupWork), 0);
    alice.close().await;
    bob.close().await;
    one.stop().await;
    two.stop().await;
}
