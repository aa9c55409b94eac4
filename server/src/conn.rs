//! One client connection: its request stream, read and decoded frame by frame, until the client
//! leaves or the relay stops.
//!
//! The client opens one bidirectional stream. The ALPN value the handshake chose is the
//! connection's protocol version (`hush/1` or `hush/2`), kept with its [`ConnAuth`]. The reader
//! decodes request frames, applies the connection's request rate and hands each request to the
//! router (`router.rs`), which decides what it does. Answers and pushes go through the
//! connection's bounded write queue (`outgoing.rs`); when it is full, the reader waits, so the
//! relay stops reading requests.
//! On close, requests in flight are answered (briefly) and push tasks end.
//!
//! Hostile input: every frame that cannot be a request (an over-long length, a body too short
//! for a request id, a zero-length one included, or a stream finished in the middle of a
//! frame) closes the connection with `Malformed` through one function, [`broken`], which logs
//! it at debug level. A frame must arrive whole within the request deadline
//! (`RelayConfig::request_deadline`, `limits::REQUEST_DEADLINE`) of its first byte; otherwise the
//! connection is closed with `RequestTimeout`, so a client cannot hold its connection (and its
//! slot under `max_connections`) with a frame it never finishes while keep-alives reset the idle
//! timer. Every close with a code is counted in the metrics.
//!
//! What it does not do: accept connections or enforce connection-count limits (`relay.rs`), or
//! decide what a request does (`router.rs`).

use std::fmt::Display;
use std::sync::Arc;
use std::time::Duration;

use hush_protocol::auth::{WireVersion, EXPORTER_LABEL, EXPORTER_LEN};
use hush_protocol::{ErrorCode, FrameDecoder, Request};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::ops::{ConnAuth, Shared};
use crate::outgoing::Outgoing;
use crate::pipeline::Pipeline;
use crate::rate::RateLimiter;
use crate::router::{rate_exempt, route, ConnState};
use crate::shutdown::Shutdown;
use crate::store::QueueStore;

/// How long a closing connection waits for the client to receive what was written.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(3);

/// Largest chunk read from the request stream at once.
const READ_CHUNK: usize = 64 * 1024;

/// Serves one established connection until the client leaves or the relay shuts down.
pub(crate) async fn serve<S: QueueStore>(
    shared: Arc<Shared<S>>,
    conn: quinn::Connection,
    mut shutdown: Shutdown,
) {
    let mut exporter = [0u8; EXPORTER_LEN];
    if conn
        .export_keying_material(&mut exporter, EXPORTER_LABEL, b"")
        .is_err()
    {
        conn.close(0u32.into(), b"");
        return;
    }
    let stream = tokio::select! {
        s = conn.accept_bi() => s,
        _ = shutdown.stopped() => {
            close(&shared, &conn, ErrorCode::ShuttingDown);
            return;
        }
    };
    let Ok((send, recv)) = stream else { return };
    let (out, writer) = Outgoing::start(send, shared.metrics.errors());
    let auth = ConnAuth {
        exporter,
        queues_created: 0,
        subscriptions: Default::default(),
        standing: Default::default(),
        version: negotiated(&conn),
    };
    let seen = observed(&shared, &conn);
    let outcome = read_loop(&shared, auth, recv, &out, &mut shutdown, seen).await;
    ended(&shared, seen);
    drop(out);
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, writer).await;
    match outcome {
        Outcome::ClientLeft => conn.close(0u32.into(), b""),
        Outcome::Close(code) => close(&shared, &conn, code),
    }
}

/// The protocol version the handshake chose. The TLS configuration offers only our ALPN values,
/// so a handshake that completed chose one of them; `hush/1` is the fallback all the same.
fn negotiated(conn: &quinn::Connection) -> WireVersion {
    conn.handshake_data()
        .and_then(|d| d.downcast::<quinn::crypto::rustls::HandshakeData>().ok())
        .and_then(|d| d.protocol.as_deref().and_then(WireVersion::from_alpn))
        .unwrap_or(WireVersion::V1)
}

fn close<S>(shared: &Shared<S>, conn: &quinn::Connection, code: ErrorCode) {
    shared.metrics.closed(code);
    conn.close(u32::from(code.to_u16()).into(), code.to_string().as_bytes());
}

/// The one way a connection is closed for broken framing: logged at debug level (the reason
/// only, never the bytes), then closed with `Malformed`.
fn broken(reason: &dyn Display) -> ErrorCode {
    tracing::debug!(reason = %reason, "closing connection: bad framing");
    ErrorCode::Malformed
}

