//! The baseline: a raw quinn forwarder with no storage and no authentication, driven by the
//! same load (same payloads, same client count, same send window) as the relay.
//!
//! Each client opens one bidirectional stream and says which index it is. A message names its
//! destination index and a token; the forwarder writes it to the destination's stream and
//! answers the sender with the token, so a send "completes" as it does on the relay, only
//! without the store. Both directions use length-prefixed frames and a bounded per-connection
//! writer queue, as the relay does. The forwarder uses quinn's default transport settings.
//!
//! What it does not do: persist, authenticate, or limit anything beyond its writer queues. It is
//! a yardstick for "what this machine's QUIC stack can forward", not a relay.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use hush_protocol::Fingerprint;
use tokio::sync::{mpsc, oneshot};

use crate::net::{client_config, client_endpoints, connect_with_backoff};
use crate::target::ServerProcess;
use crate::workload::{storm, Peer, StormStats};

/// Frames buffered for one connection's writer (as the relay's `CONNECTION_OUTGOING_FRAMES`).
const OUTGOING_FRAMES: usize = 64;
/// Largest frame either side accepts.
const MAX_FRAME: usize = 128 * 1024;
/// Server frame kinds.
const KIND_ACK: u8 = 0;
const KIND_DELIVER: u8 = 1;

type Registry = Arc<Mutex<HashMap<u32, mpsc::Sender<Vec<u8>>>>>;

/// Splits complete length-prefixed frames off the front of `buf`.
fn pop_frame(buf: &mut Vec<u8>) -> anyhow::Result<Option<Vec<u8>>> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let len = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if len > MAX_FRAME {
        bail!("frame of {len} bytes");
    }
    if buf.len() < 4 + len {
        return Ok(None);
    }
    let frame = buf[4..4 + len].to_vec();
    buf.drain(..4 + len);
    Ok(Some(frame))
}

fn frame(parts: &[&[u8]]) -> Vec<u8> {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let mut f = Vec::with_capacity(4 + len);
    f.extend_from_slice(&(len as u32).to_le_bytes());
    for p in parts {
        f.extend_from_slice(p);
    }
    f
}

/// Writes queued frames, coalescing what is ready, as the relay's writer does.
async fn write_loop(mut send: quinn::SendStream, mut rx: mpsc::Receiver<Vec<u8>>) {
    let mut buf = Vec::new();
    while let Some(first) = rx.recv().await {
        buf.clear();
        buf.extend_from_slice(&first);
        while buf.len() < 64 * 1024 {
            match rx.try_recv() {
                Ok(f) => buf.extend_from_slice(&f),
                Err(_) => break,
            }
        }
        if send.write_all(&buf).await.is_err() {
            return;
        }
    }
    let _ = send.finish();
}

/// Binds a forwarder on `127.0.0.1:0` with a fresh self-signed certificate in `dir`.
pub(crate) fn bind_forwarder(
    dir: &std::path::Path,
) -> anyhow::Result<(quinn::Endpoint, Fingerprint)> {
    let id = hush_server::tls::load_or_generate(dir, &["localhost".to_owned()])?;
    let fp = id.fingerprint;
    let crypto =
        quinn::crypto::rustls::QuicServerConfig::try_from(hush_server::tls::server_crypto(id)?)?;
    let config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    // The same socket buffers as the relay's, so the comparison is about what runs above the
    // socket; everything else is quinn's default.
    let socket = std::net::UdpSocket::bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
    let size = hush_server::relay::UDP_SOCKET_BUFFER;
    let _ = rustix::net::sockopt::set_socket_recv_buffer_size(&socket, size);
    let _ = rustix::net::sockopt::set_socket_send_buffer_size(&socket, size);
    let runtime = quinn::default_runtime().context("no async runtime")?;
    let endpoint = quinn::Endpoint::new(
        quinn::EndpointConfig::default(),
        Some(config),
        socket,
        runtime,
    )?;
    Ok((endpoint, fp))
}

/// Accepts and forwards until the endpoint is closed.
pub(crate) async fn serve_forwarder(endpoint: quinn::Endpoint) {
    let registry: Registry = Arc::default();
    while let Some(incoming) = endpoint.accept().await {
        let registry = registry.clone();
        tokio::spawn(async move {
            if let Ok(conn) = incoming.await {
                let _ = forward_connection(conn, registry).await;
            }
        });
    }
}

