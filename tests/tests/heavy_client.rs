//! A busy client is not refused by the relay's default request limits.
//!
//! A burst of chat messages sent the way `hush chat` sends them (one after another, each as
//! soon as the last was accepted, as when a long paste is sent line by line) and then a file
//! transfer, on a relay with its default limits: every message and the file reach the contact,
//! and the relay answers no request with `RateLimited`. The same burst on a relay with a tight
//! limit is refused, which shows that the counter this test reads does count refusals. The
//! request rates the burst reached are printed (`--nocapture`) for `docs/performance.md`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use hush_client::{Client, ClientEvent};
use hush_server::store::memory::MemoryStore;
use hush_server::RelayConfig;
use hush_tests::clients::pair;
use hush_tests::monitor::{sample, scrape};
use hush_tests::{TestRelay, DEADLINE};

/// Lines in the burst: a long paste.
const BURST: usize = 300;
/// The file sent after the burst: 4 MiB, 64 relay writes.
const FILE_BYTES: usize = 4 << 20;
/// The series counting requests answered `RateLimited`.
const RATE_LIMITED: &str = "hush_request_errors_total{code=\"rate_limited\"}";

fn relay(tune: impl FnOnce(&mut RelayConfig)) -> TestRelay {
    let dir = Arc::new(tempfile::tempdir().expect("tempdir"));
    TestRelay::wall_clock_on(MemoryStore::new(), dir, |c| {
        c.metrics = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
        tune(c);
    })
}

/// Requests answered `RateLimited` so far (the series appears with the first one).
async fn refused(relay: &TestRelay) -> f64 {
    let text = scrape(relay.handle.metrics_addr().expect("metrics")).await;
    sample(&text, RATE_LIMITED).unwrap_or(0.0)
}

/// Receives until `texts` texts and `files` files from `contact` have arrived.
async fn receive_all(client: &Client, contact: &str, texts: usize, files: usize) {
    let end = tokio::time::Instant::now() + DEADLINE;
    let (mut got_texts, mut got_files) = (0, 0);
    while got_texts < texts || got_files < files {
        let left = end.saturating_duration_since(tokio::time::Instant::now());
        assert!(
            !left.is_zero(),
            "deadline passed with {got_texts} texts and {got_files} files"
        );
        for event in client.receive(None, Some(left)).await.unwrap() {
            if let ClientEvent::Message {
                contact: c,
                message,
            } = event
            {
                if c == contact && message.file.is_some() {
                    got_files += 1;
                } else if c == contact {
                    got_texts += 1;
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chat_burst_and_a_file_transfer_are_not_refused_by_the_default_limits() {
    let relay = relay(|_| {});
    let (alice, bob, _ha, _hb) = pair(relay.address(), relay.address()).await;
    let src = tempfile::tempdir().unwrap();
    let path = src.path().join("slides.pdf");
    let data: Vec<u8> = (0..FILE_BYTES).map(|i| (i * 7 % 253) as u8).collect();
    std::fs::write(&path, &data).unwrap();

    let start = Instant::now();
    for n in 0..BURST {
        let line = format!("line {n} of a long paste");
        alice.send_text("bob", &line, None, false).await.unwrap();
    }
    let burst = start.elapsed();
    let start = Instant::now();
    alice
        .send_file("bob", &path, None, false, &|_| {})
        .await
        .unwrap();
    let upload = start.elapsed();
    receive_all(&bob, "alice", BURST, 1).await;

    assert_eq!(refused(&relay).await, 0.0, "a request was rate limited");
    let text = scrape(relay.handle.metrics_addr().unwrap()).await;
    let sends = sample(&text, "hush_sends_total").unwrap();
    assert!(
        sends >= (BURST + 1) as f64,
        "the relay counted {sends} sends"
    );
    println!(
        "burst: {BURST} texts in {:.3} s = {:.0} sends/s on one connection; \
         file: {FILE_BYTES} bytes in {:.3} s; relay totals: {sends} sends, {} acks",
        burst.as_secs_f64(),
        BURST as f64 / burst.as_secs_f64(),
        upload.as_secs_f64(),
        sample(&text, "hush_acks_total").unwrap_or(0.0),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_burst_on_a_tight_limit_is_refused_and_counted() {
    let relay = relay(|c| {
        c.requests_per_sec = 1;
        c.request_burst = 20;
    });
    let (alice, _bob, _ha, _hb) = pair(relay.address(), relay.address()).await;
    assert_eq!(refused(&relay).await, 0.0);
    let mut failed = 0;
    for n in 0..60 {
        let line = format!("line {n} of a long paste");
        if alice.send_text("bob", &line, None, false).await.is_err() {
            failed += 1;
        }
    }
    let count = refused(&relay).await;
    assert!(
        count >= 1.0,
        "no refusal counted ({failed} sends failed at the client)"
    );
}
