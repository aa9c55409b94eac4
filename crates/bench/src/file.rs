//! `hush-bench file`: one file sent and saved through a relay on loopback, with throughput each
//! way and peak memory of the client and the relay.
//!
//! Two `Client`s (Alice and Bob, each with its own home in a temporary directory) run in this
//! process and become contacts through the relay. A file of `--size` pseudo-random bytes is
//! written to disk, then Alice sends it (`Client::send_file`: read, encrypt, upload) and Bob
//! saves it (`Client::save_file`: download, check, decrypt, write). Each direction is timed from
//! the call to its return, so client encryption, hashing and disk I/O are included. The saved
//! file is compared with the source by SHA-256. Peak resident memory is `VmHWM` from
//! `/proc/<pid>/status`: for this process it is reset (via `/proc/self/clear_refs`) before each
//! direction, so it is the peak while moving the file; for a spawned relay it covers its whole
//! life.
//!
//! What it does not do: assert the targets (`docs/performance.md` records them and says which
//! were missed), or run against a relay that is not on this machine (`/proc` must see it).

use std::io::{BufWriter, Read, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use hush_client::conversation::MessageId;
use hush_client::store::KeySource;
use hush_client::{Client, ClientEvent, TransferProgress};
use hush_protocol::RelayAddress;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::target::{server_binary, RelaySource, ServerProcess};
use crate::{procfs, report};

/// Arguments of `hush-bench file`.
#[derive(Args, Debug)]
pub(crate) struct FileArgs {
    /// File size, e.g. 1GiB, 200MiB, 5000000
    #[arg(long, default_value = "1GiB", value_parser = parse_size)]
    size: u64,
    #[command(flatten)]
    source: RelaySource,
    /// Passed to a spawned relay as --requests-per-sec [default: the relay's own default]
    #[arg(long)]
    requests_per_sec: Option<u32>,
    /// Print one JSON object instead of text
    #[arg(long)]
    json: bool,
}

/// Parses `1GiB`, `200MiB`, `64KiB` or a plain byte count.
pub(crate) fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, mult) = [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)]
        .into_iter()
        .find_map(|(suffix, m)| s.strip_suffix(suffix).map(|n| (n, m)))
        .unwrap_or((s, 1));
    num.trim()
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("{s:?} is not a size; use e.g. 1GiB, 200MiB or 5000000"))
}

/// Peak resident memory of `pid` in bytes (`VmHWM`).
fn peak_rss(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line["VmHWM:".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// Resets this process's peak resident memory to its current size.
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Writes `len` pseudo-random bytes to `path` in 1 MiB blocks; returns their SHA-256.
pub(crate) fn write_source(path: &Path, len: u64) -> anyhow::Result<[u8; 32]> {
    let mut out = BufWriter::new(std::fs::File::create(path)?);
    let mut hash = Sha256::new();
    let mut block = vec![0u8; 1 << 20];
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut left = len;
    while left > 0 {
        for word in block.chunks_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes()[..word.len()]);
        }
        let n = left.min(block.len() as u64) as usize;
        out.write_all(&block[..n])?;
        hash.update(&block[..n]);
        left -= n as u64;
    }
    out.flush()?;
    Ok(hash.finalize().into())
}

pub(crate) fn hash_file(path: &Path) -> anyhow::Result<[u8; 32]> {
    let mut file = std::fs::File::open(path)?;
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(hash.finalize().into());
        }
        hash.update(&buf[..n]);
    }
}

/// Two contacts on `relay`, in homes under `dir`.
async fn contacts(relay: &RelayAddress, dir: &Path) -> anyhow::Result<(Client, Client)> {
    let alice = Client::init(
        &dir.join("alice"),
        "alice",
        relay.clone(),
        KeySource::KeyFile,
    )
    .await
    .context("creating Alice's home")?;
    let bob = Client::init(&dir.join("bob"), "bob", relay.clone(), KeySource::KeyFile)
        .await
        .context("creating Bob's home")?;
    let token = alice.invite("bob").await?;
    bob.accept(&token, "alice").await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let events = alice.receive(None, Some(Duration::from_secs(5))).await?;
        if events
            .iter()
            .any(|e| matches!(e, ClientEvent::ContactJoined { .. }))
        {
            return Ok((alice, bob));
        }
        if Instant::now() > deadline {
            bail!("Bob's answer to the invitation never arrived");
        }
    }
}

fn mb_per_s(bytes: u64, took: Duration) -> f64 {
    bytes as f64 / 1e6 / took.as_secs_f64().max(1e-9)
}

/// The relay the file goes through: its address, the process if this run started it, and the
/// pid whose peak memory to report.
pub(crate) async fn start_relay(
    source: &RelaySource,
    size: u64,
    requests_per_sec: Option<u32>,
) -> anyhow::Result<(RelayAddress, Option<ServerProcess>, Option<u32>)> {
    if let Some(addr) = &source.relay {
        return Ok((addr.clone(), None, source.relay_pid));
    }
    let dir = tempfile::tempdir()?;
    // Room for the file with its chunk tags and its Padmé padding (under 3.1% from 64 KiB to
    // 4 GiB), whatever the relay's default cap.
    let cap = (size + size / 16 + (1 << 20)).to_string();
    let mut args = vec![
        "--listen".to_owned(),
        "127.0.0.1:0".into(),
        "--data".into(),
        dir.path().display().to_string(),
        "--blob-max-bytes".into(),
        cap.clone(),
        "--blob-budget-bytes".into(),
        cap,
    ];
    if let Some(r) = requests_per_sec {
        args.extend(["--requests-per-sec".into(), r.to_string()]);
    }
    let bin = server_binary(source.server_bin.as_deref())?;
    let server = ServerProcess::spawn(&bin, &args, &[], dir).await?;
    let relay: RelayAddress = server
        .first_line()
        .parse()
        .map_err(|e| anyhow::anyhow!("the relay printed no address: {e}"))?;
    let pid = server.pid();
    Ok((relay, Some(server), Some(pid)))
}

