//! Transport isolation, seen from the relay: in the default per-contact mode a client's sends to
//! two contacts, its subscriptions and a file download arrive on four different connections
//! (from four source ports), and the download's connection ends with the download; in per-relay
//! mode they all share one. At the pool level, a contact's connection reconnects after it is
//! lost and closes once it has been idle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use hush_client::net::{Connection, Lane, RelayPool, RetryPolicy, TransportMode};
use hush_client::store::KeySource;
use hush_client::{Client, ClientEvent, TransferProgress};
use hush_protocol::{Reply, Request, SenderId};
use hush_server::observe::{ConnectionLog, ConnectionRecord};
use hush_tests::clients::*;

/// Alice's connections, as the relay numbered them.
#[derive(Debug)]
struct Seen {
    to_bob: u64,
    to_carol: u64,
    subscriptions: u64,
    download: u64,
}

/// Every connection that carried a request of `kind`, with the id the request named.
fn only(log: &ConnectionLog, kind: &str) -> Vec<(u64, Option<[u8; 16]>)> {
    let mut found = Vec::new();
    for (n, record) in log.snapshot() {
        for c in record.carried.iter().filter(|c| c.kind == kind) {
            found.push((n, c.id));
        }
    }
    found
}

/// The single connection that carried `kind`.
fn single(log: &ConnectionLog, kind: &str) -> u64 {
    let conns: BTreeSet<u64> = only(log, kind).into_iter().map(|(n, _)| n).collect();
    assert_eq!(conns.len(), 1, "{kind} on {conns:?}: {:?}", log.snapshot());
    conns.into_iter().next().unwrap()
}

async fn init_in(home: &Path, name: &str, relay: &TestRelay, mode: TransportMode) -> Client {
    let options = options().with_transport(mode);
    Client::init_with(home, name, relay.address(), KeySource::KeyFile, options)
        .await
        .unwrap()
}

/// Alice invites `name`, who accepts; Alice's receive completes it.
async fn introduce(alice: &Client, peer: &Client, name: &str) {
    let token = alice.invite(name).await.unwrap();
    peer.accept(&token, "alice").await.unwrap();
    until(
        alice,
        |e| matches!(e, ClientEvent::ContactJoined { contact } if contact == name),
    )
    .await;
}

fn no_progress(_: TransferProgress) {}

