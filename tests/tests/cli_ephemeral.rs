//! Disappearing messages through the built `hush` binary: each timer rule, view-once, unsend
//! before and after delivery, burn and block. Short timers, and polling with a deadline.

use hush_tests::cli::{
    history, history_texts, introduce, poll_until, read_until_text, HushHome, RelayProcess,
};

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn pair(relay: &RelayProcess) -> (HushHome, HushHome) {
    let (alice, bob) = (HushHome::new(), HushHome::new());
    alice.init("alice", &relay.address);
    bob.init("bob", &relay.address);
    introduce(&alice, "bob", &bob, "alice");
    (alice, bob)
}

fn gone_from_history(home: &HushHome, contact: &str, text: &str) {
    poll_until(&format!("{text:?} to disappear"), || {
        (!history_texts(home, contact).iter().any(|t| t == text)).then_some(())
    });
}

#[test]
fn the_sender_copy_expires_at_send_plus_t_and_the_recipient_copy_at_read_plus_t() {
    let relay = RelayProcess::start();
    let (alice, bob) = pair(&relay);
    let sent = alice
        .hush(&["send", "bob", "expiring", "--timer", "3s", "--json"])
        .ok();
    let sent = &sent.json_lines()[0];
    assert!(sent["expires_at"].as_u64().is_some(), "{sent}");
    // The sender's copy goes at send + T, whether or not the contact has read it.
    gone_from_history(&alice, "bob", "expiring");

    // The recipient's copy is still delivered after that, and its timer starts when it is read.
    let before_read = unix_now();
    let got = read_until_text(&bob, "expiring");
    let sent_at = got["sent_at"].as_u64().unwrap();
    let expires_at = got["expires_at"].as_u64().unwrap();
    assert!(
        before_read >= sent_at + 3,
        "the sender's copy went at send + T"
    );
    assert!(
        expires_at >= before_read + 3,
        "the recipient's copy expires at first display + T: {got}"
    );
    gone_from_history(&bob, "alice", "expiring");
}

#[test]
fn the_conversation_timer_is_set_for_both_sides() {
    let relay = RelayProcess::start();
    let (alice, bob) = pair(&relay);
    let set = alice.hush(&["timer", "bob", "1h", "--json"]).ok();
    assert_eq!(set.json_lines()[0]["timer"], 3600);
    let notice = poll_until("the timer change to arrive", || {
        bob.hush(&["read", "--json"])
            .ok()
            .json_lines()
            .into_iter()
            .find(|l| l["type"] == "notice")
    });
    assert!(notice["text"].as_str().unwrap().contains("1h"), "{notice}");
    let contacts = bob.hush(&["contacts", "--json"]).ok().json_lines();
    assert_eq!(contacts[0]["timer"], 3600);
    // New messages carry it.
    alice.hush(&["send", "bob", "with the timer"]).ok();
    let got = read_until_text(&bob, "with the timer");
    assert!(got["expires_at"].as_u64().is_some(), "{got}");

    alice.hush(&["timer", "bob", "off"]).ok();
    poll_until("the timer to be turned off", || {
        bob.hush(&["read"]).ok();
        let contacts = bob.hush(&["contacts", "--json"]).ok().json_lines();
        contacts[0]["timer"].is_null().then_some(())
    });
}

#[test]
fn view_once_is_shown_once_then_gone() {
    let relay = RelayProcess::start();
    let (alice, bob) = pair(&relay);
    alice
        .hush(&["send", "bob", "only once", "--view-once"])
        .ok();
    let got = read_until_text(&bob, "only once");
    assert_eq!(got["view_once"], true);
    assert!(!history_texts(&bob, "alice").contains(&"only once".to_owned()));
    let again = bob.hush(&["read", "--json"]).ok();
    assert!(!again.stdout.contains("only once"));
}

#[test]
fn unsend_before_delivery_means_it_is_never_seen() {
    let relay = RelayProcess::start();
    let (alice, bob) = pair(&relay);
    let id = alice.hush(&["send", "bob", "oops"]).ok().out().to_owned();
    let unsent = alice.hush(&["unsend", "bob", &id, "--json"]).ok();
    assert_eq!(unsent.json_lines()[0]["type"], "unsent");
    assert!(!history_texts(&alice, "bob").contains(&"oops".to_owned()));
    // A later message arrives; the unsent one never does.
    alice.hush(&["send", "bob", "after"]).ok();
    let mut seen = String::new();
    poll_until("the later message", || {
        let run = bob.hush(&["read", "--json"]).ok();
        seen.push_str(&run.stdout);
        seen.contains("\"after\"").then_some(())
    });
    assert!(!seen.contains("oops"), "{seen}");
    assert!(!history_texts(&bob, "alice").contains(&"oops".to_owned()));
}

#[test]
fn unsend_after_delivery_deletes_the_recipient_copy() {
    let relay = RelayProcess::start();
    let (alice, bob) = pair(&relay);
    let id = alice.hush(&["send", "bob", "regret"]).ok().out().to_owned();
    read_until_text(&bob, "regret");
    alice.hush(&["unsend", "bob", &id]).ok();
    poll_until("the unsend to arrive", || {
        bob.hush(&["read"]).ok();
        (!history_texts(&bob, "alice").contains(&"regret".to_owned())).then_some(())
    });
    assert!(history(&bob, "alice")
        .iter()
        .all(|m| m["id"] != id.as_str()));
}

#[test]
fn burn_needs_yes_off_a_terminal_and_destroys_both_sides() {
    let relay = RelayProcess::start();
    let (alice, bob) = pair(&relay);
    alice.hush(&["send", "bob", "kept until burned"]).ok();
    read_until_text(&bob, "kept until burned");

    let refused = alice.hush(&["burn", "bob"]).fails();
    assert!(refused.stderr.contains("--yes"), "{}", refused.stderr);
    assert_eq!(history_texts(&alice, "bob"), ["kept until burned"]);

    alice.hush(&["burn", "bob", "--yes"]).ok();
    alice.hush(&["history", "bob"]).fails();
    let contacts = alice.hush(&["contacts", "--json"]).ok().json_lines();
    assert!(
        contacts.iter().all(|c| c["status"] != "active"),
        "{contacts:?}"
    );

    poll_until("the burn to reach bob", || {
        let run = bob.hush(&["read", "--json"]).ok();
        run.stdout.contains("burned").then_some(())
    });
    bob.hush(&["history", "alice"]).fails();
    let send = bob.hush(&["send", "alice", "anyone there?"]).fails();
    assert!(send.stderr.contains("burned"), "{}", send.stderr);
    // A new invitation is needed, and works.
    introduce(&alice, "bob", &bob, "alice");
    alice.hush(&["send", "bob", "fresh start"]).ok();
    read_until_text(&bob, "fresh start");
}

#[test]
fn a_blocked_contact_can_no_longer_reach_us() {
    let relay = RelayProcess::start();
    let (alice, bob) = pair(&relay);
    bob.hush(&["block", "alice"]).ok();
    let contacts = bob.hush(&["contacts", "--json"]).ok().json_lines();
    assert_eq!(contacts[0]["status"], "blocked");
    let send = alice.hush(&["send", "bob", "let me in"]).fails();
    assert!(send.stderr.contains("gone"), "{}", send.stderr);
}
