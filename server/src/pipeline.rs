//! The sends and acks one connection has in flight: each waits for its group commit in its own
//! task and is answered as soon as it is durable, so a connection does not wait one flush per
//! request.
//!
//! Responses may leave out of order; they carry the request id. Sends keep their order all the
//! same: [`Pipeline::send`] returns only once the store has given the send its place in the
//! queue (see `QueueStore::start_send`), so a connection's later send to the same queue gets a
//! later seq. Every other request waits for [`Pipeline::settle`] (all in flight answered)
//! and is then handled alone, in request order, as before. At most
//! `CONNECTION_PIPELINED_REQUESTS` requests and `CONNECTION_PIPELINED_BYTES` body bytes are in
//! flight per connection; past that the connection reads no further requests.
//!
//! What it does not do: decode requests or rate-limit them (`conn.rs`), choose which requests
//! are pipelined (`router.rs`), or decide what a send or an ack does (`ops.rs`).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hush_protocol::{EnvelopeId, ErrorCode, RecipientId, Reply, SendCapability, SenderId};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use crate::limits::{CONNECTION_PIPELINED_BYTES, CONNECTION_PIPELINED_REQUESTS};
use crate::ops::{may_ack, ConnAuth, Shared};
use crate::outgoing::Outgoing;
use crate::store::QueueStore;

/// How long a closing connection lets requests in flight finish (and be answered).
const SETTLE_ON_CLOSE: Duration = Duration::from_secs(3);

/// A send as decoded from its request.
pub(crate) struct SendRequest {
    pub(crate) sender_id: SenderId,
    pub(crate) send_cap: SendCapability,
    pub(crate) ttl_secs: u32,
    pub(crate) new_send_cap: Option<SendCapability>,
    pub(crate) body: Vec<u8>,
}

/// A request slot and a share of the body budget, held until the response is queued.
type Room = (Option<OwnedSemaphorePermit>, Option<OwnedSemaphorePermit>);

/// One connection's requests in flight.
pub(crate) struct Pipeline {
    requests: Arc<Semaphore>,
    bytes: Arc<Semaphore>,
    tasks: JoinSet<()>,
}

impl Pipeline {
    /// Nothing in flight.
    pub(crate) fn new() -> Pipeline {
        Pipeline {
            requests: Arc::new(Semaphore::new(CONNECTION_PIPELINED_REQUESTS)),
            bytes: Arc::new(Semaphore::new(CONNECTION_PIPELINED_BYTES)),
            tasks: JoinSet::new(),
        }
    }

    /// Starts a send, waiting first for room in the pipeline. Returns once the send has its
    /// place in the queue's order; its response is written when it is durable.
    pub(crate) async fn send<S: QueueStore>(
        &mut self,
        shared: &Shared<S>,
        request_id: u32,
        req: SendRequest,
        out: &Outgoing,
    ) {
        let cost = req.body.len().clamp(1, CONNECTION_PIPELINED_BYTES);
        let room = self.room(u32::try_from(cost).unwrap_or(u32::MAX)).await;
        let started = shared
            .start_send(
                req.sender_id,
                &req.send_cap,
                req.ttl_secs,
                req.new_send_cap.as_ref(),
                req.body,
            )
            .await;
        let out = out.clone();
        match started {
            Ok(durable) => {
                let sends = shared.metrics.sends.clone();
                self.spawn(room, async move {
                    let result = durable.await;
                    if result.is_ok() {
                        sends.inc();
                    }
                    answer(&out, request_id, "send", result).await;
                })
            }
            Err(code) => self.spawn(room, async move {
                answer(&out, request_id, "send", Err(code)).await;
            }),
        }
    }

    /// Starts an ack of one or more envelopes of queue `rid` (an `Ack` or an `AckMany`),
    /// waiting first for room in the pipeline (one request slot either way); its one response
    /// is written when every deletion is durable.
    pub(crate) async fn ack<S: QueueStore>(
        &mut self,
        shared: &Arc<Shared<S>>,
        auth: &ConnAuth,
        request_id: u32,
        rid: RecipientId,
        envelopes: Vec<EnvelopeId>,
        out: &Outgoing,
    ) {
        let room = self.room(1).await;
        let out = out.clone();
        if let Err(code) = may_ack(auth, rid) {
            self.spawn(room, async move {
                answer(&out, request_id, "ack", Err(code)).await;
            });
            return;
        }
        let shared = Arc::clone(shared);
        self.spawn(room, async move {
            let result = match envelopes.as_slice() {
                [one] => shared.ack_subscribed(rid, *one).await,
                many => shared.ack_many_subscribed(rid, many).await,
            };
            if result.is_ok() {
                shared.metrics.acks.inc_by(envelopes.len() as u64);
            }
            answer(&out, request_id, "ack", result).await;
        });
    }

    /// Waits until every request in flight has been answered.
    pub(crate) async fn settle(&mut self) {
        let all = u32::try_from(CONNECTION_PIPELINED_REQUESTS).unwrap_or(u32::MAX);
        if let Ok(permits) = self.requests.acquire_many(all).await {
            drop(permits);
        }
        self.reap();
    }

    /// Lets the requests in flight finish for a while, then cancels the rest; returns once no
    /// task of this pipeline is left.
    pub(crate) async fn close(mut self) {
        let _ = tokio::time::timeout(SETTLE_ON_CLOSE, async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
    }

    /// Waits for one request slot and `bytes` of body budget.
    async fn room(&mut self, bytes: u32) -> Room {
        self.reap();
        // Neither semaphore is ever closed, so acquiring fails only in theory; the request then
        // goes ahead without that share of the budget rather than never being answered.
        let request = Arc::clone(&self.requests).acquire_owned().await.ok();
        let bytes = Arc::clone(&self.bytes).acquire_many_owned(bytes).await.ok();
        (request, bytes)
    }

    fn spawn(&mut self, room: Room, task: impl Future<Output = ()> + Send + 'static) {
        self.tasks.spawn(async move {
            task.await;
            drop(room);
        });
    }

    /// Forgets tasks that have finished, so the set does not grow with the connection's age.
    fn reap(&mut self) {
        while self.tasks.try_join_next().is_some() {}
    }
}

/// Queues the response to a pipelined request.
async fn answer(out: &Outgoing, request_id: u32, op: &str, result: Result<Reply, ErrorCode>) {
    if let Err(code) = &result {
        tracing::debug!(op, ?code, "request refused");
    }
    // Fails only once the writer is gone, that is when the connection is closing anyway.
    let _ = out.respond(request_id, result).await;
}
