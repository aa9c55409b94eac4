//! The `hush` binary's command-line contract that needs no conversation: help, version, flag
//! validation, and one-line errors with a non-zero status.

use hush_tests::cli::{HushHome, RelayProcess};

#[test]
fn help_and_version_succeed() {
    let home = HushHome::new();
    let help = home.hush(&["--help"]).ok();
    for command in [
        "init", "invite", "accept", "send", "read", "history", "contacts", "verify", "timer",
        "unsend", "burn", "block", "chat",
    ] {
        assert!(
            help.stdout.contains(command),
            "{command} in {}",
            help.stdout
        );
    }
    let version = home.hush(&["--version"]).ok();
    assert!(version.out().starts_with("hush "), "{}", version.stdout);
}

#[test]
fn bad_durations_are_rejected_with_a_hint() {
    let home = HushHome::new();
    let run = home.hush(&["timer", "bob", "soon"]);
    assert!(!run.status.success());
    assert!(run.stderr.contains("30s, 5m"), "{}", run.stderr);
}

#[test]
fn commands_before_init_say_to_run_init() {
    let home = HushHome::new();
    for args in [
        &["contacts"][..],
        &["send", "bob", "hi"],
        &["read"],
        &["invite", "--as", "bob"],
    ] {
        let run = home.hush(args).fails();
        assert!(run.stderr.contains("hush init"), "{args:?}: {}", run.stderr);
    }
}

#[test]
fn the_relay_fixture_prints_a_pinned_address() {
    let relay = RelayProcess::start();
    assert!(relay.address.contains('#'), "{}", relay.address);
}
