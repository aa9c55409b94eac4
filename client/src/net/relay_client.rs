//! One QUIC connection to one relay, pinned to its certificate.
//!
//! [`RelayClient`] speaks the protocol directly: typed calls for every request, pipelining
//! (calls may run concurrently; each waits for its own request id), and a stream of pushes. It
//! is what the end-to-end tests and the benchmark drive, and what [`super::RelayPool`] builds
//! on. It offers `hush/2` and `hush/1` and speaks what the relay chose ([`RelayClient::version`]);
//! on `hush/2` its acks are batched (`acks.rs`) and each `Envelopes` push is handed on as the
//! `Envelope` pushes it carries, so its callers see the same calls and pushes in both versions.
//!
//! With a [`Socks5Proxy`] ([`RelayClient::connect_via`]) the connection's endpoint sends
//! through the proxy only; when the proxy ends the association, the connection is closed and
//! its calls fail with [`RelayCallError::Proxy`].
//!
//! What it does not do: reconnect (the pool does), encrypt envelopes or remember queues.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use ed25519_dalek::{Signer, SigningKey};
use hush_protocol::address::RelayHost;
use hush_protocol::auth::{signing_input, WireVersion, ALPN, ALPNS, EXPORTER_LABEL, EXPORTER_LEN};
use hush_protocol::{
    EnvelopeId, ErrorCode, Fingerprint, FrameDecoder, Push, RecipientId, RelayAddress, Reply,
    Request, SendCapability, SenderId, ServerFrame,
};
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot};

use super::acks::{AckBatcher, Waiters, Wire};
use super::backoff::DEFAULT_IDLE_TIMEOUT;
use super::pin::PinnedCertVerifier;
use super::socks5::{self, ProxyError, ProxyLink, Socks5Proxy};

/// The TLS alert a relay sends when it shares no ALPN value (protocol version) with the client
/// (RFC 8446 §6.2, `no_application_protocol`).
const NO_APPLICATION_PROTOCOL: u8 = 120;

/// Interval of QUIC keep-alives, well under the relay's idle timeout.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Why a call on one relay connection failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RelayCallError {
    /// The relay answered with an error code.
    #[error("relay refused the request: {0}")]
    Relay(ErrorCode),
    /// The relay refused the connection (it is at its connection or handshake limit).
    #[error("relay refused the connection (busy); retry later")]
    Refused,
    /// The connection closed; `code` is the relay's reason when it gave one.
    #[error("connection closed{}", .code.map(|c| format!(": {c}")).unwrap_or_default())]
    Closed {
        /// The relay's close code, if it closed with one.
        code: Option<ErrorCode>,
    },
    /// Could not connect (address, TLS or certificate pin).
    #[error("cannot connect to relay: {0}")]
    Connect(String),
    /// The relay presented a certificate that matches no pin: its operator rotated it (and this
    /// client did not learn the new one in time), or someone is intercepting the connection.
    #[error("the relay presented a certificate other than the pinned one")]
    CertificateMismatch,
    /// The relay speaks no protocol version this client does (no shared ALPN value): one of
    /// the two needs an update.
    #[error("the relay speaks another protocol version than this client ({}); update hush, or ask the relay's operator which version it runs", String::from_utf8_lossy(ALPN))]
    Version,
    /// The relay sent something that does not decode.
    #[error("relay sent an invalid frame")]
    Protocol,
    /// The SOCKS5 proxy could not carry the connection, or ended it. Nothing went to the relay
    /// directly.
    #[error(transparent)]
    Proxy(ProxyError),
}

/// Closes the connection when dropped while still holding it.
struct CloseIfDropped<'a>(Option<&'a quinn::Connection>);

impl Drop for CloseIfDropped<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.0 {
            conn.close(0u32.into(), b"request cancelled");
        }
    }
}

