//! hush peers: one relay connection each, with its own queue, subscribed and acking.
//!
//! Setup happens in two steps, like a real deployment: a connection storm (every client at
//! once, with back-off and jitter), then each client creates a queue and subscribes. Only the
//! storm is timed as "connect".
//!
//! What it does not do: encrypt bodies. The relay sees opaque bytes either way, so the benchmark
//! sends the plain timing header padded to the message size.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use hush_client::net::RelayCallError;
use hush_protocol::{EnvelopeId, ErrorCode, Push, RecipientId, SendCapability, SenderId};
use rand::RngCore;
use tokio::task::JoinSet;

use crate::net::{client_config, client_endpoints, connect_hush, RelayClient};
use crate::target::HushTarget;
use crate::workload::{storm, Peer, Refused, StormStats};

/// Envelope lifetime requested on every send.
const TTL_SECS: u32 = 3600;

/// Where each peer's queue is, by peer index.
type Directory = Vec<(SenderId, SendCapability)>;

/// One hush client in the benchmark.
pub(crate) struct HushPeer {
    client: RelayClient,
    rid: RecipientId,
    directory: Arc<Directory>,
}

impl Peer for HushPeer {
    type Delivery = EnvelopeId;

    async fn send(&self, dest: usize, body: Vec<u8>) -> anyhow::Result<()> {
        let (sid, cap) = &self.directory[dest];
        let sent = self.client.send(*sid, cap, TTL_SECS, None, body).await;
        sent.map(drop).map_err(refusal_apart)
    }

    async fn recv(&self) -> Option<(Vec<u8>, EnvelopeId)> {
        loop {
            match self.client.next_push().await? {
                Push::Envelope {
                    envelope_id, body, ..
                } => return Some((body, envelope_id)),
                Push::QueueGone { .. } => return None,
                #[allow(unreachable_patterns)]
                _ => continue,
            }
        }
    }

    async fn confirm(self: Arc<Self>, id: EnvelopeId) -> anyhow::Result<()> {
        self.client.ack(self.rid, id).await.map_err(refusal_apart)
    }
}

/// A request the relay refused under its rate limit becomes [`Refused`], so the load counts
/// it apart from failures.
fn refusal_apart(e: RelayCallError) -> anyhow::Error {
    match e {
        RelayCallError::Relay(ErrorCode::RateLimited) => anyhow::Error::new(Refused),
        e => e.into(),
    }
}

impl HushPeer {
    /// Closes the connection.
    pub(crate) fn close(&self) {
        self.client.close();
    }
}

/// Connects `n` clients at once (the storm), then gives each a subscribed queue.
pub(crate) async fn setup(
    target: &HushTarget,
    n: usize,
    endpoints: usize,
    connect_timeout: Duration,
) -> anyhow::Result<(Vec<Arc<HushPeer>>, StormStats)> {
    let config = client_config(target.address.fingerprint)?;
    let endpoints = client_endpoints(endpoints.min(n))?;
    let deadline = Instant::now() + connect_timeout;
    let sock = target.sock;
    let host = Arc::new(target.address.host.clone());
    let (clients, stats) = storm(n, |i| {
        let (config, host) = (config.clone(), host.clone());
        let endpoint = endpoints[i % endpoints.len()].clone();
        async move { connect_hush(endpoint, sock, &host, config, deadline).await }
    })
    .await?;
    let mut set = JoinSet::new();
    for (i, client) in clients.into_iter().enumerate() {
        set.spawn(async move {
            let r = make_queue(&client).await;
            (i, client, r)
        });
    }
    let mut made: Vec<Option<(RelayClient, RecipientId, SenderId, SendCapability)>> =
        (0..n).map(|_| None).collect();
    while let Some(j) = set.join_next().await {
        let (i, client, r) = j?;
        let (rid, sid, cap) = r?;
        made[i] = Some((client, rid, sid, cap));
    }
    let made: Vec<_> = made.into_iter().flatten().collect();
    let directory: Arc<Directory> = Arc::new(
        made.iter()
            .map(|(_, _, sid, cap)| (*sid, cap.clone()))
            .collect(),
    );
    let peers = made
        .into_iter()
        .map(|(client, rid, _, _)| {
            Arc::new(HushPeer {
                client,
                rid,
                directory: directory.clone(),
            })
        })
        .collect();
    Ok((peers, stats))
}

async fn make_queue(
    client: &RelayClient,
) -> anyhow::Result<(RecipientId, SenderId, SendCapability)> {
    let mut seed = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut seed);
    let key = SigningKey::from_bytes(&seed);
    let mut cap = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut cap);
    let cap = SendCapability::from_bytes(cap);
    let (rid, sid) = client.create_queue(&key, &cap).await?;
    client.subscribe(&key, rid).await?;
    Ok((rid, sid, cap))
}
