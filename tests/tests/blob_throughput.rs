//! Blob throughput on loopback: 16 uploads in flight on one connection, then 16 downloads,
//! 256 MiB each way through a real relay. Ignored by default because it is a measurement; run
//! it in release:
//!
//! ```sh
//! cargo test --release -p hush-tests --test blob_throughput -- --ignored --nocapture
//! ```
//!
//! It checks that every byte comes back as uploaded, and prints the rates; it asserts no
//! duration. The relay's request rate is raised so that the figure is the blob path's own.

use std::sync::Arc;
use std::time::Instant;

use hush_protocol::limits::MAX_BLOB_CHUNK;
use hush_tests::blobs::{blob_caps, random_bytes};
use hush_tests::TestRelay;

/// Blobs transferred at once, each with one request in flight: 16 requests on the connection.
const IN_FLIGHT: usize = 16;
/// Size of each blob.
const BLOB_LEN: u64 = 16 << 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement; run in release with --ignored --nocapture"]
async fn sixteen_chunks_in_flight_each_way() {
    let relay = TestRelay::start(|c| {
        c.requests_per_sec = 1_000_000;
        c.request_burst = 1_000_000;
    });
    let client = Arc::new(relay.client().await);
    let mut blobs = Vec::new();
    for _ in 0..IN_FLIGHT {
        let (w, r) = blob_caps();
        let (id, _) = client.blob_create(&w, &r, BLOB_LEN, 0).await.unwrap();
        blobs.push((id, w, r, Arc::new(random_bytes(MAX_BLOB_CHUNK))));
    }
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (id, w, _, chunk) in blobs.clone() {
        let c = client.clone();
        tasks.push(tokio::spawn(async move {
            let mut at = 0;
            while at < BLOB_LEN {
                at = c.blob_write(id, &w, at, chunk.to_vec()).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let up = started.elapsed();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (id, _, r, chunk) in blobs {
        let c = client.clone();
        tasks.push(tokio::spawn(async move {
            let mut at = 0;
            while at < BLOB_LEN {
                let data = c
                    .blob_read(id, &r, at, MAX_BLOB_CHUNK as u32)
                    .await
                    .unwrap();
                assert_eq!(data, *chunk, "bytes at {at} came back changed");
                at += data.len() as u64;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let down = started.elapsed();
    let mb = (BLOB_LEN * IN_FLIGHT as u64) as f64 / 1e6;
    println!(
        "upload {:.0} MB/s, download {:.0} MB/s ({mb:.0} MB each way)",
        mb / up.as_secs_f64(),
        mb / down.as_secs_f64()
    );
    relay.stop().await;
}
