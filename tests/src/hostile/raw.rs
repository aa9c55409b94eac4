//! Connections that misbehave on purpose, below what `RelayClient` allows: a bare connection
//! whose request stream the test writes and finishes by hand, a subscriber that
//! stops reading its stream, and a UDP hole that lets a client's handshake packets reach the
//! relay but never lets the answers back, so the relay's handshake waits.
//!
//! What it does not do: break QUIC itself (quinn still frames, encrypts and flow-controls every
//! packet these send).

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use ed25519_dalek::{Signer, SigningKey};
use hush_client::net::client_config;
use hush_protocol::auth::{signing_input, EXPORTER_LABEL};
use hush_protocol::{
    ErrorCode, FrameDecoder, Push, RecipientId, RelayAddress, Reply, Request, ServerFrame,
};
use tokio::net::UdpSocket;
use tokio::sync::Notify;

use crate::DEADLINE;

/// A bare connection to the relay with its request stream open: the test writes whatever
/// bytes it likes, and may finish the stream.
pub struct RawConnection {
    _endpoint: quinn::Endpoint,
    /// The connection.
    pub conn: quinn::Connection,
    /// The request stream, to write.
    pub send: quinn::SendStream,
    _recv: quinn::RecvStream,
}

impl RawConnection {
    /// Connects to the relay at `sock` (pinned to `addr`) and opens the request stream. The
    /// relay sees the stream once something is written on it.
    pub async fn open(addr: &RelayAddress, sock: SocketAddr) -> Self {
        let endpoint = quinn::Endpoint::client(([127, 0, 0, 1], 0).into()).expect("endpoint");
        let config = client_config(addr.fingerprint).expect("client config");
        let conn = endpoint
            .connect_with(config, sock, &addr.host)
            .expect("connect")
            .await
            .expect("handshake");
        let (send, recv) = conn.open_bi().await.expect("open the request stream");
        Self {
            _endpoint: endpoint,
            conn,
            send,
            _recv: recv,
        }
    }

    /// Writes `bytes` on the request stream.
    pub async fn write(&mut self, bytes: &[u8]) {
        self.send.write_all(bytes).await.expect("write");
    }

    /// Finishes the request stream (a FIN after what was written).
    pub fn finish(&mut self) {
        self.send.finish().expect("finish the stream");
    }

    /// The application close code the relay closes the connection with, failing the test if
    /// it is not closed that way before the deadline.
    pub async fn close_code(&self) -> u64 {
        let why = tokio::time::timeout(DEADLINE, self.conn.closed())
            .await
            .expect("closed before the deadline");
        match why {
            quinn::ConnectionError::ApplicationClosed(c) => c.error_code.into_inner(),
            other => panic!("closed otherwise: {other}"),
        }
    }
}

/// A connection that subscribes to a queue, reads until the subscribe is answered, and then
/// reads nothing until told to.
pub struct StalledReader {
    _endpoint: quinn::Endpoint,
    conn: quinn::Connection,
    _send: quinn::SendStream,
    recv: quinn::RecvStream,
    decoder: FrameDecoder,
    /// Envelope bodies received so far, in order.
    pub bodies: Vec<Vec<u8>>,
}

impl StalledReader {
    /// Connects to the relay at `sock` (pinned to `addr`), subscribes to `rid` with `key`, and
    /// reads up to the answer, which must be `Done`.
    pub async fn subscribe(
        addr: &RelayAddress,
        sock: SocketAddr,
        key: &SigningKey,
        rid: RecipientId,
    ) -> Self {
        let endpoint = quinn::Endpoint::client(([127, 0, 0, 1], 0).into()).expect("endpoint");
        let config = client_config(addr.fingerprint).expect("client config");
        let conn = endpoint
            .connect_with(config, sock, &addr.host)
            .expect("connect")
            .await
            .expect("handshake");
        let mut exporter = [0u8; 32];
        conn.export_keying_material(&mut exporter, EXPORTER_LABEL, b"")
            .expect("exporter");
        let (mut send, recv) = conn.open_bi().await.expect("open the request stream");
        let mut req = Request::Subscribe {
            recipient_id: rid,
            signature: [0; 64],
        };
        let sig = key.sign(&signing_input(&exporter, 1, &req.signed_part()));
        if let Some(s) = req.signature_mut() {
            *s = sig.to_bytes();
        }
        let mut frame = Vec::new();
        req.encode_frame(1, &mut frame);
        send.write_all(&frame).await.expect("write subscribe");
        let mut reader = Self {
            _endpoint: endpoint,
            conn,
            _send: send,
            recv,
            decoder: FrameDecoder::default(),
            bodies: Vec::new(),
        };
        let answer = reader.read_until_answer().await;
        assert_eq!(answer, Ok(Reply::Done), "subscribe answered");
        reader
    }

