//! File transfer through the built `hush` binary: `send --file`, `read` showing the file,
//! `save` (default name, `--to`, never overwriting), `--json`, and a 200 MiB file streamed
//! both ways and compared by hash.

use std::io::{BufWriter, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hush_tests::cli::{built, introduce, poll_until, HushHome, RelayProcess, Run};
use sha2::{Digest, Sha256};

/// How long one transfer of the large file may take in a debug build on a loaded machine.
const LARGE_DEADLINE: Duration = Duration::from_secs(600);

fn pair(relay: &RelayProcess) -> (HushHome, HushHome) {
    let (alice, bob) = (HushHome::new(), HushHome::new());
    alice.init("alice", &relay.address);
    bob.init("bob", &relay.address);
    introduce(&alice, "bob", &bob, "alice");
    (alice, bob)
}

/// Writes `len` bytes of a seeded pattern (with a marker every MiB) without holding them in
/// memory, and returns their SHA-256.
fn write_pattern(path: &Path, len: u64) -> [u8; 32] {
    let mut out = BufWriter::new(std::fs::File::create(path).unwrap());
    let mut hash = Sha256::new();
    let mut block = vec![0u8; 1 << 20];
    let mut written = 0u64;
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    while written < len {
        for chunk in block.chunks_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
        }
        block[..16].copy_from_slice(b"HUSH-CLI-MARKER!");
        let n = (len - written).min(block.len() as u64) as usize;
        out.write_all(&block[..n]).unwrap();
        hash.update(&block[..n]);
        written += n as u64;
    }
    out.flush().unwrap();
    hash.finalize().into()
}

fn hash_file(path: &Path) -> [u8; 32] {
    let mut file = std::fs::File::open(path).unwrap();
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).unwrap();
        if n == 0 {
            return hash.finalize().into();
        }
        hash.update(&buf[..n]);
    }
}

