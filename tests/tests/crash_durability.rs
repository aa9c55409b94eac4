//! A relay killed with SIGKILL while sends and acks are in flight, then restarted on the same
//! data directory and port, has lost nothing it acknowledged.
//!
//! The relay answers `Sent` only once the envelope is durable in its store, and `Done` to an
//! ack only once the deletion is. So after any kill: every envelope whose send was answered
//! `Sent` is delivered (unless its ack was answered `Done`), every envelope whose ack was
//! answered `Done` stays deleted, a subscription delivers each envelope once and in send order,
//! and a send or ack that got no answer may or may not have taken effect.
//!
//! SIGKILL stops the process, not the machine: what the relay wrote reaches the disk through
//! the kernel's page cache even without a sync. Power loss is not modelled here.
//!
//! Needs the relay binary built first (`cargo build -p hush-server --bin hush-server`).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ed25519_dalek::SigningKey;
use hush_client::net::{RelayClient, RetryPolicy};
use hush_client::store::KeySource;
use hush_client::{Client, ClientEvent, ClientOptions};
use hush_protocol::{EnvelopeId, Push, RecipientId, SendCapability, SenderId};
use hush_tests::hostile::process::ServerProcess;
use hush_tests::{any_push, cap, key, DEADLINE};
use tokio::sync::Notify;
use tokio::time::Instant;

/// Concurrent senders, each on its own connection and its own queue.
const SENDERS: u8 = 4;
/// Upper bound on the sends of one sender in one round (the kill comes long before).
const MAX_SENDS: u32 = 5_000;
/// Size of each envelope body.
const BODY_LEN: usize = 512;
/// Acknowledged sends after which each round kills the relay: almost at once, once acks are
/// flowing, and deep into the stream.
const KILL_AFTER: [usize; 3] = [1, 60, 400];

/// What the clients were told before the kill.
#[derive(Default)]
struct Ledger {
    /// Envelopes answered `Sent`, with their bodies.
    sent: HashMap<EnvelopeId, Vec<u8>>,
    /// Envelopes whose ack was answered `Done`.
    acked: HashSet<EnvelopeId>,
    /// Envelopes an ack was sent for, answered or not: these may be gone after the kill.
    ack_sent: HashSet<EnvelopeId>,
}

type Shared = Arc<(Mutex<Ledger>, Notify)>;

fn ledger(shared: &Shared) -> std::sync::MutexGuard<'_, Ledger> {
    shared.0.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A body naming its sender and its position in that sender's stream.
fn body(sender: u8, n: u32) -> Vec<u8> {
    let mut b = vec![sender; BODY_LEN];
    b[1..5].copy_from_slice(&n.to_be_bytes());
    b
}

fn position(body: &[u8]) -> u32 {
    u32::from_be_bytes(body[1..5].try_into().expect("4 bytes"))
}

/// One queue of the round, and its owner's key.
struct Queue {
    key: SigningKey,
    rid: RecipientId,
    sid: SenderId,
    cap: SendCapability,
}

/// Sends numbered bodies one after another until a send fails, recording each `Sent`.
async fn send_stream(
    client: Arc<RelayClient>,
    q: (SenderId, SendCapability),
    who: u8,
    led: Shared,
) {
    for n in 0..MAX_SENDS {
        match client.send(q.0, &q.1, 3600, None, body(who, n)).await {
            Ok(id) => {
                ledger(&led).sent.insert(id, body(who, n));
                led.1.notify_one();
            }
            Err(_) => return,
        }
    }
}

/// Acks every other pushed envelope until the connection fails, recording each `Done`.
async fn ack_stream(client: Arc<RelayClient>, led: Shared) {
    let mut odd = false;
    while let Some(push) = client.next_push().await {
        if let Push::Envelope {
            recipient_id,
            envelope_id,
            ..
        } = push
        {
            odd = !odd;
            if !odd {
                continue;
            }
            ledger(&led).ack_sent.insert(envelope_id);
            match client.ack(recipient_id, envelope_id).await {
                Ok(()) => {
                    ledger(&led).acked.insert(envelope_id);
                    led.1.notify_one();
                }
                Err(_) => return,
            }
        }
    }
}

/// Waits until `done` holds for the ledger, failing the test at the deadline.
async fn wait_for(led: &Shared, what: &str, done: impl Fn(&Ledger) -> bool) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let notified = led.1.notified();
        if done(&ledger(led)) {
            return;
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            panic!("{what} before the deadline");
        }
    }
}

/// Every envelope a fresh subscription receives before `Drained`, with its body.
async fn backlog(client: &RelayClient, q: &Queue) -> Vec<(EnvelopeId, Vec<u8>)> {
    client.subscribe(&q.key, q.rid).await.expect("subscribe");
    let mut got = Vec::new();
    loop {
        match any_push(client).await {
            Push::Drained { recipient_id } if recipient_id == q.rid => return got,
            Push::Envelope {
                recipient_id,
                envelope_id,
                body,
                ..
            } if recipient_id == q.rid => got.push((envelope_id, body)),
            _ => {}
        }
    }
}