/// The writer queue of client `dest`, waiting up to a second for its hello to arrive.
async fn lookup(registry: &Registry, dest: u32) -> Option<mpsc::Sender<Vec<u8>>> {
    for _ in 0..1000 {
        let found = registry
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&dest)
            .cloned();
        if found.is_some() {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    None
}

async fn forward_connection(conn: quinn::Connection, registry: Registry) -> anyhow::Result<()> {
    let (send, mut recv) = conn.accept_bi().await?;
    let (out_tx, out_rx) = mpsc::channel(OUTGOING_FRAMES);
    tokio::spawn(write_loop(send, out_rx));
    let mut buf = Vec::new();
    let mut me = None;
    let mut cache: HashMap<u32, mpsc::Sender<Vec<u8>>> = HashMap::new();
    while let Some(chunk) = recv.read_chunk(64 * 1024, true).await? {
        buf.extend_from_slice(&chunk.bytes);
        while let Some(f) = pop_frame(&mut buf)? {
            let Some(_) = me else {
                let idx = u32::from_le_bytes(f.get(..4).context("short hello")?.try_into()?);
                registry
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(idx, out_tx.clone());
                me = Some(idx);
                continue;
            };
            let dest = u32::from_le_bytes(f.get(..4).context("short frame")?.try_into()?);
            let token = f.get(4..8).context("short frame")?.to_vec();
            let tx = match cache.get(&dest) {
                Some(tx) => tx.clone(),
                None => {
                    let Some(tx) = lookup(&registry, dest).await else {
                        continue;
                    };
                    cache.insert(dest, tx.clone());
                    tx
                }
            };
            let _ = tx.send(frame(&[&[KIND_DELIVER], &f[8..]])).await;
            if out_tx.send(frame(&[&[KIND_ACK], &token])).await.is_err() {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// The forwarder the baseline runs against.
pub(crate) enum Forwarder {
    /// A `hush-bench forwarder` child process.
    Spawned(ServerProcess, SocketAddr, Fingerprint),
    /// A task in this process (quick mode); the directory holds its certificate.
    InProcess(
        quinn::Endpoint,
        Fingerprint,
        #[allow(dead_code)] tempfile::TempDir,
    ),
}

impl Forwarder {
    /// Starts `hush-bench forwarder` as a child process.
    pub(crate) async fn spawn() -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("hush-bench-fwd-")
            .tempdir()?;
        let me = std::env::current_exe()?;
        let args = vec![
            "forwarder".to_owned(),
            "--dir".to_owned(),
            dir.path().display().to_string(),
        ];
        let p = ServerProcess::spawn(&me, &args, &[], dir).await?;
        let (addr, fp) = p
            .first_line()
            .split_once(' ')
            .context("forwarder printed no address")?;
        let sock: SocketAddr = addr.parse()?;
        let fp = parse_fingerprint(fp)?;
        Ok(Self::Spawned(p, sock, fp))
    }

    /// Runs the forwarder on a task in this process.
    pub(crate) fn in_process() -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("hush-bench-fwd-")
            .tempdir()?;
        let (endpoint, fp) = bind_forwarder(dir.path())?;
        tokio::spawn(serve_forwarder(endpoint.clone()));
        Ok(Self::InProcess(endpoint, fp, dir))
    }

    fn sock_and_fp(&self) -> anyhow::Result<(SocketAddr, Fingerprint)> {
        match self {
            Self::Spawned(_, s, f) => Ok((*s, *f)),
            Self::InProcess(e, f, _) => Ok((e.local_addr()?, *f)),
        }
    }

    /// The forwarder's pid.
    pub(crate) fn pid(&self) -> u32 {
        match self {
            Self::Spawned(p, ..) => p.pid(),
            Self::InProcess(..) => std::process::id(),
        }
    }

    /// Stops it.
    pub(crate) async fn stop(self) -> anyhow::Result<()> {
        match self {
            Self::Spawned(p, ..) => p.stop().await,
            Self::InProcess(e, ..) => {
                e.close(0u32.into(), b"");
                Ok(())
            }
        }
    }
}

fn parse_fingerprint(hex_str: &str) -> anyhow::Result<Fingerprint> {
    let s = hex_str.trim();
    if s.len() != 64 {
        bail!("bad fingerprint {s:?}");
    }
    let mut fp = [0u8; 32];
    for (i, b) in fp.iter_mut().enumerate() {
        *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16)?;
    }
    Ok(Fingerprint(fp))
}

type Waiters = Arc<Mutex<HashMap<u32, oneshot::Sender<()>>>>;

/// One baseline client: the same shape as the hush client (a request stream, waiters by id,
/// an unbounded push channel), minus the protocol.
pub(crate) struct BasePeer {
    conn: quinn::Connection,
    _endpoint: quinn::Endpoint,
    send: tokio::sync::Mutex<quinn::SendStream>,
    waiters: Waiters,
    pushes: tokio::sync::Mutex<mpsc::UnboundedReceiver<Vec<u8>>>,
    next: AtomicU32,
}

impl BasePeer {
    async fn connect(
        endpoint: quinn::Endpoint,
        sock: SocketAddr,
        config: quinn::ClientConfig,
        index: u32,
    ) -> anyhow::Result<Self> {
        let conn = endpoint.connect_with(config, sock, "localhost")?.await?;
        let (mut send, recv) = conn.open_bi().await?;
        send.write_all(&frame(&[&index.to_le_bytes()])).await?;
        let waiters: Waiters = Arc::default();
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(client_read_loop(recv, waiters.clone(), tx));
        Ok(Self {
            conn,
            _endpoint: endpoint,
            send: tokio::sync::Mutex::new(send),
            waiters,
            pushes: tokio::sync::Mutex::new(rx),
            next: AtomicU32::new(0),
        })
    }

    /// Closes the connection.
    pub(crate) fn close(&self) {
        self.conn.close(0u32.into(), b"");
    }
}

async fn client_read_loop(
    mut recv: quinn::RecvStream,
    waiters: Waiters,
    pushes: mpsc::UnboundedSender<Vec<u8>>,
) {
    let mut buf = Vec::new();
    while let Ok(Some(chunk)) = recv.read_chunk(64 * 1024, true).await {
        buf.extend_from_slice(&chunk.bytes);
        while let Ok(Some(f)) = pop_frame(&mut buf) {
            match f.first() {
                Some(&KIND_ACK) if f.len() >= 5 => {
                    let token = u32::from_le_bytes([f[1], f[2], f[3], f[4]]);
                    let w = waiters
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .remove(&token);
                    if let Some(w) = w {
                        let _ = w.send(());
                    }
                }
                Some(&KIND_DELIVER) => {
                    if pushes.send(f[1..].to_vec()).is_err() {
                        return;
                    }
                }
                _ => return,
            }
        }
    }
}

impl Peer for BasePeer {
    type Delivery = ();

    async fn send(&self, dest: usize, body: Vec<u8>) -> anyhow::Result<()> {
        let token = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.waiters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(token, tx);
        let f = frame(&[&(dest as u32).to_le_bytes(), &token.to_le_bytes(), &body]);
        self.send.lock().await.write_all(&f).await?;
        rx.await
            .context("connection closed before the forwarder answered")
    }

    async fn recv(&self) -> Option<(Vec<u8>, ())> {
        self.pushes.lock().await.recv().await.map(|b| (b, ()))
    }

    async fn confirm(self: Arc<Self>, _: ()) -> anyhow::Result<()> {
        Ok(())
    }
}

/// Connects `n` baseline clients at once.
pub(crate) async fn setup(
    fwd: &Forwarder,
    n: usize,
    endpoints: usize,
    connect_timeout: Duration,
) -> anyhow::Result<(Vec<Arc<BasePeer>>, StormStats)> {
    let (sock, fp) = fwd.sock_and_fp()?;
    let endpoints = client_endpoints(endpoints.min(n))?;
    let config = client_config(fp)?;
    let deadline = Instant::now() + connect_timeout;
    let (peers, stats) = storm(n, |i| {
        let config = config.clone();
        let endpoint = endpoints[i % endpoints.len()].clone();
        async move {
            connect_with_backoff(deadline, || {
                BasePeer::connect(endpoint.clone(), sock, config.clone(), i as u32)
            })
            .await
        }
    })
    .await?;
    Ok((peers.into_iter().map(Arc::new).collect(), stats))
}
