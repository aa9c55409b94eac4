//! The one place the benchmark touches the hush protocol client.
//!
//! Everything else in the crate uses the client through the names re-exported here, so moving
//! to another client crate with the same API is a change to the `use` line below.
//!
//! It also holds [`connect_with_backoff`]: the retry loop every benchmark client uses when many
//! of them connect at once. The relay refuses handshakes past its handshake limit, and a refused
//! client retries after an exponential back-off with full jitter, so the storm spreads out
//! instead of retrying in lockstep.

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::Rng;

pub(crate) use hush_client::net::{client_config, RelayClient};

/// First back-off after a refused or failed connection attempt.
const BACKOFF_START: Duration = Duration::from_millis(20);
/// Longest back-off between two attempts.
const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// How one client's connection went.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ConnectStats {
    /// Attempts that failed before the one that succeeded.
    pub(crate) retries: u32,
}

/// Runs `attempt` until it succeeds or `deadline` passes, sleeping a random time in
/// `[0, backoff)` between attempts, with `backoff` doubling up to [`BACKOFF_MAX`].
pub(crate) async fn connect_with_backoff<T, E, F, Fut>(
    deadline: Instant,
    mut attempt: F,
) -> anyhow::Result<(T, ConnectStats)>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: std::fmt::Display,
{
    let mut stats = ConnectStats::default();
    let mut backoff = BACKOFF_START;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let result = match tokio::time::timeout(remaining, attempt()).await {
            Ok(r) => r,
            Err(_) => anyhow::bail!("could not connect before the deadline"),
        };
        match result {
            Ok(v) => return Ok((v, stats)),
            Err(e) => {
                stats.retries += 1;
                let pause = rand::thread_rng().gen_range(Duration::ZERO..backoff);
                if Instant::now() + pause >= deadline {
                    anyhow::bail!("could not connect before the deadline: {e}");
                }
                tokio::time::sleep(pause).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

/// `count` client endpoints on loopback, each with the relay's socket buffer sizes; the
/// benchmark spreads its connections over them.
pub(crate) fn client_endpoints(count: usize) -> anyhow::Result<Vec<quinn::Endpoint>> {
    let runtime = quinn::default_runtime().ok_or_else(|| anyhow::anyhow!("no async runtime"))?;
    (0..count.max(1))
        .map(|_| {
            let socket = std::net::UdpSocket::bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
            let size = hush_server::relay::UDP_SOCKET_BUFFER;
            let _ = rustix::net::sockopt::set_socket_recv_buffer_size(&socket, size);
            let _ = rustix::net::sockopt::set_socket_send_buffer_size(&socket, size);
            Ok(quinn::Endpoint::new(
                quinn::EndpointConfig::default(),
                None,
                socket,
                runtime.clone(),
            )?)
        })
        .collect()
}

/// Connects one hush client to `sock` through `endpoint`, pinning `config`'s fingerprint.
pub(crate) async fn connect_hush(
    endpoint: quinn::Endpoint,
    sock: SocketAddr,
    host: &str,
    config: quinn::ClientConfig,
    deadline: Instant,
) -> anyhow::Result<(RelayClient, ConnectStats)> {
    connect_with_backoff(deadline, || {
        RelayClient::connect_on(&endpoint, sock, host, config.clone())
    })
    .await
}
