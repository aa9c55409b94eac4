//! The `hush` and `hush-server` processes keep their secrets to themselves: no core files, and
//! (on Linux) not dumpable, so another process of the same user can neither attach to them nor
//! read their memory or environment through `/proc`.

use std::process::Stdio;

use hush_tests::cli::{poll_until, HushHome, RelayProcess};

/// The soft and hard core-file limits of a running process, from `/proc/PID/limits`.
fn core_limits(pid: u32) -> Option<(String, String)> {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))?;
    let mut fields = line["Max core file size".len()..].split_whitespace();
    Some((fields.next()?.to_owned(), fields.next()?.to_owned()))
}

/// Lets children inherit a non-zero core limit (many environments start at 0, which would make
/// the checks below pass without any hardening).
fn allow_core_files() {
    let hard = rustix::process::getrlimit(rustix::process::Resource::Core).maximum;
    let limit = rustix::process::Rlimit {
        current: hard.or(Some(u64::MAX)).map(|h| h.min(1 << 30)),
        maximum: hard,
    };
    rustix::process::setrlimit(rustix::process::Resource::Core, limit).expect("raise core limit");
}

/// A child that does not harden itself shows a non-zero core limit: the check can fail.
#[test]
fn an_ordinary_child_may_write_core_files() {
    allow_core_files();
    let mut child = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .expect("spawn sleep");
    let (soft, _) = poll_until("sleep limits", || core_limits(child.id()));
    child.kill().expect("kill sleep");
    child.wait().expect("reap sleep");
    assert_ne!(soft, "0", "the test cannot tell a hardened process apart");
}

/// Waits until the process shows a zero core limit; fails at the deadline if it never does.
fn assert_hardened(pid: u32, what: &str) {
    poll_until(&format!("{what} to forbid core files"), || {
        core_limits(pid).filter(|(soft, hard)| soft == "0" && hard == "0")
    });
}

#[test]
fn the_relay_writes_no_core_file() {
    allow_core_files();
    let relay = RelayProcess::start();
    assert_hardened(relay.pid(), "hush-server");
}

#[test]
fn a_waiting_client_writes_no_core_file() {
    allow_core_files();
    let relay = RelayProcess::start();
    let home = HushHome::new();
    home.init("alice", &relay.address);
    let mut child = home
        .command(&["read", "--wait", "60s"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn hush read");
    assert_hardened(child.id(), "hush");
    child.kill().expect("kill hush read");
    child.wait().expect("reap hush read");
}
