//! `hush-bench`: load generator and benchmark driver for the hush relay.
//!
//! `hush-bench relay` starts a relay (the release `hush-server` binary on its own data
//! directory) or targets a running one, connects N clients at once, each with its own subscribed
//! queue, and has them send to each other's queues at a target rate or as fast as they can. It
//! measures delivered messages per second, send→deliver latency (HDR histogram), the time for
//! all N clients to connect, the relay's RSS and CPU from `/proc`, and how many messages were
//! lost or duplicated. The same load then runs against a raw quinn forwarder (no storage, no
//! auth), and hush's throughput is reported as a share of it. `hush-bench idle` holds N idle
//! subscribed connections and reports relay RSS per connection. `--quick` is the CI smoke test.
//!
//! What it does not do: assert performance targets (`docs/performance.md` records them), run
//! anywhere but loopback, or encrypt bodies (the relay sees opaque bytes either way).

mod baseline;
mod file;
mod hush;
mod idle;
mod net;
mod procfs;
mod report;
mod target;
mod workload;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use hush_protocol::RelayAddress;
use serde_json::json;

use crate::procfs::Sampler;
use crate::report::SideReport;

// The relay's allocator, so the load generator leaves the relay as much of the machine as it can.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use crate::target::HushTarget;
use crate::workload::{LoadParams, Peer, StormStats};

#[derive(Parser, Debug)]
#[command(
    name = "hush-bench",
    version,
    about = "Load generator and benchmark for the hush relay"
)]
struct Cli {
    /// Tokio worker threads for the load generator
    #[arg(long, global = true, default_value_t = 2)]
    threads: usize,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Throughput, latency, connection storm, RSS and CPU, against a raw-quinn baseline
    Relay(RelayArgs),
    /// Hold N idle subscribed connections and report relay RSS per connection
    Idle(IdleArgs),
    /// Send and save one file through a relay: MB/s each way, client and relay peak RSS
    File(file::FileArgs),
    /// Run the baseline's raw quinn forwarder (started by `relay`; prints "ADDR FINGERPRINT")
    #[command(hide = true)]
    Forwarder {
        /// Directory for its self-signed certificate
        #[arg(long)]
        dir: PathBuf,
    },
}