/// Resolves at `deadline`, or never if there is none.
pub(crate) async fn expiry(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The deadline of the frame in progress after a read: none if no partial frame is buffered;
/// a fresh one if the read completed frames (the partial one started in it) or none was running;
/// otherwise the running one.
fn frame_deadline(
    running: Option<Instant>,
    completed: usize,
    buffered: usize,
    allowed: Duration,
) -> Option<Instant> {
    match (buffered, running) {
        (0, _) => None,
        (_, Some(at)) if completed == 0 => Some(at),
        _ => Some(Instant::now() + allowed),
    }
}

enum Outcome {
    ClientLeft,
    Close(ErrorCode),
}

async fn read_loop<S: QueueStore>(
    shared: &Arc<Shared<S>>,
    mut auth: ConnAuth,
    mut recv: quinn::RecvStream,
    out: &Outgoing,
    shutdown: &mut Shutdown,
    seen: Observed,
) -> Outcome {
    let mut decoder = FrameDecoder::default();
    let mut limiter = RateLimiter::new(
        shared.config.requests_per_sec,
        shared.config.request_burst,
        shared.clock.now_millis(),
    );
    let mut subs = JoinSet::new();
    let mut pipeline = Pipeline::new();
    let mut deadline = None;
    let outcome = loop {
        let chunk = tokio::select! {
            biased;
            _ = shutdown.stopped() => break Outcome::Close(ErrorCode::ShuttingDown),
            _ = expiry(deadline) => {
                tracing::debug!(buffered = decoder.buffered(), "closing connection: a request frame stalled");
                break Outcome::Close(ErrorCode::RequestTimeout);
            }
            c = recv.read_chunk(READ_CHUNK, true) => c,
        };
        let chunk = match chunk {
            Ok(Some(c)) => c,
            Ok(None) if decoder.buffered() > 0 => {
                break Outcome::Close(broken(&"the stream ended inside a frame"));
            }
            Ok(None) | Err(_) => break Outcome::ClientLeft,
        };
        decoder.feed(&chunk.bytes);
        let mut conn = ConnState {
            auth: &mut auth,
            pipeline: &mut pipeline,
            subs: &mut subs,
        };
        let drained = drain_frames(shared, &mut conn, &mut limiter, &mut decoder, out, seen).await;
        match drained {
            Ok(completed) => {
                let allowed = shared.config.request_deadline;
                deadline = frame_deadline(deadline, completed, decoder.buffered(), allowed);
            }
            Err(code) => break Outcome::Close(code),
        }
    };
    // Requests in flight are answered (briefly) before the connection closes.
    pipeline.close().await;
    subs.abort_all();
    // Wait until the aborted tasks are gone, so nothing holds the store after the connection.
    while subs.join_next().await.is_some() {}
    outcome
}

/// Hands every complete frame in the decoder to the router, and queues the answers the router
/// gives at once; returns how many frames it took. An error closes the connection.
async fn drain_frames<S: QueueStore>(
    shared: &Arc<Shared<S>>,
    conn: &mut ConnState<'_>,
    limiter: &mut RateLimiter,
    decoder: &mut FrameDecoder,
    out: &Outgoing,
    seen: Observed,
) -> Result<usize, ErrorCode> {
    let mut completed = 0;
    loop {
        let decoded = match decoder.pop() {
            Ok(Some(body)) => Request::decode_frame(body),
            Ok(None) => return Ok(completed),
            Err(e) => return Err(broken(&e)),
        };
        completed += 1;
        let (request_id, result) = match decoded {
            Ok((id, req)) => {
                note(shared, seen, &req);
                if rate_exempt(&req) || limiter.allow(shared.clock.now_millis()) {
                    match route(shared, conn, id, req, out).await {
                        Some(result) => (id, result),
                        // Started in the pipeline, which answers it.
                        None => continue,
                    }
                } else {
                    (id, Err(ErrorCode::RateLimited))
                }
            }
            Err((Some(id), e)) => {
                tracing::debug!(error = %e, "malformed request");
                (id, Err(ErrorCode::Malformed))
            }
            // Too short to carry a request id, so it cannot be answered.
            Err((None, e)) => return Err(broken(&e)),
        };
        if out.respond(request_id, result).await.is_err() {
            return Err(ErrorCode::Malformed);
        }
    }
}

/// The connection's number and client address in the relay's connection log (tests only).
#[cfg(feature = "testing")]
type Observed = (u64, std::net::SocketAddr);
/// Nothing: only the `testing` feature keeps a connection log.
#[cfg(not(feature = "testing"))]
#[derive(Clone, Copy)]
struct Observed;

#[cfg(feature = "testing")]
fn observed<S>(shared: &Shared<S>, conn: &quinn::Connection) -> Observed {
    (shared.connections.number(), conn.remote_address())
}

#[cfg(not(feature = "testing"))]
fn observed<S>(_: &Shared<S>, _: &quinn::Connection) -> Observed {
    Observed
}

/// Records that the connection carried `req` (tests only).
#[cfg(feature = "testing")]
fn note<S>(shared: &Shared<S>, (number, remote): Observed, req: &Request) {
    shared.connections.note(number, remote, req);
}

#[cfg(not(feature = "testing"))]
fn note<S>(_: &Shared<S>, _: Observed, _: &Request) {}

/// Records that the connection has ended (tests only).
#[cfg(feature = "testing")]
fn ended<S>(shared: &Shared<S>, (number, _): Observed) {
    shared.connections.end(number);
}

#[cfg(not(feature = "testing"))]
fn ended<S>(_: &Shared<S>, _: Observed) {}
