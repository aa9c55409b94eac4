//! Turning measurements into the printed table and the `--json` object.
//!
//! What it does not do: judge the figures against the targets; `docs/performance.md` does, with
//! the command that produced them.

use serde_json::{json, Value};

use crate::procfs::Usage;
use crate::workload::{LoadStats, StormStats};

/// Everything one side (hush or the baseline) of a `relay` run measured.
#[derive(Debug, Clone)]
pub(crate) struct SideReport {
    /// What was driven.
    pub(crate) target: String,
    /// The connection storm.
    pub(crate) storm: StormStats,
    /// The load.
    pub(crate) load: LoadStats,
    /// The server process during the load.
    pub(crate) server: Usage,
    /// This (load-generating) process during the load.
    pub(crate) bench: Usage,
}

fn mib(b: Option<u64>) -> String {
    b.map(|b| format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0)))
        .unwrap_or_else(|| "n/a".into())
}

fn pct(p: Option<f64>) -> String {
    p.map(|p| format!("{p:.0}%"))
        .unwrap_or_else(|| "n/a".into())
}

fn ms(us: u64) -> String {
    format!("{:.2} ms", us as f64 / 1000.0)
}

impl SideReport {
    /// The JSON object for this side.
    pub(crate) fn json(&self) -> Value {
        let l = &self.load;
        json!({
            "target": self.target,
            "connect": {
                "clients": self.storm.connected,
                "seconds": self.storm.elapsed.as_secs_f64(),
                "retries": self.storm.retries,
            },
            "sent": l.sent,
            "send_errors": l.send_errors,
            "delivered": l.delivered,
            "lost": l.lost,
            "duplicated": l.duplicated,
            "ack_errors": l.confirm_errors,
            "send_refused": l.send_refused,
            "ack_refused": l.confirm_refused,
            "seconds": l.elapsed.as_secs_f64(),
            "delivered_per_sec": l.per_sec,
            "latency_us": {
                "p50": l.latency_us[0],
                "p90": l.latency_us[1],
                "p99": l.latency_us[2],
                "max": l.latency_us[3],
            },
            "server": {"max_rss_bytes": self.server.max_rss, "cpu_percent": self.server.cpu_percent},
            "bench": {"max_rss_bytes": self.bench.max_rss, "cpu_percent": self.bench.cpu_percent},
        })
    }

    /// One line for progress output.
    pub(crate) fn summary(&self) -> String {
        let l = &self.load;
        format!(
            "{} delivered in {:.1} s ({:.0}/s), p99 {}, lost {}, duplicated {}, errors {}/{}, \
             refused {}/{}",
            l.delivered,
            l.elapsed.as_secs_f64(),
            l.per_sec,
            ms(l.latency_us[2]),
            l.lost,
            l.duplicated,
            l.send_errors,
            l.confirm_errors,
            l.send_refused,
            l.confirm_refused
        )
    }

    fn column(&self) -> Vec<String> {
        let l = &self.load;
        vec![
            format!(
                "{:.2} s ({} retries)",
                self.storm.elapsed.as_secs_f64(),
                self.storm.retries
            ),
            format!("{}", l.sent),
            format!("{}", l.delivered),
            format!("{:.0}", l.per_sec),
            ms(l.latency_us[0]),
            ms(l.latency_us[1]),
            ms(l.latency_us[2]),
            ms(l.latency_us[3]),
            format!("{} / {}", l.lost, l.duplicated),
            format!("{} / {}", l.send_errors, l.confirm_errors),
            format!("{} / {}", l.send_refused, l.confirm_refused),
            mib(self.server.max_rss),
            pct(self.server.cpu_percent),
            pct(self.bench.cpu_percent),
        ]
    }
}

const ROWS: [&str; 14] = [
    "connect (all clients)",
    "sends confirmed",
    "delivered",
    "delivered / s",
    "latency p50",
    "latency p90",
    "latency p99",
    "latency max",
    "lost / duplicated",
    "send / ack errors",
    "send / ack rate-limited",
    "server RSS (max)",
    "server CPU",
    "load generator CPU",
];

/// Prints the side-by-side table.
pub(crate) fn print_table(header: &str, hush: &SideReport, base: Option<&SideReport>) {
    print_columns(header, ["hush relay", "raw quinn baseline"], hush, base);
    if let Some(base) = base {
        if base.load.per_sec > 0.0 {
            println!(
                "{:<24} {:>26.1}%",
                "hush / baseline",
                hush.load.per_sec / base.load.per_sec * 100.0
            );
        }
    }
}

/// The relay's CPU time per delivered message, in microseconds.
pub(crate) fn cpu_per_message_us(r: &SideReport) -> Option<f64> {
    let cpu = r.server.cpu_percent?;
    (r.load.per_sec > 0.0).then(|| cpu / 100.0 / r.load.per_sec * 1e6)
}

/// Prints two reports side by side under `labels`, with the relay CPU per message.
pub(crate) fn print_columns(
    header: &str,
    labels: [&str; 2],
    first: &SideReport,
    second: Option<&SideReport>,
) {
    let (hush, base) = (first, second);
    println!("{header}");
    let h = hush.column();
    let b = base.map(SideReport::column);
    println!(
        "{:<24} {:>26} {:>26}",
        "",
        labels[0],
        if b.is_some() { labels[1] } else { "" }
    );
    for (i, row) in ROWS.iter().enumerate() {
        let bv = b.as_ref().map(|b| b[i].as_str()).unwrap_or("");
        println!("{row:<24} {:>26} {bv:>26}", h[i]);
    }
    let cpu = |r: Option<&SideReport>| {
        r.and_then(cpu_per_message_us)
            .map(|us| format!("{us:.1} µs"))
            .unwrap_or_default()
    };
    println!(
        "{:<24} {:>26} {:>26}",
        "server CPU per message",
        cpu(Some(hush)),
        cpu(base)
    );
}

/// The commit the benchmark was built from, if `git` can tell.
pub(crate) fn commit() -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Seconds since the Unix epoch, to name things uniquely per run.
pub(crate) fn unix_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
