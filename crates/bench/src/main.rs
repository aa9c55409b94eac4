//! `hush-bench`: load generator and benchmark driver for the hush relay.
//!
//! Layer: a program at the top; it drives hush-client and hush-server and nothing depends on it.
//!
//! `hush-bench relay` starts a relay (the release `hush-server` binary on its own data
//! directory) or targets a running one, connects N clients at once, each with its own subscribed
//! queue, and has them send to each other's queues at a target rate or as fast as they can. It
//! measures delivered messages per second, send→deliver latency (HDR histogram), the time for
//! all N clients to connect, the relay's RSS and CPU from `/proc`, and how many messages were
//! lost or duplicated. The same load then runs against a raw quinn forwarder (no storage, no
//! auth), and hush's throughput is reported as a share of it. `hush-bench idle` holds N idle
//! subscribed connections and reports relay RSS per connection. `hush-bench file` and
//! `hush-bench group` time file transfer and group sends through `Client`s. `--quick` is the CI
//! smoke test.
//!
//! What it does not do: assert performance targets (`docs/performance.md` records them), run
//! anywhere but loopback, or encrypt bodies (the relay sees opaque bytes either way).

mod baseline;
mod file;
mod group;
mod hush;
mod idle;
mod net;
mod procfs;
mod relay;
mod report;
mod target;
mod workload;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

// The relay's allocator, so the load generator leaves the relay as much of the machine as it can.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use crate::target::{HushTarget, RelaySource};

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
    Relay(relay::RelayArgs),
    /// Hold N idle subscribed connections and report relay RSS per connection
    Idle(IdleArgs),
    /// Send and save one file through a relay: MB/s each way, client and relay peak RSS
    File(file::FileArgs),
    /// A text to a group of N and a file to a group of M: the author's wall and CPU time
    Group(group::GroupArgs),
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
    #[command(flatten)]
    source: RelaySource,
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
            Command::Relay(a) => relay::run(a).await,
            Command::Idle(a) => idle::run(a).await,
            Command::File(a) => file::run(a).await,
            Command::Group(a) => group::run(a).await,
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
    let source = &t.source;
    if let Some(addr) = &source.relay {
        return HushTarget::external(addr.clone(), source.relay_pid).await;
    }
    if in_process {
        return HushTarget::in_process().await;
    }
    HushTarget::spawn(&target::server_binary(source.server_bin.as_deref())?).await
}
