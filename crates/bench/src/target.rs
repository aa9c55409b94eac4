//! The relay under test: a `hush-server` process the benchmark starts on its own data directory,
//! a relay in this process (quick mode), or one already running elsewhere on loopback.
//!
//! A spawned server listens on `127.0.0.1:0` and prints its address as the first line of
//! stdout; its stderr goes to a log file in its temporary data directory. Its pid is what the
//! samplers read from `/proc`.
//!
//! What it does not do: build the server binary. `cargo build --release -p hush-server` does, and
//! the benchmark looks for it next to its own executable unless `--server-bin` says otherwise.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use hush_protocol::RelayAddress;
use hush_server::store::sled_store::SledStore;
use hush_server::{Relay, RelayConfig, RelayHandle};

/// How long a spawned server may take to print its address.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a spawned server may take to exit after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// A child process that printed its address on its first stdout line.
pub(crate) struct ServerProcess {
    child: Child,
    first_line: String,
    dir: tempfile::TempDir,
}

impl ServerProcess {
    /// Starts `program` with `args` and waits for its first stdout line. `dir` is its data
    /// directory, removed when this value is dropped.
    pub(crate) async fn spawn(
        program: &Path,
        args: &[String],
        envs: &[(&str, &str)],
        dir: tempfile::TempDir,
    ) -> anyhow::Result<Self> {
        let log = std::fs::File::create(dir.path().join("server.log"))?;
        let mut cmd = Command::new(program);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot start {}", program.display()))?;
        let stdout = child.stdout.take().context("no stdout pipe")?;
        let read = tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            BufReader::new(stdout).read_line(&mut line).map(|_| line)
        });
        let line = match tokio::time::timeout(START_TIMEOUT, read).await {
            Ok(Ok(Ok(l))) if !l.trim().is_empty() => l.trim().to_owned(),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                let log =
                    std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default();
                bail!("{} printed no address; its log:\n{log}", program.display());
            }
        };
        Ok(Self {
            child,
            first_line: line,
            dir,
        })
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The first line it printed.
    pub(crate) fn first_line(&self) -> &str {
        &self.first_line
    }

    /// Asks the process to stop (SIGTERM) and waits for it; kills it if it takes too long.
    pub(crate) async fn stop(mut self) -> anyhow::Result<()> {
        let pid = rustix::process::Pid::from_child(&self.child);
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::Term);
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                if !status.success() {
                    let log = std::fs::read_to_string(self.dir.path().join("server.log"))
                        .unwrap_or_default();
                    bail!("server exited with {status}; its log:\n{log}");
                }
                return Ok(());
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                bail!("server did not stop within {STOP_TIMEOUT:?} of SIGTERM; killed");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for ServerProcess {
    /// A server left running (the benchmark failed before [`ServerProcess::stop`]) is killed,
    /// so no run leaves a process behind.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Which relay a command drives: a running one, or a `hush-server` it starts. Flattened into
/// the arguments of `relay`, `idle` and `file`.
#[derive(Args, Debug, Clone)]
pub(crate) struct RelaySource {
    /// Drive this running relay (hush://127.0.0.1:PORT#FINGERPRINT) instead of starting one
    #[arg(long, conflicts_with = "spawn")]
    pub(crate) relay: Option<RelayAddress>,
    /// With --relay: the relay's pid, to read its memory and CPU from /proc
    #[arg(long, requires = "relay")]
    pub(crate) relay_pid: Option<u32>,
    /// Start the hush-server binary on a temporary data directory (the default)
    #[arg(long)]
    pub(crate) spawn: bool,
    /// The hush-server binary to start [default: next to this executable]
    #[arg(long)]
    pub(crate) server_bin: Option<PathBuf>,
}

/// Where the `hush-server` binary is: `explicit`, or next to this executable.
pub(crate) fn server_binary(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(p) = explicit {
        return Ok(p.to_owned());
    }
    let me = std::env::current_exe()?;
    let p = me.with_file_name("hush-server");
    if !p.exists() {
        bail!(
            "{} not found; build it with `cargo build --release -p hush-server`, or pass --server-bin",
            p.display()
        );
    }
    Ok(p)
}

enum Kind {
    Spawned(ServerProcess),
    InProcess(RelayHandle<SledStore>, tempfile::TempDir),
    External,
}

/// The hush relay the benchmark drives.
pub(crate) struct HushTarget {
    kind: Kind,
    /// Its `hush://` address.
    pub(crate) address: RelayAddress,
    /// The socket to connect to.
    pub(crate) sock: SocketAddr,
    /// The relay's pid, when the benchmark can read its `/proc` entry.
    pub(crate) pid: Option<u32>,
    /// How it was started, for the report.
    pub(crate) description: String,
}

impl HushTarget {
    /// Spawns the `hush-server` binary on a fresh data directory.
    pub(crate) async fn spawn(bin: &Path) -> anyhow::Result<Self> {
        Self::spawn_with(bin, &[]).await
    }

    /// Spawns the `hush-server` binary on a fresh data directory with `extra` arguments (the
    /// store to use, say).
    pub(crate) async fn spawn_with(bin: &Path, extra: &[String]) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new().prefix("hush-bench-").tempdir()?;
        let mut args = vec![
            "--listen".to_owned(),
            "127.0.0.1:0".to_owned(),
            "--data".to_owned(),
            dir.path().join("relay").display().to_string(),
        ];
        args.extend_from_slice(extra);
        let proc = ServerProcess::spawn(bin, &args, &[("HUSH_LOG", "warn")], dir).await?;
        let address: RelayAddress = proc
            .first_line()
            .parse()
            .with_context(|| format!("server printed {:?}", proc.first_line()))?;
        let sock = resolve(&address).await?;
        Ok(Self {
            pid: Some(proc.pid()),
            description: format!("spawned {} {}", bin.display(), extra.join(" ")),
            kind: Kind::Spawned(proc),
            address,
            sock,
        })
    }

    /// Runs a relay on the sled store inside this process (so its RSS and CPU include the
    /// benchmark's own).
    pub(crate) async fn in_process() -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new().prefix("hush-bench-").tempdir()?;
        let store = SledStore::open_async(dir.path().join("store")).await?;
        let relay = Relay::bind(RelayConfig::loopback(dir.path()), store)?;
        let handle = relay.spawn();
        Ok(Self {
            address: handle.address().clone(),
            sock: handle.local_addr(),
            pid: Some(std::process::id()),
            description: "in-process relay (sled store)".to_owned(),
            kind: Kind::InProcess(handle, dir),
        })
    }

    /// A relay that is already running.
    pub(crate) async fn external(address: RelayAddress, pid: Option<u32>) -> anyhow::Result<Self> {
        let sock = resolve(&address).await?;
        Ok(Self {
            description: format!("external relay {address}"),
            kind: Kind::External,
            address,
            sock,
            pid,
        })
    }

    /// Stops the relay if the benchmark started it.
    pub(crate) async fn stop(self) -> anyhow::Result<()> {
        match self.kind {
            Kind::Spawned(p) => p.stop().await,
            Kind::InProcess(h, _dir) => Ok(h.shutdown().await?),
            Kind::External => Ok(()),
        }
    }
}

async fn resolve(address: &RelayAddress) -> anyhow::Result<SocketAddr> {
    tokio::net::lookup_host(address.host_port())
        .await?
        .next()
        .with_context(|| format!("{} did not resolve", address.host))
}
