//! Groups end to end: four clients on two relays, every pair of them contacts. Create, add,
//! messages both ways, removal (the removed member gets nothing new), a change from a member
//! who may not make it, unsend, view-once, files, leave and the owner's burn; and a member who
//! is only the adder's contact, introduced to the others through the group.

use hush_client::conversation::Payload;
use hush_client::group::{Op, Role};
use hush_client::{Client, ClientError, ClientEvent, MessageView};
use hush_tests::clients::*;

struct Four {
    users: Vec<Client>,
    _homes: Vec<tempfile::TempDir>,
    _relays: (hush_tests::TestRelay, hush_tests::TestRelay),
}

/// Alice and Bob on one relay, Carol and Dave on another; every pair are contacts, each
/// calling the others by their names.
async fn four() -> Four {
    let relays = (relay(), relay());
    let names = ["alice", "bob", "carol", "dave"];
    let mut users = Vec::new();
    let mut homes = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let home = tempfile::tempdir().unwrap();
        let address = if i < 2 {
            relays.0.address()
        } else {
            relays.1.address()
        };
        users.push(init(&home.path().join("home"), name, address).await);
        homes.push(home);
    }
    for i in 0..names.len() {
        for j in i + 1..names.len() {
            connect(&users[i], names[j], &users[j], names[i]).await;
        }
    }
    Four {
        users,
        _homes: homes,
        _relays: relays,
    }
}

/// Receives until `client` sees a group change of `group` whose words contain `what`.
async fn change_seen(client: &Client, group: &str, what: &str) {
    until(client, |e| {
        matches!(e, ClientEvent::GroupChanged { group: g, what: w, .. } if g == group && w.contains(what))
    })
    .await;
}

/// Receives until `client` gets a group message from `from`; returns it.
async fn group_message(client: &Client, from: &str) -> MessageView {
    let events = until(client, |e| {
        matches!(e, ClientEvent::Message { contact, message } if contact == from && message.group.is_some())
    })
    .await;
    events
        .into_iter()
        .find_map(|e| match e {
            ClientEvent::Message { contact, message }
                if contact == from && message.group.is_some() =>
            {
                Some(message)
            }
            _ => None,
        })
        .unwrap()
}

fn body(m: &MessageView) -> &str {
    m.body.as_ref().map(|b| b.as_str()).unwrap_or("")
}

