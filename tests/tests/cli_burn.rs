//! `hush burn` through the built binary with the relay stopped: it succeeds, says what the
//! relay is still owed, erases everything of the contact (the attacker holding the key file
//! finds neither its name nor the text), `hush contacts` no longer lists it, and the name is
//! free; once the relay is back, the contact learns of the burn.

use hush_tests::attacker::{Markers, Seizure};
use hush_tests::cli::{introduce, poll_until, read_until_text, HushHome, RelayProcess};

/// What Alice calls Bob, long enough to be searched for.
const BOB: &str = "cli-burn-bob-81d4e2";
/// What Bob calls Alice.
const ALICE: &str = "cli-burn-alice-5c0f93";

#[test]
fn burn_with_the_relay_stopped_erases_here_and_the_contact_is_not_listed() {
    let relay = RelayProcess::start();
    let (alice, bob) = (HushHome::new(), HushHome::new());
    alice.init("alice", &relay.address);
    bob.init("bob", &relay.address);
    introduce(&alice, BOB, &bob, ALICE);
    let text = "cli-burn-secret-text-4e7a";
    alice.hush(&["send", BOB, text]).ok();
    read_until_text(&bob, text);
    let seen = Markers::new()
        .contact(BOB)
        .text(text)
        .seen_in(&Seizure::home(alice.path()));

    let listen = relay.listen_addr();
    let data = relay.stop();
    let burned = alice.hush(&["burn", BOB, "--yes", "--json"]).ok();
    let line = &burned.json_lines()[0];
    assert_eq!(line["type"], "burned", "{line}");
    assert_eq!(line["contact_told"], "owed", "{line}");
    assert_eq!(line["queue_deleted"], "owed", "{line}");
    let text_out = alice.hush(&["contacts"]).ok();
    assert!(!text_out.stdout.contains(BOB), "{}", text_out.stdout);
    let contacts = alice.hush(&["contacts", "--json"]).ok().json_lines();
    assert!(contacts.iter().all(|c| c["name"] != BOB), "{contacts:?}");
    let send = alice.hush(&["send", BOB, "still there?"]).fails();
    assert!(send.stderr.contains("new invitation"), "{}", send.stderr);
    let seizure = Seizure::home(alice.path());
    seizure.assert_no_orphan_keys();
    seen.gone_from(&seizure);
    // Burning again: nothing left to burn, and it says so.
    let again = alice.hush(&["burn", BOB, "--yes"]).fails();
    assert!(
        again.stderr.contains("no contact named"),
        "{}",
        again.stderr
    );

    // The relay is back: the next command that ticks delivers the burn, and Bob learns of it.
    let _relay = RelayProcess::start_at(data, &listen, &[]);
    poll_until("the owed burn to reach bob", || {
        alice.hush(&["read"]).ok();
        let run = bob.hush(&["read", "--json"]).ok();
        run.stdout.contains("burned").then_some(())
    });
    let contacts = bob.hush(&["contacts", "--json"]).ok().json_lines();
    assert!(contacts.iter().all(|c| c["name"] != ALICE), "{contacts:?}");
    // The name is free at once on both sides.
    introduce(&alice, BOB, &bob, ALICE);
}
