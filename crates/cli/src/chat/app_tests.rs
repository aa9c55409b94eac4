//! The chat's event loop against a real relay and a real contact: pushed messages appear with
//! a countdown and vanish at expiry, typed lines are sent, `/unsend` and `/burn` reach the
//! contact, and `/quit` ends the loop.

use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossterm::event::{Event as TermEvent, KeyCode, KeyEvent, KeyModifiers};
use hush_client::store::KeySource;
use hush_client::{Client, ClientEvent};
use hush_tests::{TestRelay, DEADLINE};
use ratatui::backend::{Backend, ClearType, TestBackend, WindowSize};
use ratatui::buffer::Cell;
use ratatui::layout::{Position, Size};
use ratatui::Terminal;
use tokio::sync::mpsc;

use super::app::run_on;

/// A test backend whose screen the test reads while the loop draws on it.
#[derive(Clone)]
struct Shared(Arc<Mutex<TestBackend>>);

impl Shared {
    fn screen(&self) -> String {
        let backend = self.0.lock().unwrap();
        let buffer = backend.buffer();
        let width = usize::from(buffer.area.width);
        buffer
            .content()
            .chunks(width)
            .map(|row| row.iter().map(Cell::symbol).collect::<String>())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Waits until `check` holds for the screen.
    async fn wait_for(&self, what: &str, check: impl Fn(&str) -> bool) {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let screen = self.screen();
            if check(&screen) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}; screen:\n{screen}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Backend for Shared {
    fn draw<'a, I>(&mut self, content: I) -> io::Result<()>
    where
        I: Iterator<Item = (u16, u16, &'a Cell)>,
    {
        self.0.lock().unwrap().draw(content)
    }
    fn hide_cursor(&mut self) -> io::Result<()> {
        self.0.lock().unwrap().hide_cursor()
    }
    fn show_cursor(&mut self) -> io::Result<()> {
        self.0.lock().unwrap().show_cursor()
    }
    fn get_cursor_position(&mut self) -> io::Result<Position> {
        self.0.lock().unwrap().get_cursor_position()
    }
    fn set_cursor_position<P: Into<Position>>(&mut self, position: P) -> io::Result<()> {
        self.0.lock().unwrap().set_cursor_position(position)
    }
    fn clear(&mut self) -> io::Result<()> {
        self.0.lock().unwrap().clear()
    }
    fn clear_region(&mut self, clear_type: ClearType) -> io::Result<()> {
        self.0.lock().unwrap().clear_region(clear_type)
    }
    fn size(&self) -> io::Result<Size> {
        self.0.lock().unwrap().size()
    }
    fn window_size(&mut self) -> io::Result<WindowSize> {
        self.0.lock().unwrap().window_size()
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.lock().unwrap().flush()
    }
}

fn type_line(keys: &mpsc::UnboundedSender<TermEvent>, line: &str) {
    for c in line.chars() {
        keys.send(TermEvent::Key(KeyEvent::from(KeyCode::Char(c))))
            .unwrap();
    }
    keys.send(TermEvent::Key(KeyEvent::from(KeyCode::Enter)))
        .unwrap();
}

/// Alice and Bob on one relay, introduced.
async fn pair(relay: &TestRelay, dirs: &[tempfile::TempDir; 2]) -> (Client, Client) {
    let addr = relay.handle.address().clone();
    let alice = Client::init(dirs[0].path(), "alice", addr.clone(), KeySource::KeyFile)
        .await
        .unwrap();
    let bob = Client::init(dirs[1].path(), "bob", addr, KeySource::KeyFile)
        .await
        .unwrap();
    let token = alice.invite("bob").await.unwrap();
    bob.accept(&token, "alice").await.unwrap();
    let joined = alice
        .receive(None, Some(DEADLINE))
        .await
        .unwrap()
        .into_iter()
        .any(|e| matches!(e, ClientEvent::ContactJoined { .. }));
    assert!(joined);
    (alice, bob)
}

#[tokio::test]
async fn pushed_messages_show_count_down_and_vanish_and_typed_lines_are_sent() {
    let relay = TestRelay::start(|_| {});
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let (alice, bob) = pair(&relay, &dirs).await;
    let backend = Shared(Arc::new(Mutex::new(TestBackend::new(80, 16))));
    let mut terminal = Terminal::new(backend.clone()).unwrap();
    let (keys, key_rx) = mpsc::unbounded_channel();

    let chat = run_on(&alice, Some("bob"), &mut terminal, key_rx);
    let script = async {
        backend
            .wait_for("the header", |s| s.contains("hush chat with bob"))
            .await;
        bob.send_text(
            "alice",
            "pushed to alice",
            Some(Duration::from_secs(3)),
            false,
        )
        .await
        .unwrap();
        backend
            .wait_for("the pushed message with its countdown", |s| {
                ["3s", "2s", "1s"]
                    .iter()
                    .any(|left| s.contains(&format!("bob ({left} left): pushed to alice")))
            })
            .await;
        // The 3 s timer was that message's own: the conversation keeps no timer.
        assert!(backend.screen().contains("timer off"));
        backend
            .wait_for("the message to expire", |s| !s.contains("pushed to alice"))
            .await;

        type_line(&keys, "/timer 1h");
        backend
            .wait_for("the new timer", |s| s.contains("timer 1h"))
            .await;
        type_line(&keys, "typed by alice");
        backend
            .wait_for("the sent message with its countdown", |s| {
                s.contains("you (59m") && s.contains("left): typed by alice")
            })
            .await;
        let got = bob.receive(Some("alice"), Some(DEADLINE)).await.unwrap();
        let text = got.iter().find_map(|e| match e {
            ClientEvent::Message { message, .. } => {
                message.body.as_ref().map(|b| b.as_str().to_owned())
            }
            _ => None,
        });
        assert_eq!(text.as_deref(), Some("typed by alice"));

        let screen = backend.screen();
        let line = screen
            .lines()
            .find(|l| l.contains("typed by alice"))
            .unwrap();
        type_line(&keys, &format!("/unsend {}", &line[..8]));
        backend
            .wait_for("the unsend", |s| {
                s.contains("you unsent") && !s.contains("typed by alice")
            })
            .await;
        type_line(&keys, "/burn");
        backend
            .wait_for("the burn confirmation", |s| s.contains("type yes"))
            .await;
        type_line(&keys, "yes");
        backend
            .wait_for("the burn", |s| s.contains("you burned the conversation"))
            .await;
        type_line(&keys, "/quit");
    };
    let (result, ()) = tokio::join!(chat, script);
    result.unwrap();

    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !events
        .iter()
        .any(|e| matches!(e, ClientEvent::Burned { .. }))
        && tokio::time::Instant::now() < deadline
    {
        events.extend(bob.receive(Some("alice"), Some(DEADLINE)).await.unwrap());
    }
    assert!(
        events.iter().any(|e| matches!(
            e,
            ClientEvent::Unsent {
                by_contact: true,
                ..
            }
        )),
        "{events:?}"
    );
    assert!(
        events.iter().any(|e| matches!(
            e,
            ClientEvent::Burned {
                by_contact: true,
                ..
            }
        )),
        "{events:?}"
    );
    alice.close().await;
    bob.close().await;
    relay.stop().await;
}

/// Makes `a` and `b` contacts, calling each other `b_name` and `a_name`.
async fn introduce(a: &Client, b_name: &str, b: &Client, a_name: &str) {
    let token = a.invite(b_name).await.unwrap();
    b.accept(&token, a_name).await.unwrap();
    wait_event(a, "the contact to join", |e| {
        matches!(e, ClientEvent::ContactJoined { .. })
    })
    .await;
}

/// Receives on `client` until an event satisfies `check`; returns it.
async fn wait_event(
    client: &Client,
    what: &str,
    check: impl Fn(&ClientEvent) -> bool,
) -> ClientEvent {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        let events = client.receive(None, Some(DEADLINE)).await.unwrap();
        if let Some(found) = events.into_iter().find(|e| check(e)) {
            return found;
        }
    }
}

#[tokio::test]
async fn a_group_chat_shows_authors_members_and_changes_and_counts_other_messages_unread() {
    let relay = TestRelay::start(|_| {});
    let dirs = [(); 3].map(|()| tempfile::tempdir().unwrap());
    let addr = relay.handle.address().clone();
    let mut clients = Vec::new();
    for (dir, name) in dirs.iter().zip(["alice", "bob", "carol"]) {
        let client = Client::init(dir.path(), name, addr.clone(), KeySource::KeyFile)
            .await
            .unwrap();
        clients.push(client);
    }
    let [alice, bob, carol] = &clients[..] else {
        unreachable!()
    };
    introduce(alice, "bob", bob, "alice").await;
    introduce(alice, "carol", carol, "alice").await;
    introduce(bob, "carol", carol, "bob").await;
    bob.create_group("crew", None).await.unwrap();
    bob.add_to_group("crew", &["alice", "carol"]).await.unwrap();
    for member in [alice, carol] {
        wait_event(
            member,
            "being added",
            |e| matches!(e, ClientEvent::GroupChanged { what, .. } if what.contains("added you")),
        )
        .await;
    }

    let backend = Shared(Arc::new(Mutex::new(TestBackend::new(120, 20))));
    let mut terminal = Terminal::new(backend.clone()).unwrap();
    let (keys, key_rx) = mpsc::unbounded_channel();
    let chat = run_on(alice, Some("crew"), &mut terminal, key_rx);
    let script = async {
        backend
            .wait_for("the group and its members", |s| {
                s.contains("hush chat in group crew")
                    && s.contains("members: bob (owner), alice (you), carol")
            })
            .await;
        carol
            .send_group_text("crew", "carol to the crew", None, false)
            .await
            .unwrap();
        backend
            .wait_for("carol's line", |s| s.contains("carol: carol to the crew"))
            .await;
        // A message of another conversation is counted, not shown.
        carol
            .send_text("alice", "carol to alice alone", None, false)
            .await
            .unwrap();
        backend
            .wait_for("the unread count", |s| s.contains("1 unread elsewhere"))
            .await;
        // Not on screen (the same search finds it once carol's conversation is opened below).
        assert!(!backend.screen().contains("alice alone"));

        type_line(&keys, "/burn");
        backend
            .wait_for("the refusal", |s| {
                s.contains("only the owner of crew can burn it")
            })
            .await;

        // Changes by the owner appear as notices and update the header.
        bob.set_group_timer("crew", Some(Duration::from_secs(3600)))
            .await
            .unwrap();
        backend
            .wait_for("the new group timer", |s| {
                s.contains("timer 1h") && s.contains("bob set the group timer to 3600 s")
            })
            .await;
        bob.remove_from_group("crew", "carol").await.unwrap();
        backend
            .wait_for("carol's removal", |s| {
                s.contains("bob removed carol") && s.contains("members: bob (owner), alice (you)  ")
            })
            .await;

        type_line(&keys, "alice to the crew");
        backend
            .wait_for("the sent line with the group timer", |s| {
                s.contains("you (59m") && s.contains("alice to the crew")
            })
            .await;
        let got = wait_event(
            bob,
            "alice's group message",
            |e| matches!(e, ClientEvent::Message { message, .. } if message.group.is_some()),
        )
        .await;
        let ClientEvent::Message { contact, message } = got else {
            unreachable!()
        };
        assert_eq!(contact, "alice");
        assert_eq!(message.body.unwrap().as_str(), "alice to the crew");
        let screen = backend.screen();
        let line = screen
            .lines()
            .find(|l| l.contains("alice to the crew"))
            .unwrap();
        type_line(&keys, &format!("/unsend {}", &line[..8]));
        backend
            .wait_for("the unsend", |s| {
                s.contains("it is gone for every member") && !s.contains("alice to the crew")
            })
            .await;
        wait_event(
            bob,
            "the unsend",
            |e| matches!(e, ClientEvent::Unsent { id, .. } if *id == message.id),
        )
        .await;

        type_line(&keys, "/leave");
        type_line(&keys, "yes");
        backend
            .wait_for("the leave", |s| s.contains("you left crew"))
            .await;
        wait_event(
            bob,
            "alice leaving",
            |e| matches!(e, ClientEvent::GroupChanged { what, .. } if what == "left the group"),
        )
        .await;
        // Back in the list: crew is gone, carol's message still waits.
        keys.send(TermEvent::Key(KeyEvent::new(
            KeyCode::Char('o'),
            KeyModifiers::CONTROL,
        )))
        .unwrap();
        backend
            .wait_for("the list", |s| {
                s.contains("conversations") && !s.contains("crew") && s.contains("1 unread")
            })
            .await;
        // Opening carol's conversation shows the message that was only counted.
        keys.send(TermEvent::Key(KeyEvent::from(KeyCode::Down)))
            .unwrap();
        keys.send(TermEvent::Key(KeyEvent::from(KeyCode::Enter)))
            .unwrap();
        backend
            .wait_for("carol's message, shown now", |s| {
                s.contains("hush chat with carol") && s.contains("carol: carol to alice alone")
            })
            .await;
        type_line(&keys, "/quit");
    };
    let (result, ()) = tokio::join!(chat, script);
    result.unwrap();
    for client in clients {
        client.close().await;
    }
    relay.stop().await;
}
