//! A `hush-server` child process for tests that must treat the relay as a process: kill it
//! with SIGKILL, restart it on the same port and data directory, and read its memory use from
//! `/proc/<pid>/status`.
//!
//! The process is killed and reaped when the guard is dropped, so a failing test leaves no
//! relay behind. The data directory belongs to the caller, so that it outlives a kill.
//!
//! What it does not do: build the binary (run `cargo build -p hush-server --bin hush-server`
//! first), or work outside Linux (memory figures come from `/proc`).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};

use hush_client::net::RelayClient;
use hush_protocol::RelayAddress;

use crate::cli::built;

/// Environment variables of the test's own environment that must not configure the child.
const SCRUBBED_ENV: &[&str] = &[
    "HUSH_LISTEN",
    "HUSH_DATA",
    "HUSH_CONFIG",
    "HUSH_LOG",
    "HUSH_MAX_TTL",
    "HUSH_CREATE_TOKEN",
    "HUSH_CREATE_TOKENS_FILE",
    "HUSH_MAX_CONNECTIONS",
    "HUSH_MAX_HANDSHAKES",
    "HUSH_REQUESTS_PER_SEC",
    "HUSH_REQUEST_BURST",
    "HUSH_QUEUE_MAX_MESSAGES",
    "HUSH_QUEUE_MAX_BYTES",
    "HUSH_MAX_QUEUES_PER_CONNECTION",
    "HUSH_MAX_SUBSCRIPTIONS_PER_CONNECTION",
    "HUSH_IDLE_TIMEOUT",
    "HUSH_METRICS",
];

/// A running `hush-server`, killed and reaped on drop.
pub struct ServerProcess {
    child: Child,
    /// The address it printed on its first stdout line.
    pub address: RelayAddress,
    /// Keeps the stdout pipe open so the relay never writes to a closed pipe.
    _stdout: BufReader<ChildStdout>,
}

impl ServerProcess {
    /// Starts the relay on `data`, listening on `listen` (`127.0.0.1:0` for a fresh port),
    /// with extra flags, and waits for its address line.
    pub fn start(data: &Path, listen: &str, extra: &[&str]) -> Self {
        Self::start_logging(data, listen, extra, None)
    }

    /// As [`ServerProcess::start`], its log going to `log`: the `HUSH_LOG` filter and the file
    /// that gets stderr.
    pub fn start_logging(
        data: &Path,
        listen: &str,
        extra: &[&str],
        log: Option<(&str, std::fs::File)>,
    ) -> Self {
        let mut cmd = Command::new(built("hush-server"));
        cmd.arg("--listen")
            .arg(listen)
            .arg("--data")
            .arg(data)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        for key in SCRUBBED_ENV {
            cmd.env_remove(key);
        }
        if let Some((filter, file)) = log {
            cmd.env("HUSH_LOG", filter).stderr(file);
        }
        let mut child = cmd.spawn().expect("spawn hush-server");
        let mut stdout = BufReader::new(child.stdout.take().expect("relay stdout"));
        let mut line = String::new();
        let read = stdout.read_line(&mut line);
        let address = match read.ok().and_then(|_| line.trim().parse().ok()) {
            Some(a) => a,
            None => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("hush-server did not print its address; got {line:?}");
            }
        };
        Self {
            child,
            address,
            _stdout: stdout,
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The `HOST:PORT` the relay listens on, for a restart on the same port.
    pub fn listen_addr(&self) -> String {
        self.address.host_port()
    }

    /// The socket address clients reach it on.
    pub fn socket_addr(&self) -> SocketAddr {
        self.listen_addr()
            .parse()
            .expect("a loopback socket address")
    }

    /// A new protocol connection to the relay.
    pub async fn client(&self) -> RelayClient {
        RelayClient::connect(&self.address)
            .await
            .expect("connect to hush-server")
    }

    /// Its current memory use, from `/proc/<pid>/status`.
    pub fn memory(&self) -> Memory {
        Memory::of(self.pid()).expect("read /proc/<pid>/status of hush-server")
    }

    /// Kills the relay with SIGKILL (no shutdown, no flush) and reaps it.
    pub fn sigkill(mut self) {
        self.kill();
    }

    fn kill(&mut self) {
        // `Child::kill` sends SIGKILL on Unix. The process may already be gone; either way it
        // is reaped here.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Resident memory of a process, in KiB, as `/proc/<pid>/status` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Memory {
    /// Resident set size now (`VmRSS`).
    pub rss_kib: u64,
    /// The highest resident set size so far (`VmHWM`).
    pub hwm_kib: u64,
    /// The largest virtual size so far (`VmPeak`): address space reserved, touched or not.
    pub vm_peak_kib: u64,
}

impl Memory {
    /// Reads `VmRSS` and `VmHWM` of `pid`; `None` where `/proc` cannot be read.
    pub fn of(pid: u32) -> Option<Memory> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let field = |name: &str| -> Option<u64> {
            let line = text.lines().find(|l| l.starts_with(name))?;
            line[name.len()..].split_whitespace().next()?.parse().ok()
        };
        Some(Memory {
            rss_kib: field("VmRSS:")?,
            hwm_kib: field("VmHWM:")?,
            vm_peak_kib: field("VmPeak:")?,
        })
    }
}

impl std::fmt::Display for Memory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "RSS {:.1} MiB (peak {:.1} MiB)",
            self.rss_kib as f64 / 1024.0,
            self.hwm_kib as f64 / 1024.0
        )
    }
}