fn closed_error(e: &quinn::ConnectionError) -> RelayCallError {
    match e {
        quinn::ConnectionError::ApplicationClosed(c) => RelayCallError::Closed {
            code: u16::try_from(c.error_code.into_inner())
                .ok()
                .and_then(ErrorCode::from_u16),
        },
        quinn::ConnectionError::ConnectionClosed(c)
            if c.error_code == quinn::TransportErrorCode::CONNECTION_REFUSED =>
        {
            RelayCallError::Refused
        }
        quinn::ConnectionError::ConnectionClosed(c)
            if c.error_code == quinn::TransportErrorCode::crypto(NO_APPLICATION_PROTOCOL) =>
        {
            RelayCallError::Version
        }
        _ => RelayCallError::Closed { code: None },
    }
}

/// A connection to one relay.
pub struct RelayClient {
    conn: quinn::Connection,
    _endpoint: quinn::Endpoint,
    send: Arc<tokio::sync::Mutex<quinn::SendStream>>,
    waiters: Waiters,
    pushes: tokio::sync::Mutex<mpsc::UnboundedReceiver<Push>>,
    next_id: Arc<AtomicU32>,
    /// The protocol version the relay chose.
    version: WireVersion,
    /// Batches acks, on a `hush/2` connection.
    acks: Option<AckBatcher>,
    exporter: [u8; EXPORTER_LEN],
    /// Set when the relay's stream ended: no answer or push can come any more, even if the
    /// connection has not finished closing.
    reader_done: Arc<AtomicBool>,
    /// The SOCKS5 association the connection runs through, if any.
    proxy: Option<ProxyLink>,
    /// SHA-256 of the certificate the relay presented (one of the pins).
    presented: Option<Fingerprint>,
}

impl std::fmt::Debug for RelayClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayClient")
            .field("remote", &self.conn.remote_address())
            .finish_non_exhaustive()
    }
}

/// A client endpoint whose connections pin `fingerprint` and offer ALPN `hush/2` and `hush/1`.
pub fn client_config(fingerprint: Fingerprint) -> Result<quinn::ClientConfig, RelayCallError> {
    pinned_config(
        vec![fingerprint],
        Arc::default(),
        &ALPNS,
        DEFAULT_IDLE_TIMEOUT,
    )
}

/// As [`client_config`] offering only `alpn` (to test versions and version mismatches).
pub fn client_config_with_alpn(
    fingerprint: Fingerprint,
    alpn: &[u8],
) -> Result<quinn::ClientConfig, RelayCallError> {
    pinned_config(
        vec![fingerprint],
        Arc::default(),
        &[alpn],
        DEFAULT_IDLE_TIMEOUT,
    )
}

/// A client configuration accepting any of `pins`, which sets `mismatch` when the relay
/// presents a certificate matching none.
fn pinned_config(
    pins: Vec<Fingerprint>,
    mismatch: Arc<AtomicBool>,
    alpns: &[&[u8]],
    idle_timeout: Duration,
) -> Result<quinn::ClientConfig, RelayCallError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = PinnedCertVerifier::with_pins(pins, provider.clone(), mismatch);
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| RelayCallError::Connect(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    tls.alpn_protocols = alpns.iter().map(|a| a.to_vec()).collect();
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls)
        .map_err(|e| RelayCallError::Connect(e.to_string()))?;
    let mut cfg = quinn::ClientConfig::new(Arc::new(crypto));
    let mut transport = quinn::TransportConfig::default();
    transport
        .keep_alive_interval(Some(KEEP_ALIVE.min(idle_timeout / 2)))
        .max_idle_timeout(quinn::IdleTimeout::try_from(idle_timeout).ok());
    cfg.transport_config(Arc::new(transport));
    Ok(cfg)
}

impl RelayClient {
    /// Connects to a `hush://` address, resolving its host.
    pub async fn connect(addr: &RelayAddress) -> Result<Self, RelayCallError> {
        Self::connect_via(addr, None).await
    }

    /// As [`RelayClient::connect`]; with `proxy`, through that SOCKS5 proxy and nothing else.
    /// If the proxy cannot be reached or cannot carry UDP, this fails with
    /// [`RelayCallError::Proxy`] and nothing is sent to the relay.
    pub async fn connect_via(
        addr: &RelayAddress,
        proxy: Option<&Socks5Proxy>,
    ) -> Result<Self, RelayCallError> {
        Self::connect_pinned(addr, &[addr.fingerprint], proxy).await
    }

