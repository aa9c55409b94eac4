//! One client connection: its request stream, its bounded outgoing queue and its pushes.
//!
//! The client opens one bidirectional stream. A reader decodes request frames; sends and acks
//! go into the connection's pipeline (`pipeline.rs`) and are answered as each becomes durable,
//! every other request is handled alone, in request order, once those in flight are answered.
//! A writer drains a bounded channel of encoded frames onto the stream. Each subscription is a
//! small task that pulls envelopes from the store only when the channel has room, so a slow
//! reader makes the relay wait, never buffer without bound.
//!
//! Every request counts against the connection's request rate, except blob chunks
//! (`BlobWrite`, `BlobRead`), which QUIC flow control, in-order handling and the blob size cap
//! bound instead.
//!
//! What it does not do: accept connections or enforce connection-count limits (`relay.rs`).

use std::sync::Arc;
use std::time::Duration;

use hush_protocol::auth::{EXPORTER_LABEL, EXPORTER_LEN};
use hush_protocol::limits::{CONNECTION_OUTGOING_BYTES, CONNECTION_OUTGOING_FRAMES, PUSH_BATCH};
use hush_protocol::{ErrorCode, FrameDecoder, Push, RecipientId, Reply, Request, ServerFrame};
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use crate::ops::{ConnAuth, Effect, Shared};
use crate::pipeline::{Pipeline, SendRequest};
use crate::rate::RateLimiter;
use crate::store::QueueStore;

/// How long a closing connection waits for the client to receive what was written.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(3);

/// First pause before a subscription reads its queue again after a store read failed.
const READ_RETRY_MIN: Duration = Duration::from_millis(20);

/// Longest pause between a subscription's reads while the store keeps failing.
const READ_RETRY_MAX: Duration = Duration::from_secs(2);

/// Largest chunk read from the request stream at once.
const READ_CHUNK: usize = 64 * 1024;

/// Largest batch of frames the writer coalesces into one write.
const WRITE_BATCH: usize = 64 * 1024;

/// A frame waiting for the writer, holding its share of the byte budget.
type Queued = (Vec<u8>, OwnedSemaphorePermit);

/// The sending half of a connection's bounded outgoing queue: at most
/// `CONNECTION_OUTGOING_FRAMES` frames and `CONNECTION_OUTGOING_BYTES` bytes wait at once.
#[derive(Clone)]
pub(crate) struct Outgoing {
    tx: mpsc::Sender<Queued>,
    budget: Arc<Semaphore>,
}

impl Outgoing {
    /// Queues a frame, waiting while the queue is full. Fails once the writer is gone.
    async fn send(&self, frame: Vec<u8>) -> Result<(), ()> {
        let cost = u32::try_from(frame.len().min(CONNECTION_OUTGOING_BYTES)).unwrap_or(u32::MAX);
        let permit = self
            .budget
            .clone()
            .acquire_many_owned(cost)
            .await
            .map_err(drop)?;
        self.tx.send((frame, permit)).await.map_err(drop)
    }

    /// Queues the response to request `request_id`. Fails once the writer is gone.
    pub(crate) async fn respond(
        &self,
        request_id: u32,
        result: Result<Reply, ErrorCode>,
    ) -> Result<(), ()> {
        let mut frame = Vec::with_capacity(64);
        ServerFrame::Response { request_id, result }.encode_frame(&mut frame);
        self.send(frame).await
    }
}

/// Serves one established connection until the client leaves or the relay shuts down.
pub(crate) async fn serve<S: QueueStore>(
    shared: Arc<Shared<S>>,
    conn: quinn::Connection,
    mut shutdown: watch::Receiver<bool>,
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
        _ = crate::relay::stopped(&mut shutdown) => {
            close(&conn, ErrorCode::ShuttingDown);
            return;
        }
    };
    let Ok((send, recv)) = stream else { return };
    let (out_tx, out_rx) = mpsc::channel(CONNECTION_OUTGOING_FRAMES);
    let out_tx = Outgoing {
        tx: out_tx,
        budget: Arc::new(Semaphore::new(CONNECTION_OUTGOING_BYTES)),
    };
    let writer = tokio::spawn(write_loop(send, out_rx));
    let auth = ConnAuth {
        exporter,
        queues_created: 0,
        subscriptions: Default::default(),
    };
    let outcome = read_loop(&shared, auth, recv, &out_tx, &mut shutdown).await;
    drop(out_tx);
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, writer).await;
    match outcome {
        Outcome::ClientLeft => conn.close(0u32.into(), b""),
        Outcome::Close(code) => close(&conn, code),
    }
}

