//! The relay: a QUIC endpoint, its accept loop, the expiry sweep and graceful shutdown.
//!
//! [`Relay::bind`] loads (or makes) the TLS identity and binds the UDP socket; [`Relay::run`]
//! serves until a shutdown future resolves (the mini-redis `run(listener, shutdown)` shape);
//! [`Relay::spawn`] runs it on a task and returns a [`RelayHandle`], which tests use to start
//! relays on port 0. Connection and handshake caps refuse new connections at the QUIC level
//! (`CONNECTION_REFUSED`) and leave everyone else served. Refusals and failed handshakes are
//! counted in the metrics and summarised in the log at most once a minute (`refusals.rs`).
//! With `metrics` set, the monitoring listener (`monitor.rs`) is bound with the relay and
//! served alongside it.
//!
//! What it does not do: parse flags (`config.rs`) or speak the request protocol (`conn.rs`).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hush_protocol::limits::MAX_BIDI_STREAMS;
use hush_protocol::{Fingerprint, RelayAddress};
use tokio::sync::{oneshot, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::access::{Access, AccessError};
use crate::blob::{BlobError, BlobStore, Blobs};
use crate::clock::{Clock, SystemClock};
use crate::config::BlobChoice;
use crate::config::RelayConfig;
use crate::limits::{
    CONNECTION_RECEIVE_WINDOW, CONNECTION_SEND_WINDOW, REFUSAL_LOG_INTERVAL, STREAM_RECEIVE_WINDOW,
};
use crate::metrics::{Metrics, Refusal};
use crate::ops::Shared;
use crate::refusals::RefusalLog;
use crate::rotate::{self, CertState, RotateError};
use crate::shutdown::{Shutdown, Stop};
use crate::store::{QueueStore, StoreError, SweepStats};
use crate::tls::{self, TlsIdentity};

/// How long shutdown waits for connections to finish their in-flight requests.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Why the relay could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RelayError {
    /// The TLS identity could not be loaded or made.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// A pending certificate rotation could not be read or applied.
    #[error(transparent)]
    Rotate(#[from] RotateError),
    /// The UDP socket could not be bound.
    #[error("cannot listen on {addr}: {source}; is another relay running there?")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The monitoring listener (`metrics`) could not be bound.
    #[error("cannot serve metrics on {addr}: {source}; is another process using that port?")]
    Metrics {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The store failed to flush on shutdown.
    #[error("store flush failed on shutdown: {0}")]
    Store(#[from] StoreError),
    /// The blob directory could not be opened, or not flushed on shutdown.
    #[error("blob storage failed: {0}")]
    Blob(#[from] BlobError),
    /// The configuration keeps blobs on JetStream, but the relay was bound without the
    /// JetStream blob backend (use [`Relay::bind_with_blobs`]).
    #[error("blob_store = jetstream, but no JetStream blob backend was opened for the relay")]
    NoBlobBackend,
    /// The create tokens could not be loaded.
    #[error(transparent)]
    Access(#[from] AccessError),
    /// The relay task panicked or was cancelled.
    #[error("relay task failed: {0}")]
    Task(String),
}

/// A bound relay, ready to [`Relay::run`].
pub struct Relay<S> {
    endpoint: quinn::Endpoint,
    shared: Arc<Shared<S>>,
    address: RelayAddress,
    monitor: Option<tokio::net::TcpListener>,
}

impl<S> std::fmt::Debug for Relay<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

fn transport(config: &RelayConfig) -> quinn::TransportConfig {
    let mut t = quinn::TransportConfig::default();
    t.max_concurrent_bidi_streams(MAX_BIDI_STREAMS.into())
        .max_concurrent_uni_streams(0u32.into())
        .receive_window(CONNECTION_RECEIVE_WINDOW.into())
        .stream_receive_window(STREAM_RECEIVE_WINDOW.into())
        .send_window(CONNECTION_SEND_WINDOW)
        .datagram_receive_buffer_size(None)
        .max_idle_timeout(quinn::IdleTimeout::try_from(config.idle_timeout).ok());
    t
}

/// Receive and send buffer requested for the relay's UDP socket. The kernel caps it at
/// `net.core.rmem_max` / `wmem_max`. With the 208 KiB default, a burst from a thousand clients
/// overflows the receive buffer, and the dropped packets cost QUIC retransmission timeouts.
pub const UDP_SOCKET_BUFFER: usize = 8 * 1024 * 1024;

/// The QUIC server configuration serving `identity`.
fn server_config(
    config: &RelayConfig,
    identity: TlsIdentity,
) -> Result<quinn::ServerConfig, tls::TlsError> {
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls::server_crypto(identity)?)
        .map_err(|e| tls::TlsError::Rustls(e.to_string()))?;
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    server.transport_config(Arc::new(transport(config)));
    Ok(server)
}

/// Binds the UDP socket with [`UDP_SOCKET_BUFFER`] and makes the QUIC endpoint on it.
fn bind_endpoint(
    server: quinn::ServerConfig,
    addr: SocketAddr,
) -> std::io::Result<quinn::Endpoint> {
    let socket = std::net::UdpSocket::bind(addr)?;
    // Best effort: a smaller buffer still works, only with more loss under bursts.
    let _ = rustix::net::sockopt::set_socket_recv_buffer_size(&socket, UDP_SOCKET_BUFFER);
    let _ = rustix::net::sockopt::set_socket_send_buffer_size(&socket, UDP_SOCKET_BUFFER);
    let runtime =
        quinn::default_runtime().ok_or_else(|| std::io::Error::other("no async runtime found"))?;
    quinn::Endpoint::new(
        quinn::EndpointConfig::default(),
        Some(server),
        socket,
        runtime,
    )
}

/// The host and port clients should use, given what was bound.
fn public_host_port(config: &RelayConfig, bound: SocketAddr) -> (String, u16) {
    if !bound.ip().is_unspecified() {
        return (bound.ip().to_string(), bound.port());
    }
    if let Some(p) = &config.public_addr {
        if let Some((h, port)) = p.rsplit_once(':') {
            if let Ok(port) = port.parse() {
                return (h.trim_matches(['[', ']']).to_owned(), port);
            }
        }
        return (p.clone(), bound.port());
    }
    (tls::hostname(), bound.port())
}

impl<S: QueueStore> Relay<S> {
    /// Binds a relay on the system clock. Must be called inside a tokio runtime.
    pub fn bind(config: RelayConfig, store: S) -> Result<Self, RelayError> {
        Self::bind_with_clock(config, store, Arc::new(SystemClock))
    }

    /// Binds a relay that reads time from `clock`, keeping blobs in its data directory (a
    /// configuration with `blob_store = jetstream` is refused: use [`Relay::bind_with_blobs`]).
    pub fn bind_with_clock(
        config: RelayConfig,
        store: S,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, RelayError> {
        if config.blob_store != BlobChoice::Local {
            return Err(RelayError::NoBlobBackend);
        }
        let blobs = BlobStore::open(&config.data_dir, config.blob_limits())?;
        Self::bind_with_blobs(config, store, blobs.into(), clock)
    }

    /// Binds a relay that serves blobs from `blobs` (opened by the caller, as the JetStream
    /// backend must be, asynchronously) and reads time from `clock`.
    pub fn bind_with_blobs(
        config: RelayConfig,
        store: S,
        blobs: Blobs,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, RelayError> {
        let (identity, pending) = match (&config.tls_cert, &config.tls_key) {
            (Some(c), Some(k)) => (tls::load_pem(c, k)?, None),
            _ => rotate::load_current(&config.data_dir, clock.now_secs(), &tls::names())?,
        };
        let fingerprint = identity.fingerprint;
        let server = server_config(&config, identity)?;
        let endpoint = bind_endpoint(server, config.listen).map_err(|source| RelayError::Bind {
            addr: config.listen,
            source,
        })?;
        let bound = endpoint.local_addr().map_err(|source| RelayError::Bind {
            addr: config.listen,
            source,
        })?;
        let monitor = match config.metrics {
            Some(addr) => Some(
                crate::monitor::bind(addr)
                    .map_err(|source| RelayError::Metrics { addr, source })?,
            ),
            None => None,
        };
        let (host, port) = public_host_port(&config, bound);
        let metrics = Metrics::new(store.stats().is_some(), store.commit_latency());
        let address = RelayAddress::new(host, port, fingerprint);
        let access = Arc::new(Access::load(&config)?);
        // From here on only the token's hash is kept.
        let config = RelayConfig {
            create_token: None,
            ..config
        };
        let shared = Arc::new(Shared {
            store,
            blobs,
            clock,
            config,
            metrics,
            access,
            certs: CertState::new(fingerprint, pending),
            #[cfg(feature = "testing")]
            before_hello: Default::default(),
            #[cfg(feature = "testing")]
            connections: Default::default(),
        });
        Ok(Self {
            endpoint,
            shared,
            address,
            monitor,
        })
    }

    /// The TCP address of the monitoring listener, if `metrics` is set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.monitor.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The address to give clients: `hush://HOST:PORT#FINGERPRINT`.
    pub fn address(&self) -> &RelayAddress {
        &self.address
    }

    /// The socket actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.endpoint
            .local_addr()
            .unwrap_or_else(|_| self.shared.config.listen)
    }

    /// Who may create queues and blobs: the binary reloads it on SIGHUP, tests after editing
    /// the tokens file.
    pub fn access(&self) -> Arc<Access> {
        Arc::clone(&self.shared.access)
    }

    /// The pinned certificate fingerprint.
    pub fn fingerprint(&self) -> Fingerprint {
        self.address.fingerprint
    }

    /// The certificate rotation pending, which the relay announces to clients, if any.
    pub fn pending_rotation(&self) -> Option<hush_protocol::CertRotation> {
        self.shared.certs.pending()
    }

    /// Serves until `shutdown` resolves, then stops accepting, lets every connection finish its
    /// in-flight request and flush its answers, flushes the store and returns.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> Result<(), RelayError> {
        let (stop, stop_rx) = Stop::new();
        let shared = self.shared.clone();
        let monitor = self
            .monitor
            .take()
            .map(|l| tokio::spawn(crate::monitor::serve(l, shared.clone(), stop_rx.clone())));
        let endpoint = self.endpoint.clone();
        let sweeper = tokio::spawn(sweep_loop(shared, endpoint, stop_rx.clone()));
        let mut conns = self.accept_loop(shutdown, &stop_rx).await;
        tracing::info!(connections = conns.len(), "shutting down");
        self.endpoint.set_server_config(None);
        stop.stop();
        let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
            while conns.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(connections = conns.len(), "closing connections still busy");
            conns.abort_all();
        }
        let _ = sweeper.await;
        if let Some(monitor) = monitor {
            let _ = monitor.await;
        }
        self.shared.store.flush().await?;
        self.shared.blobs.flush().await?;
        let _ = tokio::time::timeout(Duration::from_secs(2), self.endpoint.wait_idle()).await;
        tracing::info!("stopped");
        Ok(())
    }

    /// Accepts connections until `shutdown` resolves (or the endpoint closes); returns the
    /// connections still being served.
    async fn accept_loop(
        &self,
        shutdown: impl Future<Output = ()>,
        stop_rx: &Shutdown,
    ) -> JoinSet<()> {
        let cfg = &self.shared.config;
        let conn_slots = Arc::new(Semaphore::new(cfg.max_connections));
        let handshake_slots = Arc::new(Semaphore::new(cfg.max_handshakes));
        let refusals = Arc::new(Mutex::new(RefusalLog::new(REFUSAL_LOG_INTERVAL)));
        let mut conns = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            let due = lock(&refusals).due();
            tokio::select! {
                _ = &mut shutdown => break,
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
                _ = crate::conn::expiry(due) => report(lock(&refusals).flush(Instant::now())),
                incoming = self.endpoint.accept() => {
                    let Some(incoming) = incoming else { break };
                    let Ok(conn_permit) = conn_slots.clone().try_acquire_owned() else {
                        refused(&self.shared, &refusals, Refusal::ConnectionLimit);
                        incoming.refuse();
                        continue;
                    };
                    let Ok(hs_permit) = handshake_slots.clone().try_acquire_owned() else {
                        refused(&self.shared, &refusals, Refusal::HandshakeLimit);
                        incoming.refuse();
                        continue;
                    };
                    let (shared, stop) = (self.shared.clone(), stop_rx.clone());
                    let refusals = refusals.clone();
                    conns.spawn(async move {
                        let conn = match handshake(incoming).await {
                            Ok(c) => c,
                            Err(e) => {
                                tracing::debug!(error = %e, "handshake failed");
                                refused(&shared, &refusals, Refusal::HandshakeFailed);
                                return;
                            }
                        };
                        drop(hs_permit);
                        serve_counted(shared, conn, stop).await;
                        drop(conn_permit);
                    });
                }
            }
        }
        conns
    }

    /// Runs the relay on a new task; the handle stops it.
    pub fn spawn(self) -> RelayHandle<S> {
        let (tx, rx) = oneshot::channel::<()>();
        let metrics_addr = self.metrics_addr();
        let address = self.address.clone();
        let local_addr = self.local_addr();
        let shared = self.shared.clone();
        let task = tokio::spawn(self.run(async move {
            let _ = rx.await;
        }));
        RelayHandle {
            address,
            local_addr,
            metrics_addr,
            shared,
            stop: Some(tx),
            task,
        }
    }
}

fn lock(log: &Mutex<RefusalLog>) -> std::sync::MutexGuard<'_, RefusalLog> {
    log.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Writes a summary of refused connections, if one is due.
fn report(line: Option<crate::refusals::Summary>) {
    if let Some(line) = line {
        tracing::info!(refused = %line, "connections refused since the last such line");
    }
}

/// Counts a refused connection (or failed handshake) and logs a summary if one is due.
fn refused<S>(shared: &Shared<S>, log: &Mutex<RefusalLog>, why: Refusal) {
    shared.metrics.refused(why);
    report(lock(log).note(why, Instant::now()));
}

/// Runs the TLS handshake of an accepted connection attempt. The client's first flight is
/// processed in `accept`, so a wrong ALPN fails there, before any await.
async fn handshake(incoming: quinn::Incoming) -> Result<quinn::Connection, quinn::ConnectionError> {
    incoming.accept()?.await
}

/// Lowers the open-connections gauge when the connection's task ends, even if it is aborted.
struct OpenConnection(prometheus_client::metrics::gauge::Gauge);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Serves an established connection, counted in the connection metrics.
async fn serve_counted<S: QueueStore>(
    shared: Arc<Shared<S>>,
    conn: quinn::Connection,
    stop: Shutdown,
) {
    shared.metrics.connections.inc();
    shared.metrics.connections_open.inc();
    let _open = OpenConnection(shared.metrics.connections_open.clone());
    tracing::debug!("connection established");
    crate::conn::serve(shared, conn, stop).await;
    tracing::debug!("connection ended");
}

/// Every sweep interval: applies a certificate rotation if one is due, then sweeps.
async fn sweep_loop<S: QueueStore>(
    shared: Arc<Shared<S>>,
    endpoint: quinn::Endpoint,
    mut stop: Shutdown,
) {
    let mut tick = tokio::time::interval(shared.config.sweep_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.stopped() => return,
            _ = tick.tick() => {
                rotation_tick(&shared, &endpoint);
                let _ = sweep(&shared).await;
            }
        }
    }
}

/// Picks up a rotation made while the relay runs, and from its switch time on serves the new
/// certificate to new connections (see `rotate.rs`). Not for an operator-supplied certificate.
fn rotation_tick<S>(shared: &Shared<S>, endpoint: &quinn::Endpoint) {
    let config = &shared.config;
    if config.tls_cert.is_some() {
        return;
    }
    let now = shared.clock.now_secs();
    rotate::tick(&config.data_dir, now, &shared.certs, |identity| {
        endpoint.set_server_config(Some(server_config(config, identity)?));
        Ok(())
    });
}

async fn sweep<S: QueueStore>(shared: &Shared<S>) -> Result<SweepStats, StoreError> {
    let now = shared.clock.now_secs();
    match shared.blobs.sweep(now).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(expired_blobs = n, "sweep"),
        Err(e) => tracing::warn!(error = %e, "blob sweep failed"),
    }
    let r = shared
        .store
        .sweep(now, shared.config.queue_idle.as_secs())
        .await;
    match &r {
        Ok(s) if s.expired_envelopes > 0 || s.idle_queues > 0 => tracing::info!(
            expired_envelopes = s.expired_envelopes,
            idle_queues = s.idle_queues,
            "sweep"
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "sweep failed"),
    }
    r
}