    /// Reads frames until the answer to request 1, keeping the pushed bodies.
    async fn read_until_answer(&mut self) -> Result<Reply, ErrorCode> {
        loop {
            while let Some(body) = self.decoder.pop().expect("framing") {
                match ServerFrame::decode(body).expect("frame") {
                    ServerFrame::Response {
                        request_id: 1,
                        result,
                    } => return result,
                    ServerFrame::Push(push) => self.keep(push),
                    _ => {}
                }
            }
            self.read_chunk().await;
        }
    }

    /// Reads until `n` bodies have arrived in all, failing the test at the deadline.
    pub async fn read_bodies(&mut self, n: usize) {
        while self.bodies.len() < n {
            while let Some(body) = self.decoder.pop().expect("framing") {
                if let ServerFrame::Push(push) = ServerFrame::decode(body).expect("frame") {
                    self.keep(push);
                }
            }
            if self.bodies.len() < n {
                self.read_chunk().await;
            }
        }
    }

    /// Keeps the bodies a push carries: one for `Envelope`, each of a `hush/2` `Envelopes`
    /// batch in order, none for the others.
    fn keep(&mut self, push: Push) {
        for one in push.unbatch() {
            if let Push::Envelope { body, .. } = one {
                self.bodies.push(body);
            }
        }
    }

    async fn read_chunk(&mut self) {
        let chunk = tokio::time::timeout(DEADLINE, self.recv.read_chunk(64 * 1024, true))
            .await
            .expect("a frame before the deadline")
            .expect("stream open")
            .expect("stream not finished");
        self.decoder.feed(&chunk.bytes);
    }

    /// Closes the connection.
    pub fn close(&self) {
        self.conn.close(0u32.into(), b"");
    }
}

/// A UDP forwarder in front of the relay that passes on what clients send and drops every answer:
/// a client's handshake starts on the relay and can never finish.
pub struct HandshakeHole {
    addr: SocketAddr,
    sources: Arc<(Mutex<HashSet<SocketAddr>>, Notify)>,
    task: tokio::task::JoinHandle<()>,
}

impl HandshakeHole {
    /// A hole in front of the relay at `relay`.
    pub async fn open(relay: SocketAddr) -> Self {
        let socket = UdpSocket::bind(("127.0.0.1", 0)).await.expect("bind hole");
        let addr = socket.local_addr().expect("hole address");
        let sources: Arc<(Mutex<HashSet<SocketAddr>>, Notify)> = Arc::default();
        let seen = sources.clone();
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 64 * 1024];
            while let Ok((n, from)) = socket.recv_from(&mut buf).await {
                if from == relay {
                    continue;
                }
                if socket.send_to(&buf[..n], relay).await.is_ok() {
                    seen.0
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .insert(from);
                    seen.1.notify_one();
                }
            }
        });
        Self {
            addr,
            sources,
            task,
        }
    }

    /// Where clients should connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Waits until packets from `n` different client sockets have been passed to the relay,
    /// failing the test at the deadline.
    pub async fn wait_for_sources(&self, n: usize) {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let notified = self.sources.1.notified();
            let seen = self
                .sources
                .0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .len();
            if seen >= n {
                return;
            }
            tokio::time::timeout_at(deadline, notified)
                .await
                .expect("handshake packets reached the relay before the deadline");
        }
    }
}

impl Drop for HandshakeHole {
    fn drop(&mut self) {
        self.task.abort();
    }
}
