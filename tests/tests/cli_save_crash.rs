//! `hush save` cut off while it decrypts (SIGKILL, as a crash or power loss would; SIGINT, as
//! Ctrl-C does) leaves no plaintext file in the destination directory. On Linux the file being
//! decrypted has no name until it is complete; where that is not possible (forced here with the
//! debug build's `HUSH_TEST_SAVE_NAMED_TEMP`), the temporary name is on record in the home
//! and the next open removes it. The save is held mid-decryption with `HUSH_TEST_SAVE_PAUSE`.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

use hush_tests::attacker::{Markers, Seizure};
use hush_tests::cli::{introduce, poll_until, HushHome, RelayProcess};
use rustix::process::{kill_process, Pid, Signal};

/// A marker that occurs all through the sent file's plaintext.
const MARKER: &[u8] = b"HUSH-SAVE-CRASH-PLAINTEXT-5b1d";

/// Writes a 600 KB file (several chunks) with the marker every 4 KiB.
fn make_file(dir: &Path) -> PathBuf {
    let mut data: Vec<u8> = (0..600_000usize).map(|i| (i * 17 % 251) as u8).collect();
    for at in (0..data.len() - MARKER.len()).step_by(4096) {
        data[at..at + MARKER.len()].copy_from_slice(MARKER);
    }
    let path = dir.join("secret-plans.bin");
    std::fs::write(&path, data).unwrap();
    path
}

fn markers() -> Markers {
    Markers::new().file_content("the sent file", MARKER)
}

/// Alice and Bob, introduced; Alice sends the file; returns the homes, the message id and the
/// directories: the sender's source, and Bob's destination (holding one unrelated file, so the
/// harness has something to search).
struct Setup {
    _relay: RelayProcess,
    bob: HushHome,
    id: String,
    _src: tempfile::TempDir,
    out: tempfile::TempDir,
}

fn setup() -> Setup {
    let relay = RelayProcess::start();
    let (alice, bob) = (HushHome::new(), HushHome::new());
    alice.init("alice", &relay.address);
    bob.init("bob", &relay.address);
    introduce(&alice, "bob", &bob, "alice");
    let src = tempfile::tempdir().unwrap();
    let path = make_file(src.path());
    // The search can see the marker: in the sender's source file.
    let _ = markers().seen_in(&Seizure::files(src.path()));
    let sent = alice
        .hush(&["send", "bob", "--file", path.to_str().unwrap(), "--json"])
        .ok();
    let id = sent.json_lines()[0]["id"].as_str().unwrap().to_owned();
    poll_until("the file message", || {
        bob.hush(&["read", "--json"])
            .ok()
            .json_lines()
            .into_iter()
            .find(|l| l["type"] == "message" && l["file"].is_object())
    });
    let out = tempfile::tempdir().unwrap();
    std::fs::write(out.path().join("unrelated.txt"), b"nothing to see").unwrap();
    Setup {
        _relay: relay,
        bob,
        id,
        _src: src,
        out,
    }
}

/// Starts `hush save` held just after its first decrypted chunk; returns once it is there.
fn paused_save(s: &Setup, named_temp: bool) -> Child {
    let flag_dir = tempfile::tempdir().unwrap();
    let flag = flag_dir.path().join("paused");
    let mut cmd = s
        .bob
        .command(&["save", &s.id, "--to", s.out.path().to_str().unwrap()]);
    cmd.env("HUSH_TEST_SAVE_PAUSE", &flag)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if named_temp {
        cmd.env("HUSH_TEST_SAVE_NAMED_TEMP", "1");
    }
    let mut child = cmd.spawn().unwrap();
    poll_until("the save to reach its decryption", || {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the save ended before it decrypted: {status}");
        }
        flag.exists().then_some(())
    });
    child
}

/// Whether process `pid` holds an unnamed (deleted) file in `dir` open.
fn holds_unnamed_file_in(pid: u32, dir: &Path) -> bool {
    let dir = std::fs::canonicalize(dir).unwrap();
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .any(|t| {
            let t = t.to_string_lossy().into_owned();
            t.starts_with(&*dir.to_string_lossy()) && t.ends_with("(deleted)")
        })
}

/// Asserts that no file in `dir` holds the plaintext (the harness is shown able to see it in
/// the sender's source by `setup`).
fn no_plaintext_in(dir: &Path) {
    let seizure = Seizure::files(dir);
    let found = markers().search(&seizure);
    assert!(found.is_empty(), "plaintext left behind: {found:?}");
    assert!(seizure.files_searched() >= 1);
}

#[test]
fn a_save_killed_mid_decryption_leaves_no_plaintext_file() {
    let s = setup();
    let mut child = paused_save(&s, false);
    assert!(
        holds_unnamed_file_in(child.id(), s.out.path()),
        "the plaintext is written to a file without a name"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    no_plaintext_in(s.out.path());
    assert_eq!(std::fs::read_dir(s.out.path()).unwrap().count(), 1);
    // Saving again works: the encrypted copy stayed.
    s.bob
        .hush(&["save", &s.id, "--to", s.out.path().to_str().unwrap()])
        .ok();
    assert_eq!(std::fs::read_dir(s.out.path()).unwrap().count(), 2);
}

#[test]
fn ctrl_c_stops_a_save_removes_what_it_wrote_and_fails() {
    let s = setup();
    let child = paused_save(&s, false);
    kill_process(Pid::from_raw(child.id() as i32).unwrap(), Signal::Int).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    no_plaintext_in(s.out.path());
    assert_eq!(std::fs::read_dir(s.out.path()).unwrap().count(), 1);
}

#[test]
fn ctrl_c_also_removes_a_named_temporary_file() {
    let s = setup();
    let child = paused_save(&s, true);
    kill_process(Pid::from_raw(child.id() as i32).unwrap(), Signal::Int).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    no_plaintext_in(s.out.path());
    assert!(
        Markers::new()
            .file_name(".hush-")
            .search(&Seizure::home(s.bob.path()))
            .is_empty(),
        "the record of the temporary name went with it"
    );
}

#[test]
fn a_killed_save_with_a_named_temporary_file_is_on_record_and_the_next_open_removes_it() {
    let s = setup();
    let mut child = paused_save(&s, true);
    child.kill().unwrap();
    child.wait().unwrap();
    let left: Vec<String> = std::fs::read_dir(s.out.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".hush-") && n.ends_with(".part"))
        .collect();
    assert_eq!(left.len(), 1, "the cut-off save's temporary file");
    let at_out = markers().seen_in(&Seizure::files(s.out.path()));
    let name = Markers::new()
        .file_name(&left[0])
        .seen_in(&Seizure::home(s.bob.path()));

    // Any command opens the home, and the open removes it.
    s.bob.hush(&["contacts"]).ok();
    at_out.gone_from(&Seizure::files(s.out.path()));
    name.gone_from(&Seizure::home(s.bob.path()));
    assert_eq!(std::fs::read_dir(s.out.path()).unwrap().count(), 1);
}
