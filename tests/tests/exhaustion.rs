//! Resource exhaustion against the `hush-server` binary: each attack meets its cap with a typed
//! error (or a refused or closed connection), a well-behaved client on the same relay keeps
//! sending and receiving between the attack's steps, and the relay's memory stays bounded.
//!
//! Memory is read from `/proc/<pid>/status` of the relay process: `VmRSS` before the attack,
//! `VmHWM` (the peak) and `VmRSS` after it. Each test prints the three figures and asserts only
//! that the peak rose less than a generous limit above the figure before: far more than the
//! attack needs when every cap holds, far less than it would cost if one buffered without
//! bound. The figures are in docs/performance.md ("Relay under attack").
//!
//! Limits are set low through the binary's flags so the attacks stay small. Needs the relay
//! binary built first (`cargo build -p hush-server --bin hush-server`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use hush_client::net::{client_config, RelayCallError, RelayClient};
use hush_protocol::limits::{MAX_BIDI_STREAMS, MAX_FRAME_LEN};
use hush_protocol::{
    ErrorCode, FrameDecoder, RecipientId, Reply, Request, SendCapability, SenderId, ServerFrame,
};
use hush_tests::hostile::process::{Memory, ServerProcess};
use hush_tests::hostile::raw::{HandshakeHole, StalledReader};
use hush_tests::{cap, drained, envelope, key, DEADLINE};
use tokio::task::JoinSet;

/// How far the relay's peak memory may rise above its figure before an attack, in MiB.
/// An idle relay holds about 31 MiB (debug build); every attack here costs it a few MiB
/// when its cap holds.
const GROWTH_LIMIT_MIB: u64 = 64;

/// A client that minds its own business on the attacked relay: it owns a queue, sends to it
/// and receives and acks what it sent.
struct Bystander {
    client: RelayClient,
    rid: RecipientId,
    sid: SenderId,
    cap: SendCapability,
    sent: u32,
}

impl Bystander {
    async fn join(relay: &ServerProcess) -> Self {
        let client = relay.client().await;
        let (k, c) = (key(), cap());
        let (rid, sid) = client.create_queue(&k, &c).await.expect("bystander queue");
        client
            .subscribe(&k, rid)
            .await
            .expect("bystander subscribe");
        assert!(drained(&client, rid).await.is_empty());
        Self {
            client,
            rid,
            sid,
            cap: c,
            sent: 0,
        }
    }