/// Runs `hush --home HOME ARGS` in `cwd` with a deadline of its own.
fn hush_in(home: &HushHome, cwd: &Path, args: &[&str], deadline: Duration) -> Run {
    let mut child = Command::new(built("hush"))
        .arg("--home")
        .arg(home.path())
        .args(args)
        .current_dir(cwd)
        .env_remove("HUSH_HOME")
        .env_remove("HUSH_PASSPHRASE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > deadline {
            let _ = child.kill();
            panic!("hush {args:?} did not finish within {deadline:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stdout = String::new();
    let mut stderr = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    Run {
        status,
        stdout,
        stderr,
    }
}

/// Runs `read --json` until a file message arrives; returns its JSON line.
fn read_until_file(home: &HushHome) -> serde_json::Value {
    poll_until("a file message", || {
        home.hush(&["read", "--json"])
            .ok()
            .json_lines()
            .into_iter()
            .find(|l| l["type"] == "message" && l["file"].is_object())
    })
}

#[test]
fn send_read_and_save_a_file_with_text_and_json_output() {
    let relay = RelayProcess::start();
    let (alice, bob) = pair(&relay);
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("notes.txt");
    std::fs::write(&src, b"the plan, in a file\n").unwrap();

    let sent = alice
        .hush(&["send", "bob", "--file", src.to_str().unwrap(), "--json"])
        .ok();
    let sent = &sent.json_lines()[0];
    assert_eq!(sent["type"], "sent");
    let id = sent["id"].as_str().unwrap().to_owned();

    // Text output names the file, its size, and how to save it.
    let shown = poll_until("the file message as text", || {
        let run = bob.hush(&["read"]).ok();
        run.out().contains("[file]").then(|| run.out().to_owned())
    });
    assert!(shown.contains("notes.txt (20 B)"), "{shown}");
    assert!(
        shown.contains(&format!("hush save {id} to save it")),
        "{shown}"
    );
    let history = bob.hush(&["history", "alice", "--json"]).ok().json_lines();
    assert_eq!(history[0]["file"]["name"], "notes.txt");
    assert_eq!(history[0]["file"]["size"], 20);
    assert_eq!(history[0]["id"], id.as_str());

    // Default destination: the current directory and the sender's name.
    let out = tempfile::tempdir().unwrap();
    let saved = hush_in(
        &bob,
        out.path(),
        &["save", &id, "--json"],
        Duration::from_secs(60),
    )
    .ok();
    let saved = &saved.json_lines()[0];
    assert_eq!(saved["type"], "saved");
    assert_eq!(saved["size"], 20);
    let dest = out.path().join("notes.txt");
    assert_eq!(
        Path::new(saved["path"].as_str().unwrap()),
        Path::new("./notes.txt")
    );
    assert_eq!(std::fs::read(&dest).unwrap(), b"the plan, in a file\n");

    // Never overwrites: a clear one-line error, exit status 1, the file untouched.
    std::fs::write(&dest, b"mine").unwrap();
    let refused = hush_in(&bob, out.path(), &["save", &id], Duration::from_secs(60)).fails();
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        refused.stderr.contains("already exists"),
        "{}",
        refused.stderr
    );
    assert!(refused.stderr.contains("--to"), "{}", refused.stderr);
    assert_eq!(std::fs::read(&dest).unwrap(), b"mine");
    // --to a new path works; text output says where.
    let other = out.path().join("copy.txt");
    let run = bob
        .hush(&["save", &id, "--to", other.to_str().unwrap()])
        .ok();
    assert!(run.out().starts_with("saved "), "{}", run.out());
    assert_eq!(std::fs::read(&other).unwrap(), b"the plan, in a file\n");

    // Bad input: a missing source file and an unknown message id.
    let missing = work.path().join("missing.pdf");
    let run = alice
        .hush(&["send", "bob", "--file", missing.to_str().unwrap()])
        .fails();
    assert!(run.stderr.contains("missing.pdf"), "{}", run.stderr);
    let run = bob
        .hush(&["save", "00000000000000000000000000000000"])
        .fails();
    assert!(run.stderr.contains("no such message"), "{}", run.stderr);
}

#[test]
fn a_200_mib_file_streams_both_ways_and_arrives_intact() {
    let relay = RelayProcess::start();
    let (alice, bob) = pair(&relay);
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("large.bin");
    let want = write_pattern(&src, 200 << 20);

    let sent = hush_in(
        &alice,
        work.path(),
        &["send", "bob", "--file", "large.bin", "--json"],
        LARGE_DEADLINE,
    )
    .ok();
    // No terminal, no progress bar.
    assert!(sent.stderr.is_empty(), "{}", sent.stderr);
    let id = sent.json_lines()[0]["id"].as_str().unwrap().to_owned();
    let shown = read_until_file(&bob);
    assert_eq!(shown["file"]["size"], 200u64 << 20);

    let out = tempfile::tempdir().unwrap();
    let saved = hush_in(&bob, out.path(), &["save", &id, "--json"], LARGE_DEADLINE).ok();
    assert!(saved.stderr.is_empty(), "{}", saved.stderr);
    let dest = out.path().join("large.bin");
    assert_eq!(std::fs::metadata(&dest).unwrap().len(), 200 << 20);
    assert_eq!(hash_file(&dest), want);
    // The search does find the plaintext where it is: in the saved file.
    assert_eq!(
        hush_tests::cli::files_containing(out.path(), b"HUSH-CLI-MARKER!"),
        vec![dest.clone()]
    );
    // Neither the sender's home nor the relay (whose copy went on download) holds the
    // plaintext; the recipient's home holds the ciphertext only (see client_files.rs).
    for dir in [alice.path(), relay.data.path()] {
        assert!(
            hush_tests::cli::files_containing(dir, b"HUSH-CLI-MARKER!").is_empty(),
            "{dir:?}"
        );
    }
}

#[test]
fn send_and_save_a_file_through_a_relay_with_blobs_on_jetstream() {
    let cluster = hush_tests::nats::NatsCluster::start(3);
    let nats = cluster.urls().join(",");
    let relay = RelayProcess::start_with(&[
        "--store",
        "jetstream",
        "--nats",
        &nats,
        "--blob-store",
        "jetstream",
    ]);
    let (alice, bob) = pair(&relay);
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("report.bin");
    // Several chunks, the last one short.
    let sent_hash = write_pattern(&src, 300_001);
    let sent = alice
        .hush(&["send", "bob", "--file", src.to_str().unwrap(), "--json"])
        .ok();
    assert_eq!(sent.json_lines()[0]["type"], "sent");
    let message = read_until_file(&bob);
    let id = message["id"].as_str().unwrap().to_owned();
    let out = tempfile::tempdir().unwrap();
    let saved = hush_in(
        &bob,
        out.path(),
        &["save", &id, "--json"],
        Duration::from_secs(60),
    )
    .ok();
    assert_eq!(saved.json_lines()[0]["type"], "saved");
    assert_eq!(hash_file(&out.path().join("report.bin")), sent_hash);
    // The relay node never opened a blob directory of its own: the file went through NATS.
    assert!(!relay.data.path().join(hush_server::blob::BLOB_DIR).exists());
}
