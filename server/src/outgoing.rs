//! One connection's bounded write queue: the frames waiting for the stream, and the writer task
//! that drains them.
//!
//! At most `CONNECTION_OUTGOING_FRAMES` frames and `CONNECTION_OUTGOING_BYTES` bytes wait at
//! once; a sender waits while the queue is full, so a client that reads slowly makes the relay
//! wait, never buffer without bound. The writer coalesces what is ready into one write.
//!
//! What it does not do: decide what to answer (`router.rs`) or what to push (`push.rs`).

use std::sync::Arc;

use hush_protocol::{ErrorCode, Push, Reply, ServerFrame};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;

use crate::limits::{CONNECTION_OUTGOING_BYTES, CONNECTION_OUTGOING_FRAMES};
use crate::metrics::ErrorCounter;

/// Largest batch of frames the writer coalesces into one write.
const WRITE_BATCH: usize = 64 * 1024;

/// A frame waiting for the writer, holding its share of the byte budget.
type Queued = (Vec<u8>, OwnedSemaphorePermit);

/// The sending half of a connection's bounded write queue. Cheap to clone; the writer finishes
/// the stream once every clone is gone.
#[derive(Clone)]
pub(crate) struct Outgoing {
    tx: mpsc::Sender<Queued>,
    budget: Arc<Semaphore>,
    errors: ErrorCounter,
}

impl Outgoing {
    /// Starts the writer task on `send`; returns the queue and the task, which ends once every
    /// [`Outgoing`] is dropped and what was queued is written.
    /// Error answers are counted in `errors`.
    pub(crate) fn start(
        send: quinn::SendStream,
        errors: ErrorCounter,
    ) -> (Outgoing, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(CONNECTION_OUTGOING_FRAMES);
        let out = Outgoing {
            tx,
            budget: Arc::new(Semaphore::new(CONNECTION_OUTGOING_BYTES)),
            errors,
        };
        (out, tokio::spawn(write_loop(send, rx)))
    }

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
        if let Err(code) = &result {
            self.errors.note(*code);
        }
        let mut frame = Vec::with_capacity(64);
        ServerFrame::Response { request_id, result }.encode_frame(&mut frame);
        self.send(frame).await
    }

    /// Queues a push. Fails once the writer is gone.
    pub(crate) async fn push(&self, push: Push) -> Result<(), ()> {
        let body_len = match &push {
            Push::Envelope { body, .. } => body.len(),
            Push::Envelopes { envelopes, .. } => envelopes.iter().map(|e| e.encoded_len()).sum(),
            _ => 0,
        };
        let mut frame = Vec::with_capacity(body_len + 64);
        ServerFrame::Push(push).encode_frame(&mut frame);
        self.send(frame).await
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