    /// As [`RelayClient::connect_via`], accepting a certificate whose fingerprint is any of
    /// `pins` (the address's own is not added), and trying the address's hosts in order until
    /// one connects. A certificate matching no pin is [`RelayCallError::CertificateMismatch`]
    /// when no host connected; otherwise the last host's error is returned. (The pool tries
    /// hosts itself, with a time limit on each.)
    pub async fn connect_pinned(
        addr: &RelayAddress,
        pins: &[Fingerprint],
        proxy: Option<&Socks5Proxy>,
    ) -> Result<Self, RelayCallError> {
        let mut last = RelayCallError::Connect("the relay address lists no host".into());
        let mut mismatched = false;
        for host in addr.hosts() {
            match Self::connect_host(&host, pins, proxy, DEFAULT_IDLE_TIMEOUT).await {
                Ok(client) => return Ok(client),
                Err(RelayCallError::CertificateMismatch) => mismatched = true,
                Err(e) => last = e,
            }
        }
        Err(if mismatched {
            RelayCallError::CertificateMismatch
        } else {
            last
        })
    }

    /// Connects to one host of a relay, accepting a certificate whose fingerprint is any of
    /// `pins`; with `proxy`, through that SOCKS5 proxy only. The connection counts as dead
    /// after `idle_timeout` without a word from the relay.
    pub async fn connect_host(
        host: &RelayHost,
        pins: &[Fingerprint],
        proxy: Option<&Socks5Proxy>,
        idle_timeout: Duration,
    ) -> Result<Self, RelayCallError> {
        let sock = tokio::net::lookup_host(host.host_port())
            .await
            .map_err(|e| RelayCallError::Connect(e.to_string()))?
            .next()
            .ok_or_else(|| RelayCallError::Connect(format!("{} did not resolve", host.host)))?;
        let mismatch = Arc::new(AtomicBool::new(false));
        let config = pinned_config(pins.to_vec(), mismatch.clone(), &ALPNS, idle_timeout)?;
        let connected = match proxy {
            None => Self::connect_with(sock, &host.host, config).await,
            Some(proxy) => {
                let (endpoint, link) = socks5::proxied_endpoint(proxy)
                    .await
                    .map_err(RelayCallError::Proxy)?;
                Self::connect_inner(&endpoint, sock, &host.host, config, Some(link)).await
            }
        };
        match connected {
            Err(_) if mismatch.load(Ordering::Acquire) => Err(RelayCallError::CertificateMismatch),
            other => other,
        }
    }

    /// SHA-256 of the certificate the relay presented on this connection.
    pub fn presented_fingerprint(&self) -> Option<Fingerprint> {
        self.presented
    }

