//! The `hush` binary on a damaged home: a one-line error that says what happened and what to
//! do, a failure exit status, no panic, and the files left as they were.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use hush_tests::cli::{files_under, introduce, read_until_text, HushHome, RelayProcess};

/// A damage: its name, what the error must say, and how to do it.
type Case = (&'static str, &'static str, fn(&HushHome));

fn snapshot(home: &HushHome) -> BTreeMap<PathBuf, Vec<u8>> {
    files_under(home.path())
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect()
}

#[test]
fn a_damaged_home_is_a_one_line_error_and_is_left_as_it_was() {
    let relay = RelayProcess::start();
    let (alice, bob) = (HushHome::new(), HushHome::new());
    alice.init("alice", &relay.address);
    bob.init("bob", &relay.address);
    introduce(&alice, "bob", &bob, "alice");
    alice.hush(&["send", "bob", "kept"]).ok();
    read_until_text(&bob, "kept");
    let pristine = snapshot(&bob);

    let cases: [Case; 3] = [
        ("key vault cut short", "damaged", |h| {
            // The 128-byte header and a bit of the first slot are left.
            std::fs::File::options()
                .write(true)
                .open(h.path().join("keys.vault"))
                .unwrap()
                .set_len(150)
                .unwrap();
        }),
        ("database log damaged", "damaged", |h| {
            let log = h.path().join("db/db");
            let mut bytes = std::fs::read(&log).unwrap();
            // Within what sled wrote, not the zeros it reserves after.
            let used = bytes.iter().rposition(|&b| b != 0).unwrap();
            let at = used / 4;
            bytes[at] ^= 0x01;
            std::fs::write(&log, bytes).unwrap();
        }),
        ("key file removed", "key file", |h| {
            std::fs::remove_file(h.path().join("device.key")).unwrap();
        }),
    ];
    for (case, says, damage) in cases {
        damage(&bob);
        let damaged = snapshot(&bob);
        for args in [&["contacts"][..], &["read"], &["history", "alice"]] {
            let run = bob.hush(args);
            assert!(
                !run.status.success(),
                "{case}: {args:?} succeeded: {}",
                run.stdout
            );
            let run = run.fails();
            assert!(!run.stderr.contains("panicked"), "{case}: {}", run.stderr);
            assert!(run.stderr.contains(says), "{case}: {}", run.stderr);
            assert!(
                run.stderr.contains("backup") || run.stderr.contains("restore"),
                "{case}: the error says what to do: {}",
                run.stderr
            );
        }
        assert!(snapshot(&bob) == damaged, "{case}: the files changed");
        // Put back as it was: everything is there again.
        for (path, bytes) in &pristine {
            std::fs::write(path, bytes).unwrap();
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let history = bob.hush(&["history", "alice", "--json"]).ok().json_lines();
        assert_eq!(history.len(), 1, "{case}");
        assert_eq!(history[0]["text"], "kept", "{case}");
    }
}
