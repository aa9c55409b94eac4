//! Reconnection timing: exponential back-off with jitter, computed without a clock.
//!
//! What it does not do: sleep. The pool asks [`Backoff::next_delay`] how long to wait and does
//! the waiting, so the schedule is testable as plain function calls with a seeded RNG.

use std::time::Duration;

use rand_core::RngCore;

/// How hard the pool tries to reach a relay before it reports it unreachable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Connection attempts per operation (at least one is always made).
    pub attempts: u32,
    /// The delay before the second attempt; each later one doubles it.
    pub base_delay: Duration,
    /// The longest delay between two attempts.
    pub max_delay: Duration,
    /// How long one connection attempt (QUIC and TLS handshakes) may take.
    pub connect_timeout: Duration,
    /// How long a connection may hear nothing from its relay (keep-alives included) before
    /// it counts as dead: how soon a relay node that died unannounced is noticed, and the
    /// client moves on (to another of its hosts, or reconnects).
    pub idle_timeout: Duration,
}

/// Default connection attempts per operation.
pub const DEFAULT_ATTEMPTS: u32 = 4;
/// Default delay before the second attempt.
pub const DEFAULT_BASE_DELAY: Duration = Duration::from_millis(250);
/// Default longest delay between attempts.
pub const DEFAULT_MAX_DELAY: Duration = Duration::from_secs(8);
/// Default time allowed for one connection attempt.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default silence after which a connection counts as dead (QUIC's idle timeout).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: DEFAULT_ATTEMPTS,
            base_delay: DEFAULT_BASE_DELAY,
            max_delay: DEFAULT_MAX_DELAY,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
        }
    }
}

impl RetryPolicy {
    /// A policy with `attempts` attempts, each allowed `connect_timeout`, and the default delays.
    pub fn new(attempts: u32, connect_timeout: Duration) -> RetryPolicy {
        RetryPolicy {
            attempts: attempts.max(1),
            connect_timeout,
            ..RetryPolicy::default()
        }
    }

    /// The same policy, counting a connection dead after `idle_timeout` without a word from
    /// its relay (at least 2 seconds: keep-alives go at half of it, at most every 15 seconds).
    pub fn with_idle_timeout(mut self, idle_timeout: Duration) -> RetryPolicy {
        self.idle_timeout = idle_timeout.max(Duration::from_secs(2));
        self
    }

    /// The same policy with other delays between attempts.
    pub fn with_delays(mut self, base_delay: Duration, max_delay: Duration) -> RetryPolicy {
        self.base_delay = base_delay;
        self.max_delay = max_delay.max(base_delay);
        self
    }
}

/// The delays of one run of attempts: `base * 2^k`, capped, each drawn uniformly from its upper
/// half ("equal jitter"), so that many clients cut off together do not come back together.
#[derive(Clone, Debug)]
pub struct Backoff {
    policy: RetryPolicy,
    attempt: u32,
}

impl Backoff {
    /// A fresh run: the first attempt is immediate.
    pub fn new(policy: RetryPolicy) -> Backoff {
        Backoff { policy, attempt: 0 }
    }

    /// Records an attempt. Returns how long to wait before it, or `None` once every attempt of
    /// the policy is used.
    pub fn next_delay(&mut self, rng: &mut impl RngCore) -> Option<Duration> {
        let k = self.attempt;
        if k >= self.policy.attempts.max(1) {
            return None;
        }
        self.attempt += 1;
        if k == 0 {
            return Some(Duration::ZERO);
        }
        let exp = self
            .policy
            .base_delay
            .saturating_mul(1u32 << (k - 1).min(16))
            .min(self.policy.max_delay);
        let half = exp / 2;
        let span = u64::try_from((exp - half).as_micros()).unwrap_or(u64::MAX);
        let jitter = if span == 0 {
            0
        } else {
            rng.next_u64() % (span + 1)
        };
        Some(half + Duration::from_micros(jitter))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    #[test]
    fn delays_grow_stay_jittered_within_bounds_and_stop() {
        let policy = RetryPolicy::new(6, Duration::from_secs(1))
            .with_delays(Duration::from_millis(100), Duration::from_millis(500));
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let mut b = Backoff::new(policy);
        let delays: Vec<Duration> = std::iter::from_fn(|| b.next_delay(&mut rng)).collect();
        assert_eq!(delays.len(), 6);
        assert_eq!(delays[0], Duration::ZERO);
        let caps = [100u64, 200, 400, 500, 500];
        for (d, cap) in delays[1..].iter().zip(caps) {
            let cap = Duration::from_millis(cap);
            assert!(
                *d >= cap / 2 && *d <= cap,
                "{d:?} outside [{:?}, {cap:?}]",
                cap / 2
            );
        }
    }

    #[test]
    fn jitter_differs_between_clients() {
        let policy = RetryPolicy::default();
        let draw = |seed| {
            let mut rng = ChaCha20Rng::seed_from_u64(seed);
            let mut b = Backoff::new(policy);
            b.next_delay(&mut rng);
            b.next_delay(&mut rng)
        };
        assert_ne!(draw(1), draw(2));
    }

    #[test]
    fn at_least_one_attempt() {
        let mut rng = ChaCha20Rng::seed_from_u64(0);
        let mut b = Backoff::new(RetryPolicy::new(0, Duration::from_secs(1)));
        assert_eq!(b.next_delay(&mut rng), Some(Duration::ZERO));
        assert_eq!(b.next_delay(&mut rng), None);
    }
}
