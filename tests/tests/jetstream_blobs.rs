//! Blobs on the NATS JetStream cluster, with two relay nodes sharing one certificate: an upload
//! and a download started through one node resume through the other; capabilities and every
//! refusal hold as on the local store; two nodes appending at once cannot interleave; two nodes
//! sweeping at once delete each expired blob once; a deleted blob's bytes leave the NATS
//! nodes' stream files; and with NATS gone a blob request gets the retryable `Storage` code
//! while the relay stays up, and works again when NATS is back.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hush_client::net::{RelayCallError, RelayClient};
use hush_protocol::limits::MAX_BLOB_CHUNK;
use hush_protocol::{BlobCapability, BlobId, ErrorCode};
use hush_server::blob::jetstream::JetStreamBlobs;
use hush_server::blob::{BlobError, BlobLimits};
use hush_server::store::jetstream::{JetStreamConfig, JetStreamStore};
use hush_server::tls::{CERT_FILE, KEY_FILE};
use hush_tests::blobs::{blob_caps, download, random_bytes, upload};
use hush_tests::forensic::Pattern;
use hush_tests::nats::NatsCluster;
use hush_tests::{TestRelay, DEADLINE};

const STREAM: &str = "hush_blobs";

fn limits() -> BlobLimits {
    BlobLimits {
        max_bytes: 4 << 20,
        budget_bytes: 16 << 20,
        max_ttl_secs: 3600,
    }
}

fn refused(code: ErrorCode) -> RelayCallError {
    RelayCallError::Relay(code)
}

async fn blobs(cluster: &NatsCluster, limits: BlobLimits) -> JetStreamBlobs {
    JetStreamBlobs::open(&JetStreamConfig::new(cluster.urls()), limits)
        .await
        .expect("open the JetStream blob backend")
}

async fn node(cluster: &NatsCluster, dir: Arc<tempfile::TempDir>) -> TestRelay<JetStreamStore> {
    let store = JetStreamStore::open(&JetStreamConfig::new(cluster.urls()))
        .await
        .expect("open the JetStream store");
    let backend = blobs(cluster, limits()).await.into();
    TestRelay::wall_clock_with_blobs(store, backend, dir, |c| {
        let l = limits();
        c.blob_max_bytes = l.max_bytes;
        c.blob_budget_bytes = l.budget_bytes;
    })
}

/// Two relay nodes on the cluster with blobs on it, sharing one certificate.
async fn two_nodes(
    cluster: &NatsCluster,
) -> (TestRelay<JetStreamStore>, TestRelay<JetStreamStore>) {
    let dir_a = Arc::new(tempfile::tempdir().expect("tempdir"));
    let a = node(cluster, dir_a.clone()).await;
    let dir_b = Arc::new(tempfile::tempdir().expect("tempdir"));
    for file in [CERT_FILE, KEY_FILE] {
        std::fs::copy(dir_a.path().join(file), dir_b.path().join(file)).expect("copy identity");
    }
    let b = node(cluster, dir_b).await;
    assert_eq!(a.address().fingerprint, b.address().fingerprint);
    (a, b)
}

