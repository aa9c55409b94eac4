//! The load itself, the same for the hush relay and the raw-quinn baseline: N connected peers,
//! each sending to the others' queues and receiving on its own.
//!
//! Every body carries its sender, a per-sender sequence number and the send time, so the
//! receiver measures send→deliver latency (one clock: all peers live in this process) and marks
//! the message in a ledger. The ledger holds one bit per (sender, sequence) for "the relay
//! confirmed the send" and one for "delivered"; a second delivery of the same bit is a
//! duplicate, and a confirmed bit never delivered is a loss.
//!
//! What it does not do: connect the peers (`hush.rs`, `baseline.rs`), or decide what the
//! figures mean (`report.rs`).

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rand::Rng;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Size of the header every body starts with: sender, sequence, send time.
pub(crate) const HEADER_LEN: usize = 16;
/// Histogram shards; receivers pick one by index so they rarely share a lock.
const SHARDS: usize = 16;
/// Longest latency the histogram records, in microseconds (larger values are clamped).
const MAX_LATENCY_US: u64 = 120_000_000;
/// A send or ack not answered within this long counts as failed, so no run can hang.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// One connected benchmark client.
pub(crate) trait Peer: Send + Sync + 'static {
    /// What the receiver hands back to confirm (acknowledge) a delivery.
    type Delivery: Send + 'static;
    /// Sends `body` to peer `dest`'s queue; resolves when the relay has accepted it.
    fn send(&self, dest: usize, body: Vec<u8>) -> impl Future<Output = anyhow::Result<()>> + Send;
    /// The next delivered body, or `None` once the connection is gone.
    fn recv(&self) -> impl Future<Output = Option<(Vec<u8>, Self::Delivery)>> + Send;
    /// Confirms a delivery (the hush ack).
    fn confirm(
        self: Arc<Self>,
        d: Self::Delivery,
    ) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// The error a [`Peer`] returns for a request the relay refused under its request rate limit:
/// counted apart from errors, since the relay did what it is told to.
#[derive(Debug)]
pub(crate) struct Refused;

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("refused by the relay's request rate limit")
    }
}

impl std::error::Error for Refused {}

/// What to send.
#[derive(Debug, Clone)]
pub(crate) struct LoadParams {
    /// Most messages each peer sends.
    pub(crate) messages: u32,
    /// Body size in bytes (at least [`HEADER_LEN`]).
    pub(crate) size: usize,
    /// Total target rate over all peers, messages per second; `None` = as fast as possible.
    pub(crate) rate: Option<f64>,
    /// Peers stop starting new sends after this long.
    pub(crate) duration: Duration,
    /// Sends (and acks) each peer keeps in flight at most.
    pub(crate) window: usize,
    /// How long to wait for outstanding deliveries after the last send.
    pub(crate) drain_timeout: Duration,
}

/// What one load run measured.
#[derive(Debug, Clone)]
pub(crate) struct LoadStats {
    /// Sends the relay confirmed.
    pub(crate) sent: u64,
    /// Sends that failed (refusals under the rate limit aside).
    pub(crate) send_errors: u64,
    /// Sends the relay refused under its request rate limit.
    pub(crate) send_refused: u64,
    /// Distinct messages delivered.
    pub(crate) delivered: u64,
    /// Deliveries of a message already delivered.
    pub(crate) duplicated: u64,
    /// Confirmed sends never delivered.
    pub(crate) lost: u64,
    /// Acks that failed (refusals under the rate limit aside).
    pub(crate) confirm_errors: u64,
    /// Acks the relay refused under its request rate limit.
    pub(crate) confirm_refused: u64,
    /// First send to last delivery.
    pub(crate) elapsed: Duration,
    /// `delivered / elapsed`.
    pub(crate) per_sec: f64,
    /// Send→deliver latency in microseconds: p50, p90, p99, max.
    pub(crate) latency_us: [u64; 4],
}

