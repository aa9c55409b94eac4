//! What the NATS nodes' disks hold of an acknowledged envelope, before and after its ack.
//!
//! The bytes JetStream stores for an envelope (sealed under a key derived from the queue id)
//! are read back through the JetStream API, then searched for in every node's storage
//! directory: first while pending, to show the search finds them, then after the ack. The
//! stream's own message files must no longer hold them (JetStream erases: it overwrites the
//! message in place). The RAFT logs of the stream's replica group may still hold a copy until
//! NATS compacts them; the test reports where, and `docs/operations.md` says for how long.

use std::time::Duration;

use base64::Engine;
use hush_protocol::{EnvelopeId, RecipientId, SenderId};
use hush_server::store::jetstream::{JetStreamConfig, JetStreamStore};
use hush_server::store::{NewEnvelope, QueueRecord, QueueStore, Quota};
use hush_tests::forensic::{self, Pattern};
use hush_tests::nats::NatsCluster;
use sha2::{Digest, Sha256};

/// The queue stream, whose own files must no longer hold an acked envelope.
const STREAM: &str = "hush_queues";

const QUOTA: Quota = Quota {
    max_messages: 100,
    max_bytes: 1 << 20,
};

/// The payload JetStream holds as the last message of the queue's subject.
async fn stored_payload(urls: &[String], rid: &RecipientId) -> Vec<u8> {
    let client = async_nats::connect(urls[0].as_str())
        .await
        .expect("connect");
    let mut h = Sha256::new();
    h.update(b"hush-js-queue\0");
    h.update(rid.as_bytes());
    let subject = format!("hush.q.{}", hex::encode(h.finalize()));
    let body = serde_json::json!({ "last_by_subj": subject }).to_string();
    let reply = client
        .request("$JS.API.STREAM.MSG.GET.hush_queues", body.into())
        .await
        .expect("message get");
    let v: serde_json::Value = serde_json::from_slice(&reply.payload).expect("json");
    let data = v["message"]["data"].as_str().expect("stored message");
    base64::engine::general_purpose::STANDARD
        .decode(data)
        .expect("base64")
}

/// A JetStream store on `cluster` with one queue holding one envelope sent at time 1; returns
/// the store, the queue's recipient id and the envelope's id.
async fn one_pending_envelope(cluster: &NatsCluster) -> (JetStreamStore, RecipientId, EnvelopeId) {
    let store = JetStreamStore::open(&JetStreamConfig::new(cluster.urls()))
        .await
        .expect("open");
    let (rid, sid) = (
        RecipientId::from_bytes([7; 16]),
        SenderId::from_bytes([8; 16]),
    );
    let record = QueueRecord {
        recipient_id: rid,
        sender_id: sid,
        recipient_key: [9; 32],
        send_cap_hash: [10; 32],
        last_active: 0,
    };
    store.create_queue(record).await.unwrap();
    let id = EnvelopeId::from_bytes([11; 16]);
    let envelope = NewEnvelope {
        id,
        body: vec![0x5a; 700],
        expires_at: u64::MAX,
    };
    store
        .send(sid, [10; 32], envelope, None, QUOTA, 1)
        .await
        .unwrap();
    (store, rid, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acked_envelope_is_erased_from_every_nodes_stream_files() {
    let cluster = NatsCluster::start(3);
    let (store, rid, id) = one_pending_envelope(&cluster).await;
    // The tail of the sealed envelope: nonce-prefixed ciphertext, unique to this message.
    let payload = stored_payload(&cluster.urls(), &rid).await;
    let needle = &payload[payload.len() - 64..];
    let pattern = Pattern::bytes(needle);

    // While pending, every node's stream files hold it.
    cluster.await_in_stream_files(STREAM, &pattern).await;

    assert!(store.ack(rid, id, 2).await.unwrap());
    let left = cluster
        .await_gone_from_stream_files(STREAM, &pattern, "the acked envelope")
        .await;
    for (node, raft) in left.iter().enumerate() {
        eprintln!("node {node}: after the ack, still in {raft:?}");
    }
}

/// Measures how long the RAFT logs keep an acked envelope's bytes on a quiet cluster: polls
/// every node's storage until no file holds them (at most ten minutes), and prints the time.
/// A measurement for `docs/operations.md`, not a check: run it with `--ignored`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement that takes minutes"]
async fn how_long_raft_logs_keep_an_acked_envelope() {
    let cluster = NatsCluster::start(3);
    let (store, rid, id) = one_pending_envelope(&cluster).await;
    let payload = stored_payload(&cluster.urls(), &rid).await;
    let pattern = Pattern::bytes(&payload[payload.len() - 64..]);
    assert!(store.ack(rid, id, 2).await.unwrap());
    let acked = tokio::time::Instant::now();
    let deadline = acked + Duration::from_secs(600);
    for node in 0..3 {
        forensic::assert_can_see(&cluster.storage_dir(node), &pattern);
        loop {
            let files = cluster.files_holding(node, &pattern);
            if files.is_empty() {
                eprintln!("node {node}: no copy {:?} after the ack", acked.elapsed());
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "still in {files:?}");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}
