//! Where the relay gets the time: [`SystemClock`] in production, [`ManualClock`] in tests.
//!
//! Every TTL, idle-queue and rate-limit decision reads the time through [`Clock`], so a test can
//! move a week forward in one call instead of sleeping.
//!
//! What it does not do: schedule anything. Timers that must fire (the sweep interval) use tokio;
//! what they do at each tick reads this clock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of wall-clock time.
pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since the Unix epoch.
    fn now_millis(&self) -> u64;

    /// Seconds since the Unix epoch.
    fn now_secs(&self) -> u64 {
        self.now_millis() / 1000
    }
}

/// The operating system's clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_millis(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
}

/// A clock that moves only when told to. Clones share the same time.
#[derive(Clone, Debug, Default)]
pub struct ManualClock {
    millis: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock reading `secs` seconds after the epoch.
    pub fn at_secs(secs: u64) -> Self {
        Self {
            millis: Arc::new(AtomicU64::new(secs.saturating_mul(1000))),
        }
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let ms = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.millis.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_millis(&self) -> u64 {
        self.millis.load(Ordering::SeqCst)
    }
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now_millis(&self) -> u64 {
        (**self).now_millis()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_advanced_and_clones_share_it() {
        let c = ManualClock::at_secs(100);
        let c2 = c.clone();
        assert_eq!(c.now_secs(), 100);
        c2.advance(Duration::from_millis(1500));
        assert_eq!(c.now_millis(), 101_500);
        assert_eq!(c.now_secs(), 101);
        assert!(SystemClock.now_secs() > 1_600_000_000);
    }
}
