//! Batched acks on a `hush/2` connection: acks made close together go to the relay as one
//! `AckMany` request per queue, answered once.
//!
//! [`AckBatcher::ack`] hands the envelope to one task per connection. Each time the task runs
//! it takes every ack waiting in its channel (up to `MAX_ACK_BATCH`) and sends one request per
//! queue; it keeps at most [`ACKS_IN_FLIGHT`] requests in flight, and while all are, acks wait.
//! An ack never waits for company: on an idle connection it leaves at once, alone; under load
//! the acks made while the task waited to run share one request and one answer. Every caller
//! gets the answer of the request that carried its envelope; acks are idempotent, so a failed
//! batch may be acked again.
//!
//! What it does not do: decide whether the connection may batch (the negotiated version, in
//! `relay_client.rs`), or read answers (the connection's reader routes them to [`Waiters`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use hush_protocol::limits::MAX_ACK_BATCH;
use hush_protocol::{EnvelopeId, ErrorCode, RecipientId, Reply, Request};
use tokio::sync::{mpsc, oneshot, Semaphore};

/// Ack requests one connection keeps in flight at most (half the relay's pipeline of 32, so
/// sends keep room). Four were tried: more acks shared a request, but each waited longer for a
/// slot, and a receiver that keeps a fixed number of acks outstanding fell behind its senders.
pub(super) const ACKS_IN_FLIGHT: usize = 16;

/// The calls waiting for an answer, by request id.
pub(super) type Waiters = Arc<Mutex<HashMap<u32, oneshot::Sender<Result<Reply, ErrorCode>>>>>;

/// How an ack went: done, refused by the relay with a code, or `Err(None)`: the connection
/// failed before an answer (the caller knows why).
pub(super) type AckResult = Result<(), Option<ErrorCode>>;

/// One ack waiting for a request.
type Queued = (RecipientId, EnvelopeId, oneshot::Sender<AckResult>);

/// One queue's acks for one request, each with its caller.
type Group = Vec<(EnvelopeId, oneshot::Sender<AckResult>)>;

/// What the batching task needs of the connection to send a request and hear its answer.
pub(super) struct Wire {
    /// The request stream.
    pub(super) send: Arc<tokio::sync::Mutex<quinn::SendStream>>,
    /// Where the reader delivers answers.
    pub(super) waiters: Waiters,
    /// The connection's request id counter.
    pub(super) next_id: Arc<AtomicU32>,
}

impl Wire {
    /// Sends `req` under a fresh id and waits for its answer; `Err(None)` if the connection
    /// failed first.
    async fn call(&self, req: Request) -> Result<Reply, Option<ErrorCode>> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.waiters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, tx);
        let mut frame = Vec::with_capacity(64);
        req.encode_frame(id, &mut frame);
        let written = self.send.lock().await.write_all(&frame).await;
        if written.is_err() {
            self.waiters
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&id);
            return Err(None);
        }
        match rx.await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(code)) => Err(Some(code)),
            Err(_) => Err(None),
        }
    }
}

/// The sending side of one connection's ack task; the task ends when this is dropped and the
/// acks in flight are answered.
pub(super) struct AckBatcher {
    tx: mpsc::UnboundedSender<Queued>,
}

impl AckBatcher {
    /// Starts the connection's ack task.
    pub(super) fn start(wire: Wire) -> AckBatcher {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(Arc::new(wire), rx));
        AckBatcher { tx }
    }

    /// Acks one envelope; resolves with the answer to the request that carried it.
    pub(super) async fn ack(&self, rid: RecipientId, envelope: EnvelopeId) -> AckResult {
        let (tx, rx) = oneshot::channel();
        self.tx.send((rid, envelope, tx)).map_err(|_| None)?;
        rx.await.unwrap_or(Err(None))
    }
}

/// Takes acks as request slots free up, each time every ack waiting, and sends them.
async fn run(wire: Arc<Wire>, mut rx: mpsc::UnboundedReceiver<Queued>) {
    let slots = Arc::new(Semaphore::new(ACKS_IN_FLIGHT));
    loop {
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let Some(first) = rx.recv().await else {
            return;
        };
        let mut taken = vec![first];
        while taken.len() < MAX_ACK_BATCH {
            match rx.try_recv() {
                Ok(next) => taken.push(next),
                Err(_) => break,
            }
        }
        let slot = Arc::new(slot);
        for (rid, group) in by_queue(taken) {
            let (wire, slot) = (Arc::clone(&wire), Arc::clone(&slot));
            tokio::spawn(async move {
                send_group(&wire, rid, group).await;
                drop(slot);
            });
        }
    }
}

/// Groups acks by queue, keeping each queue's acks in the order they came.
fn by_queue(taken: Vec<Queued>) -> Vec<(RecipientId, Group)> {
    let mut groups: Vec<(RecipientId, Group)> = Vec::new();
    for (rid, envelope, tx) in taken {
        match groups.iter_mut().find(|(r, _)| *r == rid) {
            Some((_, group)) => group.push((envelope, tx)),
            None => groups.push((rid, vec![(envelope, tx)])),
        }
    }
    groups
}

/// Sends one queue's acks as one request (`Ack` for one, `AckMany` for more) and hands its
/// answer to every caller.
async fn send_group(wire: &Wire, rid: RecipientId, group: Group) {
    let req = match group.as_slice() {
        [(one, _)] => Request::Ack {
            recipient_id: rid,
            envelope_id: *one,
        },
        many => Request::AckMany {
            recipient_id: rid,
            envelope_ids: many.iter().map(|(e, _)| *e).collect(),
        },
    };
    let result = wire.call(req).await.map(drop);
    for (_, tx) in group {
        let _ = tx.send(result);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acks_group_by_queue_in_order() {
        let q = |r: u8, e: u8| {
            let (tx, _) = oneshot::channel();
            (RecipientId([r; 16]), EnvelopeId([e; 16]), tx)
        };
        let groups = by_queue(vec![q(1, 1), q(2, 2), q(1, 3), q(1, 4)]);
        let ids: Vec<(u8, Vec<u8>)> = groups
            .iter()
            .map(|(r, g)| (r.0[0], g.iter().map(|(e, _)| e.0[0]).collect()))
            .collect();
        assert_eq!(ids, vec![(1, vec![1, 3, 4]), (2, vec![2])]);
    }
}
