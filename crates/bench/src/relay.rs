//! `hush-bench relay`: the same load against the hush relay and then against a raw quinn
//! forwarder, with throughput, latency, connection storm, RSS and CPU for each side, and
//! hush's throughput as a share of the forwarder's.
//!
//! What it does not do: set up clients or generate load (`hush`, `baseline` and `workload` do),
//! or format the table (`report` does).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use serde_json::json;

use crate::procfs::{self, Sampler};
use crate::report::{self, SideReport};
use crate::workload::{self, LoadParams, Peer, StormStats};
use crate::{baseline, hush, start_target, TargetArgs};

/// Arguments of `hush-bench relay`.
#[derive(Args, Debug)]
pub(crate) struct RelayArgs {
    /// Client connections, each with its own queue
    #[arg(long, default_value_t = 100)]
    clients: usize,
    /// Most messages each client sends [default: enough for --duration]
    #[arg(long)]
    messages: Option<u32>,
    /// Message body size in bytes
    #[arg(long, default_value_t = 256)]
    size: usize,
    /// Total target send rate in messages per second over all clients [default: as fast as possible]
    #[arg(long)]
    rate: Option<f64>,
    /// Clients stop starting sends after this long
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Sends (and acks) each client keeps in flight
    #[arg(long, default_value_t = 16)]
    window: usize,
    /// Skip the raw-quinn baseline
    #[arg(long)]
    no_baseline: bool,
    /// CI smoke test: 20 clients, 50 messages each, relay and baseline in this process; fails
    /// only if a message was lost or duplicated
    #[arg(long)]
    quick: bool,
    /// The store of the relay the benchmark starts: sled, or jetstream, which runs the same
    /// load on sled first and then on NATS JetStream, in the same run (needs --nats)
    #[arg(long, default_value = "sled")]
    store: String,
    /// For --store jetstream: the URLs of a running NATS cluster, comma-separated
    #[arg(long)]
    nats: Option<String>,
    /// For --store jetstream: copies of each stream
    #[arg(long, default_value_t = 3)]
    nats_replicas: usize,
    #[command(flatten)]
    pub(crate) target: TargetArgs,
}

/// Runs the load over `peers` while sampling `server_pid` and this process, and logs the
/// summary under `side`.
async fn measure<P: Peer>(
    side: &str,
    target: String,
    storm: StormStats,
    peers: &[Arc<P>],
    params: &LoadParams,
    server_pid: Option<u32>,
    log: &impl Fn(&str),
) -> anyhow::Result<SideReport> {
    let server = server_pid.map(Sampler::start);
    let bench = Sampler::start(std::process::id());
    let load = workload::run(peers, params).await?;
    let report = SideReport {
        target,
        storm,
        load,
        server: server.map(Sampler::stop).unwrap_or_default(),
        bench: bench.stop(),
    };
    log(&format!("{side}: {}", report.summary()));
    Ok(report)
}

fn load_params(a: &RelayArgs) -> LoadParams {
    let n = a.clients.max(1) as f64;
    // Enough messages for the whole duration at the target rate, or a generous cap when
    // sending as fast as possible (the ledger keeps two bits per possible message).
    let messages = a.messages.unwrap_or_else(|| match a.rate {
        Some(r) => (r * a.duration.as_secs_f64() / n).ceil() as u32 + 1,
        None => (100_000_000 / a.clients.max(1)).min(1_000_000) as u32,
    });
    LoadParams {
        messages,
        size: a.size.max(workload::HEADER_LEN),
        rate: a.rate,
        duration: a.duration,
        window: a.window.max(1),
        drain_timeout: Duration::from_secs(30),
    }
}

/// `--quick`: the CI smoke test's fixed load.
fn apply_quick(a: &mut RelayArgs) {
    if a.quick {
        a.clients = 20;
        a.messages = Some(50);
        a.rate = None;
        a.duration = Duration::from_secs(20);
        a.window = 8;
    }
}

/// The load against the hush relay.
async fn hush_side(
    a: &RelayArgs,
    params: &LoadParams,
    log: &impl Fn(&str),
) -> anyhow::Result<SideReport> {
    let n = a.clients.max(1);
    log(&format!("hush: starting the relay, connecting {n} clients"));
    let target = start_target(&a.target, a.quick).await?;
    let (peers, storm) =
        hush::setup(&target, n, a.target.endpoints, a.target.connect_timeout).await?;
    log(&format!(
        "hush: {n} connected in {:.2} s; sending",
        storm.elapsed.as_secs_f64()
    ));
    let description = target.description.clone();
    let report = measure("hush", description, storm, &peers, params, target.pid, log).await?;
    peers.iter().for_each(|p| p.close());
    drop(peers);
    target.stop().await.context("stopping the relay")?;
    Ok(report)
}

