//! Several relay nodes on one NATS JetStream cluster, all started by the test on loopback: a
//! send through one node reaches a subscriber on another; a NATS node killed with SIGKILL
//! under load loses and duplicates no acknowledged message; a NATS node that comes back
//! catches up and takes its part in the quorum again; and two nodes sweeping at once remove
//! each expired envelope and idle queue once, without an error.
//!
//! A relay node killed under its clients, who move to the other node, is in
//! `relay_hosts.rs::a_jetstream_node_killed_under_its_clients_moves_them_to_the_other_and_loses_nothing`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use hush_client::net::RelayClient;
use hush_protocol::Push;
use hush_server::store::jetstream::{JetStreamConfig, JetStreamStore};
use hush_server::store::QueueStore;
use hush_server::tls::{CERT_FILE, KEY_FILE};
use hush_tests::nats::NatsCluster;
use hush_tests::{cap, envelope, key, TestRelay, DEADLINE};

/// Sends in the load test; a NATS node is killed after the first `KILL_AT`.
const SENDS: u32 = 150;
const KILL_AT: u32 = 40;

async fn store(cluster: &NatsCluster) -> JetStreamStore {
    let config = JetStreamConfig::new(cluster.urls());
    JetStreamStore::open(&config)
        .await
        .expect("open the JetStream store")
}

