//! The relay's monitoring listener (`metrics`): counters that follow what clients do, a scrape
//! that names no id and no client address, a health check that fails when the store cannot
//! write, and a clear error when the address is taken.

use std::future::{ready, Future};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use hush_client::net::RelayCallError;
use hush_protocol::{EnvelopeId, ErrorCode, RecipientId, SenderId};
use hush_server::store::memory::MemoryStore;
use hush_server::store::sled_store::SledStore;
use hush_server::store::{QueueStore, StoreError};
use hush_server::{Relay, RelayConfig, RelayError};
use hush_tests::clients::{message_from, pair};
use hush_tests::intercept::{Call, Flow, Hooks, Intercept};
use hush_tests::monitor::{get, request, sample, scrape};
use hush_tests::{cap, envelope, key, TestRelay};

fn with_metrics(config: &mut RelayConfig) {
    config.metrics = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
}

fn metrics_addr<S: QueueStore>(relay: &TestRelay<S>) -> SocketAddr {
    relay.handle.metrics_addr().expect("metrics listener")
}

#[tokio::test]
async fn counters_follow_sends_acks_retracts_errors_and_connections() {
    let relay = TestRelay::start(with_metrics);
    let addr = metrics_addr(&relay);
    let before = scrape(addr).await;
    assert_eq!(sample(&before, "hush_sends_total"), Some(0.0));
    assert_eq!(sample(&before, "hush_connections_open"), Some(0.0));
    assert_eq!(sample(&before, "hush_queues"), Some(0.0));

    let client = relay.client().await;
    let (k, c) = (key(), cap());
    let (rid, sid) = client.create_queue(&k, &c).await.unwrap();
    let mut sent = Vec::new();
    for n in 0..3u8 {
        sent.push(client.send(sid, &c, 60, None, vec![n; 100]).await.unwrap());
    }
    let mid = scrape(addr).await;
    assert_eq!(sample(&mid, "hush_sends_total"), Some(3.0));
    assert_eq!(sample(&mid, "hush_queues"), Some(1.0));
    assert_eq!(sample(&mid, "hush_envelopes_pending"), Some(3.0));
    assert_eq!(sample(&mid, "hush_envelope_bytes_pending"), Some(300.0));
    assert_eq!(sample(&mid, "hush_connections_open"), Some(1.0));
    assert_eq!(sample(&mid, "hush_connections_total"), Some(1.0));

    assert!(client.retract(sid, &c, sent[2]).await.unwrap());
    client.subscribe(&k, rid).await.unwrap();
    for _ in 0..2 {
        let (id, _) = envelope(&client).await;
        client.ack(rid, id).await.unwrap();
    }
    let wrong = client.send(sid, &cap(), 60, None, vec![0; 10]).await;
    assert_eq!(wrong, Err(RelayCallError::Relay(ErrorCode::Auth)));

    let after = scrape(addr).await;
    assert_eq!(sample(&after, "hush_sends_total"), Some(3.0));
    assert_eq!(sample(&after, "hush_retracts_total"), Some(1.0));
    assert_eq!(sample(&after, "hush_acks_total"), Some(2.0));
    assert_eq!(sample(&after, "hush_envelopes_pending"), Some(0.0));
    assert_eq!(
        sample(&after, "hush_request_errors_total{code=\"auth\"}"),
        Some(1.0)
    );
    let version = format!(
        "hush_build_info{{version=\"{}\"}}",
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(sample(&after, &version), Some(1.0));
    assert!(sample(&after, "hush_data_disk_free_bytes").is_some_and(|v| v > 0.0));
    relay.stop().await;
}

/// Learns every id the clients' requests bring to the store.
#[derive(Default)]
struct Ids {
    queues: Mutex<Vec<RecipientId>>,
    senders: Mutex<Vec<SenderId>>,
    envelopes: Mutex<Vec<EnvelopeId>>,
}

impl Hooks<SledStore> for Ids {
    fn after(&self, _: &SledStore, call: &Call, ok: bool) -> impl Future<Output = ()> + Send {
        match call {
            Call::CreateQueue(q) if ok => {
                self.queues.lock().unwrap().push(q.recipient_id);
                self.senders.lock().unwrap().push(q.sender_id);
            }
            Call::Send { envelope, .. } if ok => self.envelopes.lock().unwrap().push(envelope.id),
            _ => {}
        }
        ready(())
    }
}

/// Every spelling of the 16 bytes `id` (named `name`) a scrape could carry: hex in both cases,
/// the id type's `Debug` form, and the raw bytes.
fn spellings(raw: [u8; 16], debug: String) -> Vec<Vec<u8>> {
    let lower: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    vec![
        lower.clone().into_bytes(),
        lower.to_uppercase().into_bytes(),
        debug.into_bytes(),
        raw.to_vec(),
    ]
}

fn found(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Whether `text` holds `port` as a whole number.
fn holds_number(text: &str, port: u16) -> bool {
    let port = port.to_string();
    text.split(|c: char| !c.is_ascii_digit()).any(|t| t == port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scrape_during_a_conversation_names_no_id_and_no_client_address() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let store = Intercept::new(SledStore::open(dir.path()).unwrap(), Ids::default());
    let relay = TestRelay::wall_clock_on(store, dir, with_metrics);
    relay.handle.connections().start();
    let (alice, bob, _ha, _hb) = pair(relay.address(), relay.address()).await;
    alice.send_text("bob", "first", None, false).await.unwrap();
    message_from(&bob, "alice").await;
    bob.send_text("alice", "second", None, false).await.unwrap();
    // Scraped while the conversation is live: Bob's answer may still be waiting in the store.
    let text = scrape(metrics_addr(&relay)).await;
    assert!(
        sample(&text, "hush_sends_total").is_some_and(|v| v >= 3.0),
        "{text}"
    );
    assert!(
        sample(&text, "hush_queues").is_some_and(|v| v >= 2.0),
        "{text}"
    );
    assert!(sample(&text, "hush_store_commit_seconds_count").is_some_and(|v| v >= 1.0));

    let ids = relay.handle.store().hooks();
    let mut needles = Vec::new();
    for q in ids.queues.lock().unwrap().iter() {
        needles.extend(spellings(*q.as_bytes(), format!("{q:?}")));
    }
    for s in ids.senders.lock().unwrap().iter() {
        needles.extend(spellings(*s.as_bytes(), format!("{s:?}")));
    }
    for e in ids.envelopes.lock().unwrap().iter() {
        needles.extend(spellings(*e.as_bytes(), format!("{e:?}")));
    }
    let conns = relay.handle.connections().snapshot();
    let remotes: Vec<SocketAddr> = conns.values().filter_map(|r| r.remote).collect();
    assert!(remotes.len() >= 2, "the clients' connections were recorded");
    assert!(
        needles.len() >= 4 * 5,
        "ids of both queues and three envelopes"
    );
    for remote in &remotes {
        needles.push(remote.to_string().into_bytes());
        needles.push(remote.ip().to_string().into_bytes());
    }
    // The search sees: every needle is found in a scrape that would carry them as labels.
    let mut known = text.clone().into_bytes();
    for n in &needles {
        known.extend_from_slice(b"\nhush_leak{id=\"");
        known.extend_from_slice(n);
        known.extend_from_slice(b"\"} 1");
    }
    for n in &needles {
        assert!(found(&known, n), "{:?}", String::from_utf8_lossy(n));
    }
    let known_text = format!("{text}\nhush_leak{{client=\"{remotes:?}\"}} 1\n");
    assert!(remotes.iter().all(|r| holds_number(&known_text, r.port())));
    // ... and finds none of them in the scrape.
    for n in &needles {
        assert!(
            !found(text.as_bytes(), n),
            "{:?} in\n{text}",
            String::from_utf8_lossy(n)
        );
    }
    for r in &remotes {
        assert!(
            !holds_number(&text, r.port()),
            "port {} in\n{text}",
            r.port()
        );
    }
    relay.stop().await;
}

/// A disk that fails every write while `failing` is on.
#[derive(Default)]
struct Faults {
    failing: AtomicBool,
}

impl<S: QueueStore> Hooks<S> for Faults {
    fn before(&self, _: &S, call: &Call) -> impl Future<Output = Flow> + Send {
        let fail = self.failing.load(Ordering::SeqCst) && call.is_write();
        ready(if fail {
            Flow::Fail(StoreError::transient("injected: no space left on device"))
        } else {
            Flow::Go
        })
    }
}

#[tokio::test]
async fn healthz_answers_200_while_the_store_writes_and_503_when_it_cannot() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let store = Intercept::new(SledStore::open(dir.path()).unwrap(), Faults::default());
    let relay = TestRelay::wall_clock_on(store, dir, with_metrics);
    let addr = metrics_addr(&relay);
    let ok = get(addr, "/healthz").await;
    assert_eq!((ok.status, ok.body.as_str()), (200, "ok\n"));
    relay
        .handle
        .store()
        .hooks()
        .failing
        .store(true, Ordering::SeqCst);
    assert_eq!(get(addr, "/healthz").await.status, 503);
    // The relay stays up and says so again once writes work.
    relay
        .handle
        .store()
        .hooks()
        .failing
        .store(false, Ordering::SeqCst);
    assert_eq!(get(addr, "/healthz").await.status, 200);
    // The probe leaves nothing behind in the data directory.
    let probe = relay.data_dir().join(hush_server::health::PROBE_FILE);
    assert!(!probe.exists());
    // Anything else is 404.
    assert_eq!(get(addr, "/").await.status, 404);
    assert_eq!(get(addr, "/metrics/x").await.status, 404);
    let post = request(addr, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n").await;
    assert_eq!(post.status, 404);
    relay.stop().await;
}

#[tokio::test]
async fn a_metrics_address_in_use_is_an_error_that_names_it() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = RelayConfig::loopback(dir.path());
    config.metrics = Some(addr);
    let err = Relay::bind(config, MemoryStore::new()).unwrap_err();
    assert!(
        matches!(err, RelayError::Metrics { addr: a, .. } if a == addr),
        "{err}"
    );
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
}

#[test]
fn the_binary_exits_non_zero_naming_a_metrics_address_in_use() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(hush_tests::cli::built("hush-server"))
        .args(["--listen", "127.0.0.1:0", "--metrics", &addr, "--data"])
        .arg(dir.path())
        .env_remove("HUSH_METRICS")
        .env_remove("HUSH_CONFIG")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&addr), "{stderr}");
    assert!(out.stdout.is_empty(), "no relay address printed");
}