    /// Connects to `sock` with an explicit client configuration; `host` is the TLS server name.
    pub async fn connect_with(
        sock: SocketAddr,
        host: &str,
        config: quinn::ClientConfig,
    ) -> Result<Self, RelayCallError> {
        let local: SocketAddr = if sock.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            ([0u16; 8], 0).into()
        };
        let endpoint =
            quinn::Endpoint::client(local).map_err(|e| RelayCallError::Connect(e.to_string()))?;
        Self::connect_on(&endpoint, sock, host, config).await
    }

    /// As [`RelayClient::connect_with`], through an existing client endpoint, so that many
    /// connections can share one UDP socket (the load generator holds thousands).
    pub async fn connect_on(
        endpoint: &quinn::Endpoint,
        sock: SocketAddr,
        host: &str,
        config: quinn::ClientConfig,
    ) -> Result<Self, RelayCallError> {
        Self::connect_inner(endpoint, sock, host, config, None).await
    }

    async fn connect_inner(
        endpoint: &quinn::Endpoint,
        sock: SocketAddr,
        host: &str,
        config: quinn::ClientConfig,
        proxy: Option<ProxyLink>,
    ) -> Result<Self, RelayCallError> {
        let connecting = endpoint
            .connect_with(config, sock, host)
            .map_err(|e| RelayCallError::Connect(e.to_string()))?;
        let handshake = async {
            connecting.await.map_err(|e| match closed_error(&e) {
                RelayCallError::Closed { code: None } => RelayCallError::Connect(e.to_string()),
                other => other,
            })
        };
        let conn = match &proxy {
            None => handshake.await?,
            Some(link) => tokio::select! {
                conn = handshake => conn?,
                () = link.closed() => return Err(RelayCallError::Proxy(link.error())),
            },
        };
        if let Some(link) = &proxy {
            tokio::spawn(close_with_proxy(conn.clone(), link.clone()));
        }
        let presented = presented_fingerprint(&conn);
        let mut exporter = [0u8; EXPORTER_LEN];
        conn.export_keying_material(&mut exporter, EXPORTER_LABEL, b"")
            .map_err(|_| RelayCallError::Connect("TLS exporter unavailable".into()))?;
        let version = negotiated(&conn);
        let (send, recv) = conn.open_bi().await.map_err(|e| closed_error(&e))?;
        let send = Arc::new(tokio::sync::Mutex::new(send));
        let next_id = Arc::new(AtomicU32::new(1));
        let waiters: Waiters = Arc::default();
        let acks = version.batches().then(|| {
            AckBatcher::start(Wire {
                send: Arc::clone(&send),
                waiters: Arc::clone(&waiters),
                next_id: Arc::clone(&next_id),
            })
        });
        let (push_tx, push_rx) = mpsc::unbounded_channel();
        let reader_done = Arc::new(AtomicBool::new(false));
        tokio::spawn(read_loop(
            recv,
            waiters.clone(),
            push_tx,
            reader_done.clone(),
        ));
        Ok(Self {
            conn,
            _endpoint: endpoint.clone(),
            send,
            waiters,
            pushes: tokio::sync::Mutex::new(push_rx),
            next_id,
            version,
            acks,
            exporter,
            reader_done,
            proxy,
            presented,
        })
    }

    /// The protocol version the relay chose for this connection.
    pub fn version(&self) -> WireVersion {
        self.version
    }

    /// This connection's TLS exporter value, which recipient signatures bind to.
    pub fn exporter(&self) -> [u8; EXPORTER_LEN] {
        self.exporter
    }

    /// Reserves a fresh request id.
    pub fn next_request_id(&self) -> u32 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Fills in `req`'s signature for request id `id` on this connection.
    pub fn sign(&self, key: &SigningKey, id: u32, req: &mut Request) {
        let msg = signing_input(&self.exporter, id, &req.signed_part());
        let sig = key.sign(&msg).to_bytes();
        if let Some(slot) = req.signature_mut() {
            *slot = sig;
        }
    }

    /// Sends a request under a fresh id and waits for its answer.
    pub async fn call(&self, req: Request) -> Result<Reply, RelayCallError> {
        self.call_with_id(self.next_request_id(), req).await
    }

    /// Signs `req` with `key` under a fresh id, sends it and waits for its answer.
    pub async fn call_signed(
        &self,
        key: &SigningKey,
        mut req: Request,
    ) -> Result<Reply, RelayCallError> {
        let id = self.next_request_id();
        self.sign(key, id, &mut req);
        self.call_with_id(id, req).await
    }

    /// Sends a request under the given id and waits for its answer.
    pub async fn call_with_id(&self, id: u32, req: Request) -> Result<Reply, RelayCallError> {
        let (tx, rx) = oneshot::channel();
        self.waiters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, tx);
        let mut frame = Vec::new();
        req.encode_frame(id, &mut frame);
        self.write(&frame).await?;
        match rx.await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(code)) => Err(RelayCallError::Relay(code)),
            Err(_) => Err(self.close_reason()),
        }
    }

    /// Writes raw bytes to the request stream (tests use it to send malformed frames).
    ///
    /// A call dropped while its frame is half written (a cancelled transfer) would leave the
    /// stream out of step with the relay's framing; the connection is then closed, so later
    /// calls fail at once (and the pool reconnects) instead of waiting for an answer that
    /// cannot come.
    pub async fn write(&self, bytes: &[u8]) -> Result<(), RelayCallError> {
        let mut send = self.send.lock().await;
        let mut half_written = CloseIfDropped(Some(&self.conn));
        let written = send.write_all(bytes).await;
        half_written.0 = None;
        written.map_err(|_| self.close_reason())
    }

    fn close_reason(&self) -> RelayCallError {
        if let Some(link) = self.proxy.as_ref().filter(|l| l.is_closed()) {
            return RelayCallError::Proxy(link.error());
        }
        match self.conn.close_reason() {
            Some(e) => closed_error(&e),
            None => RelayCallError::Closed { code: None },
        }
    }

    /// Whether the connection has closed (for any reason), or the relay ended its stream so
    /// that nothing more can arrive on it.
    pub fn is_closed(&self) -> bool {
        self.reader_done.load(Ordering::Acquire)
            || self.conn.close_reason().is_some()
            || self.proxy.as_ref().is_some_and(ProxyLink::is_closed)
    }

    /// Waits for the connection to close and says why.
    pub async fn closed(&self) -> RelayCallError {
        let e = self.conn.closed().await;
        match self.proxy.as_ref().filter(|l| l.is_closed()) {
            Some(link) => RelayCallError::Proxy(link.error()),
            None => closed_error(&e),
        }
    }

    /// The next push, or `None` once the connection is gone.
    pub async fn next_push(&self) -> Option<Push> {
        self.pushes.lock().await.recv().await
    }

    /// Closes the connection.
    pub fn close(&self) {
        self.conn.close(0u32.into(), b"");
    }

    /// Creates a queue owned by `key`, sendable with `cap`.
    pub async fn create_queue(
        &self,
        key: &SigningKey,
        cap: &SendCapability,
    ) -> Result<(RecipientId, SenderId), RelayCallError> {
        let req = Request::CreateQueue {
            recipient_key: key.verifying_key().to_bytes(),
            send_cap: cap.clone(),
            signature: [0; 64],
        };
        expect_reply!(
            self.call_signed(key, req),
            Reply::Created { recipient_id, sender_id } => (recipient_id, sender_id)
        )
    }

    /// Sends an envelope; with `new_cap`, atomically replaces the queue's send capability.
    pub async fn send(
        &self,
        sender_id: SenderId,
        cap: &SendCapability,
        ttl_secs: u32,
        new_cap: Option<&SendCapability>,
        body: Vec<u8>,
    ) -> Result<EnvelopeId, RelayCallError> {
        let req = Request::Send {
            sender_id,
            send_cap: cap.clone(),
            ttl_secs,
            new_send_cap: new_cap.cloned(),
            body,
        };
        expect_reply!(self.call(req), Reply::Sent { envelope_id } => envelope_id)
    }

    /// Retracts an envelope; returns whether it was still pending.
    pub async fn retract(
        &self,
        sender_id: SenderId,
        cap: &SendCapability,
        envelope_id: EnvelopeId,
    ) -> Result<bool, RelayCallError> {
        let req = Request::Retract {
            sender_id,
            send_cap: cap.clone(),
            envelope_id,
        };
        expect_reply!(self.call(req), Reply::Retracted { was_pending } => was_pending)
    }

    /// Subscribes to a queue; its envelopes then arrive through [`RelayClient::next_push`].
    pub async fn subscribe(
        &self,
        key: &SigningKey,
        recipient_id: RecipientId,
    ) -> Result<(), RelayCallError> {
        let req = Request::Subscribe {
            recipient_id,
            signature: [0; 64],
        };
        self.call_signed(key, req).await.map(drop)
    }

    /// Acknowledges (deletes) a delivered envelope. On `hush/2`, acks made while others are in
    /// flight share one `AckMany` request; the result is that request's.
    pub async fn ack(
        &self,
        recipient_id: RecipientId,
        envelope_id: EnvelopeId,
    ) -> Result<(), RelayCallError> {
        if let Some(acks) = &self.acks {
            return match acks.ack(recipient_id, envelope_id).await {
                Ok(()) => Ok(()),
                Err(Some(code)) => Err(RelayCallError::Relay(code)),
                Err(None) => Err(self.close_reason()),
            };
        }
        let req = Request::Ack {
            recipient_id,
            envelope_id,
        };
        self.call(req).await.map(drop)
    }

    /// Replaces a queue's send capability.
    pub async fn resecure(
        &self,
        key: &SigningKey,
        recipient_id: RecipientId,
        new_cap: &SendCapability,
    ) -> Result<(), RelayCallError> {
        let req = Request::Resecure {
            recipient_id,
            new_send_cap: new_cap.clone(),
            signature: [0; 64],
        };
        self.call_signed(key, req).await.map(drop)
    }

    /// Deletes a queue and everything in it.
    pub async fn delete_queue(
        &self,
        key: &SigningKey,
        recipient_id: RecipientId,
    ) -> Result<(), RelayCallError> {
        let req = Request::DeleteQueue {
            recipient_id,
            signature: [0; 64],
        };
        self.call_signed(key, req).await.map(drop)
    }
}