/// Two relay nodes on the cluster, sharing one certificate (copied from the first node's data
/// directory into the second's before it starts), so they have one fingerprint.
async fn two_nodes(
    cluster: &NatsCluster,
) -> (TestRelay<JetStreamStore>, TestRelay<JetStreamStore>) {
    let dir_a = Arc::new(tempfile::tempdir().expect("tempdir"));
    let a = TestRelay::wall_clock_on(store(cluster).await, dir_a.clone(), |_| {});
    let dir_b = Arc::new(tempfile::tempdir().expect("tempdir"));
    for file in [CERT_FILE, KEY_FILE] {
        std::fs::copy(dir_a.path().join(file), dir_b.path().join(file)).expect("copy identity");
    }
    let b = TestRelay::wall_clock_on(store(cluster).await, dir_b, |_| {});
    assert_eq!(a.address().fingerprint, b.address().fingerprint);
    assert_ne!(a.address().port, b.address().port);
    (a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_through_one_node_reaches_a_subscriber_on_the_other() {
    let cluster = NatsCluster::start(3);
    let (a, b) = two_nodes(&cluster).await;
    let (alice, bob) = (b.client().await, a.client().await);
    let (k, c) = (key(), cap());
    // The queue is created through A and subscribed to through B.
    let (rid, sid) = a.client().await.create_queue(&k, &c).await.unwrap();
    alice.subscribe(&k, rid).await.unwrap();
    let mut ids = Vec::new();
    for i in 0..10u8 {
        ids.push(bob.send(sid, &c, 60, None, vec![i; 20]).await.unwrap());
    }
    for (i, sent) in ids.iter().enumerate() {
        let (id, body) = envelope(&alice).await;
        assert_eq!((id, body), (*sent, vec![i as u8; 20]));
        alice.ack(rid, id).await.unwrap();
    }
    // The acks through B removed them for A too.
    for node in [&a, &b] {
        assert!(node
            .handle
            .store()
            .pending(rid, 0, 100, 0)
            .await
            .unwrap()
            .is_empty());
    }
    a.stop().await;
    b.stop().await;
}

/// Reads pushes on `client`, acks each envelope, and forwards its id and body.
fn receive_and_ack(
    client: RelayClient,
    rid: hush_protocol::RecipientId,
) -> tokio::sync::mpsc::UnboundedReceiver<(hush_protocol::EnvelopeId, Vec<u8>)> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(push) = client.next_push().await {
            if let Push::Envelope {
                envelope_id, body, ..
            } = push
            {
                // An ack that fails while NATS fails over leaves the envelope pending: it is
                // pushed again, which the test tells apart by its id.
                let _ = client.ack(rid, envelope_id).await;
                if tx.send((envelope_id, body)).is_err() {
                    break;
                }
            }
        }
    });
    rx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_node_killed_under_load_loses_nothing_and_catches_up_when_it_returns() {
    let mut cluster = NatsCluster::start(3);
    let (a, b) = two_nodes(&cluster).await;
    let (alice, bob) = (b.client().await, a.client().await);
    let (k, c) = (key(), cap());
    let (rid, sid) = alice.create_queue(&k, &c).await.unwrap();
    alice.subscribe(&k, rid).await.unwrap();
    let mut received = receive_and_ack(alice, rid);

    // Sends through A, each body unique; node 0 (the first URL, so the one both relays
    // connected to) is killed with SIGKILL part-way.
    // The relays' NATS connections move to a live node while sends go on; on a busy machine
    // that can outlast the planned sends, so sending goes on (polling) until one is
    // acknowledged after the kill, within a deadline.
    let mut acknowledged = HashMap::new();
    let mut refused = 0;
    let (mut i, mut after_kill) = (0u32, 0);
    let deadline = tokio::time::Instant::now() + 3 * DEADLINE;
    while i < SENDS || after_kill == 0 {
        if i == KILL_AT {
            cluster.kill(0);
        }
        match bob.send(sid, &c, 300, None, i.to_be_bytes().to_vec()).await {
            Ok(id) => {
                acknowledged.insert(i.to_be_bytes().to_vec(), id);
                after_kill += usize::from(i >= KILL_AT);
            }
            Err(_) => {
                refused += 1;
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "no send succeeded after the kill"
                );
                if i >= SENDS {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
        i += 1;
    }
    eprintln!(
        "{} sends acknowledged, {refused} refused",
        acknowledged.len()
    );

    // Every acknowledged body arrives, under the id its send returned, and no body is stored
    // twice (a second id for one body would be a duplicate).
    let mut ids_of_body: HashMap<Vec<u8>, HashSet<_>> = HashMap::new();
    let complete = |seen: &HashMap<Vec<u8>, HashSet<_>>| {
        acknowledged.keys().all(|body| seen.contains_key(body))
    };
    while !complete(&ids_of_body) {
        let next = tokio::time::timeout(DEADLINE, received.recv()).await;
        let (id, body) = next
            .expect("an acknowledged send never arrived")
            .expect("pushes");
        ids_of_body.entry(body).or_default().insert(id);
    }
    for (body, ids) in &ids_of_body {
        assert_eq!(ids.len(), 1, "body {body:?} stored {} times", ids.len());
        if let Some(sent) = acknowledged.get(body) {
            assert!(ids.contains(sent), "body {body:?} arrived under another id");
        }
    }

    // Node 0 comes back and catches up: its own replica of the queue stream reaches the state
    // of the others. Then node 2 is killed, so that writes need node 0 for their quorum.
    cluster.restart(0);
    let stream = "hush_queues";
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let here = cluster.stream_state(0, stream);
        if here.is_some() && here == cluster.stream_state(1, stream) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "node 0 did not catch up: {here:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    cluster.kill(2);
    let last = b"after the return".to_vec();
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let mut failed = 0;
    let sent = loop {
        // The first sends may fail while a new stream leader is elected.
        match bob.send(sid, &c, 300, None, last.clone()).await {
            Ok(id) => break id,
            Err(e) => {
                failed += 1;
                assert!(tokio::time::Instant::now() < deadline, "no quorum: {e:?}");
            }
        }
    };
    let mut unacknowledged_copies = 0;
    loop {
        let next = tokio::time::timeout(DEADLINE, received.recv()).await;
        let (id, body) = next.expect("the last send never arrived").expect("pushes");
        if body == last {
            if id == sent {
                break;
            }
            // A send answered with an error (its answer lost while the leader moved) may
            // still have been stored: at most one copy per failed attempt, each under its own
            // id. The acknowledged one arrives under the id its send returned.
            unacknowledged_copies += 1;
            assert!(
                unacknowledged_copies <= failed,
                "{unacknowledged_copies} copies of the last body from {failed} failed sends"
            );
            continue;
        }
        assert!(ids_of_body.get(&body).is_some_and(|ids| ids.contains(&id)));
    }
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_sweeping_at_once_remove_each_expired_envelope_and_idle_queue_once() {
    use hush_protocol::{EnvelopeId, RecipientId, SenderId};
    use hush_server::store::{NewEnvelope, QueueRecord, Quota};
    let cluster = NatsCluster::start(3);
    let (a, b) = (store(&cluster).await, store(&cluster).await);
    let quota = Quota {
        max_messages: 1000,
        max_bytes: 1 << 20,
    };
    // Queues 1..=4 with expiring envelopes (active at 900); queues 5..=6 idle since 10.
    for n in 1..=6u8 {
        let record = QueueRecord {
            recipient_id: RecipientId::from_bytes([n; 16]),
            sender_id: SenderId::from_bytes([n | 0x80; 16]),
            recipient_key: [n; 32],
            send_cap_hash: [n; 32],
            last_active: 10,
        };
        a.create_queue(record).await.unwrap();
    }
    for n in 1..=4u8 {
        for i in 0..5u8 {
            let envelope = NewEnvelope {
                id: EnvelopeId::from_bytes([n * 16 + i; 16]),
                body: vec![i; 10],
                expires_at: if i < 3 { 100 } else { 5000 },
            };
            let sid = SenderId::from_bytes([n | 0x80; 16]);
            b.send(sid, [n; 32], envelope, None, quota, 900)
                .await
                .unwrap();
        }
    }
    let (on_a, on_b) = tokio::join!(a.sweep(1000, 500), b.sweep(1000, 500));
    let (on_a, on_b) = (on_a.unwrap(), on_b.unwrap());
    assert_eq!(on_a.expired_envelopes + on_b.expired_envelopes, 4 * 3);
    assert_eq!(on_a.idle_queues + on_b.idle_queues, 2);
    for n in 1..=6u8 {
        let rid = RecipientId::from_bytes([n; 16]);
        let left = a.pending(rid, 0, 100, 0).await.unwrap();
        assert_eq!(left.len(), if n <= 4 { 2 } else { 0 }, "queue {n}");
        assert_eq!(a.queue(rid).await.unwrap().is_some(), n <= 4, "queue {n}");
    }
    // A second round finds nothing left to do, on either node.
    assert_eq!(a.sweep(1000, 500).await.unwrap(), Default::default());
    assert_eq!(b.sweep(1000, 500).await.unwrap(), Default::default());
}