/// Alice (in `mode`) with contacts Bob and Carol on one relay: after a fresh open, she sends to
/// each, receives (subscribing), and downloads a file Bob sent. Returns which connections
/// carried what, and the relay's records.
async fn alice_talks(mode: TransportMode) -> (Seen, BTreeMap<u64, ConnectionRecord>) {
    let relay = relay();
    let log = relay.handle.connections();
    log.start();
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let home = dirs[0].path().join("home");
    let alice = init_in(&home, "alice", &relay, mode).await;
    let bob = init_in(&dirs[1].path().join("home"), "bob", &relay, mode).await;
    let carol = init_in(&dirs[2].path().join("home"), "carol", &relay, mode).await;
    introduce(&alice, &bob, "bob").await;
    introduce(&alice, &carol, "carol").await;

    // From here on the relay records only what follows: Alice opens again, with no connection.
    alice.close().await;
    log.clear();
    let options = options().with_transport(mode);
    let alice = Client::open_with(&home, KeySource::KeyFile, options)
        .await
        .unwrap();
    alice.send_text("bob", "hi bob", None, false).await.unwrap();
    let first = only(log, "send");
    alice
        .send_text("carol", "hi carol", None, false)
        .await
        .unwrap();
    let sends = only(log, "send");
    assert_eq!((first.len(), sends.len()), (1, 2), "{sends:?}");
    let to_bob = first[0].0;
    let to_carol = sends.iter().find(|s| s.1 != first[0].1).unwrap().0;

    alice.receive(None, None).await.unwrap();
    let subscriptions = single(log, "subscribe");

    let path = dirs[3].path().join("notes.txt");
    std::fs::write(&path, b"a file from bob").unwrap();
    let sent = bob
        .send_file("alice", &path, None, false, &no_progress)
        .await
        .unwrap();
    let m = message_from(&alice, "bob").await;
    assert_eq!(m.id, sent.id);
    let out = tempfile::tempdir().unwrap();
    alice
        .save_file(m.id, out.path(), &no_progress)
        .await
        .unwrap();
    let download = single(log, "blob_read");
    assert_eq!(
        single(log, "ack"),
        subscriptions,
        "acks go where the pushes came from"
    );

    let seen = Seen {
        to_bob,
        to_carol,
        subscriptions,
        download,
    };
    if mode == TransportMode::PerContact {
        // The download's connection is closed once the download is done.
        let end = std::time::Instant::now() + DEADLINE;
        while !log.snapshot()[&download].ended {
            assert!(
                std::time::Instant::now() < end,
                "the download's connection stayed open"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let records = log.snapshot();
    (seen, records)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_contact_sends_subscriptions_and_downloads_reach_the_relay_on_separate_connections() {
    let (seen, records) = alice_talks(TransportMode::PerContact).await;
    let conns = BTreeSet::from([
        seen.to_bob,
        seen.to_carol,
        seen.subscriptions,
        seen.download,
    ]);
    assert_eq!(conns.len(), 4, "{seen:?}: {records:#?}");
    // Each from its own UDP source port.
    let ports: BTreeSet<u16> = conns
        .iter()
        .map(|n| records[n].remote.unwrap().port())
        .collect();
    assert_eq!(ports.len(), 4, "{records:#?}");
    // Every connection asks once whether the relay will rotate its certificate (`NextCert`,
    // which names nothing); apart from that, a contact's connection carries that contact's
    // sends and nothing else.
    let kinds = |n: &u64| -> Vec<&str> {
        let carried = &records[n].carried;
        let asked = carried.iter().filter(|c| c.kind == "next_cert").count();
        assert!(asked <= 1, "{carried:?}");
        carried
            .iter()
            .map(|c| c.kind)
            .filter(|k| *k != "next_cert")
            .collect()
    };
    for n in [seen.to_bob, seen.to_carol] {
        assert_eq!(kinds(&n), ["send"], "{records:#?}");
    }
    let subs = kinds(&seen.subscriptions);
    assert!(
        subs.iter().all(|k| ["subscribe", "ack"].contains(k)),
        "{subs:?}"
    );
    let download = kinds(&seen.download);
    assert!(
        download.iter().all(|k| k.starts_with("blob_")),
        "{download:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_relay_mode_keeps_everything_on_one_connection() {
    let (seen, records) = alice_talks(TransportMode::PerRelay).await;
    let conns = BTreeSet::from([
        seen.to_bob,
        seen.to_carol,
        seen.subscriptions,
        seen.download,
    ]);
    assert_eq!(conns.len(), 1, "{seen:?}: {records:#?}");
}

fn fast() -> RetryPolicy {
    RetryPolicy::new(2, Duration::from_secs(2))
        .with_delays(Duration::from_millis(20), Duration::from_millis(40))
}

async fn ping(conn: Connection) -> Result<Reply, hush_client::net::RelayCallError> {
    conn.client().call(Request::Ping).await
}

#[tokio::test]
async fn a_contact_connection_reconnects_when_lost_and_closes_when_idle() {
    let relay = relay();
    let address = relay.address();
    let idle = Duration::from_millis(200);
    let (pool, _events) = RelayPool::configured(fast(), TransportMode::PerContact, idle, None);
    let lane = Lane::Contact(SenderId::from_bytes([7; 16]));
    assert_eq!(
        pool.run_on(&address, lane, ping).await.unwrap(),
        Reply::Pong
    );
    let first = pool.current_on(&address, lane).await.unwrap();
    let own = pool.connection(&address).await.unwrap();
    assert_ne!(
        own.generation(),
        first.generation(),
        "not the subscriptions' connection"
    );

    // Lost under us: the next call reconnects.
    first.client().close();
    assert_eq!(
        pool.run_on(&address, lane, ping).await.unwrap(),
        Reply::Pong
    );
    let second = pool.current_on(&address, lane).await.unwrap();
    assert_ne!(second.generation(), first.generation(), "reconnected");
    drop((first, second));

    // Unused, it is closed; the connection for our own queues stays.
    let end = tokio::time::Instant::now() + DEADLINE;
    while pool.current_on(&address, lane).await.is_some() {
        assert!(
            tokio::time::Instant::now() < end,
            "the idle connection stayed open"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(pool.current(&address).await.is_some());
    assert!(!own.client().is_closed());
}
