//! Fixtures for tests that drive the built binaries: a `hush-server` process on loopback, and
//! `hush` homes that run commands with a deadline.
//!
//! Needs the binaries built first (`cargo build --workspace --bins`), as the README's test
//! command does.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::{bin_path, DEADLINE};

/// The pause between two polls of a condition.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Environment variables that must not leak from the test's environment into a child.
const SCRUBBED_ENV: &[&str] = &[
    "HUSH_HOME",
    "HUSH_PASSPHRASE",
    "HUSH_PROXY",
    "HUSH_LISTEN",
    "HUSH_DATA",
    "HUSH_CONFIG",
    "HUSH_MAX_TTL",
    "HUSH_CREATE_TOKEN",
    "HUSH_CREATE_TOKENS_FILE",
    "HUSH_TRANSPORT",
    "RUST_LOG",
];

/// A built binary, failing the test with the build command if it is missing.
pub fn built(name: &str) -> PathBuf {
    let bin = bin_path(name);
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build --workspace --bins` first",
        bin.display()
    );
    bin
}

/// A `hush-server` process listening on `127.0.0.1:0`, killed when dropped.
pub struct RelayProcess {
    child: Child,
    /// The address it printed: `hush://127.0.0.1:PORT#FINGERPRINT`.
    pub address: String,
    /// Its data directory (removed when the test ends).
    pub data: tempfile::TempDir,
    /// Keeps the stdout pipe open so the relay never writes to a closed pipe.
    _stdout: BufReader<ChildStdout>,
}

impl RelayProcess {
    /// Starts a relay with default settings in a fresh data directory.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts a relay with extra flags in a fresh data directory.
    pub fn start_with(extra: &[&str]) -> Self {
        let data = tempfile::tempdir().expect("relay data dir");
        Self::start_in(data, extra)
    }

    /// Starts a relay on an existing data directory (for restarts).
    pub fn start_in(data: tempfile::TempDir, extra: &[&str]) -> Self {
        Self::start_at(data, "127.0.0.1:0", extra)
    }

