//! The writer: one thread that applies the sends and acks of every connection as one sled batch
//! per round, so that one group commit makes them all durable. A round's new envelopes go into
//! a few segments (`segment`), not one sled key each, and its acks write nothing to sled but
//! the removal of segments they empty.
//!
//! sled 0.34 applies batches one at a time under a process-wide lock, and each send or ack used
//! to be its own batch. Here callers queue their operation ([`Writer::submit`]) and wait. The
//! writer takes everything queued, holds every lock stripe, stages the operations in queue order
//! in one sled `Batch`, changing the in-memory index as it goes (so each sees what the ones
//! before it staged, and capability and quota checks stay atomic with the append), applies it,
//! shreds the keys of acked envelopes, and hands the round to the group commit. When that flush
//! is done, the flusher wakes the queues that got envelopes and releases every caller with its result. While a flush runs, the writer
//! already stages the next round.
//!
//! Order: operations are staged in the order they were submitted, so a send submitted after
//! another to the same queue gets a later seq.
//!
//! What it does not do: flush (`commit`), or run other mutations (create, retract, re-secure,
//! touch, delete, sweep), which stay on their callers' threads under one stripe and wait for
//! the same group commit.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;

use hush_protocol::{EnvelopeId, RecipientId};
use hush_vault::SlotId;
use tokio::sync::oneshot;

use super::commit::{Committer, FlushResult};
use super::error::backend;
use super::mem::Undo;
use super::ops::{Core, SendOp};
use super::segment::SegmentRound;
use super::worker::{WorkQueue, Worker};
use crate::store::{StoreError, WakeRegistry};

/// Where a send's result goes: the queue's recipient id once durable.
pub(super) type SendDone = oneshot::Sender<Result<RecipientId, StoreError>>;
/// Where an ack's result goes: whether the envelope was still pending, once durable.
pub(super) type AckDone = oneshot::Sender<Result<bool, StoreError>>;

/// One operation for the writer.
pub(super) enum Op {
    /// Append an envelope (see `QueueStore::send`).
    Send(SendOp, SendDone),
    /// Remove an envelope for its recipient (see `QueueStore::ack`).
    Ack {
        recipient: RecipientId,
        envelope: EnvelopeId,
        now: u64,
        done: AckDone,
    },
}

/// The writer thread and its queue of operations.
pub(super) struct Writer {
    worker: Worker<Op>,
}

impl Writer {
    /// Starts the writer thread.
    pub(super) fn start(
        core: Arc<Core>,
        commit: Committer,
        wakes: WakeRegistry,
    ) -> Result<Writer, StoreError> {
        let worker = Worker::start("hush-store-write", "writer", move |queue| {
            write_loop(queue, &core, &commit, &wakes)
        })?;
        Ok(Writer { worker })
    }

    /// Queues `op`; it is staged after every operation submitted before this call returns.
    pub(super) fn submit(&self, op: Op) {
        self.worker.queue().push(op);
    }
}

fn write_loop(queue: &WorkQueue<Op>, core: &Core, commit: &Committer, wakes: &WakeRegistry) {
    loop {
        queue.wait();
        let (ops, shutdown) = queue.take();
        if !ops.is_empty() {
            // A panic inside sled must not kill the writer: later callers would wait forever.
            // The callers of a round that panicked see their result channel closed.
            let (count, started) = (ops.len(), Instant::now());
            let round = std::panic::catch_unwind(AssertUnwindSafe(|| run_round(core, ops)));
            tracing::trace!(
                ops = count,
                us = started.elapsed().as_micros(),
                "writer round"
            );
            match round {
                // A round whose batch sled refused wrote nothing to wait for: answer it now.
                // (On a full disk sled's flush can block for good; refusals must not wait on
                // it.)
                Ok(round) if round.refused => round.finish(Ok(()), wakes),
                Ok(round) => {
                    let covers = round.outcomes.len();
                    let wakes = wakes.clone();
                    commit.after_durable(covers, Box::new(move |r| round.finish(r, &wakes)));
                }
                Err(_) => {
                    // The index may hold half of the round: rebuild it from what sled holds.
                    tracing::error!("store writer round panicked");
                    if let Err(e) = core.rebuild_index() {
                        tracing::error!(error = %e, "cannot rebuild the store's index");
                    }
                }
            }
        }
        if shutdown && queue.is_empty() {
            return;
        }
    }
}

/// What one operation of a round came to, before the flush.
enum Outcome {
    Sent(SendDone, Result<RecipientId, StoreError>),
    Acked(AckDone, Result<bool, StoreError>),
}

