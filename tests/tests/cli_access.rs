//! Create tokens through the built binaries: `hush-server --create-token` and
//! `--create-tokens-file` (revoked by deleting a line, then a restart or SIGHUP), the address
//! with the token given to `hush init`, the errors `init`, `invite` and `send --file` give
//! without a good token, `hush token` to replace one, and the relay's log, which never holds a
//! token.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};

use hush_tests::cli::{built, introduce, poll_until, HushHome, RelayProcess};

const TOKEN: &str = "staff-token-0123456789";
const OTHER: &str = "other-token-0123456789";

/// A `hush-server` whose log goes to a file, killed when dropped.
struct LoggedRelay {
    child: Child,
    /// `hush://127.0.0.1:PORT#FINGERPRINT`, as printed.
    address: String,
    log: PathBuf,
    data: tempfile::TempDir,
    _stdout: BufReader<ChildStdout>,
}

impl LoggedRelay {
    fn start(data: tempfile::TempDir, listen: &str, extra: &[&str], env: &[(&str, &str)]) -> Self {
        let log = data
            .path()
            .join(format!("relay-{}.log", listen.replace(':', "_")));
        let file = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new(built("hush-server"));
        cmd.arg("--listen")
            .arg(listen)
            .arg("--data")
            .arg(data.path().join("relay"))
            .args(extra)
            .env("HUSH_LOG", "debug")
            .env_remove("HUSH_CREATE_TOKEN")
            .env_remove("HUSH_CREATE_TOKENS_FILE")
            .env_remove("HUSH_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(file));
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let address = line.trim().to_owned();
        assert!(address.starts_with("hush://127.0.0.1:"), "{address:?}");
        LoggedRelay {
            child,
            address,
            log,
            data,
            _stdout: stdout,
        }
    }

    /// The address with `token`, as the operator hands it out.
    fn with_token(&self, token: &str) -> String {
        self.address
            .replacen("hush://", &format!("hush://{token}@"), 1)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap()
    }

    fn listen(&self) -> String {
        let rest = self.address.trim_start_matches("hush://");
        rest.split('#').next().unwrap().to_owned()
    }

    /// Stops it and starts it again on the same port and data, with `extra` flags.
    fn restart(mut self, extra: &[&str]) -> Self {
        let listen = self.listen();
        let _ = self.child.kill();
        let _ = self.child.wait();
        let data = std::mem::replace(&mut self.data, tempfile::tempdir().unwrap());
        LoggedRelay::start(data, &listen, extra, &[])
    }
}

impl Drop for LoggedRelay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tokens_file(dir: &Path, lines: &str) -> PathBuf {
    let path = dir.join("tokens");
    std::fs::write(&path, lines).unwrap();
    path
}

#[test]
fn init_and_invite_need_the_relays_token_and_say_what_to_ask_for() {
    let data = tempfile::tempdir().unwrap();
    let relay = LoggedRelay::start(data, "127.0.0.1:0", &[], &[("HUSH_CREATE_TOKEN", TOKEN)]);
    let staff = HushHome::new();
    staff.init("staff", &relay.with_token(TOKEN));
    staff.hush(&["invite", "--as", "partner"]).ok();

    let missing = HushHome::new();
    let run = missing
        .hush(&["init", "--name", "x", "--relay", &relay.address])
        .fails();
    assert!(
        run.stderr.contains("requires a create token"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains(&relay.address), "{}", run.stderr);
    assert!(run.stderr.contains("operator"), "{}", run.stderr);
    // Nothing was made.
    let after = missing.hush(&["contacts"]).fails();
    assert!(after.stderr.contains("hush init"), "{}", after.stderr);

    let wrong = HushHome::new();
    let run = wrong
        .hush(&["init", "--name", "x", "--relay", &relay.with_token(OTHER)])
        .fails();
    assert!(run.stderr.contains("wrong or revoked"), "{}", run.stderr);
    assert!(!run.stderr.contains(OTHER), "{}", run.stderr);

    // The relay's log never holds a token. The same search finds the relay's fingerprint and
    // its start-up line in it, so the log was written and read.
    let log = poll_until("the relay's start-up line", || {
        let log = relay.log();
        log.contains("needs a create token").then_some(log)
    });
    let fingerprint = relay.address.rsplit('#').next().unwrap();
    assert!(log.contains(fingerprint), "{log}");
    assert!(log.contains("needs a create token"), "{log}");
    assert!(
        log.contains("hello"),
        "the debug log saw the requests: {log}"
    );
    assert!(!log.contains(TOKEN) && !log.contains(OTHER), "{log}");
}

#[test]
fn an_open_relay_warns_at_start_and_init_works_as_before() {
    let data = tempfile::tempdir().unwrap();
    let relay = LoggedRelay::start(data, "127.0.0.1:0", &[], &[]);
    // Logged just after the address is printed.
    poll_until("the open relay's warning", || {
        relay.log().contains("no create token is set").then_some(())
    });
    let home = HushHome::new();
    home.init("alice", &relay.address);
    home.hush(&["invite", "--as", "bob"]).ok();
}

#[test]
fn a_malformed_token_in_the_address_is_a_typed_error() {
    let relay = RelayProcess::start();
    let bad = relay.address.replacen("hush://", "hush://sh0rt@", 1);
    let run = HushHome::new()
        .hush(&["init", "--name", "x", "--relay", &bad])
        .fails();
    assert!(
        run.stderr.contains("16 to 128 characters"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("sh0rt"), "{}", run.stderr);
}

#[test]
fn a_token_deleted_from_the_file_stops_working_after_a_restart_or_sighup() {
    let data = tempfile::tempdir().unwrap();
    let file = tokens_file(data.path(), &format!("# staff\n{TOKEN}\n{OTHER}\n"));
    let flag = ["--create-tokens-file", file.to_str().unwrap()];
    let relay = LoggedRelay::start(data, "127.0.0.1:0", &flag, &[]);
    let (staff, other) = (HushHome::new(), HushHome::new());
    staff.init("staff", &relay.with_token(TOKEN));
    other.init("other", &relay.with_token(OTHER));
    staff.hush(&["invite", "--as", "a"]).ok();

    // Revoked by deleting its line; a restart reads the file again.
    std::fs::write(&file, format!("{OTHER}\n")).unwrap();
    let relay = relay.restart(&flag);
    let run = staff.hush(&["invite", "--as", "b"]).fails();
    assert!(run.stderr.contains("wrong or revoked"), "{}", run.stderr);
    other.hush(&["invite", "--as", "b"]).ok();

    // Revoked again, this time with SIGHUP and no restart.
    std::fs::write(&file, format!("{TOKEN}\n")).unwrap();
    let pid = rustix::process::Pid::from_raw(relay.child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::Hup).unwrap();
    poll_until("the tokens file to be reloaded", || {
        relay.log().contains("create tokens reloaded").then_some(())
    });
    let run = other.hush(&["invite", "--as", "c"]).fails();
    assert!(run.stderr.contains("wrong or revoked"), "{}", run.stderr);
    // The token put back in the file works again, without a new address for its holder.
    staff.hush(&["invite", "--as", "c"]).ok();
}

#[test]
fn send_file_without_a_good_token_fails_clearly_and_hush_token_replaces_it() {
    let data = tempfile::tempdir().unwrap();
    let file = tokens_file(data.path(), &format!("{TOKEN}\n"));
    let flag = ["--create-tokens-file", file.to_str().unwrap()];
    let relay = LoggedRelay::start(data, "127.0.0.1:0", &flag, &[]);
    // The partner's relay is open, and the partner holds no token for the staff's relay.
    let partners = RelayProcess::start();
    let (staff, partner) = (HushHome::new(), HushHome::new());
    staff.init("staff", &relay.with_token(TOKEN));
    partner.init("partner", &partners.address);
    introduce(&staff, "partner", &partner, "staff");
    partner
        .hush(&["send", "staff", "no token needed to send"])
        .ok();
    hush_tests::cli::read_until_text(&staff, "no token needed to send");

    std::fs::write(&file, format!("{OTHER}\n")).unwrap();
    let relay = relay.restart(&flag);
    let doc = staff.path().join("doc.txt");
    std::fs::write(&doc, "quarterly numbers").unwrap();
    let run = staff
        .hush(&["send", "partner", "--file", doc.to_str().unwrap()])
        .fails();
    assert!(run.stderr.contains("wrong or revoked"), "{}", run.stderr);
    assert!(run.stderr.contains(&relay.address), "{}", run.stderr);
    // Texts still go: sending needs no token.
    staff.hush(&["send", "partner", "still talking"]).ok();

    // A token for another relay is refused; the new one for this relay is stored.
    let elsewhere = partners
        .address
        .replacen("hush://", &format!("hush://{OTHER}@"), 1);
    staff.hush(&["token", &elsewhere]).fails();
    staff.hush(&["token", &relay.with_token(TOKEN)]).fails();
    let set = staff.hush(&["token", &relay.with_token(OTHER)]).ok();
    assert!(
        set.out().contains("stored the create token"),
        "{}",
        set.out()
    );
    assert!(!set.stdout.contains(OTHER), "{}", set.stdout);
    staff
        .hush(&["send", "partner", "--file", doc.to_str().unwrap()])
        .ok();
}
