//! The one clock the client reads: the system's wall clock, plus an offset that tests move
//! forward to see what happens days later without waiting.
//!
//! What it does not do: run timers. The cores take `now` as an argument; the `Client` reads it
//! here and passes it in.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The client's clock: system time plus an offset (zero unless a test advanced it).
#[derive(Clone, Debug, Default)]
pub struct Clock {
    offset_secs: Arc<AtomicU64>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock::default()
    }

    /// Moves this clock (and every client sharing it) forward by `by`, in whole seconds.
    pub fn advance(&self, by: Duration) {
        self.offset_secs.fetch_add(by.as_secs(), Ordering::Relaxed);
    }

    /// Now, in unix seconds.
    pub fn now_secs(&self) -> u64 {
        let system = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        system.saturating_add(self.offset_secs.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advancing_moves_every_copy() {
        let clock = Clock::system();
        let copy = clock.clone();
        let before = copy.now_secs();
        clock.advance(Duration::from_secs(86_400));
        assert!(copy.now_secs() >= before + 86_400);
    }
}
