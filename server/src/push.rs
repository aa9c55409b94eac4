//! One subscription's pushes: the task that sends a queue's envelopes to the connection that
//! subscribed, in order, as the connection's write queue has room.
//!
//! It pulls envelopes from the store only when the write queue takes them, so a slow reader
//! makes the relay wait, never buffer without bound. It pushes the backlog that was pending at
//! subscribe time, then `Drained` once, then new envelopes as the store's wake-ups announce
//! them, and `QueueGone` when the queue is deleted.
//!
//! What it does not do: check that the connection may subscribe (`ops.rs`), or handle acks
//! (`pipeline.rs`).

use std::sync::Arc;
use std::time::Duration;

use hush_protocol::{Push, RecipientId};

use crate::limits::PUSH_BATCH;
use crate::ops::Shared;
use crate::outgoing::Outgoing;
use crate::store::QueueStore;

/// First pause before a subscription reads its queue again after a store read failed.
const READ_RETRY_MIN: Duration = Duration::from_millis(20);

/// Longest pause between a subscription's reads while the store keeps failing.
const READ_RETRY_MAX: Duration = Duration::from_secs(2);

/// Pushes a queue's pending envelopes in order, then `Drained` once, then new envelopes as they
/// arrive; returns when the queue is gone or the connection's writer is.
pub(crate) async fn push_loop<S: QueueStore>(
    shared: Arc<Shared<S>>,
    rid: RecipientId,
    out: Outgoing,
) {
    // Watch before the first read, so that no append between the two is missed.
    let mut wake = shared.store.watch(rid);
    let mut next_seq = 0u64;
    let mut woken = false;
    let mut drained = false;
    loop {
        let batch = read_pending(&shared, rid, next_seq).await;
        if batch.is_empty() && woken && !queue_exists(&shared, rid).await {
            let _ = out.push(Push::QueueGone { recipient_id: rid }).await;
            return;
        }
        let full = batch.len() == PUSH_BATCH;
        for env in batch {
            next_seq = env.seq + 1;
            let push = Push::Envelope {
                recipient_id: rid,
                envelope_id: env.id,
                expires_at: env.expires_at,
                body: env.body,
            };
            // Waits while the writer is behind: the store is read no faster than the client.
            if out.push(push).await.is_err() {
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
            if out.push(Push::Drained { recipient_id: rid }).await.is_err() {
                return;
            }
        }
        if !wake.changed().await {
            return;
        }
        woken = true;
    }
}

/// The next batch of pending envelopes from `next_seq`, reading again after a pause (longer
/// each time) while the store fails.
async fn read_pending<S: QueueStore>(
    shared: &Shared<S>,
    rid: RecipientId,
    next_seq: u64,
) -> Vec<crate::store::StoredEnvelope> {
    let mut retry = READ_RETRY_MIN;
    loop {
        let now = shared.clock.now_secs();
        match shared.store.pending(rid, next_seq, PUSH_BATCH, now).await {
            Ok(batch) => return batch,
            Err(e) => {
                // Not an empty batch: the envelopes are still there. Read again after a pause
                // instead of waiting for the next send, and do not report the backlog drained.
                tracing::warn!(error = %e, "reading pending envelopes failed; retrying");
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(READ_RETRY_MAX);
            }
        }
    }
}

async fn queue_exists<S: QueueStore>(shared: &Shared<S>, rid: RecipientId) -> bool {
    !matches!(shared.store.queue(rid).await, Ok(None))
}
