//! Hostile request streams over raw QUIC connections: a frame started and never finished, a
//! frame cut short by the end of the stream, a zero-length frame, refused connections and
//! failed handshakes. Each is closed (or refused) with a clear code and counted in the
//! metrics, and the relay keeps serving everyone else. A batched ack (`hush/2`) with no ids or
//! too many is answered `Malformed` and the connection goes on.

use std::net::SocketAddr;
use std::time::Duration;

use hush_client::net::{client_config_with_alpn, RelayCallError, RelayClient};
use hush_protocol::limits::{MAX_ACK_BATCH, MAX_FRAME_LEN};
use hush_protocol::{EnvelopeId, ErrorCode, Reply, Request};
use hush_server::RelayConfig;
use hush_tests::hostile::process::ServerProcess;
use hush_tests::hostile::raw::RawConnection;
use hush_tests::monitor::{sample, scrape, until_at_least};
use hush_tests::{cap, key, TestRelay};

/// A request deadline short enough for a test; the real one is ten seconds.
const SHORT_DEADLINE: Duration = Duration::from_millis(300);

fn tuned(config: &mut RelayConfig) {
    config.metrics = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    config.request_deadline = SHORT_DEADLINE;
}

fn code(c: ErrorCode) -> u64 {
    u64::from(c.to_u16())
}

async fn raw(relay: &TestRelay) -> RawConnection {
    RawConnection::open(&relay.address(), relay.handle.local_addr()).await
}

fn metrics(relay: &TestRelay) -> SocketAddr {
    relay.handle.metrics_addr().expect("metrics listener")
}

/// A Ping frame with request id `id`.
fn ping(id: u32) -> Vec<u8> {
    let mut frame = Vec::new();
    Request::Ping.encode_frame(id, &mut frame);
    frame
}

#[tokio::test]
async fn a_frame_started_and_never_finished_is_closed_with_request_timeout() {
    let relay = TestRelay::start(tuned);
    let idle = relay.client().await;
    let mut stalled = raw(&relay).await;
    // A whole ping is served; then a frame announcing 40 bytes gets 4 of them, and no more.
    stalled.write(&ping(1)).await;
    let mut partial = 40u32.to_be_bytes().to_vec();
    partial.extend([0, 0, 0, 2]);
    stalled.write(&partial).await;
    // QUIC keeps the connection alive; the relay's request deadline closes it.
    assert_eq!(stalled.close_code().await, code(ErrorCode::RequestTimeout));
    // A connection with no frame in progress is not affected, though it was silent longer.
    assert_eq!(idle.call(Request::Ping).await, Ok(Reply::Pong));
    let text = scrape(metrics(&relay)).await;
    let series = "hush_connections_closed_total{code=\"request_timeout\"}";
    assert_eq!(sample(&text, series), Some(1.0), "{text}");
    relay.stop().await;
}

#[tokio::test]
async fn a_frame_sent_slowly_but_whole_within_the_deadline_is_served() {
    let relay = TestRelay::start(|c| c.request_deadline = Duration::from_secs(20));
    let mut slow = raw(&relay).await;
    let frame = ping(1);
    // Byte by byte, each write its own QUIC packet: one frame in many reads.
    for b in &frame {
        slow.write(std::slice::from_ref(b)).await;
        tokio::task::yield_now().await;
    }
    slow.write(&ping(2)).await;
    slow.finish();
    // The relay answers and, at the clean end of the stream, closes with code 0.
    assert_eq!(slow.close_code().await, 0);
    relay.stop().await;
}

#[tokio::test]
async fn a_frame_cut_short_by_the_end_of_the_stream_is_malformed() {
    let relay = TestRelay::start(tuned);
    let mut cut = raw(&relay).await;
    let mut frame = ping(1);
    frame.truncate(frame.len() - 1);
    cut.write(&frame).await;
    cut.finish();
    assert_eq!(cut.close_code().await, code(ErrorCode::Malformed));
    // A whole frame then the end of the stream is a client that left: code 0.
    let mut clean = raw(&relay).await;
    clean.write(&ping(1)).await;
    clean.finish();
    assert_eq!(clean.close_code().await, 0);
    let text = scrape(metrics(&relay)).await;
    let series = "hush_connections_closed_total{code=\"malformed\"}";
    assert_eq!(sample(&text, series), Some(1.0), "{text}");
    relay.stop().await;
}

#[tokio::test]
async fn zero_length_oversize_and_cut_frames_all_close_as_malformed_and_are_counted() {
    let relay = TestRelay::start(tuned);
    let mut zero = raw(&relay).await;
    zero.write(&0u32.to_be_bytes()).await;
    assert_eq!(zero.close_code().await, code(ErrorCode::Malformed));
    let mut short = raw(&relay).await;
    short.write(&[0, 0, 0, 2, 0, 0]).await;
    assert_eq!(short.close_code().await, code(ErrorCode::Malformed));
    let mut huge = raw(&relay).await;
    huge.write(&((MAX_FRAME_LEN + 1) as u32).to_be_bytes())
        .await;
    assert_eq!(huge.close_code().await, code(ErrorCode::Malformed));
    // One rule for all three: each is counted the same way.
    let text = scrape(metrics(&relay)).await;
    let series = "hush_connections_closed_total{code=\"malformed\"}";
    assert_eq!(sample(&text, series), Some(3.0), "{text}");
    assert_eq!(
        relay.client().await.call(Request::Ping).await,
        Ok(Reply::Pong)
    );
    relay.stop().await;
}