impl Drop for RelayClient {
    fn drop(&mut self) {
        self.conn.close(0u32.into(), b"");
    }
}

/// The protocol version the handshake chose; `hush/1` if it names none of ours (a relay from
/// before ALPN lists could only have chosen `hush/1`).
fn negotiated(conn: &quinn::Connection) -> WireVersion {
    conn.handshake_data()
        .and_then(|d| d.downcast::<quinn::crypto::rustls::HandshakeData>().ok())
        .and_then(|d| d.protocol.as_deref().and_then(WireVersion::from_alpn))
        .unwrap_or(WireVersion::V1)
}

/// SHA-256 of the end-entity certificate the peer presented, if it presented one.
fn presented_fingerprint(conn: &quinn::Connection) -> Option<Fingerprint> {
    let identity = conn.peer_identity()?;
    let chain = identity.downcast_ref::<Vec<rustls::pki_types::CertificateDer<'static>>>()?;
    let first = chain.first()?;
    Some(Fingerprint(Sha256::digest(first.as_ref()).into()))
}

/// Closes `conn` when the proxy's association under it ends: nothing can pass any more, and
/// calls should fail now rather than at the idle timeout.
async fn close_with_proxy(conn: quinn::Connection, link: ProxyLink) {
    tokio::select! {
        () = link.closed() => conn.close(0u32.into(), b"proxy closed"),
        _ = conn.closed() => {}
    }
}

