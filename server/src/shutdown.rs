//! The relay's stop signal: one sender in the accept loop, one receiver per connection and per
//! background task.
//!
//! What it does not do: decide when to stop or how long to wait for connections (`relay.rs`).

use tokio::sync::watch;

/// Tells every holder of a [`Shutdown`] that the relay is stopping.
pub(crate) struct Stop(watch::Sender<bool>);

/// Resolves [`Shutdown::stopped`] once the relay is stopping. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Shutdown(watch::Receiver<bool>);

impl Stop {
    /// A new stop signal, not yet raised, and its first receiver.
    pub(crate) fn new() -> (Stop, Shutdown) {
        let (tx, rx) = watch::channel(false);
        (Stop(tx), Shutdown(rx))
    }

    /// Raises the signal; every [`Shutdown::stopped`] resolves.
    pub(crate) fn stop(&self) {
        let _ = self.0.send(true);
    }
}

impl Shutdown {
    /// Resolves once the signal is raised (or its [`Stop`] is gone).
    pub(crate) async fn stopped(&mut self) {
        loop {
            let stop = *self.0.borrow_and_update();
            if stop || self.0.changed().await.is_err() {
                return;
            }
        }
    }
}
