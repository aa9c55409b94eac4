//! A store thread fed by a queue: callers push work and return at once; the thread takes all
//! that is queued in one go (which is what lets one flush or one sled batch serve many callers).
//! A push wakes the thread only if it sleeps: under load, callers wake it once per round, not
//! once per item.
//! The group commit's flusher (`commit`) and the writer (`writer`) are two such threads.
//!
//! Dropping the [`Worker`] tells its thread to stop once it has taken what is queued, and waits
//! for it.
//!
//! What it does not do: decide what a round does with its work, or when the thread stops
//! taking more; each thread's own loop decides both.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use super::error::failed;
use crate::store::StoreError;

struct Queued<T> {
    items: Vec<T>,
    shutdown: bool,
    /// The thread is asleep in [`WorkQueue::wait`]: a push must wake it. While it works, pushes
    /// only queue (no futex call per push); it takes them when its round ends.
    asleep: bool,
}

/// The queue between callers and one store thread.
pub(super) struct WorkQueue<T> {
    queued: Mutex<Queued<T>>,
    wake: Condvar,
}

impl<T> WorkQueue<T> {
    fn lock(&self) -> MutexGuard<'_, Queued<T>> {
        self.queued.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `item`, waking the thread if it sleeps; it is taken after everything queued
    /// before it.
    pub(super) fn push(&self, item: T) {
        let asleep = {
            let mut queued = self.lock();
            queued.items.push(item);
            std::mem::take(&mut queued.asleep)
        };
        if asleep {
            self.wake.notify_one();
        }
    }

    /// Blocks until something is queued or the worker is stopping.
    pub(super) fn wait(&self) {
        let mut queued = self.lock();
        while queued.items.is_empty() && !queued.shutdown {
            queued.asleep = true;
            queued = self
                .wake
                .wait(queued)
                .unwrap_or_else(PoisonError::into_inner);
        }
        queued.asleep = false;
    }

    /// Takes everything queued, and says whether the worker is stopping.
    pub(super) fn take(&self) -> (Vec<T>, bool) {
        let mut queued = self.lock();
        (std::mem::take(&mut queued.items), queued.shutdown)
    }

    /// Whether nothing is queued.
    pub(super) fn is_empty(&self) -> bool {
        self.lock().items.is_empty()
    }

    /// Reads what is queued, without taking it.
    #[cfg(test)]
    pub(super) fn peek<R>(&self, f: impl FnOnce(&[T]) -> R) -> R {
        f(&self.lock().items)
    }

    fn stop(&self) {
        self.lock().shutdown = true;
        self.wake.notify_one();
    }
}

/// A running store thread and its queue.
pub(super) struct Worker<T> {
    queue: Arc<WorkQueue<T>>,
    thread: Option<JoinHandle<()>>,
    role: &'static str,
}

impl<T: Send + 'static> Worker<T> {
    /// Starts thread `name` running `work` on a new, empty queue. `role` names the thread in
    /// errors and logs ("writer", "flusher").
    pub(super) fn start(
        name: &str,
        role: &'static str,
        work: impl FnOnce(&WorkQueue<T>) + Send + 'static,
    ) -> Result<Worker<T>, StoreError> {
        let queue = Arc::new(WorkQueue {
            queued: Mutex::new(Queued {
                items: Vec::new(),
                shutdown: false,
                asleep: false,
            }),
            wake: Condvar::new(),
        });
        let for_thread = Arc::clone(&queue);
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || work(&for_thread))
            .map_err(|e| failed(&format!("cannot start {role} thread"), e))?;
        Ok(Worker {
            queue,
            thread: Some(thread),
            role,
        })
    }
}

impl<T> Worker<T> {
    /// The thread's queue.
    pub(super) fn queue(&self) -> &Arc<WorkQueue<T>> {
        &self.queue
    }
}

impl<T> Drop for Worker<T> {
    /// Lets the thread finish what is queued, then waits for it to stop.
    fn drop(&mut self) {
        self.queue.stop();
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!(role = self.role, "store thread panicked");
            }
        }
    }
}