/// Receives on `bob` until the message `id` has arrived.
async fn await_message(bob: &Client, id: MessageId) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let events = bob.receive(None, Some(Duration::from_secs(5))).await?;
        if events
            .iter()
            .any(|e| matches!(e, ClientEvent::Message { message, .. } if message.id == id))
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the file message never arrived");
        }
    }
}

/// What one run measured.
struct Outcome {
    size: u64,
    up: Duration,
    down: Duration,
    client_peak_up: Option<u64>,
    client_peak_down: Option<u64>,
    peak_reset: bool,
    relay_peak: Option<u64>,
    intact: bool,
}

/// Sends the file from Alice and saves it at Bob's, timing each direction.
async fn transfer(
    alice: &Client,
    bob: &Client,
    work: &Path,
    a: &FileArgs,
    log: impl Fn(&str),
) -> anyhow::Result<Outcome> {
    let src = work.join("source.bin");
    log(&format!("file: writing a {} byte source file", a.size));
    let want = write_source(&src, a.size)?;

    log("file: sending");
    let peak_reset = reset_peak();
    let start = Instant::now();
    let id = alice
        .send_file("bob", &src, None, false, &|_: TransferProgress| {})
        .await
        .context("sending the file")?
        .id;
    let up = start.elapsed();
    let client_peak_up = peak_rss(std::process::id());

    await_message(bob, id).await?;
    log("file: saving");
    let out = work.join("saved.bin");
    reset_peak();
    let start = Instant::now();
    bob.save_file(id, &out, &|_: TransferProgress| {})
        .await
        .context("saving the file")?;
    let down = start.elapsed();
    Ok(Outcome {
        size: a.size,
        up,
        down,
        client_peak_up,
        client_peak_down: peak_rss(std::process::id()),
        peak_reset,
        relay_peak: None,
        intact: hash_file(&out)? == want,
    })
}

/// Runs the benchmark.
pub(crate) async fn run(a: FileArgs) -> anyhow::Result<ExitCode> {
    let machine = procfs::machine();
    let work = tempfile::tempdir()?;
    let log = |s: &str| {
        if !a.json {
            eprintln!("{s}");
        }
    };
    let (relay, server, relay_pid) = start_relay(&a.source, a.size, a.requests_per_sec).await?;
    let (alice, bob) = contacts(&relay, work.path()).await?;
    let mut outcome = transfer(&alice, &bob, work.path(), &a, log).await?;
    outcome.relay_peak = relay_pid.and_then(peak_rss);
    alice.close().await;
    bob.close().await;
    if let Some(server) = server {
        server.stop().await.context("stopping the relay")?;
    }
    let load_end = procfs::load_average();
    if a.json {
        println!("{}", outcome.json(&machine, load_end));
    } else {
        outcome.print(&machine, load_end);
    }
    if !outcome.intact {
        eprintln!("hush-bench: FAILED: the saved file differs from the source");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

impl Outcome {
    /// The one JSON object `--json` prints.
    fn json(&self, machine: &serde_json::Value, load_end: Option<f64>) -> serde_json::Value {
        json!({
            "command": "file",
            "commit": report::commit(),
            "machine": machine,
            "load_average_1m_end": load_end,
            "size_bytes": self.size,
            "upload_secs": self.up.as_secs_f64(),
            "upload_mb_per_s": mb_per_s(self.size, self.up),
            "download_secs": self.down.as_secs_f64(),
            "download_mb_per_s": mb_per_s(self.size, self.down),
            "client_peak_rss_upload_bytes": self.client_peak_up,
            "client_peak_rss_download_bytes": self.client_peak_down,
            "client_peak_is_per_direction": self.peak_reset,
            "relay_peak_rss_bytes": self.relay_peak,
            "intact": self.intact,
        })
    }

    /// The text report.
    fn print(&self, machine: &serde_json::Value, load_end: Option<f64>) {
        let mib = |b: Option<u64>| {
            b.map(|b| format!("{:.1} MiB", b as f64 / (1 << 20) as f64))
                .unwrap_or_else(|| "n/a".into())
        };
        println!(
            "hush-bench file: {} bytes; machine {machine}; load average {} -> {}",
            self.size,
            machine["load_average_1m"],
            load_end.map(|l| l.to_string()).unwrap_or_default()
        );
        println!(
            "upload   {:>8.1} MB/s  ({:.2} s)  client peak RSS {}",
            mb_per_s(self.size, self.up),
            self.up.as_secs_f64(),
            mib(self.client_peak_up)
        );
        println!(
            "download {:>8.1} MB/s  ({:.2} s)  client peak RSS {}",
            mb_per_s(self.size, self.down),
            self.down.as_secs_f64(),
            mib(self.client_peak_down)
        );
        println!(
            "relay peak RSS {}; file intact: {}",
            mib(self.relay_peak),
            self.intact
        );
    }
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_parse_with_binary_suffixes() {
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("200MiB"), Ok(200 << 20));
        assert_eq!(parse_size("12345"), Ok(12345));
        assert!(parse_size("lots").is_err());
    }
}