/// The same load against the `hush-server` binary on NATS JetStream, under fresh stream
/// names, so that every run starts on empty streams.
async fn jetstream_side(
    a: &RelayArgs,
    params: &LoadParams,
    log: &impl Fn(&str),
) -> anyhow::Result<SideReport> {
    let Some(nats) = &a.nats else {
        anyhow::bail!("--store jetstream needs --nats URL,URL,... of a running NATS cluster");
    };
    if a.target.source.relay.is_some() || a.quick {
        anyhow::bail!("--store jetstream starts its own relay: drop --relay and --quick");
    }
    let n = a.clients.max(1);
    let prefix = format!("bench{}x{}", std::process::id(), report::unix_secs());
    let extra: Vec<String> = [
        "--store",
        "jetstream",
        "--nats",
        nats,
        "--nats-replicas",
        &a.nats_replicas.to_string(),
        "--nats-prefix",
        &prefix,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    log(&format!(
        "jetstream: starting the relay on {nats}, connecting {n} clients"
    ));
    let bin = crate::target::server_binary(a.target.source.server_bin.as_deref())?;
    let target = crate::target::HushTarget::spawn_with(&bin, &extra).await?;
    let (peers, storm) =
        hush::setup(&target, n, a.target.endpoints, a.target.connect_timeout).await?;
    log("jetstream: sending");
    let description = target.description.clone();
    let r = measure(
        "jetstream",
        description,
        storm,
        &peers,
        params,
        target.pid,
        log,
    )
    .await?;
    peers.iter().for_each(|p| p.close());
    drop(peers);
    target.stop().await.context("stopping the relay")?;
    Ok(r)
}

/// The same load against the raw quinn forwarder.
async fn baseline_side(
    a: &RelayArgs,
    params: &LoadParams,
    log: &impl Fn(&str),
) -> anyhow::Result<SideReport> {
    let n = a.clients.max(1);
    log(&format!(
        "baseline: starting the raw quinn forwarder, connecting {n} clients"
    ));
    let fwd = if a.quick {
        baseline::Forwarder::in_process()?
    } else {
        baseline::Forwarder::spawn().await?
    };
    let (peers, storm) =
        baseline::setup(&fwd, n, a.target.endpoints, a.target.connect_timeout).await?;
    log("baseline: sending");
    let description = "raw quinn forwarder".to_owned();
    let pid = Some(fwd.pid());
    let r = measure("baseline", description, storm, &peers, params, pid, log).await?;
    peers.iter().for_each(|p| p.close());
    drop(peers);
    fwd.stop().await.context("stopping the forwarder")?;
    Ok(r)
}

/// Runs `hush-bench relay`.
pub(crate) async fn run(mut a: RelayArgs) -> anyhow::Result<ExitCode> {
    apply_quick(&mut a);
    let params = load_params(&a);
    let machine = procfs::machine();
    let log = |s: &str| {
        if !a.target.json {
            eprintln!("{s}");
        }
    };
    let hush_report = hush_side(&a, &params, &log).await?;
    let jetstream_report = match a.store.as_str() {
        "sled" => None,
        "jetstream" => Some(jetstream_side(&a, &params, &log).await?),
        other => anyhow::bail!("--store {other}: write sled or jetstream"),
    };
    let base_report = if a.no_baseline {
        None
    } else {
        Some(baseline_side(&a, &params, &log).await?)
    };
    let load_end = procfs::load_average();
    let sides = Sides {
        hush: &hush_report,
        baseline: base_report.as_ref(),
        jetstream: jetstream_report.as_ref(),
    };
    if a.target.json {
        println!("{}", sides.json(&a, &params, &machine, load_end));
    } else {
        sides.print(&a, &params, &machine, load_end);
    }
    if sides.bad() {
        eprintln!("hush-bench: FAILED: messages were lost or duplicated (or none delivered)");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// The reports of both sides of one run.
struct Sides<'a> {
    hush: &'a SideReport,
    baseline: Option<&'a SideReport>,
    /// The same load on the relay on NATS JetStream, with `--store jetstream`.
    jetstream: Option<&'a SideReport>,
}

impl Sides<'_> {
    /// hush's throughput as a share of the baseline's.
    fn ratio(&self) -> Option<f64> {
        self.baseline
            .filter(|b| b.load.per_sec > 0.0)
            .map(|b| self.hush.load.per_sec / b.load.per_sec)
    }

    /// Whether a message was lost or duplicated, or none delivered, on either side.
    fn bad(&self) -> bool {
        [Some(self.hush), self.baseline, self.jetstream]
            .into_iter()
            .flatten()
            .any(|r| r.load.lost > 0 || r.load.duplicated > 0 || r.load.delivered == 0)
    }

    /// The one JSON object `--json` prints.
    fn json(
        &self,
        a: &RelayArgs,
        params: &LoadParams,
        machine: &serde_json::Value,
        load_end: Option<f64>,
    ) -> serde_json::Value {
        json!({
            "command": "relay",
            "commit": report::commit(),
            "machine": machine,
            "load_average_1m_end": load_end,
            "params": {
                "clients": a.clients.max(1),
                "messages_per_client": params.messages,
                "size": params.size,
                "rate": params.rate,
                "duration_secs": params.duration.as_secs_f64(),
                "window": params.window,
                "quick": a.quick,
            },
            "hush": self.hush.json(),
            "baseline": self.baseline.map(SideReport::json),
            "jetstream": self.jetstream.map(SideReport::json),
            "cpu_per_message_us": {
                "sled": report::cpu_per_message_us(self.hush),
                "jetstream": self.jetstream.and_then(report::cpu_per_message_us),
            },
            "hush_over_baseline": self.ratio(),
        })
    }

    /// The table.
    fn print(
        &self,
        a: &RelayArgs,
        params: &LoadParams,
        machine: &serde_json::Value,
        load_end: Option<f64>,
    ) {
        let header = format!(
            "hush-bench relay: {} clients, {} B messages, rate {}, {} per client at most, \
             window {}; machine {}; load average {} → {}",
            a.clients.max(1),
            params.size,
            params
                .rate
                .map(|r| format!("{r:.0}/s"))
                .unwrap_or_else(|| "max".into()),
            params.messages,
            params.window,
            machine,
            machine["load_average_1m"],
            load_end.map(|l| l.to_string()).unwrap_or_default(),
        );
        report::print_table(&header, self.hush, self.baseline);
        if let Some(js) = self.jetstream {
            println!();
            let labels = ["relay on sled", "relay on JetStream"];
            report::print_columns("The same load, sled against NATS JetStream (relay process only; NATS CPU not included):", labels, self.hush, Some(js));
        }
    }
}