/// Runs traffic against `relay` until `kill_after` sends were acknowledged (and, past the first
/// round, some acks), kills it mid-stream, and returns the queues and what was acknowledged.
async fn traffic_then_kill(relay: ServerProcess, kill_after: usize) -> (Vec<Queue>, Ledger) {
    let owner = Arc::new(relay.client().await);
    let mut queues = Vec::new();
    for _ in 0..SENDERS {
        let (k, c) = (key(), cap());
        let (rid, sid) = owner.create_queue(&k, &c).await.expect("create queue");
        owner.subscribe(&k, rid).await.expect("subscribe");
        queues.push(Queue {
            key: k,
            rid,
            sid,
            cap: c,
        });
    }
    let led: Shared = Arc::default();
    let mut clients = vec![owner.clone()];
    let mut tasks = vec![tokio::spawn(ack_stream(owner, led.clone()))];
    for (who, q) in (0..SENDERS).zip(&queues) {
        let client = Arc::new(relay.client().await);
        clients.push(client.clone());
        let target = (q.sid, q.cap.clone());
        tasks.push(tokio::spawn(send_stream(client, target, who, led.clone())));
    }
    let need_acks = usize::from(kill_after > 1);
    wait_for(&led, "enough sends were acknowledged", |l| {
        l.sent.len() >= kill_after && l.acked.len() >= need_acks
    })
    .await;
    relay.sigkill();
    // Whatever was still waiting for an answer fails now; the ledger keeps what was answered.
    for c in &clients {
        c.close();
    }
    for t in tasks {
        tokio::time::timeout(DEADLINE, t)
            .await
            .expect("traffic stopped after the kill")
            .expect("traffic task");
    }
    let led = Arc::try_unwrap(led)
        .ok()
        .expect("no task holds the ledger")
        .0;
    (
        queues,
        led.into_inner().unwrap_or_else(PoisonError::into_inner),
    )
}

