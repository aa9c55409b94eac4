//! One client connection: its request stream, its bounded outgoing queue and its pushes.
//!
//! The client opens one bidirectional stream. A reader decodes request frames and answers them
//! in order; a writer drains a bounded channel of encoded frames onto the stream. Each
//! subscription is a small task that pulls envelopes from the store only when the channel has
//! room, so a slow reader makes the relay wait, never buffer without bound.
//!
//! What it does not do: accept connections or enforce connection-count limits (`relay.rs`).

use std::sync::Arc;
use std::time::Duration;

use hush_protocol::auth::{EXPORTER_LABEL, EXPORTER_LEN};
use hush_protocol::limits::{CONNECTION_OUTGOING_BYTES, CONNECTION_OUTGOING_FRAMES, PUSH_BATCH};
use hush_protocol::{ErrorCode, FrameDecoder, Push, RecipientId, Request, ServerFrame};
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use crate::ops::{ConnAuth, Effect, Shared};
use crate::rate::RateLimiter;
use crate::store::QueueStore;

/// How long a closing connection waits for the client to receive what was written.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(3);

/// Largest chunk read from the request stream at once.
const READ_CHUNK: usize = 64 * 1024;

/// Largest batch of frames the writer coalesces into one write.
const WRITE_BATCH: usize = 64 * 1024;

/// A frame waiting for the writer, holding its share of the byte budget.
type Queued = (Vec<u8>, OwnedSemaphorePermit);

/// The sending half of a connection's bounded outgoing queue: at most
/// `CONNECTION_OUTGOING_FRAMES` frames and `CONNECTION_OUTGOING_BYTES` bytes wait at once.
#[derive(Clone)]
struct Outgoing {
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
        if let Err(code) = drain_frames(
            shared,
            &mut auth,
            &mut decoder,
            &mut limiter,
            out,
            &mut subs,
        )
        .await
        {
            break Outcome::Close(code);
        }
    };
    subs.abort_all();
    // Wait until the aborted tasks are gone, so nothing holds the store after the connection.
    while subs.join_next().await.is_some() {}
    outcome
}

/// Answers every complete frame in the decoder. An error closes the connection.
async fn drain_frames<S: QueueStore>(
    shared: &Arc<Shared<S>>,
    auth: &mut ConnAuth,
    decoder: &mut FrameDecoder,
    limiter: &mut RateLimiter,
    out: &Outgoing,
    subs: &mut JoinSet<()>,
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
                if limiter.allow(shared.clock.now_millis()) {
                    let kind = req.kind();
                    let (result, effect) = shared.handle(auth, id, req).await;
                    if let Effect::Subscribe(rid) = effect {
                        subs.spawn(push_loop(shared.clone(), rid, out.clone()));
                    }
                    if let Err(code) = result {
                        tracing::debug!(op = kind, ?code, "request refused");
                    }
                    (id, result)
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
        let mut frame = Vec::with_capacity(64);
        ServerFrame::Response { request_id, result }.encode_frame(&mut frame);
        if out.send(frame).await.is_err() {
            return Err(ErrorCode::Malformed);
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

/// Pushes a queue's pending envelopes in order, then new ones as they arrive.
async fn push_loop<S: QueueStore>(shared: Arc<Shared<S>>, rid: RecipientId, out: Outgoing) {
    // Watch before the first read, so that no append between the two is missed.
    let mut wake = shared.store.watch(rid);
    let mut next_seq = 0u64;
    let mut woken = false;
    loop {
        let now = shared.clock.now_secs();
        let batch = match shared.store.pending(rid, next_seq, PUSH_BATCH, now).await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "reading pending envelopes failed");
                Vec::new()
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
        if !wake.changed().await {
            return;
        }
        woken = true;
    }
}

async fn queue_exists<S: QueueStore>(shared: &Shared<S>, rid: RecipientId) -> bool {
    !matches!(shared.store.queue(rid).await, Ok(None))
}
