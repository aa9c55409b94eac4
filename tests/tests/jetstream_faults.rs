//! A relay on NATS JetStream when NATS fails under it.
//!
//! - NATS unreachable at start: the binary exits non-zero and its error names NATS and the
//!   address it tried.
//! - A quorum lost while running (two of three NATS nodes killed): no send is acknowledged;
//!   each is answered with the relay's retryable `Storage` error, and the relay stays up for
//!   new connections.
//! - NATS gone altogether (the third node killed too): the same.
//! - NATS back: the relay recovers without a restart, sends are acknowledged again, and every
//!   acknowledged envelope is delivered once under the id its send returned. A refused send
//!   may still have been stored (its acknowledgement, not its write, was lost), at most once.

use std::collections::HashMap;
use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use hush_client::net::{RelayCallError, RelayClient};
use hush_protocol::{EnvelopeId, ErrorCode, Push, SendCapability, SenderId};
use hush_server::store::jetstream::{JetStreamConfig, JetStreamStore};
use hush_tests::nats::NatsCluster;
use hush_tests::{any_push, bin_path, cap, key, TestRelay, DEADLINE};

/// How long the binary may take to give up on an unreachable NATS.
const START_DEADLINE: Duration = Duration::from_secs(120);

#[test]
fn a_relay_whose_nats_is_unreachable_at_start_exits_non_zero_naming_it() {
    // A loopback port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let url = format!("nats://127.0.0.1:{port}");
    let data = tempfile::tempdir().unwrap();
    let mut child = Command::new(bin_path("hush-server"))
        .args(["--listen", "127.0.0.1:0", "--store", "jetstream", "--nats"])
        .arg(&url)
        .arg("--data")
        .arg(data.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn hush-server");
    let deadline = std::time::Instant::now() + START_DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("hush-server still running with NATS unreachable");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    let _ = child.stderr.take().unwrap().read_to_string(&mut stderr);
    assert!(!status.success(), "exited with {status}: {stderr}");
    assert!(
        stderr.contains("NATS"),
        "the error does not name NATS: {stderr}"
    );
    assert!(
        stderr.contains(&url),
        "the error does not name {url}: {stderr}"
    );
}

/// Sends `body` and expects a refusal: the retryable `Storage` error.
async fn refused(client: &RelayClient, sid: SenderId, c: &SendCapability, body: &[u8]) {
    match client.send(sid, c, 300, None, body.to_vec()).await {
        Err(RelayCallError::Relay(ErrorCode::Storage)) => {}
        other => panic!("a send without a NATS quorum was answered {other:?}"),
    }
}

/// Sends `body` until one is acknowledged, counting the refusals.
async fn sent_once_back(
    client: &RelayClient,
    sid: SenderId,
    c: &SendCapability,
    body: &[u8],
) -> (EnvelopeId, usize) {
    let deadline = tokio::time::Instant::now() + 3 * DEADLINE;
    let mut failed = 0;
    loop {
        match client.send(sid, c, 300, None, body.to_vec()).await {
            Ok(id) => return (id, failed),
            Err(e) => {
                failed += 1;
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the relay did not recover: {e:?}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_quorum_lost_or_nats_gone_no_send_is_acknowledged_and_the_relay_recovers() {
    let mut cluster = NatsCluster::start(3);
    let store = JetStreamStore::open(&JetStreamConfig::new(cluster.urls()))
        .await
        .expect("open the JetStream store");
    let dir = Arc::new(tempfile::tempdir().expect("tempdir"));
    let relay = TestRelay::wall_clock_on(store, dir, |_| {});
    let client = relay.client().await;
    let (k, c) = (key(), cap());
    let (rid, sid) = client.create_queue(&k, &c).await.unwrap();
    let mut acknowledged = HashMap::new();
    let first = client.send(sid, &c, 300, None, b"before".to_vec()).await;
    acknowledged.insert(b"before".to_vec(), first.unwrap());

    cluster.kill(1);
    cluster.kill(2);
    refused(&client, sid, &c, b"without a quorum").await;
    // The relay stays up: a new connection is served.
    let other = relay.client().await;
    cluster.kill(0);
    refused(&other, sid, &c, b"without NATS").await;

    cluster.restart_all();
    let (id, failed) = sent_once_back(&client, sid, &c, b"after").await;
    acknowledged.insert(b"after".to_vec(), id);

    client.subscribe(&k, rid).await.unwrap();
    let mut seen: HashMap<Vec<u8>, Vec<EnvelopeId>> = HashMap::new();
    loop {
        match any_push(&client).await {
            Push::Drained { .. } => break,
            Push::Envelope {
                envelope_id, body, ..
            } => seen.entry(body).or_default().push(envelope_id),
            _ => {}
        }
    }
    for (body, id) in &acknowledged {
        let ids = seen.get(body).map(Vec::as_slice).unwrap_or_default();
        let copies = ids.iter().filter(|i| *i == id).count();
        assert_eq!(copies, 1, "acknowledged {body:?} delivered {copies} times");
    }
    let refused_copies = |body: &[u8]| seen.get(body).map_or(0, Vec::len);
    assert!(refused_copies(b"without a quorum") <= 1);
    assert!(refused_copies(b"without NATS") <= 1);
    assert!(seen[b"after".as_slice()].len() <= failed + 1);
    relay.stop().await;
}