/// Which relay to drive.
#[derive(Args, Debug, Clone)]
struct TargetArgs {
    /// Drive this running relay (hush://127.0.0.1:PORT#FINGERPRINT) instead of starting one
    #[arg(long, conflicts_with = "spawn")]
    relay: Option<RelayAddress>,
    /// With --relay: the relay's pid, to read its RSS and CPU from /proc
    #[arg(long, requires = "relay")]
    relay_pid: Option<u32>,
    /// Start the hush-server binary on a temporary data directory (the default)
    #[arg(long)]
    spawn: bool,
    /// The hush-server binary to start [default: next to this executable]
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// How long the connection storm may take before the run fails
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    connect_timeout: Duration,
    /// Client UDP endpoints the connections are spread over
    #[arg(long, default_value_t = 8)]
    endpoints: usize,
    /// Print one JSON object instead of the table
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct RelayArgs {
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
    #[command(flatten)]
    target: TargetArgs,
}

#[derive(Args, Debug)]
struct IdleArgs {
    /// Idle subscribed connections to hold
    #[arg(long, default_value_t = 1000)]
    clients: usize,
    /// How long to hold them once all are subscribed
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    hold: Duration,
    #[command(flatten)]
    target: TargetArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cli.threads.max(1))
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("hush-bench: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = rt.block_on(async move {
        match cli.command {
            Command::Relay(a) => relay(a).await,
            Command::Idle(a) => idle::run(a).await,
            Command::File(a) => file::run(a).await,
            Command::Forwarder { dir } => forwarder(dir).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("hush-bench: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn forwarder(dir: PathBuf) -> anyhow::Result<ExitCode> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let (endpoint, fp) = baseline::bind_forwarder(&dir)?;
    println!("{} {}", endpoint.local_addr()?, fp.to_hex());
    tokio::select! {
        _ = baseline::serve_forwarder(endpoint.clone()) => {}
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    endpoint.close(0u32.into(), b"");
    Ok(ExitCode::SUCCESS)
}

/// Starts the hush relay the arguments name.
async fn start_target(t: &TargetArgs, in_process: bool) -> anyhow::Result<HushTarget> {
    if let Some(addr) = &t.relay {
        return HushTarget::external(addr.clone(), t.relay_pid).await;
    }
    if in_process {
        return HushTarget::in_process().await;
    }
    HushTarget::spawn(&target::server_binary(t.server_bin.as_deref())?).await
}

/// Runs the load over `peers` while sampling `server_pid` and this process.
async fn measure<P: Peer>(
    target: String,
    storm: StormStats,
    peers: &[Arc<P>],
    params: &LoadParams,
    server_pid: Option<u32>,
) -> anyhow::Result<SideReport> {
    let server = server_pid.map(Sampler::start);
    let bench = Sampler::start(std::process::id());
    let load = workload::run(peers, params).await?;
    Ok(SideReport {
        target,
        storm,
        load,
        server: server.map(Sampler::stop).unwrap_or_default(),
        bench: bench.stop(),
    })
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

async fn relay(mut a: RelayArgs) -> anyhow::Result<ExitCode> {
    if a.quick {
        a.clients = 20;
        a.messages = Some(50);
        a.rate = None;
        a.duration = Duration::from_secs(20);
        a.window = 8;
    }
    let params = load_params(&a);
    let machine = procfs::machine();
    let n = a.clients.max(1);
    let log = |s: &str| {
        if !a.target.json {
            eprintln!("{s}");
        }
    };

    log(&format!("hush: starting the relay, connecting {n} clients"));
    let target = start_target(&a.target, a.quick).await?;
    let (peers, storm) =
        hush::setup(&target, n, a.target.endpoints, a.target.connect_timeout).await?;
    log(&format!(
        "hush: {n} connected in {:.2} s; sending",
        storm.elapsed.as_secs_f64()
    ));
    let hush_report = measure(
        target.description.clone(),
        storm,
        &peers,
        &params,
        target.pid,
    )
    .await?;
    log(&format!("hush: {}", hush_report.summary()));
    peers.iter().for_each(|p| p.close());
    drop(peers);
    target.stop().await.context("stopping the relay")?;

    let base_report = if a.no_baseline {
        None
    } else {
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
        let r = measure(
            "raw quinn forwarder".into(),
            storm,
            &peers,
            &params,
            Some(fwd.pid()),
        )
        .await?;
        log(&format!("baseline: {}", r.summary()));
        peers.iter().for_each(|p| p.close());
        drop(peers);
        fwd.stop().await.context("stopping the forwarder")?;
        Some(r)
    };

    let ratio = base_report
        .as_ref()
        .filter(|b| b.load.per_sec > 0.0)
        .map(|b| hush_report.load.per_sec / b.load.per_sec);
    let load_end = procfs::load_average();
    if a.target.json {
        let obj = json!({
            "command": "relay",
            "commit": report::commit(),
            "machine": machine,
            "load_average_1m_end": load_end,
            "params": {
                "clients": n,
                "messages_per_client": params.messages,
                "size": params.size,
                "rate": params.rate,
                "duration_secs": params.duration.as_secs_f64(),
                "window": params.window,
                "quick": a.quick,
            },
            "hush": hush_report.json(),
            "baseline": base_report.as_ref().map(SideReport::json),
            "hush_over_baseline": ratio,
        });
        println!("{obj}");
    } else {
        let header = format!(
            "hush-bench relay: {n} clients, {} B messages, rate {}, {} per client at most, \
             window {}; machine {}; load average {} → {}",
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
        report::print_table(&header, &hush_report, base_report.as_ref());
    }
    let bad = [Some(&hush_report), base_report.as_ref()]
        .into_iter()
        .flatten()
        .any(|r| r.load.lost > 0 || r.load.duplicated > 0 || r.load.delivered == 0);
    if bad {
        eprintln!("hush-bench: FAILED: messages were lost or duplicated (or none delivered)");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
