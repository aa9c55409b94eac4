//! What `/proc` says about a process and the machine: resident memory, CPU time, load average,
//! core count and CPU model.
//!
//! What it does not do: work outside Linux. Where `/proc` cannot be read, figures are absent
//! (`None`), never guessed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// Resident set size of `pid`, in bytes (`VmRSS` in `/proc/<pid>/status`).
pub(crate) fn rss_bytes(pid: u32) -> Option<u64> {
    status_kib(pid, "VmRSS:").map(|k| k * 1024)
}

fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with(field))?;
    line[field.len()..].split_whitespace().next()?.parse().ok()
}

/// User plus system CPU time `pid` has used so far (all its threads).
pub(crate) fn cpu_time(pid: u32) -> Option<Duration> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces; the fields after it follow its ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ')': state is index 0, so utime (field 14) is index 11 and stime index 12.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let hz = rustix::param::clock_ticks_per_second().max(1);
    Some(Duration::from_millis((utime + stime) * 1000 / hz))
}

/// The 1-minute load average.
pub(crate) fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// A description of this machine for the report.
pub(crate) fn machine() -> Value {
    let model = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|t| {
        t.lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_owned())
    });
    json!({
        "cores": std::thread::available_parallelism().map(|n| n.get()).ok(),
        "cpu_model": model,
        "load_average_1m": load_average(),
    })
}

/// CPU and memory use of one process over a measured phase.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Usage {
    /// Highest RSS seen by the sampler, in bytes.
    pub(crate) max_rss: Option<u64>,
    /// CPU time over wall time, in percent of one core.
    pub(crate) cpu_percent: Option<f64>,
}

/// Samples a process's RSS every 100 ms until stopped, and its CPU time at both ends.
pub(crate) struct Sampler {
    pid: u32,
    started: Instant,
    cpu_start: Option<Duration>,
    max_rss: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Sampler {
    /// Starts sampling `pid` now.
    pub(crate) fn start(pid: u32) -> Self {
        let max_rss = Arc::new(AtomicU64::new(rss_bytes(pid).unwrap_or(0)));
        let m = max_rss.clone();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            loop {
                tick.tick().await;
                match rss_bytes(pid) {
                    Some(r) => {
                        m.fetch_max(r, Ordering::Relaxed);
                    }
                    None => return,
                }
            }
        });
        Self {
            pid,
            started: Instant::now(),
            cpu_start: cpu_time(pid),
            max_rss,
            task,
        }
    }

    /// Stops sampling and returns what was measured.
    pub(crate) fn stop(self) -> Usage {
        self.task.abort();
        let wall = self.started.elapsed().as_secs_f64();
        let cpu_percent = match (self.cpu_start, cpu_time(self.pid)) {
            (Some(a), Some(b)) if wall > 0.0 => Some((b - a).as_secs_f64() / wall * 100.0),
            _ => None,
        };
        let max = self.max_rss.load(Ordering::Relaxed);
        Usage {
            max_rss: (max > 0).then_some(max),
            cpu_percent,
        }
    }
}