/// Per-(sender, sequence) bits: confirmed and delivered.
struct Ledger {
    per_sender: u64,
    confirmed: Vec<AtomicU64>,
    delivered: Vec<AtomicU64>,
    confirmed_count: AtomicU64,
    delivered_count: AtomicU64,
    duplicated: AtomicU64,
    last_delivery_ns: AtomicU64,
}

fn set_bit(bits: &[AtomicU64], i: u64) -> bool {
    let word = &bits[(i / 64) as usize];
    let mask = 1u64 << (i % 64);
    word.fetch_or(mask, Ordering::Relaxed) & mask == 0
}

impl Ledger {
    fn new(peers: usize, per_sender: u32) -> Self {
        let bits = peers as u64 * u64::from(per_sender);
        let words = bits.div_ceil(64) as usize;
        Self {
            per_sender: u64::from(per_sender),
            confirmed: (0..words).map(|_| AtomicU64::new(0)).collect(),
            delivered: (0..words).map(|_| AtomicU64::new(0)).collect(),
            confirmed_count: AtomicU64::new(0),
            delivered_count: AtomicU64::new(0),
            duplicated: AtomicU64::new(0),
            last_delivery_ns: AtomicU64::new(0),
        }
    }

    fn index(&self, sender: u32, seq: u32) -> Option<u64> {
        let i = u64::from(sender) * self.per_sender + u64::from(seq);
        (u64::from(seq) < self.per_sender && (i / 64) < self.delivered.len() as u64).then_some(i)
    }