    /// Sends one message, receives it, and acks it: the relay still serves this client.
    async fn round_trip(&mut self) {
        self.sent += 1;
        let body = format!("bystander message {}", self.sent).into_bytes();
        let id = self
            .client
            .send(self.sid, &self.cap, 600, None, body.clone())
            .await
            .expect("bystander send");
        assert_eq!(envelope(&self.client).await, (id, body));
        self.client.ack(self.rid, id).await.expect("bystander ack");
    }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Prints the relay's memory before, at peak and after an attack, and fails if the peak rose
/// more than `limit_mib` above the figure before.
fn check_memory(attack: &str, relay: &ServerProcess, before: Memory, limit_mib: u64) {
    let after = relay.memory();
    eprintln!(
        "relay memory, {attack}: before {:.1} MiB, peak {:.1} MiB, after {:.1} MiB",
        mib(before.rss_kib),
        mib(after.hwm_kib),
        mib(after.rss_kib)
    );
    let growth = after.hwm_kib.saturating_sub(before.rss_kib);
    assert!(
        growth < limit_mib * 1024,
        "{attack}: relay memory grew by {:.1} MiB (limit {limit_mib} MiB)",
        mib(growth)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_frames_close_the_connection_without_allocating_the_claim() {
    let data = tempfile::tempdir().unwrap();
    let relay = ServerProcess::start(data.path(), "127.0.0.1:0", &[]);
    let mut bystander = Bystander::join(&relay).await;
    let before = relay.memory();
    for i in 0..16u32 {
        let attacker = relay.client().await;
        // Alternately: a length prefix claiming 4 GiB, and a frame one byte over the limit
        // with its whole body.
        let mut bytes = Vec::new();
        if i % 2 == 0 {
            bytes.extend(u32::MAX.to_be_bytes());
            bytes.extend(vec![0xAB; 64 * 1024]);
        } else {
            bytes.extend(((MAX_FRAME_LEN + 1) as u32).to_be_bytes());
            bytes.extend(vec![0xAB; MAX_FRAME_LEN + 1]);
        }
        // The relay may close the connection before it has all the bytes.
        let _ = attacker.write(&bytes).await;
        let why = tokio::time::timeout(DEADLINE, attacker.closed())
            .await
            .expect("the relay closed the connection");
        assert_eq!(
            why,
            RelayCallError::Closed {
                code: Some(ErrorCode::Malformed)
            }
        );
        bystander.round_trip().await;
    }
    check_memory("oversized frames", &relay, before, GROWTH_LIMIT_MIB);
    // Even an allocation never touched (so not resident) would show in the virtual size.
    let after = relay.memory();
    eprintln!(
        "relay virtual size, oversized frames: peak {:.1} MiB before, {:.1} MiB after",
        mib(before.vm_peak_kib),
        mib(after.vm_peak_kib)
    );
    assert!(
        after.vm_peak_kib < before.vm_peak_kib + 1024 * 1024,
        "the relay reserved a gigabyte or more for a claimed frame"
    );
}

/// Writes a ping on a raw request stream and reads until its answer.
async fn raw_ping(
    send: &mut quinn::SendStream,
    recv: &mut quinn::RecvStream,
    decoder: &mut FrameDecoder,
    id: u32,
) {
    let mut frame = Vec::new();
    Request::Ping.encode_frame(id, &mut frame);
    send.write_all(&frame).await.expect("write ping");
    loop {
        while let Some(body) = decoder.pop().expect("framing") {
            if let ServerFrame::Response { request_id, result } =
                ServerFrame::decode(body).expect("frame")
            {
                assert_eq!((request_id, result), (id, Ok(Reply::Pong)));
                return;
            }
        }
        let chunk = tokio::time::timeout(DEADLINE, recv.read_chunk(64 * 1024, true))
            .await
            .expect("an answer before the deadline")
            .expect("stream open")
            .expect("stream not finished");
        decoder.feed(&chunk.bytes);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_floods_get_no_stream_past_the_limit() {
    let data = tempfile::tempdir().unwrap();
    let relay = ServerProcess::start(data.path(), "127.0.0.1:0", &[]);
    let mut bystander = Bystander::join(&relay).await;
    let before = relay.memory();
    let endpoint = quinn::Endpoint::client(([127, 0, 0, 1], 0).into()).unwrap();
    let config = client_config(relay.address.fingerprint).unwrap();
    let conn = endpoint
        .connect_with(config, relay.socket_addr(), &relay.address.host)
        .unwrap()
        .await
        .unwrap();
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    let mut decoder = FrameDecoder::default();
    raw_ping(&mut send, &mut recv, &mut decoder, 1).await;
    // The relay grants MAX_BIDI_STREAMS bidirectional streams and no unidirectional one: every
    // further open waits for credit that never comes. (A peer that ignores the limit is closed
    // by QUIC itself with STREAM_LIMIT_ERROR.)
    assert_eq!(MAX_BIDI_STREAMS, 1);
    let opened = Arc::new(AtomicUsize::new(0));
    let mut floods = JoinSet::new();
    for i in 0..128 {
        let (conn, opened) = (conn.clone(), opened.clone());
        floods.spawn(async move {
            let ok = if i % 2 == 0 {
                conn.open_bi().await.is_ok()
            } else {
                conn.open_uni().await.is_ok()
            };
            if ok {
                opened.fetch_add(1, Ordering::SeqCst);
            }
        });
    }
    for id in 2..10 {
        bystander.round_trip().await;
        raw_ping(&mut send, &mut recv, &mut decoder, id).await;
    }
    assert_eq!(opened.load(Ordering::SeqCst), 0, "a stream past the limit");
    floods.abort_all();
    conn.close(0u32.into(), b"");
    bystander.round_trip().await;
    check_memory("stream flood", &relay, before, GROWTH_LIMIT_MIB);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_floods_past_the_limit_are_refused() {
    const MAX: usize = 6;
    let data = tempfile::tempdir().unwrap();
    let max = MAX.to_string();
    let relay = ServerProcess::start(data.path(), "127.0.0.1:0", &["--max-connections", &max]);
    let mut bystander = Bystander::join(&relay).await;
    let before = relay.memory();
    let mut held = Vec::new();
    let mut refused = 0;
    for attempt in 0..48 {
        match RelayClient::connect(&relay.address).await {
            Ok(c) => held.push(c),
            Err(RelayCallError::Refused) => refused += 1,
            Err(e) => panic!("attempt {attempt}: {e}"),
        }
        if attempt % 8 == 7 {
            bystander.round_trip().await;
        }
    }
    // The bystander holds one slot; the flood gets the rest and nothing more.
    assert_eq!((held.len(), refused), (MAX - 1, 48 - (MAX - 1)));
    for c in &held {
        assert_eq!(c.call(Request::Ping).await, Ok(Reply::Pong));
    }
    drop(held);
    // Once the flood leaves, its slots free up.
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        match RelayClient::connect(&relay.address).await {
            Ok(c) => {
                assert_eq!(c.call(Request::Ping).await, Ok(Reply::Pong));
                break;
            }
            Err(RelayCallError::Refused) if tokio::time::Instant::now() < deadline => {
                tokio::task::yield_now().await;
            }
            Err(e) => panic!("slots never freed: {e}"),
        }
    }
    bystander.round_trip().await;
    check_memory("connection flood", &relay, before, GROWTH_LIMIT_MIB);
}

/// Starts `n` connection attempts at once and counts how many were accepted and refused.
async fn storm(relay: &ServerProcess, n: usize) -> (usize, usize) {
    let mut set = JoinSet::new();
    for _ in 0..n {
        let address = relay.address.clone();
        set.spawn(async move { RelayClient::connect(&address).await.map(drop) });
    }
    let (mut ok, mut refused) = (0, 0);
    while let Some(r) = tokio::time::timeout(DEADLINE, set.join_next())
        .await
        .expect("the storm ended before the deadline")
    {
        match r.expect("connect task") {
            Ok(()) => ok += 1,
            Err(RelayCallError::Refused) => refused += 1,
            Err(e) => panic!("a connection attempt neither succeeded nor was refused: {e}"),
        }
    }
    (ok, refused)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_storms_past_the_limit_are_refused() {
    const MAX: usize = 2;
    let data = tempfile::tempdir().unwrap();
    let max = MAX.to_string();
    let relay = ServerProcess::start(data.path(), "127.0.0.1:0", &["--max-handshakes", &max]);
    let mut bystander = Bystander::join(&relay).await;
    let before = relay.memory();

    // A storm of concurrent handshakes: each completes or is refused, none hangs or fails.
    let (ok, refused) = storm(&relay, 48).await;
    eprintln!("handshake storm of 48: {ok} accepted, {refused} refused");
    bystander.round_trip().await;

    // Handshakes that start and never finish hold every slot: then every new one is refused,
    // and the established bystander is still served.
    let hole = HandshakeHole::open(relay.socket_addr()).await;
    let mut stuck = Vec::new();
    for _ in 0..MAX {
        let endpoint = quinn::Endpoint::client(([127, 0, 0, 1], 0).into()).unwrap();
        let config = client_config(relay.address.fingerprint).unwrap();
        let connecting = endpoint
            .connect_with(config, hole.addr(), &relay.address.host)
            .unwrap();
        stuck.push((endpoint, connecting));
    }
    hole.wait_for_sources(MAX).await;
    let (ok, refused) = storm(&relay, 32).await;
    assert_eq!((ok, refused), (0, 32), "handshakes past the limit");
    bystander.round_trip().await;
    drop(stuck);
    check_memory("handshake storm", &relay, before, GROWTH_LIMIT_MIB);
}

/// Bodies of the stalled-reader test: 32 KiB, numbered.
fn numbered(n: u32) -> Vec<u8> {
    let mut b = vec![0x3c; 32 * 1024];
    b[..4].copy_from_slice(&n.to_be_bytes());
    b
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_readers_of_a_filling_queue_do_not_grow_relay_memory() {
    // A 16 MiB queue quota: 512 envelopes of 32 KiB.
    const QUOTA: u32 = 512;
    // Readers stalled before the queue fills, and as many after.
    const STALLED: usize = 6;
    let data = tempfile::tempdir().unwrap();
    let relay = ServerProcess::start(
        data.path(),
        "127.0.0.1:0",
        &["--queue-max-bytes", "16777216"],
    );
    let mut bystander = Bystander::join(&relay).await;
    let before = relay.memory();
    let (owner, sender) = (relay.client().await, relay.client().await);
    let (k, c) = (key(), cap());
    let (rid, sid) = owner.create_queue(&k, &c).await.unwrap();
    // Readers that subscribe and never read: were pushes buffered without bound, each would
    // cost the relay the whole 16 MiB backlog.
    let mut stalled = Vec::new();
    for _ in 0..STALLED {
        stalled.push(StalledReader::subscribe(&relay.address, relay.socket_addr(), &k, rid).await);
    }
    let mut n = 0;
    let full = loop {
        match sender.send(sid, &c, 600, None, numbered(n)).await {
            Ok(_) => n += 1,
            Err(e) => break e,
        }
        if n % 128 == 0 {
            bystander.round_trip().await;
        }
        assert!(n <= QUOTA, "the queue took more than its quota");
    };
    assert_eq!(
        (n, full),
        (QUOTA, RelayCallError::Relay(ErrorCode::QueueFull))
    );
    // Store cache for 16 MiB plus 6 bounded readers; unbounded: 6 x 16 MiB more.
    check_memory(
        "16 MiB queue filled while 6 readers stall",
        &relay,
        before,
        GROWTH_LIMIT_MIB,
    );

    let filled = relay.memory();
    for _ in 0..STALLED {
        stalled.push(StalledReader::subscribe(&relay.address, relay.socket_addr(), &k, rid).await);
        bystander.round_trip().await;
    }
    assert_eq!(
        sender.send(sid, &c, 600, None, numbered(n)).await,
        Err(RelayCallError::Relay(ErrorCode::QueueFull))
    );
    for _ in 0..4 {
        bystander.round_trip().await;
    }
    // Unbounded: 6 x 16 MiB = 96 MiB; the limit is half of that.
    check_memory(
        "6 more stalled readers of the full queue",
        &relay,
        filled,
        48,
    );

    // Nothing was lost: a reader stalled since before the queue filled gets the whole backlog,
    // in order, once it reads again.
    let mut first = stalled.swap_remove(0);
    for r in &stalled {
        r.close();
    }
    first.read_bodies(QUOTA as usize).await;
    for (i, body) in (0..QUOTA).zip(&first.bodies) {
        assert_eq!(body, &numbered(i));
    }
    assert_eq!(first.bodies.len(), QUOTA as usize);
    bystander.round_trip().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_and_subscription_floods_are_capped_per_connection() {
    let data = tempfile::tempdir().unwrap();
    let relay = ServerProcess::start(
        data.path(),
        "127.0.0.1:0",
        &[
            "--max-queues-per-connection",
            "16",
            "--max-subscriptions-per-connection",
            "8",
        ],
    );
    let mut bystander = Bystander::join(&relay).await;
    let before = relay.memory();
    let attacker = relay.client().await;
    let (k, c) = (key(), cap());
    let mut queues = Vec::new();
    for _ in 0..16 {
        queues.push(attacker.create_queue(&k, &c).await.unwrap().0);
    }
    for i in 0..256 {
        assert_eq!(
            attacker.create_queue(&k, &c).await,
            Err(RelayCallError::Relay(ErrorCode::TooManyQueues))
        );
        if i % 64 == 0 {
            bystander.round_trip().await;
        }
    }
    for rid in &queues[..8] {
        attacker.subscribe(&k, *rid).await.unwrap();
    }
    for i in 0..256 {
        assert_eq!(
            attacker.subscribe(&k, queues[8 + i % 8]).await,
            Err(RelayCallError::Relay(ErrorCode::TooManySubscriptions))
        );
        if i % 64 == 0 {
            bystander.round_trip().await;
        }
    }
    bystander.round_trip().await;
    check_memory(
        "queue and subscription flood",
        &relay,
        before,
        GROWTH_LIMIT_MIB,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_floods_are_rate_limited() {
    const BURST: usize = 40;
    const FLOOD: usize = 1000;
    let data = tempfile::tempdir().unwrap();
    let relay = ServerProcess::start(
        data.path(),
        "127.0.0.1:0",
        &["--requests-per-sec", "20", "--request-burst", "40"],
    );
    let mut bystander = Bystander::join(&relay).await;
    let before = relay.memory();
    let attacker = Arc::new(relay.client().await);
    let mut set = JoinSet::new();
    for _ in 0..FLOOD {
        let attacker = attacker.clone();
        set.spawn(async move { attacker.call(Request::Ping).await });
    }
    bystander.round_trip().await;
    let (mut ok, mut limited) = (0, 0);
    while let Some(r) = tokio::time::timeout(DEADLINE, set.join_next())
        .await
        .expect("every request answered before the deadline")
    {
        match r.expect("ping task") {
            Ok(Reply::Pong) => ok += 1,
            Err(RelayCallError::Relay(ErrorCode::RateLimited)) => limited += 1,
            other => panic!("unexpected answer {other:?}"),
        }
    }
    eprintln!("request flood of {FLOOD}: {ok} answered, {limited} rate-limited");
    assert_eq!(ok + limited, FLOOD);
    assert!(ok >= BURST, "the burst was honoured");
    assert!(limited > 0, "the flood was limited");
    // The bystander has its own budget.
    for _ in 0..4 {
        bystander.round_trip().await;
    }
    check_memory("request flood", &relay, before, GROWTH_LIMIT_MIB);
}
