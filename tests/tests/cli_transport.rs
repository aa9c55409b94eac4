//! The `hush` binary's transport setting: `--transport` and `HUSH_TRANSPORT` choose how relay
//! connections are shared, a bad value is a one-line error naming the choices, and a
//! conversation works in either mode.

use hush_tests::cli::{introduce, read_until_text, HushHome, RelayProcess};

#[test]
fn a_bad_transport_mode_is_named_whether_given_as_a_flag_or_in_the_environment() {
    let mut home = HushHome::new();
    let run = home.hush(&["--transport", "per-host", "contacts"]);
    assert!(!run.status.success());
    assert!(
        run.stderr
            .contains("unknown transport mode `per-host`: use per-contact or per-relay"),
        "{}",
        run.stderr
    );
    home.set_env("HUSH_TRANSPORT", "sometimes");
    let run = home.hush(&["contacts"]);
    assert!(!run.status.success());
    assert!(
        run.stderr.contains("unknown transport mode `sometimes`"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_conversation_works_per_relay_and_per_contact() {
    let relay = RelayProcess::start();
    let mut alice = HushHome::new();
    let bob = HushHome::new();
    alice.init("alice", &relay.address);
    bob.init("bob", &relay.address);
    alice.set_env("HUSH_TRANSPORT", "per-relay");
    introduce(&alice, "bob", &bob, "alice");
    alice.hush(&["send", "bob", "over one connection"]).ok();
    read_until_text(&bob, "over one connection");
    bob.hush(&["--transport", "per-contact", "send", "alice", "over two"])
        .ok();
    read_until_text(&alice, "over two");
}