/// Whether neither node's data directory holds a blob file (they stay on NATS).
fn no_local_blob_files(nodes: &[&TestRelay<JetStreamStore>]) -> bool {
    nodes
        .iter()
        .all(|n| hush_tests::blobs::blob_files(n.data_dir()).is_empty())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_and_a_download_started_through_one_node_finish_through_the_other() {
    let cluster = NatsCluster::start(3);
    let (a, b) = two_nodes(&cluster).await;
    let (on_a, on_b) = (a.client().await, b.client().await);
    let (w, r) = blob_caps();
    let data = random_bytes(7 * MAX_BLOB_CHUNK + 1234);
    let (id, expires_at) = on_a
        .blob_create(&w, &r, data.len() as u64, 600)
        .await
        .unwrap();
    // Three chunks through A, then the uploader moves to B and resumes where B says.
    upload(&on_a, id, &w, &data[..3 * MAX_BLOB_CHUNK], 0)
        .await
        .unwrap();
    let st = on_b.blob_status(id, &r).await.unwrap();
    assert_eq!(
        (st.total_len, st.committed, st.expires_at),
        (data.len() as u64, 3 * MAX_BLOB_CHUNK as u64, expires_at)
    );
    assert_eq!(
        on_b.blob_read(id, &r, 0, 10).await,
        Err(refused(ErrorCode::BlobIncomplete))
    );
    upload(&on_b, id, &w, &data, st.committed as usize)
        .await
        .unwrap();
    assert!(on_a.blob_status(id, &w).await.unwrap().is_complete());
    // The download starts through A in odd-sized reads, and resumes through B.
    let mut got = Vec::new();
    while got.len() < data.len() / 2 {
        got.extend(
            on_a.blob_read(id, &r, got.len() as u64, 40_000)
                .await
                .unwrap(),
        );
    }
    while got.len() < data.len() {
        got.extend(
            on_b.blob_read(id, &r, got.len() as u64, 40_000)
                .await
                .unwrap(),
        );
    }
    assert_eq!(got, data);
    // Whole through B in full chunks, and ranges out of order (found by a search, or read
    // forward from this node's last position).
    let full = download(&on_b, id, &r, data.len(), MAX_BLOB_CHUNK as u32);
    assert_eq!(full.await.unwrap(), data);
    for (at, len) in [
        (5 * MAX_BLOB_CHUNK + 3, 60_000usize),
        (100, 1000),
        (0, 1),
        (6 * MAX_BLOB_CHUNK + 10, 5000),
    ] {
        let part = on_a.blob_read(id, &r, at as u64, len as u32).await.unwrap();
        assert_eq!(part, data[at..(at + len).min(data.len())]);
    }
    let tail = on_b.blob_read(id, &r, data.len() as u64 - 5, 1000).await;
    assert_eq!(tail.unwrap(), data[data.len() - 5..]);
    assert!(no_local_blob_files(&[&a, &b]));
    // Deleted through B: A finds nothing, and a second delete is refused the same way.
    on_b.blob_delete(id, &r).await.unwrap();
    assert_eq!(
        on_a.blob_read(id, &r, 0, 10).await,
        Err(refused(ErrorCode::NoBlob))
    );
    assert_eq!(
        on_a.blob_status(id, &w).await,
        Err(refused(ErrorCode::NoBlob))
    );
    assert_eq!(
        on_a.blob_delete(id, &w).await,
        Err(refused(ErrorCode::NoBlob))
    );
    // Nothing of it is left in the stream.
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while cluster.stream_state(0, STREAM).map(|s| s.0) != Some(0) {
        assert!(tokio::time::Instant::now() < deadline, "blob messages left");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capabilities_and_every_refusal_hold_on_jetstream_and_the_relays_keep_serving() {
    let cluster = NatsCluster::start(3);
    let (a, b) = two_nodes(&cluster).await;
    let (on_a, on_b) = (a.client().await, b.client().await);
    let (w, r) = blob_caps();
    let (other, _) = blob_caps();
    let data = random_bytes(MAX_BLOB_CHUNK + 10);
    let (id, _) = on_a
        .blob_create(&w, &r, data.len() as u64, 0)
        .await
        .unwrap();
    let no_blob = Some(refused(ErrorCode::NoBlob));
    // Writing needs the write capability; a wrong one looks like no blob at all.
    assert_eq!(on_b.blob_write(id, &r, 0, vec![1]).await.err(), no_blob);
    assert_eq!(on_b.blob_write(id, &other, 0, vec![1]).await.err(), no_blob);
    assert_eq!(on_b.blob_status(id, &other).await.err(), no_blob);
    assert_eq!(on_b.blob_delete(id, &other).await.err(), no_blob);
    assert_eq!(
        on_b.blob_write(BlobId([7; 16]), &w, 0, vec![1]).await.err(),
        no_blob
    );
    assert_eq!(
        on_b.blob_write(id, &w, 5, vec![1]).await,
        Err(refused(ErrorCode::BlobOffset))
    );
    upload(&on_a, id, &w, &data, 0).await.unwrap();
    assert_eq!(
        on_b.blob_write(id, &w, data.len() as u64, vec![1]).await,
        Err(refused(ErrorCode::TooLarge))
    );
    // Reading needs the read capability.
    assert_eq!(on_b.blob_read(id, &w, 0, 10).await.err(), no_blob);
    assert_eq!(on_b.blob_read(id, &other, 0, 10).await.err(), no_blob);
    assert_eq!(
        on_b.blob_read(id, &r, 0, MAX_BLOB_CHUNK as u32 + 1).await,
        Err(refused(ErrorCode::Malformed))
    );
    assert_eq!(
        on_b.blob_read(id, &r, data.len() as u64 + 1, 10).await,
        Err(refused(ErrorCode::Malformed))
    );
    assert_eq!(on_b.blob_read(id, &r, 0, 10).await.unwrap(), data[..10]);
    // Creation: equal capabilities, too large (the budget has its own test below).
    assert_eq!(
        on_a.blob_create(&w, &w, 10, 0).await,
        Err(refused(ErrorCode::Malformed))
    );
    assert_eq!(
        on_a.blob_create(&w, &r, limits().max_bytes + 1, 0).await,
        Err(refused(ErrorCode::TooLarge))
    );
    // Either capability deletes it.
    on_b.blob_delete(id, &w).await.unwrap();
    assert_eq!(on_a.blob_read(id, &r, 0, 10).await.err(), no_blob);
    // Both relays still serve.
    let (w3, r3) = blob_caps();
    for client in [&on_a, &on_b] {
        let (id, _) = client.blob_create(&w3, &r3, 3, 0).await.unwrap();
        assert_eq!(client.blob_write(id, &w3, 0, vec![1, 2, 3]).await, Ok(3));
    }
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_appending_at_once_never_leave_a_gap_or_a_mixed_chunk() {
    let cluster = NatsCluster::start(3);
    let (a, b) = (
        blobs(&cluster, limits()).await,
        blobs(&cluster, limits()).await,
    );
    let (w, r) = blob_caps();
    let id = a.create(&w, &r, 10_000, 0, 1000).await.unwrap().id;
    let (mut refused, mut both) = (0, 0);
    for round in 0..10u64 {
        let at = round * 1000;
        let (x, y) = tokio::join!(
            a.write(id, &w, at, vec![1; 1000], 1000),
            b.write(id, &w, at, vec![2; 1000], 1000)
        );
        // One lands and the other is told where the blob now ends, or (a clustered
        // nats-server 2.9 race, see `blob/jetstream/mod.rs`) both land at the same offset.
        match (x, y) {
            (Ok(n), Err(BlobError::Offset { committed }))
            | (Err(BlobError::Offset { committed }), Ok(n)) => {
                assert_eq!((n, committed), (at + 1000, at + 1000));
                refused += 1;
            }
            (Ok(n), Ok(m)) => {
                assert_eq!((n, m), (at + 1000, at + 1000));
                both += 1;
            }
            other => panic!("round {round}: {other:?}"),
        }
    }
    eprintln!("{refused} rounds refused the second write, {both} stored both");
    assert!(refused > 0, "the expected sequence was never enforced");
    let st = b.status(id, &r, 1000).await.unwrap();
    assert_eq!(st.committed, 10_000);
    // Every range reads whole and each 1000-byte write comes back unmixed, from either node,
    // in sequence and by search.
    let mut first_read: Option<Vec<u8>> = None;
    for node in [&a, &b] {
        let mut all = Vec::new();
        while all.len() < 10_000 {
            all.extend(
                node.read(id, &r, all.len() as u64, 700, 1000)
                    .await
                    .unwrap(),
            );
        }
        for block in all.chunks(1000) {
            assert!(block.iter().all(|&x| x == block[0]), "a mixed write");
        }
        let part = node.read(id, &r, 4500, 1000, 1000).await.unwrap();
        assert_eq!(part, all[4500..5500]);
        // Both nodes read the same bytes.
        assert_eq!(first_read.get_or_insert_with(|| all.clone()), &all);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_sweeping_at_once_delete_each_expired_blob_once() {
    let cluster = NatsCluster::start(3);
    let (a, b) = (
        blobs(&cluster, limits()).await,
        blobs(&cluster, limits()).await,
    );
    let now = 1_000_000;
    let mut expiring = Vec::new();
    for i in 0..4u64 {
        let (w, r) = blob_caps();
        let c = a.create(&w, &r, 3000, 60, now).await.unwrap();
        // Some complete, some part-way, one empty.
        let written = [3000usize, 1000, 2000, 0][i as usize];
        if written > 0 {
            b.write(c.id, &w, 0, vec![i as u8; written], now)
                .await
                .unwrap();
        }
        expiring.push((c.id, r));
    }
    let (w, r) = blob_caps();
    let lasting = b.create(&w, &r, 10, 3000, now).await.unwrap().id;
    a.write(lasting, &w, 0, vec![9; 10], now).await.unwrap();
    let (on_a, on_b) = tokio::join!(a.sweep(now + 60), b.sweep(now + 60));
    assert_eq!(on_a.unwrap() + on_b.unwrap(), 4);
    for (id, r) in &expiring {
        assert!(matches!(
            a.status(*id, r, now).await,
            Err(BlobError::NotFound)
        ));
    }
    assert_eq!(
        b.read(lasting, &r, 0, 100, now + 60).await.unwrap(),
        [9; 10]
    );
    assert_eq!(a.sweep(now + 60).await.unwrap(), 0);
    assert_eq!(b.sweep(now + 60).await.unwrap(), 0);
    // Only the lasting blob's meta message and its one chunk are left.
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while cluster.stream_state(0, STREAM).map(|s| s.0) != Some(2) {
        let state = cluster.stream_state(0, STREAM);
        assert!(tokio::time::Instant::now() < deadline, "left: {state:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_budget_refuses_new_blobs_and_writes_past_it_until_a_blob_is_deleted() {
    let cluster = NatsCluster::start(3);
    let small = BlobLimits {
        max_bytes: 200_000,
        budget_bytes: 300_000,
        max_ttl_secs: 3600,
    };
    let store = blobs(&cluster, small).await;
    let put = |id, w, at: u64, len: usize| {
        let store = store.clone();
        async move { store.write(id, &w, at, vec![7; len], 1).await }
    };
    // Both fit while nothing is stored.
    let (w1, r1) = blob_caps();
    let first = store.create(&w1, &r1, 200_000, 0, 1).await.unwrap().id;
    let (w2, r2) = blob_caps();
    let second = store.create(&w2, &r2, 100_000, 0, 1).await.unwrap().id;
    for i in 0..4u64 {
        put(first, w1.clone(), i * 50_000, 50_000).await.unwrap();
    }
    // 200,000 bytes stored: another 200,000 would pass the budget.
    let (w3, r3) = blob_caps();
    assert!(matches!(
        store.create(&w3, &r3, 200_000, 0, 1).await,
        Err(BlobError::NoSpace)
    ));
    // The second one's writes meet the stream's byte limit part-way.
    let mut at = 0;
    let refused = loop {
        match put(second, w2.clone(), at, 50_000).await {
            Ok(n) => at = n,
            Err(e) => break e,
        }
        assert!(at < 100_000, "the byte limit never refused a write");
    };
    assert!(matches!(refused, BlobError::NoSpace), "{refused:?}");
    // Deleting the first blob makes room: the upload resumes where it stopped.
    store.delete(first, &r1, 1).await.unwrap();
    while at < 100_000 {
        at = put(second, w2.clone(), at, 50_000).await.unwrap();
    }
    assert_eq!(
        store.read(second, &r2, 99_990, 100, 1).await.unwrap(),
        [7; 10]
    );
}

/// Every file under `dir`, relative to it.
fn files_under(dir: &Path) -> Vec<String> {
    hush_tests::blobs::files_under(dir)
        .into_iter()
        .map(|p| p.strip_prefix(dir).unwrap_or(&p).display().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_blob_is_erased_from_every_nodes_stream_files() {
    let cluster = NatsCluster::start(3);
    let store = blobs(&cluster, limits()).await;
    let (w, r) = blob_caps();
    let marker = b"hush-blob-marker-7d1f0c5e-in-the-uploaded-bytes";
    let mut data = random_bytes(3 * MAX_BLOB_CHUNK);
    data[70_000..70_000 + marker.len()].copy_from_slice(marker);
    // Another blob's chunks before and after, so the message block holding the marker stays
    // in use and only an erasure (not the removal of an emptied block) can clear it.
    let (kw, kr) = blob_caps();
    let keeper = store.create(&kw, &kr, 2000, 0, 1).await.unwrap().id;
    store.write(keeper, &kw, 0, vec![3; 1000], 1).await.unwrap();
    let id = store
        .create(&w, &r, data.len() as u64, 0, 1)
        .await
        .unwrap()
        .id;
    for (i, chunk) in data.chunks(MAX_BLOB_CHUNK).enumerate() {
        let at = (i * MAX_BLOB_CHUNK) as u64;
        store.write(id, &w, at, chunk.to_vec(), 1).await.unwrap();
    }
    store
        .write(keeper, &kw, 1000, vec![4; 1000], 1)
        .await
        .unwrap();
    let pattern = Pattern::bytes(marker);
    // While the blob exists, every node's stream files hold the marker.
    cluster.await_in_stream_files(STREAM, &pattern).await;
    store.delete(id, &r, 2).await.unwrap();
    assert_eq!(
        store.read(keeper, &kr, 0, 2000, 2).await.unwrap().len(),
        2000
    );
    let left = cluster
        .await_gone_from_stream_files(STREAM, &pattern, "the deleted blob")
        .await;
    for (node, raft) in left.iter().enumerate() {
        eprintln!("node {node}: after the deletion, still in {raft:?}");
        assert!(
            files_under(&cluster.storage_dir(node))
                .iter()
                .any(|f| f.contains(&format!("streams/{STREAM}/msgs/"))),
            "node {node}: the stream's message blocks are gone altogether"
        );
    }
}

/// Asks for the blob's status until it answers, or fails the test at the deadline.
async fn status_when_back(client: &RelayClient, id: BlobId, cap: &BlobCapability) -> u64 {
    let deadline = tokio::time::Instant::now() + 3 * DEADLINE;
    loop {
        match client.blob_status(id, cap).await {
            Ok(st) => return st.committed,
            Err(e) => {
                assert_eq!(e, refused(ErrorCode::Storage), "not the retryable code");
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "NATS never came back"
                );
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_nats_gone_blob_requests_are_refused_retryably_and_work_again_when_it_returns() {
    let mut cluster = NatsCluster::start(3);
    let dir = Arc::new(tempfile::tempdir().expect("tempdir"));
    let relay = node(&cluster, dir).await;
    let client = relay.client().await;
    let (w, r) = blob_caps();
    let data = random_bytes(2 * MAX_BLOB_CHUNK);
    let (id, _) = client
        .blob_create(&w, &r, data.len() as u64, 0)
        .await
        .unwrap();
    upload(&client, id, &w, &data[..MAX_BLOB_CHUNK], 0)
        .await
        .unwrap();

    cluster.kill_all();
    let storage = Err(refused(ErrorCode::Storage));
    assert_eq!(
        client.blob_status(id, &r).await.map(|s| s.committed),
        storage
    );
    let chunk = data[MAX_BLOB_CHUNK..].to_vec();
    assert_eq!(
        client
            .blob_write(id, &w, MAX_BLOB_CHUNK as u64, chunk)
            .await,
        storage
    );
    let (w2, r2) = blob_caps();
    assert_eq!(
        client.blob_create(&w2, &r2, 10, 0).await.map(|c| c.0),
        Err(refused(ErrorCode::Storage))
    );
    // The relay is up: it takes a new connection, which gets the same answer.
    let another = relay.client().await;
    assert_eq!(
        another.blob_status(id, &w).await.map(|s| s.committed),
        storage
    );

    cluster.restart_all();
    let committed = status_when_back(&client, id, &r).await;
    assert_eq!(
        committed, MAX_BLOB_CHUNK as u64,
        "the acknowledged chunk was kept"
    );
    upload(&client, id, &w, &data, committed as usize)
        .await
        .unwrap();
    let back = download(&client, id, &r, data.len(), MAX_BLOB_CHUNK as u32);
    assert_eq!(back.await.unwrap(), data);
    relay.stop().await;
}
