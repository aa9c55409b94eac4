//! Background checkpoints: the periodic part of the blob durability rule, run on one
//! dedicated thread so that an upload's writes never wait for a sync.
//!
//! When a write takes a blob [`CHECKPOINT_BYTES`](super::CHECKPOINT_BYTES) past its last
//! checkpoint, the index hands the blob to the [`Checkpointer`]. Its thread notes the blob's
//! committed length, fdatasyncs the file (writes keep landing meanwhile; only the bytes before
//! the noted length are claimed), then, under the blob's lock, writes the header recording that
//! length, and fdatasyncs again. A blob has at most one background checkpoint queued or running.
//! A failed checkpoint is logged and retried after the next write; the blob stays as durable as
//! its last good checkpoint, which is what a restart would report.
//!
//! What it does not do: the final checkpoint of an upload and the flush at shutdown; those run
//! on the caller's thread, because their answer must wait for them.

use std::sync::atomic::Ordering;
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use super::entry::Blob;
use super::error::BlobError;

/// The checkpoint thread and the queue feeding it.
pub(super) struct Checkpointer {
    queue: Mutex<Option<Sender<Arc<Blob>>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Checkpointer {
    /// Starts the thread.
    pub(super) fn start() -> Result<Checkpointer, BlobError> {
        let (tx, rx) = channel::<Arc<Blob>>();
        let thread = std::thread::Builder::new()
            .name("hush-blob-checkpoint".into())
            .spawn(move || {
                while let Ok(blob) = rx.recv() {
                    if let Err(e) = checkpoint_in_background(&blob) {
                        tracing::warn!(error = %e, "background blob checkpoint failed");
                    }
                }
            })?;
        Ok(Checkpointer {
            queue: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Queues a checkpoint of `blob` (whose `checkpointing` flag the caller has set).
    pub(super) fn request(&self, blob: Arc<Blob>) {
        let queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        let sent = queue.as_ref().map(|q| q.send(blob));
        if !matches!(sent, Some(Ok(()))) {
            tracing::warn!("blob checkpoint thread is gone; the upload is checkpointed at its end");
        }
    }

    /// Lets the queued checkpoints finish, then stops the thread.
    pub(super) fn stop(&self) {
        drop(
            self.queue
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(t) = thread {
            let _ = t.join();
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Makes the bytes written so far durable without holding the blob's lock during the syncs.
fn checkpoint_in_background(blob: &Blob) -> Result<(), BlobError> {
    let r = sync_and_record(blob);
    blob.progress().checkpointing = false;
    r
}

fn sync_and_record(blob: &Blob) -> Result<(), BlobError> {
    // Every byte below `target` was written before this point, so the sync below covers it.
    let target = blob.published.load(Ordering::Acquire);
    let file = blob.open()?;
    file.sync_data()?;
    let mut p = blob.progress();
    if p.deleted || target <= p.durable {
        return Ok(());
    }
    let seq = p.seq + 1;
    blob.header(seq, target).write_to(&file)?;
    p.seq = seq;
    drop(p);
    file.sync_data()?;
    let mut p = blob.progress();
    p.durable = p.durable.max(target);
    Ok(())
}