fn close(conn: &quinn::Connection, code: ErrorCode) {
    conn.close(u32::from(code.to_u16()).into(), code.to_string().as_bytes());
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
    shutdown: &mut watch::Receiver<bool>,
) -> Outcome {
    let mut decoder = FrameDecoder::default();
    let mut limiter = RateLimiter::new(
        shared.config.requests_per_sec,
        shared.config.request_burst,
        shared.clock.now_millis(),
    );
    let mut subs = JoinSet::new();
    let mut pipeline = Pipeline::new();
    let outcome = loop {
        let chunk = tokio::select! {
            biased;
            _ = crate::relay::stopped(shutdown) => break Outcome::Close(ErrorCode::ShuttingDown),
            c = recv.read_chunk(READ_CHUNK, true) => c,
        };
        let chunk = match chunk {
            Ok(Some(c)) => c,
            Ok(None) | Err(_) => break Outcome::ClientLeft,
        };
        decoder.feed(&chunk.bytes);
        let mut conn = ConnState {
            auth: &mut auth,
            limiter: &mut limiter,
            pipeline: &mut pipeline,
            subs: &mut subs,
        };
        if let Err(code) = drain_frames(shared, &mut conn, &mut decoder, out).await {
            break Outcome::Close(code);
        }
    };
    // Requests in flight are answered (briefly) before the connection closes.
    pipeline.close().await;
    subs.abort_all();
    // Wait until the aborted tasks are gone, so nothing holds the store after the connection.
    while subs.join_next().await.is_some() {}
    outcome
}

/// What one connection's reader keeps between chunks.
struct ConnState<'a> {
    auth: &'a mut ConnAuth,
    limiter: &'a mut RateLimiter,
    pipeline: &'a mut Pipeline,
    subs: &'a mut JoinSet<()>,
}

/// Whether a request is exempt from the request-rate limit: blob chunks, which QUIC flow control,
/// in-order handling and the blob size cap bound (a 150 MB/s transfer is ~2,300 chunks/s).
fn rate_exempt(req: &Request) -> bool {
    matches!(req, Request::BlobWrite { .. } | Request::BlobRead { .. })
}