/// Whether any group message shows up at `client` in what is waiting now.
async fn receives_a_group_message(client: &Client) -> bool {
    let events = client.receive(None, None).await.unwrap();
    events
        .iter()
        .any(|e| matches!(e, ClientEvent::Message { message, .. } if message.group.is_some()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_reaches_its_members_and_a_removed_member_gets_nothing_new() {
    let f = four().await;
    let [alice, bob, carol, dave] = &f.users[..] else {
        unreachable!()
    };
    alice.create_group("deal", None).await.unwrap();
    let sent = alice
        .add_to_group("deal", &["bob", "carol", "dave"])
        .await
        .unwrap();
    assert_eq!(sent.reached.len(), 3, "{sent:?}");
    for member in [bob, carol, dave] {
        change_seen(member, "deal", "added you").await;
        let members = member.group_members("deal").await.unwrap();
        assert_eq!(members.len(), 4);
        assert!(members
            .iter()
            .any(|m| m.name == "alice" && m.role == Role::Owner));
    }

    // Bob writes; everyone else reads it, labelled with the group, and only in the group.
    let sent = bob
        .send_group_text("deal", "terms attached", None, false)
        .await
        .unwrap();
    assert_eq!(sent.reached.len(), 3, "{sent:?}");
    let id = sent.message.unwrap().id;
    for member in [alice, carol, dave] {
        let got = group_message(member, "bob").await;
        assert_eq!((got.id, body(&got)), (id, "terms attached"));
        let group = got.group.unwrap();
        assert_eq!(member.group_name(group).await.as_deref(), Some("deal"));
        assert!(member.history("bob").await.unwrap().is_empty());
        let history = member.group_history("deal").await.unwrap();
        assert_eq!(history.len(), 1);
        assert_eq!(history[0].0, "bob");
    }
    // Carol replies.
    carol
        .send_group_text("deal", "agreed", None, false)
        .await
        .unwrap();
    assert_eq!(body(&group_message(bob, "carol").await), "agreed");
    assert_eq!(bob.group_history("deal").await.unwrap().len(), 2);

    // Alice removes Dave. Everyone learns it; Dave learns he is out.
    let sent = alice.remove_from_group("deal", "dave").await.unwrap();
    assert!(sent.reached.contains(&"dave".to_owned()), "{sent:?}");
    until(
        dave,
        |e| matches!(e, ClientEvent::GroupRemoved { group } if group == "deal"),
    )
    .await;
    change_seen(bob, "deal", "removed dave").await;
    change_seen(carol, "deal", "removed dave").await;

    // Bob's next message goes to Alice and Carol only: no envelope is sealed for Dave.
    let sent = bob
        .send_group_text("deal", "after dave left", None, false)
        .await
        .unwrap();
    let mut reached = sent.reached.clone();
    reached.sort();
    assert_eq!(reached, ["alice", "carol"]);
    assert_eq!(body(&group_message(carol, "bob").await), "after dave left");
    assert!(!receives_a_group_message(dave).await);
    assert_eq!(dave.group_history("deal").await.unwrap().len(), 2);
    // Dave can no longer write to the group.
    assert!(matches!(
        dave.send_group_text("deal", "still here?", None, false)
            .await,
        Err(ClientError::NotAGroupMember { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_from_a_member_who_may_not_make_it_is_refused_everywhere() {
    let f = four().await;
    let [alice, bob, carol, dave] = &f.users[..] else {
        unreachable!()
    };
    alice.create_group("board", None).await.unwrap();
    alice
        .add_to_group("board", &["bob", "carol", "dave"])
        .await
        .unwrap();
    for member in [bob, carol, dave] {
        change_seen(member, "board", "added you").await;
    }
    // Carol is a member, not an admin: her own client refuses.
    assert!(matches!(
        carol.remove_from_group("board", "bob").await,
        Err(ClientError::GroupChange { .. })
    ));
    // A modified client sends the change anyway: every member refuses it and reports it.
    let sent = carol
        .send_unchecked_group_change(
            "board",
            Op::Remove {
                member: bob.public_identity(),
            },
        )
        .await
        .unwrap();
    assert_eq!(sent.reached.len(), 3);
    for member in [alice, bob, dave] {
        let events = until(member, |e| matches!(e, ClientEvent::GroupRejected { .. })).await;
        assert!(events.iter().any(|e| matches!(
            e,
            ClientEvent::GroupRejected { group: Some(g), from, .. } if g == "board" && from == "carol"
        )));
        assert_eq!(member.group_members("board").await.unwrap().len(), 4);
    }
    // Bob is still in: his message reaches everyone.
    let sent = bob
        .send_group_text("board", "still here", None, false)
        .await
        .unwrap();
    assert_eq!(sent.reached.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsend_view_once_leave_and_the_owners_burn() {
    let f = four().await;
    let [alice, bob, carol, dave] = &f.users[..] else {
        unreachable!()
    };
    alice.create_group("room", None).await.unwrap();
    alice
        .add_to_group("room", &["bob", "carol", "dave"])
        .await
        .unwrap();
    for member in [bob, carol, dave] {
        change_seen(member, "room", "added you").await;
    }
    // Unsend: gone from every member's copy.
    let id = alice
        .send_group_text("room", "oops", None, false)
        .await
        .unwrap()
        .message
        .unwrap()
        .id;
    for member in [bob, carol, dave] {
        assert_eq!(group_message(member, "alice").await.id, id);
    }
    alice.unsend_group("room", id).await.unwrap();
    for member in [bob, carol, dave] {
        until(
            member,
            |e| matches!(e, ClientEvent::Unsent { id: i, .. } if *i == id),
        )
        .await;
        assert!(member.group_history("room").await.unwrap().is_empty());
    }
    // View-once: shown without its body, revealed once.
    bob.send_group_text("room", "read once", None, true)
        .await
        .unwrap();
    let got = group_message(carol, "bob").await;
    assert!(got.view_once && got.body.is_none());
    let shown = carol.display("bob", got.id).await.unwrap();
    assert_eq!(body(&shown), "read once");
    assert!(carol.display("bob", got.id).await.is_err());

    // Dave leaves: the others see it, his copy is gone.
    dave.leave_group("room").await.unwrap();
    assert!(matches!(
        dave.group_history("room").await,
        Err(ClientError::UnknownGroup { .. })
    ));
    change_seen(alice, "room", "left").await;

    // The owner burns the group: every remaining member's copy is erased.
    bob.send_group_text("room", "before the burn", None, false)
        .await
        .unwrap();
    group_message(carol, "bob").await;
    assert!(!carol.group_history("room").await.unwrap().is_empty());
    alice.burn_group("room").await.unwrap();
    for member in [bob, carol] {
        until(
            member,
            |e| matches!(e, ClientEvent::GroupBurned { group, .. } if group == "room"),
        )
        .await;
        assert!(matches!(
            member.group_history("room").await,
            Err(ClientError::UnknownGroup { .. })
        ));
        assert!(member.groups().await.is_empty());
    }
    assert!(alice.groups().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_to_a_group_is_one_upload_every_member_saves_and_its_authors_unsend_deletes() {
    let f = four().await;
    let [alice, bob, carol, dave] = &f.users[..] else {
        unreachable!()
    };
    alice.create_group("files", None).await.unwrap();
    alice
        .add_to_group("files", &["bob", "carol", "dave"])
        .await
        .unwrap();
    for member in [bob, carol, dave] {
        change_seen(member, "files", "added you").await;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("terms.txt");
    let content: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&path, &content).unwrap();
    let no_progress = |_| {};
    let sent = bob
        .send_group_file("files", &path, None, false, &no_progress)
        .await
        .unwrap();
    assert_eq!(sent.reached.len(), 3, "{sent:?}");
    let id = sent.message.unwrap().id;
    let mut got = Vec::new();
    for member in [alice, carol, dave] {
        let m = group_message(member, "bob").await;
        assert_eq!(m.id, id);
        assert_eq!(m.file.as_ref().unwrap().size, content.len() as u64);
        got.push(m);
    }
    // Carol saves, then Dave: the first save leaves the blob for the others.
    for (i, member) in [carol, dave].into_iter().enumerate() {
        let to = dir.path().join(format!("saved-{i}"));
        let saved = member.save_file(id, &to, &no_progress).await.unwrap();
        assert_eq!(std::fs::read(saved).unwrap(), content);
    }
    // Bob unsends it: the blob goes, so Alice, who had not saved it yet, cannot.
    bob.unsend_group("files", id).await.unwrap();
    let err = alice
        .save_file(id, &dir.path().join("late"), &no_progress)
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::FileExpired), "{err:?}");
}

/// Lets every client receive (and so carry out queued introduction steps) until `done`.
async fn pump_until(users: &[&Client], what: &str, done: impl AsyncFn() -> bool) {
    let end = tokio::time::Instant::now() + DEADLINE;
    while !done().await {
        assert!(tokio::time::Instant::now() < end, "deadline passed: {what}");
        for u in users {
            u.receive(None, None).await.unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_who_is_nobodys_contact_but_the_adders_is_introduced_to_the_others() {
    let (r1, r2) = (relay(), relay());
    let homes: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let alice = init(&homes[0].path().join("h"), "alice", r1.address()).await;
    let bob = init(&homes[1].path().join("h"), "bob", r1.address()).await;
    let carol = init(&homes[2].path().join("h"), "carol", r2.address()).await;
    let dave = init(&homes[3].path().join("h"), "dave", r2.address()).await;
    connect(&alice, "bob", &bob, "alice").await;
    connect(&alice, "carol", &carol, "alice").await;
    connect(&bob, "carol", &carol, "bob").await;
    // Dave knows only Alice.
    connect(&alice, "dave", &dave, "alice").await;

    alice.create_group("intro", None).await.unwrap();
    alice
        .add_to_group("intro", &["bob", "carol"])
        .await
        .unwrap();
    change_seen(&bob, "intro", "added you").await;
    change_seen(&carol, "intro", "added you").await;
    alice.add_to_group("intro", &["dave"]).await.unwrap();

    let all = [&alice, &bob, &carol, &dave];
    pump_until(&all, "Dave and the others become contacts", async || {
        let d = contact_names(&dave).await;
        let b = contact_names(&bob).await;
        let c = contact_names(&carol).await;
        d.contains(&"bob".to_owned())
            && d.contains(&"carol".to_owned())
            && b.contains(&"dave".to_owned())
            && c.contains(&"dave".to_owned())
    })
    .await;
    // Each side named the other as Alice does; nobody is verified yet, and the contacts made by
    // the introduction are marked as known only through the group, on both sides.
    let introduced = |views: Vec<hush_client::ContactView>, name: &str| {
        let c = views.iter().find(|c| c.name == name).unwrap();
        assert!(!c.verified);
        c.introduced
    };
    assert!(dave.contacts().await.iter().all(|c| !c.verified));
    assert!(!introduced(dave.contacts().await, "alice"));
    assert!(introduced(dave.contacts().await, "bob"));
    assert!(introduced(dave.contacts().await, "carol"));
    assert!(introduced(bob.contacts().await, "dave"));
    assert!(introduced(carol.contacts().await, "dave"));
    assert!(!introduced(bob.contacts().await, "carol"));
    let members = bob.group_members("intro").await.unwrap();
    let of = |name: &str| members.iter().find(|m| m.name == name).unwrap();
    assert!(of("dave").introduced && !of("carol").introduced);
    // Once verified, the mark goes.
    bob.mark_verified("dave").await.unwrap();
    let views = bob.contacts().await;
    let d = views.iter().find(|c| c.name == "dave").unwrap();
    assert!(d.verified && !d.introduced);
    // Now Dave's message reaches everyone, and Bob's reaches Dave.
    let sent = dave
        .send_group_text("intro", "hello, I am new", None, false)
        .await
        .unwrap();
    let mut reached = sent.reached.clone();
    reached.sort();
    assert_eq!(reached, ["alice", "bob", "carol"], "{sent:?}");
    assert_eq!(body(&group_message(&bob, "dave").await), "hello, I am new");
    let sent = bob
        .send_group_text("intro", "welcome", None, false)
        .await
        .unwrap();
    assert_eq!(sent.reached.len(), 3, "{sent:?}");
    assert_eq!(body(&group_message(&dave, "bob").await), "welcome");

    // An adder who passes on an invitation of its own instead of the new member's is refused.
    let own = alice.invite("someone").await.unwrap();
    let group = bob.group_history("intro").await.unwrap()[0]
        .1
        .group
        .unwrap();
    alice
        .send_payload_unchecked(
            "carol",
            Payload::GroupIntroduce {
                group,
                forward: false,
                member: dave.public_identity().to_bytes(),
                name: "dave-again".into(),
                invitation: own,
            },
        )
        .await
        .unwrap();
    let events = until(&carol, |e| matches!(e, ClientEvent::GroupRejected { .. })).await;
    assert!(events.iter().any(|e| matches!(
        e,
        ClientEvent::GroupRejected { reason, from, .. }
            if from == "alice" && reason.contains("not the member's")
    )));
    carol.receive(None, None).await.unwrap();
    assert!(!contact_names(&carol)
        .await
        .contains(&"dave-again".to_owned()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_who_missed_a_removal_catches_up_from_the_next_message() {
    let f = four().await;
    let [alice, bob, carol, dave] = &f.users[..] else {
        unreachable!()
    };
    alice.create_group("sync", None).await.unwrap();
    alice
        .add_to_group("sync", &["bob", "carol", "dave"])
        .await
        .unwrap();
    for member in [bob, carol, dave] {
        change_seen(member, "sync", "added you").await;
    }
    // Alice removes Dave, but only Bob and Dave hear of it: Carol's copy is lost.
    alice
        .change_group_telling_only(
            "sync",
            Op::Remove {
                member: dave.public_identity(),
            },
            &["bob", "dave"],
        )
        .await
        .unwrap();
    change_seen(bob, "sync", "removed dave").await;
    assert_eq!(carol.group_members("sync").await.unwrap().len(), 4);
    // Bob writes; his message names his head, which Carol's log lacks: she asks him, he
    // answers with his changes, and she applies the removal.
    bob.send_group_text("sync", "heads up", None, false)
        .await
        .unwrap();
    group_message(carol, "bob").await;
    let all = [alice, bob, carol, dave];
    pump_until(&all, "Carol applies the removal", async || {
        carol.group_members("sync").await.unwrap().len() == 3
    })
    .await;
    // From now on Carol's messages do not reach Dave.
    let sent = carol
        .send_group_text("sync", "after catching up", None, false)
        .await
        .unwrap();
    let mut reached = sent.reached.clone();
    reached.sort();
    assert_eq!(reached, ["alice", "bob"]);
}

/// The members of `group` as `client` names them, sorted.
async fn roster_of(client: &Client, group: &str) -> Vec<String> {
    let mut names: Vec<String> = client
        .group_members(group)
        .await
        .map(|ms| ms.into_iter().map(|m| m.name).collect())
        .unwrap_or_default();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_changes_by_two_admins_both_take_effect() {
    let f = four().await;
    let [alice, bob, carol, dave] = &f.users[..] else {
        unreachable!()
    };
    alice.create_group("pair", None).await.unwrap();
    alice.add_to_group("pair", &["bob"]).await.unwrap();
    change_seen(bob, "pair", "added you").await;
    alice.set_group_admin("pair", "bob", true).await.unwrap();
    change_seen(bob, "pair", "admin").await;

    // Both admins add someone at the same point of the log, neither hearing of the other first:
    // only one of the two changes can follow that point, so the other is superseded and its
    // author makes it again on the new head.
    alice.add_to_group("pair", &["carol"]).await.unwrap();
    bob.add_to_group("pair", &["dave"]).await.unwrap();
    let everyone = ["alice", "bob", "carol", "dave"];
    let all = [alice, bob, carol, dave];
    pump_until(&all, "every member sees all four", async || {
        for (u, me) in all.iter().zip(everyone) {
            let names = roster_of(u, "pair").await;
            // Each names itself by its own name and the others by theirs.
            if names.len() != 4 || !names.contains(&me.to_owned()) {
                return false;
            }
        }
        true
    })
    .await;
    for u in all {
        assert_eq!(roster_of(u, "pair").await, everyone);
    }
}