    /// Starts a relay on an existing data directory, listening on `listen`.
    pub fn start_at(data: tempfile::TempDir, listen: &str, extra: &[&str]) -> Self {
        let mut cmd = Command::new(built("hush-server"));
        cmd.arg("--listen")
            .arg(listen)
            .arg("--data")
            .arg(data.path())
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        for key in SCRUBBED_ENV {
            cmd.env_remove(key);
        }
        let mut child = cmd.spawn().expect("spawn hush-server");
        let mut stdout = BufReader::new(child.stdout.take().expect("relay stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("read the relay address");
        let address = line.trim().to_owned();
        assert!(
            address.starts_with("hush://127.0.0.1:"),
            "first stdout line is the relay address, got {address:?}"
        );
        Self {
            child,
            address,
            data,
            _stdout: stdout,
        }
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The `HOST:PORT` it listens on.
    pub fn listen_addr(&self) -> String {
        let rest = self.address.trim_start_matches("hush://");
        rest.split('#').next().unwrap_or(rest).to_owned()
    }

    /// Stops the relay and starts it again on the same port and data directory.
    pub fn restart(self) -> Self {
        let listen = self.listen_addr();
        let data = self.stop();
        Self::start_at(data, &listen, &[])
    }

    /// Stops the relay and hands back its data directory.
    pub fn stop(mut self) -> tempfile::TempDir {
        self.kill();
        let data = tempfile::tempdir().expect("placeholder dir");
        std::mem::replace(&mut self.data, data)
    }

    fn kill(&mut self) {
        // The process may already be gone; either way it is reaped below.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// What a finished `hush` command printed.
#[derive(Debug)]
pub struct Run {
    /// Its exit status.
    pub status: ExitStatus,
    /// Everything on stdout.
    pub stdout: String,
    /// Everything on stderr.
    pub stderr: String,
}

impl Run {
    /// Asserts success and returns the run.
    #[track_caller]
    pub fn ok(self) -> Self {
        assert!(
            self.status.success(),
            "expected success, got {}\nstdout: {}\nstderr: {}",
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }

    /// Asserts failure with a one-line error on stderr and returns the run.
    #[track_caller]
    pub fn fails(self) -> Self {
        assert!(
            !self.status.success(),
            "expected failure, got success\nstdout: {}\nstderr: {}",
            self.stdout,
            self.stderr
        );
        assert_eq!(
            self.stderr.trim_end().lines().count(),
            1,
            "one line of error on stderr: {:?}",
            self.stderr
        );
        self
    }

    /// Stdout, trimmed.
    pub fn out(&self) -> &str {
        self.stdout.trim()
    }

    /// Each stdout line parsed as a JSON object.
    #[track_caller]
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
            .collect()
    }
}

/// One user's hush home directory, in a temp dir removed when the test ends.
pub struct HushHome {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl Default for HushHome {
    fn default() -> Self {
        Self::new()
    }
}

impl HushHome {
    /// A fresh, empty home.
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("home dir"),
            env: Vec::new(),
        }
    }

    /// The home directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Sets an environment variable for every later command.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.into(), value.into()));
    }

    /// Stops setting an environment variable for later commands.
    pub fn unset_env(&mut self, key: &str) {
        self.env.retain(|(k, _)| k != key);
    }

    /// Runs `hush --home HOME ARGS...` with stdin empty.
    pub fn hush(&self, args: &[&str]) -> Run {
        self.hush_with_stdin(args, None)
    }

    /// Runs `hush --home HOME ARGS...` with `stdin` as its input (not a terminal).
    pub fn hush_with_stdin(&self, args: &[&str], stdin: Option<&str>) -> Run {
        run_with_deadline(self.command(args), stdin)
    }

    /// `hush --home HOME ARGS...` with this home's environment, for the caller to run.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(built("hush"));
        cmd.arg("--home").arg(self.path()).args(args);
        for key in SCRUBBED_ENV {
            cmd.env_remove(key);
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// `hush init --name NAME --relay RELAY`, which must succeed.
    pub fn init(&self, name: &str, relay: &str) {
        self.hush(&["init", "--name", name, "--relay", relay]).ok();
    }
}

/// Runs `cmd` to completion, killing it and failing the test if it outlives [`DEADLINE`].
pub fn run_with_deadline(mut cmd: Command, stdin: Option<&str>) -> Run {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn hush");
    let stdout = drain(child.stdout.take().expect("stdout pipe"));
    let stderr = drain(child.stderr.take().expect("stderr pipe"));
    if let Some(text) = stdin {
        let mut pipe = child.stdin.take().expect("stdin pipe");
        // A command that exits without reading its input closes the pipe; that is its answer.
        let _ = pipe.write_all(text.as_bytes());
    }
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for hush") {
            break status;
        }
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("hush did not finish within {DEADLINE:?}: {cmd:?}");
        }
        std::thread::sleep(POLL_INTERVAL / 5);
    };
    Run {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}

fn drain(mut pipe: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        // A read error ends the capture; the test then sees what arrived before it.
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Calls `check` until it returns `Some`, failing the test with `what` after [`DEADLINE`].
#[track_caller]
pub fn poll_until<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "timed out after {DEADLINE:?} waiting for {what}"
        );
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// Every file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}

/// The files under `dir` whose bytes contain `needle`. Panics if `dir` holds no readable file
/// or a file could not be read (see [`crate::forensic::files_holding`]).
#[track_caller]
pub fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    crate::forensic::files_holding(dir, &crate::forensic::Pattern::bytes(needle))
}

/// Makes `inviter` and `joiner` contacts: `inviter` invites, `joiner` accepts, and `inviter`
/// receives until the contact has joined. They call each other `joiner_name` and
/// `inviter_name`.
pub fn introduce(inviter: &HushHome, joiner_name: &str, joiner: &HushHome, inviter_name: &str) {
    let invitation = inviter.hush(&["invite", "--as", joiner_name]).ok();
    let token = invitation.out().to_owned();
    assert!(token.starts_with("hush://invite/"), "{token}");
    assert_eq!(token.lines().count(), 1, "only the invitation on stdout");
    joiner.hush(&["accept", &token, "--as", inviter_name]).ok();
    poll_until("the invitation to be answered", || {
        let run = inviter.hush(&["read", "--json"]).ok();
        run.json_lines()
            .iter()
            .any(|l| l["type"] == "notice" && l["contact"] == joiner_name)
            .then_some(())
    });
}

/// Runs `read --json` on `home` until a message with `text` arrives; returns its JSON.
#[track_caller]
pub fn read_until_text(home: &HushHome, text: &str) -> serde_json::Value {
    poll_until(&format!("a message {text:?}"), || {
        let run = home.hush(&["read", "--json"]).ok();
        run.json_lines()
            .into_iter()
            .find(|l| l["type"] == "message" && l["text"] == text)
    })
}

/// The JSON lines of `history NAME --json`.
#[track_caller]
pub fn history(home: &HushHome, contact: &str) -> Vec<serde_json::Value> {
    home.hush(&["history", contact, "--json"]).ok().json_lines()
}

/// The texts still stored for `contact`.
#[track_caller]
pub fn history_texts(home: &HushHome, contact: &str) -> Vec<String> {
    history(home, contact)
        .iter()
        .filter_map(|l| l["text"].as_str().map(str::to_owned))
        .collect()
}

/// Runs `read --json` on `home` until a notice about group `group` contains `words`.
#[track_caller]
pub fn group_notice(home: &HushHome, group: &str, words: &str) {
    poll_until(&format!("a notice {words:?} about {group}"), || {
        let run = home.hush(&["read", "--json"]).ok();
        run.json_lines()
            .iter()
            .any(|l| {
                l["type"] == "notice"
                    && l["contact"] == group
                    && l["text"].as_str().is_some_and(|t| t.contains(words))
            })
            .then_some(())
    });
}

/// Sends `text` to group `group` from `home` with `extra` flags; returns the message id.
#[track_caller]
pub fn group_send(home: &HushHome, group: &str, text: &str, extra: &[&str]) -> String {
    let mut args = vec!["send", group, text, "--json"];
    args.extend_from_slice(extra);
    let run = home.hush(&args).ok();
    let line = &run.json_lines()[0];
    assert_eq!(line["type"], "group", "{line}");
    line["id"].as_str().unwrap().to_owned()
}
