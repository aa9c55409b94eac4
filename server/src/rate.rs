//! A per-connection token bucket for the request rate limit.
//!
//! Time comes in as an argument (milliseconds from the relay's [`crate::Clock`]), so tests
//! drive it without sleeping.

/// Tokens are kept in thousandths so that refill needs no floating point.
const MILLI: u64 = 1000;

/// Allows `rate` requests per second on average, with bursts of up to `burst`.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    rate: u64,
    cap: u64,
    tokens: u64,
    last_ms: u64,
}

impl RateLimiter {
    /// A full bucket at time `now_ms`.
    pub(crate) fn new(rate: u32, burst: u32, now_ms: u64) -> Self {
        let cap = u64::from(burst.max(1)) * MILLI;
        Self {
            rate: u64::from(rate),
            cap,
            tokens: cap,
            last_ms: now_ms,
        }
    }

    /// Takes one token if there is one.
    pub(crate) fn allow(&mut self, now_ms: u64) -> bool {
        let elapsed = now_ms.saturating_sub(self.last_ms);
        self.last_ms = self.last_ms.max(now_ms);
        // rate tokens per second = rate milli-tokens per millisecond.
        self.tokens = self
            .tokens
            .saturating_add(elapsed.saturating_mul(self.rate))
            .min(self.cap);
        if self.tokens >= MILLI {
            self.tokens -= MILLI;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_then_refills_at_the_rate() {
        let mut r = RateLimiter::new(10, 3, 0);
        assert!((0..3).all(|_| r.allow(0)));
        assert!(!r.allow(0));
        assert!(!r.allow(99));
        assert!(r.allow(100));
        assert!(!r.allow(100));
        // A long pause refills only up to the burst.
        assert!((0..3).all(|_| r.allow(60_000)));
        assert!(!r.allow(60_000));
    }
}
