//! Two users meet and talk through the built `hush` binary: invitation, messages both ways,
//! `--json`, history, contacts, verification, and the one-line errors for mistakes.

use hush_tests::cli::{history_texts, introduce, read_until_text, HushHome, RelayProcess};

#[test]
fn invite_accept_and_messages_both_ways() {
    let relay = RelayProcess::start();
    let (alice, bob) = (HushHome::new(), HushHome::new());
    alice.init("alice", &relay.address);
    bob.init("bob", &relay.address);
    introduce(&alice, "bob", &bob, "alice");

    let sent = alice.hush(&["send", "bob", "hello bob"]).ok();
    let id = sent.out().to_owned();
    assert_eq!(id.len(), 32, "send prints the message id: {id}");
    let got = read_until_text(&bob, "hello bob");
    assert_eq!(got["id"], id.as_str());
    assert_eq!(got["contact"], "alice");
    assert_eq!(got["direction"], "in");
    assert!(got["sent_at"].as_u64().unwrap() > 1_600_000_000);
    assert!(got["expires_at"].is_null());

    // TEXT from stdin, so that it stays out of shell history.
    bob.hush_with_stdin(&["send", "alice"], Some("hi alice\n"))
        .ok();
    read_until_text(&alice, "hi alice");

    // Text output: id, contact, time and text on one line.
    alice.hush(&["send", "bob", "plain text"]).ok();
    let line = hush_tests::cli::poll_until("a text-mode message", || {
        let run = bob.hush(&["read"]).ok();
        run.stdout
            .lines()
            .find(|l| l.contains("plain text"))
            .map(str::to_owned)
    });
    assert!(line.contains("alice: plain text"), "{line}");

    // History holds both directions; nothing new is fetched by it.
    let mut texts = history_texts(&bob, "alice");
    texts.sort();
    assert_eq!(texts, ["hello bob", "hi alice", "plain text"]);
    alice.hush(&["send", "bob", "not fetched yet"]).ok();
    assert!(!history_texts(&bob, "alice").contains(&"not fetched yet".to_owned()));

    let contacts = bob.hush(&["contacts", "--json"]).ok().json_lines();
    assert_eq!(contacts.len(), 1);
    assert_eq!(contacts[0]["type"], "contact");
    assert_eq!(contacts[0]["name"], "alice");
    assert_eq!(contacts[0]["status"], "active");
    assert_eq!(contacts[0]["verified"], false);
}

#[test]
fn safety_numbers_match_and_verification_is_recorded() {
    let relay = RelayProcess::start();
    let (alice, bob) = (HushHome::new(), HushHome::new());
    alice.init("alice", &relay.address);
    bob.init("bob", &relay.address);
    introduce(&alice, "bob", &bob, "alice");
    let a = alice.hush(&["verify", "bob", "--json"]).ok().json_lines();
    let b = bob.hush(&["verify", "alice", "--json"]).ok().json_lines();
    assert_eq!(a[0]["safety_number"], b[0]["safety_number"]);
    let digits: String = a[0]["safety_number"]
        .as_str()
        .unwrap()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    assert_eq!(digits.len(), 60);
    assert!(digits.chars().all(|c| c.is_ascii_digit()));
    assert_eq!(a[0]["verified"], false);
    let marked = alice.hush(&["verify", "bob", "--mark", "--json"]).ok();
    assert_eq!(marked.json_lines()[0]["verified"], true);
    let contacts = alice.hush(&["contacts", "--json"]).ok().json_lines();
    assert_eq!(contacts[0]["verified"], true);
}