/// Checks a restarted relay against the ledger of the round before the kill.
async fn check_after_restart(relay: &ServerProcess, queues: &[Queue], led: &Ledger) {
    let reader = relay.client().await;
    let mut delivered = HashSet::new();
    for q in queues {
        let got = backlog(&reader, q).await;
        let mut last = None;
        for (id, body) in &got {
            assert!(delivered.insert(*id), "envelope delivered twice");
            assert!(!led.acked.contains(id), "an acknowledged ack was undone");
            if let Some(sent) = led.sent.get(id) {
                assert_eq!(sent, body, "the body changed");
            }
            let n = position(body);
            assert!(last < Some(n), "out of order: {n} after {last:?}");
            last = Some(n);
        }
    }
    let lost = led
        .sent
        .keys()
        .filter(|id| !led.ack_sent.contains(id) && !delivered.contains(id))
        .count();
    assert_eq!(lost, 0, "acknowledged sends lost in the kill");
    // Sends and acks that were in flight at the kill may have taken effect or not.
    let stored_unanswered = delivered
        .iter()
        .filter(|id| !led.sent.contains_key(id))
        .count();
    let unanswered_acks_done = led
        .ack_sent
        .iter()
        .filter(|id| !led.acked.contains(id) && !delivered.contains(id))
        .count();
    eprintln!(
        "after the restart: {} delivered; {stored_unanswered} stored sends and \
         {unanswered_acks_done} done acks had no answer before the kill",
        delivered.len()
    );
    // The restarted relay takes new sends on the old queues.
    let q = &queues[0];
    let id = reader
        .send(q.sid, &q.cap, 3600, None, b"after".to_vec())
        .await
        .expect("send after restart");
    match hush_tests::push(&reader).await {
        Push::Envelope {
            envelope_id, body, ..
        } => assert_eq!((envelope_id, body.as_slice()), (id, &b"after"[..])),
        other => panic!("expected the new envelope, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_sends_and_acks_survive_sigkill() {
    let data = tempfile::tempdir().unwrap();
    let mut listen = "127.0.0.1:0".to_owned();
    let mut fingerprint = None;
    for kill_after in KILL_AFTER {
        let relay = ServerProcess::start(data.path(), &listen, &[]);
        listen = relay.listen_addr();
        fingerprint.get_or_insert(relay.address.fingerprint);
        let (queues, led) = traffic_then_kill(relay, kill_after).await;
        let relay = ServerProcess::start(data.path(), &listen, &[]);
        assert_eq!(Some(relay.address.fingerprint), fingerprint);
        eprintln!(
            "killed after {} acknowledged sends and {} acknowledged acks",
            led.sent.len(),
            led.acked.len()
        );
        check_after_restart(&relay, &queues, &led).await;
        drop(relay);
    }
}

/// Messages Alice sends in each round of the client-level test.
const CLIENT_MESSAGES: u32 = 10;
/// Messages Alice has had acknowledged when each round kills the relay.
const CLIENT_KILL_AFTER: [usize; 3] = [1, 4, 8];
/// A short idle timeout, so that a connection to the killed relay is given up on quickly.
const CLIENT_RELAY_FLAGS: &[&str] = &["--idle-timeout", "3s"];

fn client_options() -> ClientOptions {
    ClientOptions::with_retry(
        RetryPolicy::new(6, Duration::from_secs(2))
            .with_delays(Duration::from_millis(50), Duration::from_millis(200)),
    )
}

/// Receives until an event matches, failing at the deadline. Returns every event seen.
async fn receive_until(client: &Client, want: impl Fn(&ClientEvent) -> bool) -> Vec<ClientEvent> {
    let end = Instant::now() + DEADLINE;
    let mut all = Vec::new();
    loop {
        let left = end.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "deadline passed; events so far: {all:?}");
        let events = client.receive(None, Some(left)).await.expect("receive");
        let done = events.iter().any(&want);
        all.extend(events);
        if done {
            return all;
        }
    }
}

fn message_text(e: &ClientEvent) -> Option<String> {
    match e {
        ClientEvent::Message { message, .. } => Some(message.body.as_ref()?.as_str().to_owned()),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_acknowledged_message_is_shown_once_after_sigkill() {
    let data = tempfile::tempdir().unwrap();
    let mut relay = ServerProcess::start(data.path(), "127.0.0.1:0", CLIENT_RELAY_FLAGS);
    let listen = relay.listen_addr();
    let homes = tempfile::tempdir().unwrap();
    let init = |name: &'static str| {
        let (home, address) = (homes.path().join(name), relay.address.clone());
        async move {
            Client::init_with(&home, name, address, KeySource::KeyFile, client_options())
                .await
                .expect("init a home")
        }
    };
    let alice = Arc::new(init("alice").await);
    let bob = init("bob").await;
    let token = alice.invite("bob").await.expect("invite");
    bob.accept(&token, "alice").await.expect("accept");
    receive_until(&alice, |e| matches!(e, ClientEvent::ContactJoined { .. })).await;

    // Texts Alice's `send_text` returned for (acknowledged), and those it failed for.
    let (mut acked, mut failed) = (Vec::new(), Vec::new());
    // Sends that began before a kill and returned after it: these went through the retry.
    let mut spanning = 0;
    for (round, kill_after) in CLIENT_KILL_AFTER.into_iter().enumerate() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let (a, killed) = (alice.clone(), Arc::new(AtomicBool::new(false)));
        let killed_seen = killed.clone();
        let sender = tokio::spawn(async move {
            for n in 0..CLIENT_MESSAGES {
                let text = format!("round {round} message {n}");
                let before = killed_seen.load(Ordering::SeqCst);
                let ok = a.send_text("bob", &text, None, false).await.is_ok();
                let across = !before && killed_seen.load(Ordering::SeqCst);
                let _ = tx.send((text, ok, across));
            }
        });
        let mut ok_so_far = 0;
        while ok_so_far < kill_after {
            let (text, ok, _) = tokio::time::timeout(DEADLINE, rx.recv())
                .await
                .expect("Alice kept sending")
                .expect("Alice's sender ended early");
            ok_so_far += usize::from(ok);
            (if ok { &mut acked } else { &mut failed }).push(text);
        }
        relay.sigkill();
        killed.store(true, Ordering::SeqCst);
        relay = ServerProcess::start(data.path(), &listen, CLIENT_RELAY_FLAGS);
        tokio::time::timeout(DEADLINE, sender)
            .await
            .expect("Alice's sends finished after the restart")
            .expect("sender task");
        while let Ok((text, ok, across)) = rx.try_recv() {
            spanning += usize::from(across);
            (if ok { &mut acked } else { &mut failed }).push(text);
        }
    }
    // Envelopes are pushed in send order, so once Bob shows the last message he has processed
    // every envelope before it, retried duplicates included.
    alice
        .send_text("bob", "the end", None, false)
        .await
        .expect("last send");
    let events = receive_until(&bob, |e| message_text(e).as_deref() == Some("the end")).await;
    eprintln!(
        "{} messages acknowledged, {} failed, {spanning} sent across a kill, {} events",
        acked.len(),
        failed.len(),
        events.len()
    );
    let mut shown: HashMap<String, usize> = HashMap::new();
    for text in events.iter().filter_map(message_text) {
        *shown.entry(text).or_default() += 1;
    }
    for text in &acked {
        assert_eq!(shown.get(text), Some(&1), "{text:?} not shown exactly once");
    }
    for text in &failed {
        assert!(
            shown.get(text).copied().unwrap_or(0) <= 1,
            "{text:?} shown twice"
        );
    }
    let history: Vec<String> = bob
        .history("alice")
        .await
        .expect("history")
        .into_iter()
        .filter_map(|m| Some(m.body?.as_str().to_owned()))
        .collect();
    let distinct: HashSet<&String> = history.iter().collect();
    assert_eq!(
        distinct.len(),
        history.len(),
        "a message is in the history twice"
    );
    for text in &acked {
        assert!(distinct.contains(text), "{text:?} missing from the history");
    }
    drop(relay);
}
