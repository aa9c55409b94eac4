//! Deletion through the built `hush` binary, checked by an attacker who later copies the homes
//! with their key files and the relay's data directory with its `device.key`
//! (`hush_tests::attacker`): expiry (`hush expire`, also with the relay down), unsend before
//! and after delivery, view-once, burn, block, and a file transfer. Every search first proves
//! it finds its markers before the deletion.
//!
//! Most tests run the relay in this process, on a sled store in its own data directory, behind
//! a store wrapper that records each envelope body the relay queues: the bodies are the markers
//! the relay's seizure must see while they are pending and not after. The tests that stop and
//! restart the relay run the `hush-server` binary.

use std::path::Path;

use hush_client::store::KeySource;
use hush_client::Client;
use hush_tests::attacker::{Markers, Seizure};
use hush_tests::blobs::blob_files;
use hush_tests::cli::{history, introduce, poll_until, read_until_text, HushHome, RelayProcess};
use hush_tests::clients::message_from;
use hush_tests::recording::RecordingRelay as Relay;

/// What Alice calls Bob.
const BOB: &str = "contact-bob-7c41e9d2";
/// What Bob calls Alice.
const ALICE: &str = "contact-alice-0b86f3a5";

/// A distinctive message text.
fn secret(tag: &str) -> String {
    hush_tests::attacker::unique_text("cli", tag)
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Alice and Bob, contacts on `relay`.
fn pair(relay: &str) -> (HushHome, HushHome) {
    let (alice, bob) = (HushHome::new(), HushHome::new());
    alice.init("alice", relay);
    bob.init("bob", relay);
    introduce(&alice, BOB, &bob, ALICE);
    (alice, bob)
}

/// Sends `text` (on stdin) from `home` to `to` with `extra` flags; returns the message id.
fn send(home: &HushHome, to: &str, text: &str, extra: &[&str]) -> String {
    let mut args = vec!["send", to, "--json"];
    args.extend_from_slice(extra);
    let run = home.hush_with_stdin(&args, Some(text)).ok();
    run.json_lines()[0]["id"].as_str().unwrap().to_owned()
}

/// A seizure of `home`, checked for keys that outlived their records.
fn home(home: &HushHome) -> Seizure {
    let s = Seizure::home(home.path());
    s.assert_no_orphan_keys();
    s
}

/// Both homes and the relay's data directory.
fn everything(alice: &HushHome, bob: &HushHome, relay_dir: &Path) -> Seizure {
    let r = Seizure::relay(relay_dir);
    r.assert_no_orphan_keys();
    home(alice).and(home(bob)).and(r)
}

/// Reads on `home` until message `id` of `contact` is gone from its history.
fn unsent_at(home: &HushHome, contact: &str, id: &str) {
    poll_until("the unsend to arrive", || {
        home.hush(&["read"]).ok();
        (!history(home, contact).iter().any(|m| m["id"] == id)).then_some(())
    });
}

/// Runs `hush expire --json` on `home` until it has expired `n` messages in all.
fn expire_until(home: &HushHome, n: u64) {
    let mut total = 0;
    poll_until(&format!("{n} message(s) to expire"), || {
        let run = home.hush(&["expire", "--json"]).ok();
        let line = &run.json_lines()[0];
        assert_eq!(line["type"], "expired", "{line}");
        total += line["messages"].as_u64().unwrap();
        (total >= n).then_some(())
    });
}

#[test]
fn hush_expire_deletes_what_expired_while_hush_was_closed() {
    let relay = Relay::start();
    let (alice, bob) = pair(&relay.address);
    // A backup-exclusion marker the user put in the home (docs/deletion.md) is left alone.
    std::fs::write(alice.path().join(".nobackup"), b"").unwrap();
    let text = secret("expiring");
    let before = relay.sent();
    send(&alice, BOB, &text, &["--timer", "1s"]);
    // Pending at the relay: its body is there; the sender's copy is in Alice's home.
    let pending = relay
        .bodies_since(before, Markers::new())
        .seen_in(&Seizure::relay(relay.dir()));
    let at_alice = Markers::new().text(&text).seen_in(&home(&alice));

    read_until_text(&bob, &text);
    pending.gone_from(&Seizure::relay(relay.dir()));
    let at_bob = Markers::new().text(&text).seen_in(&home(&bob));

    // Nothing runs; `hush expire` (as the timer unit runs it) deletes both copies.
    expire_until(&alice, 1);
    expire_until(&bob, 1);
    let after = everything(&alice, &bob, relay.dir());
    at_alice.gone_from(&after);
    at_bob.gone_from(&after);
}

#[test]
fn hush_expire_with_the_relay_down_deletes_locally_and_names_what_stays_owed() {
    let relay = RelayProcess::start();
    let (alice, _bob) = pair(&relay.address);
    let work = tempfile::tempdir().unwrap();
    let name = format!("{}.pdf", secret("owed"));
    std::fs::write(work.path().join(&name), secret("owed-content")).unwrap();
    let path = work.path().join(&name);
    alice
        .hush(&[
            "send",
            BOB,
            "--file",
            path.to_str().unwrap(),
            "--timer",
            "1s",
        ])
        .ok();
    let blobs = blob_files(relay.data.path());
    assert_eq!(blobs.len(), 1, "the blob is uploaded");
    let blob_name = blobs[0].file_name().unwrap().to_str().unwrap().to_owned();
    let at_alice = Markers::new().file_name(&name).seen_in(&home(&alice));
    let at_relay = Markers::new()
        .bytes("the blob's file name", blob_name.as_bytes())
        .seen_in(&Seizure::relay(relay.data.path()));

    let (listen, address) = (relay.listen_addr(), relay.address.clone());
    let data = relay.stop();
    let mut expired = 0;
    let run = poll_until("the file message to expire", || {
        let run = alice.hush(&["expire", "--json"]).ok();
        expired += run.json_lines()[0]["messages"].as_u64().unwrap();
        (expired >= 1).then_some(run)
    });
    let line = &run.json_lines()[0];
    assert_eq!(line["relay_deletions_owed"], 1, "{line}");
    assert_eq!(line["relay_deletions_done"], 0, "{line}");
    assert!(
        run.stderr.contains("warning") && run.stderr.contains("stay owed"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(address.split('#').next().unwrap()),
        "the warning names the relay: {}",
        run.stderr
    );
    // The local part is done.
    at_alice.gone_from(&home(&alice));

    let relay = RelayProcess::start_at(data, &listen, &[]);
    let run = alice.hush(&["expire", "--json"]).ok();
    let line = &run.json_lines()[0];
    assert_eq!(line["relay_deletions_done"], 1, "{line}");
    assert_eq!(line["relay_deletions_owed"], 0, "{line}");
    assert!(!run.stderr.contains("warning"), "{}", run.stderr);
    assert!(blob_files(relay.data.path()).is_empty());
    at_relay.gone_from(&Seizure::relay(relay.data.path()));
}

#[test]
fn hush_expire_needs_the_passphrase_of_a_passphrase_home() {
    let relay = RelayProcess::start();
    let mut home = HushHome::new();
    home.set_env("HUSH_PASSPHRASE", "a long passphrase for unattended expiry");
    home.hush(&[
        "init",
        "--name",
        "alice",
        "--relay",
        &relay.address,
        "--passphrase",
    ])
    .ok();
    let run = home.hush(&["expire", "--json"]).ok();
    assert_eq!(run.json_lines()[0]["messages"], 0);
    home.unset_env("HUSH_PASSPHRASE");
    let refused = home.hush(&["expire"]).fails();
    assert!(refused.stderr.contains("passphrase"), "{}", refused.stderr);
}

#[test]
fn unsend_before_delivery_leaves_nothing_at_the_relay_or_in_the_senders_home() {
    let relay = Relay::start();
    let (alice, bob) = pair(&relay.address);
    let text = secret("retracted");
    let before = relay.sent();
    let id = send(&alice, BOB, &text, &[]);
    let seen = relay
        .bodies_since(before, Markers::new().text(&text))
        .seen_in(&everything(&alice, &bob, relay.dir()));

    alice.hush(&["unsend", BOB, &id]).ok();
    seen.gone_from(&everything(&alice, &bob, relay.dir()));
}

#[test]
fn unsend_after_delivery_leaves_nothing_in_either_home() {
    let relay = Relay::start();
    let (alice, bob) = pair(&relay.address);
    let text = secret("unsent");
    let id = send(&alice, BOB, &text, &[]);
    read_until_text(&bob, &text);
    let seen = Markers::new()
        .text(&text)
        .seen_in(&home(&alice).and(home(&bob)));

    alice.hush(&["unsend", BOB, &id]).ok();
    unsent_at(&bob, ALICE, &id);
    seen.gone_from(&everything(&alice, &bob, relay.dir()));
}

#[test]
fn a_view_once_message_is_gone_from_the_recipients_home_once_read() {
    let relay = Relay::start();
    let (alice, bob) = pair(&relay.address);
    let text = secret("view-once");
    send(&alice, BOB, &text, &["--view-once"]);
    // Bob's client receives it without showing it (as a chat open on another contact does).
    relay.rt.block_on(async {
        let client = Client::open(bob.path(), KeySource::KeyFile).await.unwrap();
        message_from(&client, ALICE).await;
        client.close().await;
    });
    let seen = Markers::new().text(&text).seen_in(&home(&bob));

    let shown = bob.hush(&["read", "--json"]).ok();
    assert!(shown.stdout.contains(&text), "{}", shown.stdout);
    seen.gone_from(&everything(&alice, &bob, relay.dir()));
}

/// Alice and Bob each say something; Bob says one more thing Alice has not received.
fn conversation(relay: &Relay, alice: &HushHome, bob: &HushHome) -> Markers {
    let (a, b, pending) = (secret("burn-a"), secret("burn-b"), secret("burn-pending"));
    let a_id = send(alice, BOB, &a, &[]);
    read_until_text(bob, &a);
    let b_id = send(bob, ALICE, &b, &[]);
    read_until_text(alice, &b);
    let before = relay.sent();
    let p_id = send(bob, ALICE, &pending, &[]);
    let markers = Markers::new()
        .text(&a)
        .message_id(&unhex(&a_id))
        .text(&b)
        .message_id(&unhex(&b_id))
        .text(&pending)
        .message_id(&unhex(&p_id));
    relay.bodies_since(before, markers)
}

#[test]
fn a_burn_leaves_nothing_of_the_conversation_in_either_home_or_at_the_relay() {
    let relay = Relay::start();
    let (alice, bob) = pair(&relay.address);
    let seen = conversation(&relay, &alice, &bob).seen_in(&everything(&alice, &bob, relay.dir()));

    alice.hush(&["burn", BOB, "--yes"]).ok();
    poll_until("the burn to reach Bob", || {
        let run = bob.hush(&["read", "--json"]).ok();
        run.stdout.contains("burned").then_some(())
    });
    seen.gone_from(&everything(&alice, &bob, relay.dir()));
}

#[test]
fn a_burn_leaves_no_contact_name_in_either_home() {
    let relay = Relay::start();
    let (alice, bob) = pair(&relay.address);
    let _ = conversation(&relay, &alice, &bob);
    let seen = Markers::new()
        .contact(BOB)
        .contact(ALICE)
        .seen_in(&home(&alice).and(home(&bob)));

    alice.hush(&["burn", BOB, "--yes"]).ok();
    poll_until("the burn to reach Bob", || {
        let run = bob.hush(&["read", "--json"]).ok();
        run.stdout.contains("burned").then_some(())
    });
    seen.gone_from(&everything(&alice, &bob, relay.dir()));
}

#[test]
fn a_block_deletes_the_blocked_contacts_pending_envelopes_at_the_relay() {
    let relay = Relay::start();
    let (alice, bob) = pair(&relay.address);
    let before = relay.sent();
    send(&alice, BOB, &secret("unread-1"), &[]);
    send(&alice, BOB, &secret("unread-2"), &[]);
    let pending = relay
        .bodies_since(before, Markers::new())
        .seen_in(&Seizure::relay(relay.dir()));

    bob.hush(&["block", ALICE]).ok();
    let after = Seizure::relay(relay.dir());
    after.assert_no_orphan_keys();
    pending.gone_from(&after);
}

#[test]
fn an_unsent_file_leaves_nothing_in_either_home_or_at_the_relay() {
    let relay = Relay::start();
    let (alice, bob) = pair(&relay.address);
    let (src, out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let name = format!("{}.txt", secret("file-name"));
    let content = secret("file-content").repeat(50);
    std::fs::write(src.path().join(&name), &content).unwrap();
    let sent = alice
        .hush(&[
            "send",
            BOB,
            "--file",
            src.path().join(&name).to_str().unwrap(),
            "--json",
        ])
        .ok();
    let id = sent.json_lines()[0]["id"].as_str().unwrap().to_owned();
    let blobs = blob_files(relay.dir());
    assert_eq!(blobs.len(), 1, "the blob is uploaded");
    let blob_name = blobs[0].file_name().unwrap().to_str().unwrap().to_owned();
    let at_relay = Markers::new()
        .bytes("the blob's file name", blob_name.as_bytes())
        .seen_in(&Seizure::relay(relay.dir()));
    poll_until("the file message", || {
        let run = bob.hush(&["read", "--json"]).ok();
        run.stdout.contains(&name).then_some(())
    });
    bob.hush(&["save", &id, "--to", out.path().to_str().unwrap()])
        .ok();

    // The plaintext is where the user put it: the sender's source and the recipient's saved
    // copy. The search sees it there, and never in a home or at the relay.
    let plaintext = Markers::new()
        .file_content("the file", content.as_bytes())
        .file_name(&name);
    let _ = plaintext
        .clone()
        .seen_in(&Seizure::files(src.path()).and(Seizure::files(out.path())));
    let content_only = Markers::new().file_content("the file", content.as_bytes());
    let inside = content_only.search(&everything(&alice, &bob, relay.dir()));
    assert!(inside.is_empty(), "{inside:?}");
    // The name is in both homes' records.
    let in_homes = Markers::new()
        .file_name(&name)
        .seen_in(&home(&alice).and(home(&bob)));

    alice.hush(&["unsend", BOB, &id]).ok();
    unsent_at(&bob, ALICE, &id);
    assert!(blob_files(relay.dir()).is_empty(), "the blob is deleted");
    let after = everything(&alice, &bob, relay.dir());
    in_homes.gone_from(&after);
    at_relay.gone_from(&after);
    let inside = content_only.search(&after);
    assert!(inside.is_empty(), "{inside:?}");
}
