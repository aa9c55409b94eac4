//! What survives and what does not, through the built binaries: restarts, passphrases, an
//! unreachable relay, and a byte search of both homes and the relay's data directory after
//! expiry, unsend and burn.

use hush_tests::cli::{
    files_containing, history_texts, introduce, poll_until, read_until_text, HushHome, RelayProcess,
};
use hush_tests::forensic;

#[test]
fn queued_messages_and_homes_survive_a_relay_restart() {
    let relay = RelayProcess::start();
    let (alice, bob) = (HushHome::new(), HushHome::new());
    alice.init("alice", &relay.address);
    bob.init("bob", &relay.address);
    introduce(&alice, "bob", &bob, "alice");
    alice.hush(&["send", "bob", "before the restart"]).ok();
    bob.hush(&["send", "alice", "stored locally"]).ok();

    let relay = relay.restart();
    read_until_text(&bob, "before the restart");
    // Every command is a new process: the homes kept contacts, sessions and history.
    assert_eq!(history_texts(&bob, "alice").len(), 2);
    alice.hush(&["send", "bob", "after the restart"]).ok();
    read_until_text(&bob, "after the restart");
    drop(relay);
}

#[test]
fn a_passphrase_store_needs_the_right_passphrase() {
    let relay = RelayProcess::start();
    let mut home = HushHome::new();
    home.set_env("HUSH_PASSPHRASE", "correct horse battery staple");
    home.hush(&[
        "init",
        "--name",
        "alice",
        "--relay",
        &relay.address,
        "--passphrase",
    ])
    .ok();
    assert!(!home.path().join("device.key").exists());
    home.hush(&["contacts"]).ok();

    home.set_env("HUSH_PASSPHRASE", "wrong horse");
    let wrong = home.hush(&["contacts"]).fails();
    assert!(
        wrong.stderr.contains("wrong passphrase"),
        "{}",
        wrong.stderr
    );

    home.unset_env("HUSH_PASSPHRASE");
    let missing = home.hush(&["contacts"]).fails();
    assert!(
        missing.stderr.contains("HUSH_PASSPHRASE"),
        "{}",
        missing.stderr
    );

    home.set_env("HUSH_PASSPHRASE", "correct horse battery staple");
    home.hush(&["contacts"]).ok();
}

#[test]
fn an_unreachable_relay_is_named_and_nothing_is_lost() {
    let relay = RelayProcess::start();
    let (alice, bob) = (HushHome::new(), HushHome::new());
    alice.init("alice", &relay.address);
    bob.init("bob", &relay.address);
    introduce(&alice, "bob", &bob, "alice");
    alice.hush(&["send", "bob", "sent while up"]).ok();

    let listen = relay.listen_addr();
    let address = relay.address.clone();
    let data = relay.stop();
    let send = alice.hush(&["send", "bob", "sent while down"]).fails();
    assert!(send.stderr.contains(&address), "{}", send.stderr);
    assert!(send.stderr.contains("nothing was lost"), "{}", send.stderr);
    let read = bob.hush(&["read"]).fails();
    assert!(read.stderr.contains("nothing was lost"), "{}", read.stderr);
    assert!(!history_texts(&alice, "bob").contains(&"sent while down".to_owned()));

    let _relay = RelayProcess::start_at(data, &listen, &[]);
    read_until_text(&bob, "sent while up");
    alice.hush(&["send", "bob", "sent when back"]).ok();
    read_until_text(&bob, "sent when back");
}

#[test]
fn no_plaintext_on_disk_after_expiry_unsend_and_burn() {
    let relay = RelayProcess::start();
    let (alice, bob) = (HushHome::new(), HushHome::new());
    alice.init("alice", &relay.address);
    bob.init("bob", &relay.address);
    introduce(&alice, "bob", &bob, "alice");
    let expiring = "forensic-expiring-5f2c8a";
    let unsent = "forensic-unsent-91be47";
    let burned = "forensic-burned-c03d19";

    alice.hush(&["send", "bob", expiring, "--timer", "2s"]).ok();
    read_until_text(&bob, expiring);
    let id = alice.hush(&["send", "bob", unsent]).ok().out().to_owned();
    read_until_text(&bob, unsent);
    alice.hush(&["unsend", "bob", &id]).ok();
    bob.hush(&["send", "alice", burned]).ok();
    read_until_text(&alice, burned);

    for (home, contact) in [(&alice, "bob"), (&bob, "alice")] {
        poll_until("the timed message to expire", || {
            (!history_texts(home, contact).contains(&expiring.to_owned())).then_some(())
        });
    }
    poll_until("the unsend to arrive", || {
        bob.hush(&["read"]).ok();
        (!history_texts(&bob, "alice").contains(&unsent.to_owned())).then_some(())
    });
    alice.hush(&["burn", "bob", "--yes"]).ok();
    poll_until("the burn to arrive", || {
        bob.hush(&["read"]).ok();
        bob.hush(&["history", "alice"])
            .status
            .code()
            .filter(|c| *c != 0)
    });

    for secret in [expiring, unsent, burned] {
        for dir in [alice.path(), bob.path(), relay.data.path()] {
            // The search sees the secret under `dir` when it is there.
            forensic::assert_can_see(dir, &forensic::Pattern::bytes(secret.as_bytes()));
            let found = files_containing(dir, secret.as_bytes());
            assert!(found.is_empty(), "{secret:?} readable in {found:?}");
        }
    }
    // The names are not stored in the clear either.
    for dir in [alice.path(), bob.path()] {
        forensic::assert_can_see(dir, &forensic::Pattern::bytes(b"forensic-"));
        assert!(files_containing(dir, b"forensic-").is_empty());
    }
}
