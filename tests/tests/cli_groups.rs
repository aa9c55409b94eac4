//! Groups through the built `hush` binary: four homes on two relays. Create, add, messages with
//! `"group"` and `"from"` in JSON, a file that two members save in turn, members and contacts
//! listings, the clear errors (not an admin, unknown group, a removed member writing), removal
//! (the removed member gets nothing new), and the owner's burn, after which an attacker holding
//! every home's key file finds neither the group's name nor its messages (the search first
//! proves it finds them).

use hush_tests::attacker::{Markers, Seizure};
use hush_tests::cli::{
    group_notice, group_send, introduce, poll_until, read_until_text, HushHome, RelayProcess,
};

/// The group's name, long enough to be searched for.
const GROUP: &str = "cli-group-deal-3f9a21";

/// Runs `read --json` on `home` until a notice about `GROUP` contains `words`.
#[track_caller]
fn notice(home: &HushHome, words: &str) {
    group_notice(home, GROUP, words);
}

/// Sends `text` to the group from `home`; returns the message id.
#[track_caller]
fn send(home: &HushHome, text: &str) -> String {
    group_send(home, GROUP, text, &[])
}

#[test]
fn a_group_from_creation_to_the_owners_burn() {
    let (r1, r2) = (RelayProcess::start(), RelayProcess::start());
    let names = ["alice", "bob", "carol", "dave"];
    let homes: Vec<HushHome> = names.iter().map(|_| HushHome::new()).collect();
    for (i, home) in homes.iter().enumerate() {
        let relay = if i < 2 { &r1 } else { &r2 };
        home.init(names[i], &relay.address);
    }
    for i in 0..4 {
        for j in i + 1..4 {
            introduce(&homes[i], names[j], &homes[j], names[i]);
        }
    }
    let [alice, bob, carol, dave] = &homes[..] else {
        unreachable!()
    };

    alice.hush(&["group", "create", GROUP]).ok();
    let added = alice
        .hush(&["group", "add", GROUP, "bob", "carol", "dave", "--json"])
        .ok();
    let line = &added.json_lines()[0];
    assert_eq!(line["reached"].as_array().unwrap().len(), 3, "{line}");
    for member in [bob, carol, dave] {
        notice(member, "added you");
    }

    // A message to the group: JSON names the group and who wrote it.
    let text = "cli-group-terms-5d2c";
    let id = send(bob, text);
    for member in [alice, carol, dave] {
        let got = read_until_text(member, text);
        assert_eq!(got["group"], GROUP, "{got}");
        assert_eq!(got["from"], "bob", "{got}");
        assert_eq!(got["id"], id.as_str(), "{got}");
    }

    // A file: one upload; two members save it in turn.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("terms.pdf");
    std::fs::write(&path, b"cli-group-file-contents-77aa").unwrap();
    let run = bob
        .hush(&["send", GROUP, "--file", path.to_str().unwrap(), "--json"])
        .ok();
    let file_id = run.json_lines()[0]["id"].as_str().unwrap().to_owned();
    for (i, member) in [carol, dave].into_iter().enumerate() {
        poll_until("the file message", || {
            let lines = member.hush(&["read", "--json"]).ok().json_lines();
            lines
                .iter()
                .any(|l| l["id"] == file_id.as_str() && l["group"] == GROUP)
                .then_some(())
        });
        let to = dir.path().join(format!("saved-{i}"));
        member
            .hush(&["save", &file_id, "--to", to.to_str().unwrap()])
            .ok();
        assert_eq!(std::fs::read(&to).unwrap(), b"cli-group-file-contents-77aa");
    }
    bob.hush(&["unsend", GROUP, &file_id]).ok();

    // Listings.
    let contacts = alice.hush(&["contacts", "--json"]).ok().json_lines();
    assert!(
        contacts
            .iter()
            .any(|c| c["kind"] == "group" && c["name"] == GROUP && c["members"] == 4),
        "{contacts:?}"
    );
    assert!(contacts.iter().any(|c| c["kind"] == "contact"));
    let members = carol
        .hush(&["group", "members", GROUP, "--json"])
        .ok()
        .json_lines();
    assert_eq!(members.len(), 4);
    assert!(members
        .iter()
        .any(|m| m["name"] == "alice" && m["role"] == "owner"));

    // Clear errors: not an admin, an unknown group.
    let refused = carol.hush(&["group", "remove", GROUP, "bob"]).fails();
    assert!(
        refused.stderr.contains(GROUP) && refused.stderr.contains("admin"),
        "{}",
        refused.stderr
    );
    let unknown = carol.hush(&["group", "members", "no-such-group"]).fails();
    assert!(
        unknown.stderr.contains("no group named"),
        "{}",
        unknown.stderr
    );

    // Alice removes Dave; Bob applies it, and his next message does not reach Dave.
    alice.hush(&["group", "remove", GROUP, "dave"]).ok();
    notice(dave, "you were removed");
    notice(bob, "removed dave");
    let later = "cli-group-after-removal-91be";
    send(bob, later);
    read_until_text(carol, later);
    read_until_text(alice, later);
    let dave_read = dave.hush(&["read", "--json"]).ok();
    assert!(!dave_read.stdout.contains(later), "{}", dave_read.stdout);
    let writing = dave.hush(&["send", GROUP, "still here?"]).fails();
    assert!(
        writing.stderr.contains("no longer a member"),
        "{}",
        writing.stderr
    );

    // The owner burns it: every member's copy goes. Dave, removed before, erases his by leaving.
    let homes_of = |hs: &[&HushHome]| {
        hs.iter()
            .map(|h| Seizure::home(h.path()))
            .reduce(Seizure::and)
            .unwrap()
    };
    let all = [alice, bob, carol, dave];
    let seen = Markers::new()
        .contact(GROUP)
        .text(text)
        .text(later)
        .seen_in(&homes_of(&all));
    alice.hush(&["group", "burn", GROUP, "--yes"]).ok();
    for member in [bob, carol] {
        notice(member, "burned");
    }
    dave.hush(&["group", "leave", GROUP]).ok();
    for home in all {
        let contacts = home.hush(&["contacts", "--json"]).ok();
        assert!(!contacts.stdout.contains(GROUP), "{}", contacts.stdout);
    }
    let after = homes_of(&all);
    after.assert_no_orphan_keys();
    seen.gone_from(&after);
}