/// A relay running on a task.
pub struct RelayHandle<S> {
    address: RelayAddress,
    local_addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    shared: Arc<Shared<S>>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), RelayError>>,
}

impl<S> std::fmt::Debug for RelayHandle<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayHandle")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl<S: QueueStore> RelayHandle<S> {
    /// The relay's `hush://` address, as printed at start.
    pub fn address(&self) -> &RelayAddress {
        &self.address
    }

    /// The fingerprint of the certificate the relay serves to new connections now (after a
    /// certificate rotation's switch, no longer the one in [`RelayHandle::address`]).
    pub fn serving_fingerprint(&self) -> hush_protocol::Fingerprint {
        self.shared.certs.serving()
    }

    /// The certificate rotation the relay announces, if one is pending.
    pub fn pending_rotation(&self) -> Option<hush_protocol::CertRotation> {
        self.shared.certs.pending()
    }

    /// The bound socket.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The TCP address of the monitoring listener, if `metrics` is set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// The store the relay serves from.
    pub fn store(&self) -> &S {
        &self.shared.store
    }

    /// The relay's blob storage.
    pub fn blobs(&self) -> &Blobs {
        &self.shared.blobs
    }

    /// Who may create queues and blobs (to reload the tokens file, as SIGHUP does).
    pub fn access(&self) -> &Access {
        &self.shared.access
    }

    /// Which requests each connection carried, once [`crate::observe::ConnectionLog::start`]
    /// is called.
    #[cfg(feature = "testing")]
    pub fn connections(&self) -> &crate::observe::ConnectionLog {
        &self.shared.connections
    }

    /// From now on, answers `Hello` with `Malformed`, as a relay from before `Hello` does (it
    /// knows no such request), to test clients against an older relay.
    #[cfg(feature = "testing")]
    pub fn act_before_hello(&self) {
        self.shared
            .before_hello
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Runs one expiry sweep (queues and blobs) now, at the relay clock's current time.
    pub async fn sweep_now(&self) -> Result<SweepStats, StoreError> {
        sweep(&self.shared).await
    }

    /// Stops the relay gracefully and waits until it has.
    pub async fn shutdown(mut self) -> Result<(), RelayError> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let task = &mut self.task;
        let r = task.await.map_err(|e| RelayError::Task(e.to_string()))?;
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printed_host_follows_the_listen_address_then_public_addr_then_hostname() {
        let mut c = RelayConfig::default();
        let bound: SocketAddr = "10.0.0.5:4433".parse().unwrap();
        assert_eq!(public_host_port(&c, bound), ("10.0.0.5".to_owned(), 4433));
        let any: SocketAddr = "0.0.0.0:4433".parse().unwrap();
        let (host, port) = public_host_port(&c, any);
        assert!(!host.is_empty() && port == 4433);
        c.public_addr = Some("relay.example:7777".into());
        assert_eq!(
            public_host_port(&c, any),
            ("relay.example".to_owned(), 7777)
        );
        c.public_addr = Some("[2001:db8::1]:5".into());
        assert_eq!(public_host_port(&c, any), ("2001:db8::1".to_owned(), 5));
        c.public_addr = Some("relay.example".into());
        assert_eq!(
            public_host_port(&c, any),
            ("relay.example".to_owned(), 4433)
        );
    }

    #[tokio::test]
    async fn a_bound_relay_keeps_only_the_hash_of_its_create_token() {
        use sha2::{Digest, Sha256};
        let dir = tempfile::tempdir().unwrap();
        let token: hush_protocol::CreateToken = "kept-hashed-0123456789".parse().unwrap();
        let mut config = RelayConfig::loopback(dir.path());
        config.create_token = Some(token.clone());
        let store = crate::store::memory::MemoryStore::new();
        let relay = Relay::bind(config, store).unwrap();
        assert!(relay.shared.config.create_token.is_none());
        // What the relay holds of it: the hash, which the same search finds, not the token.
        let held = format!("{:?}", relay.shared.access);
        let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        assert!(held.contains(&format!("{hash:?}")), "{held}");
        assert!(!held.contains(token.as_str()), "{held}");
    }
}
