//! The `hush-server` binary: parses settings, starts the relay on the sled store (or, with
//! `--store jetstream`, on a NATS JetStream cluster shared with other relay nodes), prints the
//! relay address as the first line of stdout (or, for `hush-server stats`, prints what a
//! stopped relay's data directory holds, or for `hush-server rotate-cert` makes the next
//! certificate and prints the new address), logs to stderr, and exits 0 after a graceful
//! shutdown on SIGINT or SIGTERM; SIGHUP re-reads the create tokens file. It hardens itself
//! first: no core files, and not dumpable, so other processes of its user cannot read the vault
//! key from its memory.

use std::io::Write;

use anyhow::Context;
use clap::Parser;
use hush_server::blob::jetstream::JetStreamBlobs;
use hush_server::blob::Blobs;
use hush_server::config::{BlobChoice, Cli, Command, RelayConfig, StoreChoice};
use hush_server::store::jetstream::JetStreamStore;
use hush_server::store::sled_store::SledStore;
use hush_server::store::QueueStore;
use hush_server::Relay;
use tracing_subscriber::EnvFilter;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Installs the SIGINT and SIGTERM handlers now (before the address is printed, so that a
/// signal sent right after cannot kill the process) and returns a future that resolves on
/// either.
#[cfg(unix)]
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}

#[cfg(not(unix))]
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}

/// `HUSH_LOG` (default `info`), except that sled never logs below `warn`: its debug and trace
/// output prints database keys and values, which hold queue ids, key material and sealed bodies.
fn log_filter() -> EnvFilter {
    let filter = EnvFilter::try_from_env("HUSH_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    match "sled=warn".parse() {
        Ok(directive) => filter.add_directive(directive),
        Err(_) => filter,
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let gaps = hush_vault::process::harden();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(log_filter())
        .init();
    for gap in gaps {
        tracing::warn!("{gap}; a crash or another process could read the vault key");
    }
    let mut cli = Cli::parse();
    match cli.command.take() {
        Some(Command::Stats(args)) => {
            print!("{}", hush_server::stats::run(&args)?);
            return Ok(());
        }
        Some(Command::RotateCert(args)) => {
            print!("{}", hush_server::rotate::run(&args)?);
            return Ok(());
        }
        _ => {}
    }
    let check_only = cli.check_config;
    let config = cli.into_config()?;
    if check_only {
        config.check()?;
        println!("configuration is valid:\n{config:#?}");
        return Ok(());
    }
    match config.store.clone() {
        StoreChoice::Sled => {
            // The embedded default store. It creates the data directory (mode 0700) if needed.
            let store = SledStore::open_async(config.data_dir.clone())
                .await
                .with_context(|| {
                    format!("cannot open the store in {}", config.data_dir.display())
                })?;
            serve(config, store, None).await
        }
        StoreChoice::JetStream(js) => {
            let store = JetStreamStore::open(&js)
                .await
                .context("cannot open the JetStream store")?;
            let blobs = match config.blob_store {
                BlobChoice::JetStream => Some(
                    JetStreamBlobs::open(&js, config.blob_limits())
                        .await
                        .context("cannot open the JetStream blob stream")?
                        .into(),
                ),
                _ => None,
            };
            tracing::info!(
                nats = %js.urls.join(","),
                replicas = js.replicas,
                prefix = %js.prefix,
                blobs = ?config.blob_store,
                "queues on NATS JetStream"
            );
            serve(config, store, blobs).await
        }
        other => anyhow::bail!("this build cannot open the store {other:?}"),
    }
}

/// Runs the relay on `store` until SIGINT or SIGTERM, with blobs on `blobs` if given, else in
/// the data directory.
async fn serve<S: QueueStore>(
    config: RelayConfig,
    store: S,
    blobs: Option<Blobs>,
) -> anyhow::Result<()> {
    // Kept for the limits logged below; the create token stays with the relay, as a hash.
    let settings = RelayConfig {
        create_token: None,
        ..config.clone()
    };
    let relay = match blobs {
        Some(blobs) => {
            let clock = std::sync::Arc::new(hush_server::SystemClock);
            Relay::bind_with_blobs(config, store, blobs, clock)?
        }
        None => Relay::bind(config, store)?,
    };
    let shutdown = shutdown_signal()?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", relay.address())?;
    out.flush()?;
    drop(out);
    tracing::info!(addr = %relay.local_addr(), "relay listening");
    if let Some(addr) = relay.metrics_addr() {
        tracing::info!(%addr, "metrics and health check listening (GET /metrics, GET /healthz)");
    }
    if let Some(next) = relay.pending_rotation() {
        tracing::info!(
            fingerprint = %next.fingerprint,
            switch_at = next.switch_at,
            "certificate rotation pending: announced to clients until the switch"
        );
    }
    relay.access().announce(relay.address());
    hush_server::access::reload_on_sighup(relay.access()).context("cannot handle SIGHUP")?;
    tracing::info!(
        max_ttl = ?settings.max_ttl,
        queue_idle = ?settings.queue_idle,
        max_envelope_bytes = settings.max_envelope_len,
        queue_max_messages = settings.queue_max_messages,
        queue_max_bytes = settings.queue_max_bytes,
        max_connections = settings.max_connections,
        requests_per_sec = settings.requests_per_sec,
        blob_ttl = ?settings.blob_ttl,
        blob_max_bytes = settings.blob_max_bytes,
        blob_budget_bytes = settings.blob_budget_bytes,
        "limits"
    );
    relay.run(shutdown).await?;
    Ok(())
}
