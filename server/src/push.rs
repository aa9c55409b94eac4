//! One subscription's pushes: the task that sends a queue's envelopes to the connection that
//! subscribed, in order, as the connection's write queue has room.
//!
//! It pulls envelopes from the store only when the write queue takes them, so a slow reader
//! makes the relay wait, never buffer without bound. It pushes the backlog that was pending at
//! subscribe time, then `Drained` once, then new envelopes as the store's wake-ups announce
//! them, and `QueueGone` when the queue is deleted. On a `hush/2` connection the envelopes of
//! one store read go as few `Envelopes` pushes as the frame limit allows (one frame, one queue
//! slot and one copy into the stream for a batch of small envelopes); on `hush/1`, one
//! `Envelope` push each.
//!
//! What it does not do: check that the connection may subscribe (`ops.rs`), or handle acks
//! (`pipeline.rs`).

use std::sync::Arc;
use std::time::Duration;

use hush_protocol::limits::{MAX_FRAME_LEN, MAX_PUSH_BATCH};
use hush_protocol::message::ENVELOPES_OVERHEAD;
use hush_protocol::{Push, PushedEnvelope, RecipientId};

use crate::limits::PUSH_BATCH;
use crate::ops::Shared;
use crate::outgoing::Outgoing;
use crate::store::{QueueStore, StoredEnvelope};

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
    batches: bool,
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
        if let Some(last) = batch.last() {
            next_seq = last.seq + 1;
        }
        // Waits while the writer is behind: the store is read no faster than the client.
        if push_batch(&out, rid, batch, batches).await.is_err() {
            return;
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

/// Pushes one store read's envelopes in order: as `Envelopes` frames of at most
/// `MAX_FRAME_LEN` bytes when the connection `batches`, else (and for a lone envelope) as one
/// `Envelope` push each. Fails once the writer is gone.
async fn push_batch(
    out: &Outgoing,
    rid: RecipientId,
    batch: Vec<StoredEnvelope>,
    batches: bool,
) -> Result<(), ()> {
    let pushed = batch.into_iter().map(|env| PushedEnvelope {
        envelope_id: env.id,
        expires_at: env.expires_at,
        body: env.body,
    });
    if !batches {
        for one in pushed {
            out.push(single(rid, one)).await?;
        }
        return Ok(());
    }
    for group in frame_groups(pushed) {
        flush_group(out, rid, group).await?;
    }
    Ok(())
}

/// Splits envelopes, in order, into groups that each fit one `Envelopes` frame.
fn frame_groups(envelopes: impl Iterator<Item = PushedEnvelope>) -> Vec<Vec<PushedEnvelope>> {
    let mut groups: Vec<Vec<PushedEnvelope>> = Vec::new();
    let mut group_len = ENVELOPES_OVERHEAD;
    for env in envelopes {
        let len = env.encoded_len();
        match groups.last_mut() {
            Some(group) if group_len + len <= MAX_FRAME_LEN && group.len() < MAX_PUSH_BATCH => {
                group_len += len;
                group.push(env);
            }
            _ => {
                group_len = ENVELOPES_OVERHEAD + len;
                groups.push(vec![env]);
            }
        }
    }
    groups
}

/// Pushes a group of envelopes: nothing if empty, an `Envelope` if one, else `Envelopes`.
async fn flush_group(
    out: &Outgoing,
    rid: RecipientId,
    mut group: Vec<PushedEnvelope>,
) -> Result<(), ()> {
    match group.len() {
        0 => Ok(()),
        1 => match group.pop() {
            Some(one) => out.push(single(rid, one)).await,
            None => Ok(()),
        },
        _ => {
            let push = Push::Envelopes {
                recipient_id: rid,
                envelopes: group,
            };
            out.push(push).await
        }
    }
}

fn single(rid: RecipientId, e: PushedEnvelope) -> Push {
    Push::Envelope {
        recipient_id: rid,
        envelope_id: e.envelope_id,
        expires_at: e.expires_at,
        body: e.body,
    }
}

/// The next batch of pending envelopes from `next_seq`, reading again after a pause (longer
/// each time) while the store fails.
async fn read_pending<S: QueueStore>(
    shared: &Shared<S>,
    rid: RecipientId,
    next_seq: u64,
) -> Vec<StoredEnvelope> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use hush_protocol::{EnvelopeId, ServerFrame};

    fn env(i: u8, len: usize) -> PushedEnvelope {
        PushedEnvelope {
            envelope_id: EnvelopeId([i; 16]),
            expires_at: 1,
            body: vec![i; len],
        }
    }

    /// The sizes of the groups, after checking that each encodes within the frame limit.
    fn split(sizes: &[usize]) -> Vec<usize> {
        let envs = sizes.iter().enumerate().map(|(i, &len)| env(i as u8, len));
        let groups = frame_groups(envs);
        let mut ids = Vec::new();
        for g in &groups {
            ids.extend(g.iter().map(|e| e.envelope_id));
            let mut frame = Vec::new();
            let push = Push::Envelopes {
                recipient_id: RecipientId([9; 16]),
                envelopes: g.clone(),
            };
            ServerFrame::Push(push).encode_frame(&mut frame);
            assert!(frame.len() - 4 <= MAX_FRAME_LEN, "{} bytes", frame.len());
        }
        let want: Vec<_> = (0..sizes.len())
            .map(|i| EnvelopeId([i as u8; 16]))
            .collect();
        assert_eq!(ids, want, "order kept");
        groups.iter().map(Vec::len).collect()
    }

    #[test]
    fn small_envelopes_share_one_frame_and_large_ones_split_in_order() {
        assert_eq!(split(&[256; 32]), [32]);
        assert_eq!(split(&[30_000, 30_000, 30_000]), [2, 1]);
        assert_eq!(split(&[65_536, 2_000, 65_536]), [1, 1, 1]);
        assert_eq!(split(&[65_536, 10]), [2]);
        assert_eq!(split(&[]), Vec::<usize>::new());
    }
}
