//! Groups through the built `hush` binary, beyond `cli_groups`: four homes on two relays,
//! where Dave knows only Alice. Adding him introduces him to the others (shown as introduced
//! until verified); the group timer, a per-message timer, view-once and unsend work on a group;
//! and after the owner's burn an attacker holding every home's key file and both relays' data
//! directories finds neither the group's name, its texts, nor the envelopes that were pending
//! at the relays (every search first proves it finds them).

use hush_tests::attacker::{Markers, Seizure};
use hush_tests::cli::{
    group_notice, group_send, history, history_texts, introduce, poll_until, read_until_text,
    HushHome,
};
use hush_tests::recording::RecordingRelay;

/// The group's name, long enough to be searched for.
const GROUP: &str = "cli-group-ephemeral-5c2e81";

fn secret(tag: &str) -> String {
    hush_tests::attacker::unique_text("cli-group", tag)
}

/// The contact names `home` lists (groups left out).
fn contacts(home: &HushHome) -> Vec<serde_json::Value> {
    home.hush(&["contacts", "--json"])
        .ok()
        .json_lines()
        .into_iter()
        .filter(|c| c["kind"] == "contact")
        .collect()
}

fn has_contact(home: &HushHome, name: &str) -> bool {
    contacts(home).iter().any(|c| c["name"] == name)
}

#[test]
fn introductions_timers_view_once_unsend_and_a_burn_that_leaves_nothing_on_homes_or_relays() {
    let (r1, r2) = (RecordingRelay::start(), RecordingRelay::start());
    let names = ["alice", "bob", "carol", "dave"];
    let homes: Vec<HushHome> = names.iter().map(|_| HushHome::new()).collect();
    for (i, home) in homes.iter().enumerate() {
        let relay = if i < 2 { &r1 } else { &r2 };
        home.init(names[i], &relay.address);
    }
    let [alice, bob, carol, dave] = &homes[..] else {
        unreachable!()
    };
    introduce(alice, "bob", bob, "alice");
    introduce(alice, "carol", carol, "alice");
    introduce(bob, "carol", carol, "bob");
    introduce(alice, "dave", dave, "alice");

    alice.hush(&["group", "create", GROUP]).ok();
    alice.hush(&["group", "add", GROUP, "bob", "carol"]).ok();
    group_notice(bob, GROUP, "added you");
    group_notice(carol, GROUP, "added you");
    alice.hush(&["group", "add", GROUP, "dave"]).ok();
    group_notice(dave, GROUP, "added you");

    // Dave is introduced to Bob and Carol through the group.
    poll_until("Dave, Bob and Carol to become contacts", || {
        for home in &homes {
            home.hush(&["read"]).ok();
        }
        (has_contact(dave, "bob")
            && has_contact(dave, "carol")
            && has_contact(bob, "dave")
            && has_contact(carol, "dave"))
        .then_some(())
    });
    let at_dave = contacts(dave);
    let introduced =
        |name: &str| at_dave.iter().find(|c| c["name"] == name).unwrap()["introduced"].clone();
    assert_eq!(introduced("bob"), true);
    assert_eq!(introduced("alice"), false);
    let members = dave.hush(&["group", "members", GROUP]).ok();
    assert!(
        members
            .stdout
            .contains("introduced by a group, not verified"),
        "{}",
        members.stdout
    );
    let hello = secret("hello-from-dave");
    group_send(dave, GROUP, &hello, &[]);
    for member in [alice, bob, carol] {
        read_until_text(member, &hello);
    }

    // The group timer: a message read starts its clock from the group's timer.
    alice.hush(&["timer", GROUP, "1h"]).ok();
    group_notice(carol, GROUP, "set the group timer to 3600 s");
    let timed = secret("timed");
    group_send(carol, GROUP, &timed, &[]);
    let got = read_until_text(bob, &timed);
    let (sent_at, expires_at) = (got["sent_at"].as_u64().unwrap(), got["expires_at"].as_u64());
    let expires_at = expires_at.expect("the group timer applies");
    assert!(
        expires_at > sent_at && expires_at <= sent_at + 3600 + 60,
        "{got}"
    );

    // A per-message timer of one second: the message goes from the reader's history.
    let brief = secret("brief");
    group_send(bob, GROUP, &brief, &["--timer", "1s"]);
    read_until_text(dave, &brief);
    poll_until("the one-second message to expire", || {
        (!history_texts(dave, GROUP).contains(&brief)).then_some(())
    });

    // View-once: shown once, then gone.
    let once = secret("once");
    group_send(bob, GROUP, &once, &["--view-once"]);
    let got = read_until_text(dave, &once);
    assert_eq!(got["view_once"], true, "{got}");
    assert!(!history_texts(dave, GROUP).contains(&once));
    let again = dave.hush(&["read", "--json"]).ok();
    assert!(!again.stdout.contains(&once), "{}", again.stdout);

    // Unsend by the author, after it was read: gone from the reader's copy.
    let regret = secret("regret");
    let id = group_send(carol, GROUP, &regret, &[]);
    read_until_text(alice, &regret);
    carol.hush(&["unsend", GROUP, &id]).ok();
    poll_until("the unsend to arrive", || {
        alice.hush(&["read"]).ok();
        history(alice, GROUP)
            .iter()
            .all(|m| m["id"] != id.as_str())
            .then_some(())
    });

    // Dave writes once more; nobody reads it before the burn, so it waits at both relays.
    let (sent1, sent2) = (r1.sent(), r2.sent());
    let last = secret("pending");
    group_send(dave, GROUP, &last, &[]);
    let at_relays = r2
        .bodies_since(sent2, r1.bodies_since(sent1, Markers::new()))
        .seen_in(&Seizure::relay(r1.dir()).and(Seizure::relay(r2.dir())));
    let all = [alice, bob, carol, dave];
    let seize_homes = || {
        all.iter()
            .map(|h| Seizure::home(h.path()))
            .reduce(Seizure::and)
            .unwrap()
    };
    let at_homes = Markers::new()
        .contact(GROUP)
        .text(&hello)
        .text(&timed)
        .text(&last)
        .seen_in(&seize_homes());

    alice.hush(&["group", "burn", GROUP, "--yes"]).ok();
    for member in [bob, carol, dave] {
        group_notice(member, GROUP, "burned");
    }
    // Dave's last message also waits for Alice, who burned the group before reading it: her
    // next read drops it unshown (the group is gone) and acks it.
    let read = alice.hush(&["read", "--json"]).ok();
    assert!(!read.stdout.contains(&last), "{}", read.stdout);
    for home in all {
        let listed = home.hush(&["contacts", "--json"]).ok();
        assert!(!listed.stdout.contains(GROUP), "{}", listed.stdout);
    }
    let homes_after = seize_homes();
    homes_after.assert_no_orphan_keys();
    at_homes.gone_from(&homes_after);
    at_relays.gone_from(&Seizure::relay(r1.dir()).and(Seizure::relay(r2.dir())));
}