/// A round applied to sled, waiting for its flush.
struct Round {
    outcomes: Vec<Outcome>,
    /// sled refused the batch: nothing of the round was written, every operation failed.
    refused: bool,
}

/// Stages `ops` in order, applies them as one batch and shreds the keys of removed envelopes.
/// If sled refuses the batch, the round is taken back in the index.
fn run_round(core: &Core, ops: Vec<Op>) -> Round {
    let mut outcomes = Vec::with_capacity(ops.len());
    // The slot of each staged send, and of each envelope an ack removed, by outcome index.
    let mut allocated: Vec<(usize, SlotId)> = Vec::new();
    let mut removed: Vec<(usize, u64)> = Vec::new();
    let mut undo = Undo::default();
    let senders = core.senders();
    let mut stripes = core.all_stripes();
    // The round's keys in one vault write; a send that finds none left allocates its own.
    let sends = ops.iter().filter(|op| matches!(op, Op::Send(..))).count();
    let mut keys = core.vault.allocate_many(sends).unwrap_or_default();
    let mut table = core.segments();
    let mut segs = SegmentRound::new(&mut table);
    let mut batch = sled::Batch::default();
    for op in ops {
        let i = outcomes.len();
        let staging = (&mut batch, &mut segs, &mut keys);
        match op {
            Op::Send(send, done) => {
                let r = core
                    .stage_append(&mut stripes, &senders, staging, &mut undo, send)
                    .map(|(r, slot)| {
                        allocated.push((i, slot));
                        r
                    });
                outcomes.push(Outcome::Sent(done, r));
            }
            Op::Ack {
                recipient,
                envelope,
                now,
                done,
            } => {
                let target = (&recipient, &envelope);
                let meta = core.stage_ack(&mut stripes, staging, &mut undo, target, now);
                let r = meta.is_some_and(|m| {
                    removed.push((i, m.slot));
                    // An expired envelope was no longer pending, though it is gone now.
                    m.expires_at > now
                });
                outcomes.push(Outcome::Acked(done, Ok(r)));
            }
        }
    }
    segs.close(&mut batch);
    // Keys of sends refused before they took one: nothing refers to them.
    let unused: Vec<SlotId> = keys.into_iter().map(|(slot, _)| slot).collect();
    if let Err(e) = core.vault.shred_many(&unused) {
        tracing::error!(error = %e, "cannot free unused vault slots");
    }
    let applied = core.db.apply_batch(batch);
    let refused = applied.is_err();
    match applied {
        Ok(()) => {
            drop(table);
            drop(stripes);
            drop(senders);
            // Shredding its key is what removes an acked envelope: one write per run of slots.
            let slots: Vec<SlotId> = removed
                .iter()
                .map(|(_, s)| SlotId::from_index(*s))
                .collect();
            if let Err(e) = core.vault.shred_many(&slots).map_err(backend) {
                // The envelopes are gone from the index but maybe not their keys: the acks fail.
                for (i, _) in removed {
                    outcomes[i].fail(&e);
                }
            }
        }
        Err(e) => {
            segs.undo();
            drop(table);
            Core::revert(&mut stripes, undo);
            drop(stripes);
            drop(senders);
            let refusal = backend(e);
            for (i, slot) in allocated {
                // Nothing refers to the key: shred it now (or on the next open if this fails).
                let _ = core.vault.shred_deferred(slot);
                outcomes[i].fail(&refusal);
            }
            for (i, _) in removed {
                outcomes[i].fail(&refusal);
            }
        }
    }
    Round { outcomes, refused }
}

impl Outcome {
    /// Turns a success into the storage failure `e`.
    fn fail(&mut self, e: &StoreError) {
        match self {
            Outcome::Sent(_, r @ Ok(_)) => *r = Err(e.clone()),
            Outcome::Acked(_, r @ Ok(_)) => *r = Err(e.clone()),
            _ => {}
        }
    }
}

impl Round {
    /// Called by the flusher: wakes the queues that got envelopes and releases every caller.
    fn finish(self, flushed: FlushResult, wakes: &WakeRegistry) {
        for mut outcome in self.outcomes {
            if let Err(e) = &flushed {
                outcome.fail(e);
            }
            // A caller that stopped waiting (its request was cancelled) is not an error.
            match outcome {
                Outcome::Sent(done, r) => {
                    if let Ok(rid) = &r {
                        wakes.wake(rid);
                    }
                    let _ = done.send(r);
                }
                Outcome::Acked(done, r) => {
                    let _ = done.send(r);
                }
            }
        }
    }
}