    fn confirm(&self, sender: u32, seq: u32) {
        if let Some(i) = self.index(sender, seq) {
            if set_bit(&self.confirmed, i) {
                self.confirmed_count.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn deliver(&self, sender: u32, seq: u32) {
        match self.index(sender, seq) {
            Some(i) if set_bit(&self.delivered, i) => {
                self.delivered_count.fetch_add(1, Ordering::Relaxed);
            }
            _ => {
                self.duplicated.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn lost(&self) -> u64 {
        self.confirmed
            .iter()
            .zip(&self.delivered)
            .map(|(c, d)| {
                (c.load(Ordering::Relaxed) & !d.load(Ordering::Relaxed)).count_ones() as u64
            })
            .sum()
    }
}

fn encode_body(size: usize, sender: u32, seq: u32, t_ns: u64) -> Vec<u8> {
    let mut b = vec![0u8; size.max(HEADER_LEN)];
    b[0..4].copy_from_slice(&sender.to_le_bytes());
    b[4..8].copy_from_slice(&seq.to_le_bytes());
    b[8..16].copy_from_slice(&t_ns.to_le_bytes());
    b
}

fn decode_body(b: &[u8]) -> Option<(u32, u32, u64)> {
    let h = b.get(..HEADER_LEN)?;
    Some((
        u32::from_le_bytes(h[0..4].try_into().ok()?),
        u32::from_le_bytes(h[4..8].try_into().ok()?),
        u64::from_le_bytes(h[8..16].try_into().ok()?),
    ))
}

/// Peer `i`'s destination for its message `seq`: cycles over every other peer.
fn destination(i: usize, seq: u32, n: usize) -> usize {
    if n < 2 {
        return i;
    }
    (i + 1 + seq as usize % (n - 1)) % n
}

struct Shared {
    epoch: Instant,
    ledger: Ledger,
    hist: Vec<Mutex<Histogram<u64>>>,
    send_errors: AtomicU64,
    confirm_errors: AtomicU64,
    send_refused: AtomicU64,
    confirm_refused: AtomicU64,
}

impl Shared {
    fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }
}

/// Runs the load over `peers` and returns what it measured.
pub(crate) async fn run<P: Peer>(peers: &[Arc<P>], p: &LoadParams) -> anyhow::Result<LoadStats> {
    let n = peers.len();
    let hist = (0..SHARDS)
        .map(|_| Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).map(Mutex::new))
        .collect::<Result<Vec<_>, _>>()?;
    let shared = Arc::new(Shared {
        epoch: Instant::now(),
        ledger: Ledger::new(n, p.messages),
        hist,
        send_errors: AtomicU64::new(0),
        confirm_errors: AtomicU64::new(0),
        send_refused: AtomicU64::new(0),
        confirm_refused: AtomicU64::new(0),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut receivers = JoinSet::new();
    for (i, peer) in peers.iter().enumerate() {
        receivers.spawn(receive_loop(
            i,
            peer.clone(),
            shared.clone(),
            stop_rx.clone(),
            p.window,
        ));
    }
    let start_ns = shared.now_ns();
    let deadline = Instant::now() + p.duration;
    let mut senders = JoinSet::new();
    for (i, peer) in peers.iter().enumerate() {
        senders.spawn(send_loop(
            i,
            n,
            peer.clone(),
            shared.clone(),
            p.clone(),
            deadline,
        ));
    }
    while senders.join_next().await.is_some() {}
    // Wait (bounded) until every confirmed send has been delivered.
    let drain_until = Instant::now() + p.drain_timeout;
    let l = &shared.ledger;
    while l.delivered_count.load(Ordering::Relaxed) < l.confirmed_count.load(Ordering::Relaxed)
        && Instant::now() < drain_until
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _ = stop_tx.send(true);
    while receivers.join_next().await.is_some() {}
    Ok(summarize(&shared, start_ns))
}

fn summarize(shared: &Shared, start_ns: u64) -> LoadStats {
    let l = &shared.ledger;
    let mut all =
        Histogram::<u64>::new_with_bounds(1, MAX_LATENCY_US, 3).expect("valid histogram bounds");
    for h in &shared.hist {
        let _ = all.add(&*h.lock().unwrap_or_else(PoisonError::into_inner));
    }
    let delivered = l.delivered_count.load(Ordering::Relaxed);
    let end = l.last_delivery_ns.load(Ordering::Relaxed).max(start_ns);
    let elapsed = Duration::from_nanos(end - start_ns);
    let per_sec = if elapsed.is_zero() {
        0.0
    } else {
        delivered as f64 / elapsed.as_secs_f64()
    };
    LoadStats {
        sent: l.confirmed_count.load(Ordering::Relaxed),
        send_errors: shared.send_errors.load(Ordering::Relaxed),
        delivered,
        duplicated: l.duplicated.load(Ordering::Relaxed),
        lost: l.lost(),
        confirm_errors: shared.confirm_errors.load(Ordering::Relaxed),
        send_refused: shared.send_refused.load(Ordering::Relaxed),
        confirm_refused: shared.confirm_refused.load(Ordering::Relaxed),
        elapsed,
        per_sec,
        latency_us: [
            all.value_at_quantile(0.50),
            all.value_at_quantile(0.90),
            all.value_at_quantile(0.99),
            all.max(),
        ],
    }
}

async fn send_loop<P: Peer>(
    i: usize,
    n: usize,
    peer: Arc<P>,
    shared: Arc<Shared>,
    p: LoadParams,
    deadline: Instant,
) {
    // With a target rate, each peer sends every n/rate seconds from a random phase, so the
    // peers do not send in lockstep.
    let interval = p
        .rate
        .map(|r| Duration::from_secs_f64(n as f64 / r.max(1e-3)));
    let phase = interval
        .map(|iv| rand::thread_rng().gen_range(Duration::ZERO..iv.max(Duration::from_nanos(1))))
        .unwrap_or_default();
    let begin = tokio::time::Instant::now() + phase;
    let mut inflight = JoinSet::new();
    for seq in 0..p.messages {
        if let Some(iv) = interval {
            tokio::time::sleep_until(begin + iv * seq).await;
        }
        if Instant::now() >= deadline {
            break;
        }
        while inflight.len() >= p.window {
            inflight.join_next().await;
        }
        let dest = destination(i, seq, n);
        let peer = peer.clone();
        let shared = shared.clone();
        let size = p.size;
        inflight.spawn(async move {
            let body = encode_body(size, i as u32, seq, shared.now_ns());
            match tokio::time::timeout(REQUEST_TIMEOUT, peer.send(dest, body)).await {
                Ok(Ok(())) => shared.ledger.confirm(i as u32, seq),
                Ok(Err(e)) if e.is::<Refused>() => {
                    shared.send_refused.fetch_add(1, Ordering::Relaxed);
                }
                _ => {
                    shared.send_errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    while inflight.join_next().await.is_some() {}
}

async fn receive_loop<P: Peer>(
    i: usize,
    peer: Arc<P>,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
    window: usize,
) {
    let mut acks = JoinSet::new();
    loop {
        let next = tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => break,
            d = peer.recv() => d,
        };
        let Some((body, token)) = next else { break };
        let now = shared.now_ns();
        if let Some((sender, seq, sent_ns)) = decode_body(&body) {
            let us = (now.saturating_sub(sent_ns) / 1000).clamp(1, MAX_LATENCY_US);
            let _ = shared.hist[i % SHARDS]
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .record(us);
            shared
                .ledger
                .last_delivery_ns
                .fetch_max(now, Ordering::Relaxed);
            shared.ledger.deliver(sender, seq);
        }
        while acks.len() >= window {
            acks.join_next().await;
        }
        let (peer, shared) = (peer.clone(), shared.clone());
        acks.spawn(async move {
            match tokio::time::timeout(REQUEST_TIMEOUT, peer.confirm(token)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) if e.is::<Refused>() => {
                    shared.confirm_refused.fetch_add(1, Ordering::Relaxed);
                }
                _ => {
                    shared.confirm_errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while acks.join_next().await.is_some() {}
    })
    .await;
}

/// How a connection storm went.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct StormStats {
    /// Peers connected.
    pub(crate) connected: usize,
    /// From the first attempt to the last connection established.
    pub(crate) elapsed: Duration,
    /// Failed attempts that were retried, over all peers.
    pub(crate) retries: u64,
}

/// Starts `n` connection attempts at once; `connect(i)` retries on its own until its deadline.
pub(crate) async fn storm<T, F, Fut>(n: usize, connect: F) -> anyhow::Result<(Vec<T>, StormStats)>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut,
    Fut: Future<Output = anyhow::Result<(T, crate::net::ConnectStats)>> + Send + 'static,
{
    let started = Instant::now();
    let mut set = JoinSet::new();
    for i in 0..n {
        let fut = connect(i);
        set.spawn(async move { (i, fut.await) });
    }
    let mut slots: Vec<Option<T>> = (0..n).map(|_| None).collect();
    let mut stats = StormStats::default();
    let mut first_error = None;
    while let Some(joined) = set.join_next().await {
        let (i, result) = joined?;
        match result {
            Ok((v, s)) => {
                slots[i] = Some(v);
                stats.connected += 1;
                stats.retries += u64::from(s.retries);
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    stats.elapsed = started.elapsed();
    if let Some(e) = first_error {
        anyhow::bail!(
            "{} of {n} clients could not connect within the deadline: {e}",
            n - stats.connected
        );
    }
    Ok((slots.into_iter().flatten().collect(), stats))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ledger_counts_loss_and_duplicates() {
        let l = Ledger::new(3, 10);
        l.confirm(0, 1);
        l.confirm(2, 9);
        l.deliver(0, 1);
        l.deliver(0, 1);
        assert_eq!(l.lost(), 1);
        assert_eq!(l.duplicated.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn body_round_trips_and_destinations_skip_self() {
        let b = encode_body(256, 7, 9, 123);
        assert_eq!(b.len(), 256);
        assert_eq!(decode_body(&b), Some((7, 9, 123)));
        for seq in 0..20 {
            assert_ne!(destination(3, seq, 5), 3);
        }
    }
}
