//! Relay addresses with several hosts (the nodes of one relay, sharing its certificate):
//! the client tries them in order, skips a dead one, and moves to another node when the one
//! it is connected to dies, with its subscription going on and nothing lost or duplicated.
//!
//! In the first fail-over test the nodes are `hush-server` processes run one after the other on
//! one data directory (the second started on the first's certificate and queues after the first
//! is killed), so both are "the same relay" without a shared store. In the second, two nodes
//! run at once on one NATS JetStream cluster the test starts, sharing one certificate, and the
//! one the clients use is killed with SIGKILL.

use std::time::Duration;

use hush_client::net::{RelayPool, RetryPolicy, TransportMode};
use hush_client::store::KeySource;
use hush_client::Client;
use hush_protocol::address::RelayHost;
use hush_protocol::RelayAddress;
use hush_tests::cli::RelayProcess;
use hush_tests::clients::{message_from, options, relay, until};

/// A loopback UDP port nothing listens on (bound, then released).
fn free_port() -> u16 {
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.local_addr().unwrap().port()
}

fn loopback(port: u16) -> RelayHost {
    RelayHost {
        host: "127.0.0.1".to_owned(),
        port,
    }
}

/// Two attempts, short timeouts, and a dead node noticed within two seconds.
fn fast() -> RetryPolicy {
    RetryPolicy::new(2, Duration::from_secs(2))
        .with_delays(Duration::from_millis(50), Duration::from_millis(100))
        .with_idle_timeout(Duration::from_secs(2))
}

async fn init(home: &std::path::Path, name: &str, relay: RelayAddress) -> Client {
    let mut options = options();
    options.retry = fast();
    Client::init_with(home, name, relay, KeySource::KeyFile, options)
        .await
        .unwrap()
}

/// Alice and Bob, both on `relay`, as contacts.
async fn pair(relay: &RelayAddress) -> (Client, Client, [tempfile::TempDir; 2]) {
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let alice = init(&dirs[0].path().join("home"), "alice", relay.clone()).await;
    let bob = init(&dirs[1].path().join("home"), "bob", relay.clone()).await;
    let token = alice.invite("bob").await.unwrap();
    bob.accept(&token, "alice").await.unwrap();
    until(&alice, |e| {
        matches!(e, hush_client::ClientEvent::ContactJoined { .. })
    })
    .await;
    (alice, bob, dirs)
}

async fn text_from(client: &Client, contact: &str) -> String {
    let m = message_from(client, contact).await;
    m.body.unwrap().as_str().to_owned()
}

/// `alice` holds each of `expected` (sorted) from Bob once, and nothing more arrives: nothing
/// lost, nothing shown twice (a dead node's undelivered copy is not shown again). History
/// orders messages of the same second by id, so the comparison is of sorted lists.
async fn received_once(alice: &Client, expected: &[&str]) {
    let mut received: Vec<String> = alice
        .history("bob")
        .await
        .unwrap()
        .into_iter()
        .filter(|m| !m.outgoing)
        .map(|m| m.body.unwrap().as_str().to_owned())
        .collect();
    received.sort();
    assert_eq!(received, expected);
    let later = alice.receive(None, None).await.unwrap();
    assert!(
        !later
            .iter()
            .any(|e| matches!(e, hush_client::ClientEvent::Message { .. })),
        "{later:?}"
    );
}

#[tokio::test]
async fn a_dead_first_host_is_skipped_and_the_live_one_used_on_every_lane() {
    let relay = relay();
    let live = relay.address();
    let addr = live
        .with_hosts(vec![loopback(free_port()), live.hosts()[0].clone()])
        .unwrap();
    assert_eq!(addr.to_string().matches(',').count(), 1, "{addr}");

    let (pool, _events) = RelayPool::with_mode(fast(), TransportMode::PerContact);
    let own = pool.connection(&addr).await.unwrap();
    assert_eq!(own.host(), 1, "the live host");
    // A contact's lane gets its own connection, to the host that worked.
    let lane = hush_client::net::Lane::Contact(hush_protocol::SenderId::from_bytes([3; 16]));
    let contact = pool.connection_on(&addr, lane).await.unwrap();
    assert_eq!(contact.host(), 1);
    assert_ne!(contact.generation(), own.generation());

    let (alice, bob, _dirs) = pair(&addr).await;
    bob.send_text("alice", "through the second host", None, false)
        .await
        .unwrap();
    assert_eq!(text_from(&alice, "bob").await, "through the second host");
    alice.close().await;
    bob.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_moves_to_the_next_node_when_its_node_dies_and_loses_nothing() {
    let node1 = RelayProcess::start();
    let first: RelayAddress = node1.address.parse().unwrap();
    let port2 = free_port();
    let addr = first
        .with_hosts(vec![first.hosts()[0].clone(), loopback(port2)])
        .unwrap();
    let (alice, bob, _dirs) = pair(&addr).await;
    bob.send_text("alice", "one", None, false).await.unwrap();
    assert_eq!(text_from(&alice, "bob").await, "one");
    // "two" waits on the first node, unread, when it dies.
    bob.send_text("alice", "two", None, false).await.unwrap();
    let data = node1.stop();

    // The second node: the same certificate and queues, at the address's second host.
    let node2 = RelayProcess::start_at(data, &format!("127.0.0.1:{port2}"), &[]);
    let second: RelayAddress = node2.address.parse().unwrap();
    assert_eq!(second.fingerprint, first.fingerprint);
    assert_eq!(text_from(&alice, "bob").await, "two");
    bob.send_text("alice", "three", None, false).await.unwrap();
    assert_eq!(text_from(&alice, "bob").await, "three");

    received_once(&alice, &["one", "three", "two"]).await;
    alice.close().await;
    bob.close().await;
    drop(node2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jetstream_node_killed_under_its_clients_moves_them_to_the_other_and_loses_nothing() {
    let cluster = hush_tests::nats::NatsCluster::start(3);
    let nats = cluster.urls().join(",");
    let extra = ["--store", "jetstream", "--nats", nats.as_str()];
    let node1 = RelayProcess::start_in(tempfile::tempdir().unwrap(), &extra);
    // Node two gets node one's certificate and key: one relay, one fingerprint.
    let dir2 = tempfile::tempdir().unwrap();
    for file in [hush_server::tls::CERT_FILE, hush_server::tls::KEY_FILE] {
        std::fs::copy(node1.data.path().join(file), dir2.path().join(file)).unwrap();
    }
    let node2 = RelayProcess::start_in(dir2, &extra);
    let first: RelayAddress = node1.address.parse().unwrap();
    let second: RelayAddress = node2.address.parse().unwrap();
    assert_eq!(first.fingerprint, second.fingerprint);
    let addr = first
        .with_hosts(vec![first.hosts()[0].clone(), second.hosts()[0].clone()])
        .unwrap();
    let (alice, bob, _dirs) = pair(&addr).await;
    bob.send_text("alice", "one", None, false).await.unwrap();
    assert_eq!(text_from(&alice, "bob").await, "one");
    // "two" waits in the shared store, unread, when the node both clients use is killed.
    bob.send_text("alice", "two", None, false).await.unwrap();
    drop(node1.stop());

    // Both move to node two, which serves the same queues from the cluster.
    assert_eq!(text_from(&alice, "bob").await, "two");
    bob.send_text("alice", "three", None, false).await.unwrap();
    assert_eq!(text_from(&alice, "bob").await, "three");
    received_once(&alice, &["one", "three", "two"]).await;
    alice.close().await;
    bob.close().await;
    drop(node2);
}