#[test]
fn mistakes_fail_with_one_line_and_a_non_zero_status() {
    let relay = RelayProcess::start();
    let (alice, bob) = (HushHome::new(), HushHome::new());
    alice.init("alice", &relay.address);
    bob.init("bob", &relay.address);

    let unknown = alice.hush(&["send", "carol", "hi"]).fails();
    assert!(unknown.stderr.contains("carol"), "{}", unknown.stderr);
    alice.hush(&["history", "carol"]).fails();
    alice.hush(&["read", "carol"]).fails();

    let invalid = bob
        .hush(&["accept", "hush://invite/not-an-invitation", "--as", "alice"])
        .fails();
    assert!(invalid.stderr.contains("invitation"), "{}", invalid.stderr);

    // An invitation works once.
    let token = alice.hush(&["invite", "--as", "bob"]).ok().out().to_owned();
    bob.hush(&["accept", &token, "--as", "alice"]).ok();
    let carol = HushHome::new();
    carol.init("carol", &relay.address);
    let reused = carol.hush(&["accept", &token, "--as", "alice"]).fails();
    assert!(reused.stderr.contains("already used"), "{}", reused.stderr);

    let bad_relay = HushHome::new()
        .hush(&["init", "--name", "x", "--relay", "example.org:1"])
        .fails();
    assert!(bad_relay.stderr.contains("hush://"), "{}", bad_relay.stderr);

    let twice = alice
        .hush(&["init", "--name", "alice", "--relay", &relay.address])
        .fails();
    assert!(twice.stderr.contains("already"), "{}", twice.stderr);

    alice.hush(&["unsend", "bob", "xyz"]).fails();
    let empty = alice.hush_with_stdin(&["send", "bob"], Some("")).fails();
    assert!(empty.stderr.contains("empty"), "{}", empty.stderr);
}

#[test]
fn users_on_two_relays_talk_both_ways() {
    let (relay_a, relay_b) = (RelayProcess::start(), RelayProcess::start());
    let (alice, bob) = (HushHome::new(), HushHome::new());
    alice.init("alice", &relay_a.address);
    bob.init("bob", &relay_b.address);
    introduce(&alice, "bob", &bob, "alice");
    alice.hush(&["send", "bob", "from relay a"]).ok();
    read_until_text(&bob, "from relay a");
    bob.hush(&["send", "alice", "from relay b"]).ok();
    read_until_text(&alice, "from relay b");
}

#[test]
fn chat_needs_a_terminal_and_pending_invitations_are_listed() {
    let relay = RelayProcess::start();
    let (alice, bob) = (HushHome::new(), HushHome::new());
    alice.init("alice", &relay.address);
    bob.init("bob", &relay.address);
    alice.hush(&["invite", "--as", "bob"]).ok();
    let contacts = alice.hush(&["contacts", "--json"]).ok().json_lines();
    assert_eq!(contacts.len(), 1);
    assert_eq!(contacts[0]["name"], "bob");
    assert_eq!(contacts[0]["status"], "pending");
    let taken = alice.hush(&["invite", "--as", "bob"]).fails();
    assert!(taken.stderr.contains("taken"), "{}", taken.stderr);
    let chat = alice.hush(&["chat", "bob"]).fails();
    assert!(chat.stderr.contains("needs a terminal"), "{}", chat.stderr);
}

#[test]
fn hush_home_is_used_without_the_flag() {
    let relay = RelayProcess::start();
    let home = HushHome::new();
    home.init("alice", &relay.address);
    let mut cmd = std::process::Command::new(hush_tests::cli::built("hush"));
    cmd.arg("contacts")
        .arg("--json")
        .env("HUSH_HOME", home.path())
        .env_remove("HUSH_PASSPHRASE");
    hush_tests::cli::run_with_deadline(cmd, None).ok();
    let mut cmd = std::process::Command::new(hush_tests::cli::built("hush"));
    cmd.arg("contacts")
        .env("HUSH_HOME", home.path().join("elsewhere"));
    let run = hush_tests::cli::run_with_deadline(cmd, None).fails();
    assert!(run.stderr.contains("hush init"), "{}", run.stderr);
}

#[cfg(target_os = "linux")]
#[test]
fn read_wait_returns_when_a_message_arrives() {
    let relay = RelayProcess::start();
    let (alice, bob) = (HushHome::new(), HushHome::new());
    alice.init("alice", &relay.address);
    bob.init("bob", &relay.address);
    introduce(&alice, "bob", &bob, "alice");
    std::thread::scope(|scope| {
        let waiting = scope.spawn(|| bob.hush(&["read", "alice", "--wait", "15s", "--json"]));
        alice.hush(&["send", "bob", "worth the wait"]).ok();
        let run = waiting.join().unwrap().ok();
        let lines = run.json_lines();
        assert!(
            lines.iter().any(|l| l["text"] == "worth the wait"),
            "{lines:?}"
        );
    });
}
