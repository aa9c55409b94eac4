//! Refused connections in the log without flooding it: a connection flood (or a scanner
//! speaking the wrong protocol) must not write one line per attempt.
//!
//! [`RefusalLog`] counts refusals by cause and says when a summary line is due: the first
//! refusal is reported at once, later ones at most once per interval
//! (`limits::REFUSAL_LOG_INTERVAL`), each line giving the counts since the one before. Refusals
//! still unreported when things go quiet are reported once the interval has passed
//! ([`RefusalLog::due`]). It is pure: the caller passes the time in and writes the line.
//!
//! What it does not do: count refusals for the metrics (`metrics.rs` does, every one), or
//! refuse anything (`relay.rs`).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use tokio::time::Instant;

use crate::metrics::Refusal;

/// Refusals since the last line, and when that line was written.
#[derive(Debug)]
pub(crate) struct RefusalLog {
    interval: Duration,
    last: Option<Instant>,
    pending: BTreeMap<Refusal, u64>,
}

/// Counts of refusals by cause, for one log line.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Summary(Vec<(Refusal, u64)>);

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (why, n)) in self.0.iter().enumerate() {
            let sep = if i == 0 { "" } else { " " };
            write!(f, "{sep}{}={n}", why.name())?;
        }
        Ok(())
    }
}

impl RefusalLog {
    /// Nothing counted; lines at most once per `interval`.
    pub(crate) fn new(interval: Duration) -> RefusalLog {
        RefusalLog {
            interval,
            last: None,
            pending: BTreeMap::new(),
        }
    }

    /// Counts a refusal at `now`; returns the line to write now, if one is due.
    pub(crate) fn note(&mut self, why: Refusal, now: Instant) -> Option<Summary> {
        *self.pending.entry(why).or_default() += 1;
        self.flush(now)
    }

    /// When unreported refusals should be written if no other comes: `None` if there are none.
    pub(crate) fn due(&self) -> Option<Instant> {
        if self.pending.is_empty() {
            return None;
        }
        Some(self.last.map_or_else(Instant::now, |t| t + self.interval))
    }

    /// The line to write at `now` for the refusals not yet reported, if it is due.
    pub(crate) fn flush(&mut self, now: Instant) -> Option<Summary> {
        if self.pending.is_empty() || self.last.is_some_and(|t| now < t + self.interval) {
            return None;
        }
        self.last = Some(now);
        Some(Summary(
            std::mem::take(&mut self.pending).into_iter().collect(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_of_refusals_makes_one_line_per_interval_with_the_counts() {
        let t0 = Instant::now();
        let minute = Duration::from_secs(60);
        let mut log = RefusalLog::new(minute);
        assert_eq!(log.due(), None);
        // The first refusal is reported at once.
        let first = log.note(Refusal::ConnectionLimit, t0).unwrap();
        assert_eq!(first.to_string(), "connection_limit=1");
        // A thousand more within the minute: no line, only counts.
        for i in 0..1000u64 {
            let why = if i % 2 == 0 {
                Refusal::HandshakeFailed
            } else {
                Refusal::ConnectionLimit
            };
            assert_eq!(log.note(why, t0 + Duration::from_millis(i)), None);
        }
        assert_eq!(log.due(), Some(t0 + minute));
        assert_eq!(log.flush(t0 + minute - Duration::from_millis(1)), None);
        // Once the minute has passed, one line carries them all.
        let line = log.flush(t0 + minute).unwrap();
        assert_eq!(
            line.to_string(),
            "connection_limit=500 handshake_failed=500"
        );
        assert_eq!(log.due(), None);
        assert_eq!(log.flush(t0 + minute * 5), None);
        // After a quiet spell the next refusal is reported at once again.
        let again = log.note(Refusal::HandshakeLimit, t0 + minute * 5).unwrap();
        assert_eq!(again.to_string(), "handshake_limit=1");
    }
}