/// Routes responses to their waiting calls and pushes to the push channel.
async fn read_loop(
    recv: quinn::RecvStream,
    waiters: Waiters,
    pushes: mpsc::UnboundedSender<Push>,
    done: Arc<AtomicBool>,
) {
    read_frames(recv, &waiters, &pushes).await;
    // Marked before the waiters and the push channel go, so that whoever sees them go also
    // sees the connection as closed.
    done.store(true, Ordering::Release);
    waiters
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clear();
}

async fn read_frames(
    mut recv: quinn::RecvStream,
    waiters: &Waiters,
    pushes: &mpsc::UnboundedSender<Push>,
) {
    let mut decoder = FrameDecoder::default();
    while let Ok(Some(chunk)) = recv.read_chunk(64 * 1024, true).await {
        decoder.feed(&chunk.bytes);
        loop {
            let frame = match decoder.pop() {
                Ok(Some(body)) => ServerFrame::decode(body),
                Ok(None) => break,
                Err(_) => return,
            };
            match frame {
                Ok(ServerFrame::Response { request_id, result }) => {
                    let waiter = waiters
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .remove(&request_id);
                    if let Some(w) = waiter {
                        let _ = w.send(result);
                    }
                }
                Ok(ServerFrame::Push(p)) => {
                    // Never waits: a response queued behind pushes must not wait for the
                    // application to drain them. The relay's queue quotas bound this buffer.
                    // A batch goes on as the envelopes it carries, in order.
                    for one in p.unbatch() {
                        if pushes.send(one).is_err() {
                            return;
                        }
                    }
                }
                Ok(_) | Err(_) => return,
            }
        }
    }
}