#[tokio::test]
async fn refused_connections_and_failed_handshakes_are_counted_by_cause() {
    let relay = TestRelay::start(|c| {
        tuned(c);
        c.max_connections = 1;
    });
    let first = relay.client().await;
    for _ in 0..5 {
        let refused = RelayClient::connect(relay.handle.address()).await;
        assert_eq!(refused.err(), Some(RelayCallError::Refused));
    }
    let text = scrape(metrics(&relay)).await;
    let series = "hush_connections_refused_total{cause=\"connection_limit\"}";
    assert_eq!(sample(&text, series), Some(5.0), "{text}");
    assert_eq!(first.call(Request::Ping).await, Ok(Reply::Pong));
    drop(first);
    relay.stop().await;

    // A client speaking another protocol (ALPN) fails its handshake; the relay counts it.
    let relay = TestRelay::start(tuned);
    let config = client_config_with_alpn(relay.address().fingerprint, b"not-hush").unwrap();
    let wrong = RelayClient::connect_with(relay.handle.local_addr(), "localhost", config).await;
    assert!(wrong.is_err());
    let series = "hush_connections_refused_total{cause=\"handshake_failed\"}";
    until_at_least(metrics(&relay), series, 1.0).await;
    assert_eq!(
        relay.client().await.call(Request::Ping).await,
        Ok(Reply::Pong)
    );
    relay.stop().await;
}

#[tokio::test]
async fn every_kind_of_broken_frame_is_logged_the_same_way() {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("relay.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let data = dir.path().join("data");
    let filter = Some(("hush_server=debug", log));
    let relay = ServerProcess::start_logging(&data, "127.0.0.1:0", &[], filter);
    let sock = relay.socket_addr();
    // A zero-length frame, one too short for a request id, and one announcing 66,561 bytes
    // (one over the limit).
    let broken: [&[u8]; 3] = [&0u32.to_be_bytes(), &[0, 0, 0, 2, 0, 0], &[0, 1, 4, 1]];
    assert_eq!(u32::from_be_bytes([0, 1, 4, 1]) as usize, MAX_FRAME_LEN + 1);
    for bytes in broken {
        let mut c = RawConnection::open(&relay.address, sock).await;
        c.write(bytes).await;
        assert_eq!(c.close_code().await, code(ErrorCode::Malformed));
    }
    let mut cut = RawConnection::open(&relay.address, sock).await;
    cut.write(&[0, 0, 0, 9, 0]).await;
    cut.finish();
    assert_eq!(cut.close_code().await, code(ErrorCode::Malformed));
    // Each was logged before its close, with the same line and its reason.
    let text = std::fs::read_to_string(&log_path).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| l.contains("bad framing")).collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(
        lines
            .iter()
            .all(|l| l.contains("DEBUG") && l.contains("reason")),
        "{text}"
    );
}

#[tokio::test]
async fn a_flood_of_refused_connections_writes_one_log_line_not_one_per_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("relay.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let data = dir.path().join("data");
    let extra = ["--max-connections", "1"];
    let relay = ServerProcess::start_logging(&data, "127.0.0.1:0", &extra, Some(("info", log)));
    let held = relay.client().await;
    for _ in 0..20 {
        let refused = RelayClient::connect(&relay.address).await;
        assert_eq!(refused.err(), Some(RelayCallError::Refused));
    }
    assert_eq!(held.call(Request::Ping).await, Ok(Reply::Pong));
    // The first refusal is logged at once; the other 19 wait for the next summary (a minute).
    let text = std::fs::read_to_string(&log_path).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| l.contains("refus")).collect();
    assert_eq!(lines.len(), 1, "{text}");
    assert!(lines[0].contains("connection_limit=1"), "{text}");
}

#[tokio::test]
async fn an_ack_many_with_no_ids_or_too_many_is_malformed_and_the_connection_goes_on() {
    let relay = TestRelay::start(|_| {});
    let client = relay.client().await;
    let (k, c) = (key(), cap());
    let (rid, _) = client.create_queue(&k, &c).await.unwrap();
    client.subscribe(&k, rid).await.unwrap();
    let ack_many = |n: usize| Request::AckMany {
        recipient_id: rid,
        envelope_ids: vec![EnvelopeId([1; 16]); n],
    };
    // The most ids a request may carry is accepted (acks of unknown envelopes succeed).
    assert_eq!(client.call(ack_many(MAX_ACK_BATCH)).await, Ok(Reply::Done));
    for n in [0, MAX_ACK_BATCH + 1] {
        assert_eq!(
            client.call(ack_many(n)).await,
            Err(RelayCallError::Relay(ErrorCode::Malformed)),
            "{n} ids"
        );
    }
    assert_eq!(client.call(Request::Ping).await, Ok(Reply::Pong));
}
