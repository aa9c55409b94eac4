//! `hush-bench idle`: hold N idle subscribed connections and report the relay's RSS per
//! connection.
//!
//! RSS is read from `/proc/<pid>/status` just before the storm and again once every client is
//! subscribed and the relay has settled; the difference over N is the per-connection cost.
//!
//! What it does not do: send messages. Idle here means connected, subscribed and kept alive.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::procfs::{self, rss_bytes};
use crate::{hush, report, start_target, IdleArgs};

/// How long to let the relay settle after the last subscription before reading its RSS.
const SETTLE: Duration = Duration::from_secs(2);
/// Most clients connecting at once.
const WAVE: usize = 1000;

/// Runs the idle benchmark.
pub(crate) async fn run(a: IdleArgs) -> anyhow::Result<ExitCode> {
    let n = a.clients.max(1);
    let machine = procfs::machine();
    let target = start_target(&a.target, false).await?;
    let pid = target.pid;
    // Let the relay finish starting (store open, first sweep) before the reference reading.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = pid.and_then(rss_bytes);
    if !a.target.json {
        eprintln!("idle: connecting {n} clients");
    }
    // Connect in waves of at most `WAVE` clients: this measures memory, not the storm (which
    // `relay` measures), and each wave finishes before the next starts.
    let started = Instant::now();
    let mut peers = Vec::with_capacity(n);
    let mut retries = 0;
    while peers.len() < n {
        let wave = (n - peers.len()).min(WAVE);
        let (mut p, s) =
            hush::setup(&target, wave, a.target.endpoints, a.target.connect_timeout).await?;
        retries += s.retries;
        peers.append(&mut p);
    }
    let connect_secs = started.elapsed().as_secs_f64();
    tokio::time::sleep(SETTLE).await;
    let after = pid.and_then(rss_bytes);
    let hold_until = Instant::now() + a.hold;
    let mut max = after;
    while Instant::now() < hold_until {
        tokio::time::sleep(Duration::from_millis(250)).await;
        max = max.max(pid.and_then(rss_bytes));
    }
    let per_conn = match (before, after) {
        (Some(b), Some(a)) => Some(a.saturating_sub(b) as f64 / n as f64),
        _ => None,
    };
    peers.iter().for_each(|p| p.close());
    drop(peers);
    target.stop().await?;
    if a.target.json {
        println!(
            "{}",
            json!({
                "command": "idle",
                "commit": report::commit(),
                "machine": machine,
                "clients": n,
                "connect_seconds": connect_secs,
                "connect_retries": retries,
                "relay_rss_before_bytes": before,
                "relay_rss_idle_bytes": after,
                "relay_rss_max_bytes": max,
                "relay_rss_per_connection_bytes": per_conn,
            })
        );
    } else {
        let m = |b: Option<u64>| {
            b.map(|b| format!("{:.1} MiB", b as f64 / 1048576.0))
                .unwrap_or_else(|| "n/a".into())
        };
        println!("hush-bench idle: {n} subscribed connections; machine {machine}");
        println!(
            "connect (all clients)    {connect_secs:.2} s in waves of {WAVE} ({retries} retries)"
        );
        println!("relay RSS before         {}", m(before));
        println!("relay RSS with clients   {}", m(after));
        println!("relay RSS max (hold)     {}", m(max));
        println!(
            "relay RSS / connection   {}",
            per_conn
                .map(|b| format!("{:.1} KiB", b / 1024.0))
                .unwrap_or_else(|| "n/a".into())
        );
    }
    Ok(ExitCode::SUCCESS)
}