/// Handles every complete frame in the decoder: sends and acks are started in the pipeline and
/// answered when durable, the rest are answered here in order. An error closes the connection.
async fn drain_frames<S: QueueStore>(
    shared: &Arc<Shared<S>>,
    conn: &mut ConnState<'_>,
    decoder: &mut FrameDecoder,
    out: &Outgoing,
) -> Result<(), ErrorCode> {
    loop {
        let decoded = match decoder.pop() {
            Ok(Some(body)) => Request::decode_frame(body),
            Ok(None) => return Ok(()),
            Err(e) => {
                tracing::debug!(error = %e, "closing connection: bad framing");
                return Err(ErrorCode::Malformed);
            }
        };
        let (request_id, result) = match decoded {
            Ok((id, req)) => {
                if rate_exempt(&req) || conn.limiter.allow(shared.clock.now_millis()) {
                    match dispatch(shared, conn, id, req, out).await {
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
            Err((None, _)) => return Err(ErrorCode::Malformed),
        };
        if out.respond(request_id, result).await.is_err() {
            return Err(ErrorCode::Malformed);
        }
    }
}

/// Starts a send or an ack in the pipeline (and returns `None`), or handles any other request
/// alone once everything in flight is answered (and returns its result).
async fn dispatch<S: QueueStore>(
    shared: &Arc<Shared<S>>,
    conn: &mut ConnState<'_>,
    id: u32,
    req: Request,
    out: &Outgoing,
) -> Option<Result<Reply, ErrorCode>> {
    match req {
        Request::Send {
            sender_id,
            send_cap,
            ttl_secs,
            new_send_cap,
            body,
        } => {
            let send = SendRequest {
                sender_id,
                send_cap,
                ttl_secs,
                new_send_cap,
                body,
            };
            conn.pipeline.send(shared, id, send, out).await;
            None
        }
        Request::Ack {
            recipient_id,
            envelope_id,
        } => {
            let auth = &*conn.auth;
            conn.pipeline
                .ack(shared, auth, id, recipient_id, envelope_id, out)
                .await;
            None
        }
        req => {
            conn.pipeline.settle().await;
            let kind = req.kind();
            let (result, effect) = shared.handle(conn.auth, id, req).await;
            if let Effect::Subscribe(rid) = effect {
                conn.subs.spawn(push_loop(shared.clone(), rid, out.clone()));
            }
            if let Err(code) = result {
                tracing::debug!(op = kind, ?code, "request refused");
            }
            Some(result)
        }
    }
}

/// Writes queued frames to the stream, coalescing what is ready into one write.
async fn write_loop(mut send: quinn::SendStream, mut rx: mpsc::Receiver<Queued>) {
    let mut buf = Vec::new();
    let mut permits = Vec::new();
    while let Some((first, permit)) = rx.recv().await {
        buf.clear();
        buf.extend_from_slice(&first);
        permits.push(permit);
        while buf.len() < WRITE_BATCH {
            match rx.try_recv() {
                Ok((f, p)) => {
                    buf.extend_from_slice(&f);
                    permits.push(p);
                }
                Err(_) => break,
            }
        }
        if send.write_all(&buf).await.is_err() {
            return;
        }
        // The bytes are with QUIC now (bounded by its send window): release their budget.
        permits.clear();
    }
    let _ = send.finish();
    let _ = send.stopped().await;
}

/// Pushes a queue's pending envelopes in order, then `Drained` once, then new envelopes as they
/// arrive.
async fn push_loop<S: QueueStore>(shared: Arc<Shared<S>>, rid: RecipientId, out: Outgoing) {
    // Watch before the first read, so that no append between the two is missed.
    let mut wake = shared.store.watch(rid);
    let mut next_seq = 0u64;
    let mut woken = false;
    let mut drained = false;
    let mut retry = READ_RETRY_MIN;
    loop {
        let now = shared.clock.now_secs();
        let batch = match shared.store.pending(rid, next_seq, PUSH_BATCH, now).await {
            Ok(b) => {
                retry = READ_RETRY_MIN;
                b
            }
            Err(e) => {
                // Not an empty batch: the envelopes are still there. Read again after a pause
                // (longer each time the store keeps failing) instead of waiting for the next
                // send, and do not report the backlog drained.
                tracing::warn!(error = %e, "reading pending envelopes failed; retrying");
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(READ_RETRY_MAX);
                continue;
            }
        };
        if batch.is_empty() && woken && !queue_exists(&shared, rid).await {
            let mut frame = Vec::with_capacity(32);
            ServerFrame::Push(Push::QueueGone { recipient_id: rid }).encode_frame(&mut frame);
            let _ = out.send(frame).await;
            return;
        }
        let full = batch.len() == PUSH_BATCH;
        for env in batch {
            next_seq = env.seq + 1;
            let mut frame = Vec::with_capacity(env.body.len() + 64);
            ServerFrame::Push(Push::Envelope {
                recipient_id: rid,
                envelope_id: env.id,
                expires_at: env.expires_at,
                body: env.body,
            })
            .encode_frame(&mut frame);
            // Waits while the writer is behind: the store is read no faster than the client.
            if out.send(frame).await.is_err() {
                return;
            }
        }
        if full {
            woken = false;
            continue;
        }
        if !drained {
            // The backlog that was pending at subscribe time has been pushed.
            drained = true;
            let mut frame = Vec::with_capacity(32);
            ServerFrame::Push(Push::Drained { recipient_id: rid }).encode_frame(&mut frame);
            if out.send(frame).await.is_err() {
                return;
            }
        }
        if !wake.changed().await {
            return;
        }
        woken = true;
    }
}

async fn queue_exists<S: QueueStore>(shared: &Shared<S>, rid: RecipientId) -> bool {
    !matches!(shared.store.queue(rid).await, Ok(None))
}
