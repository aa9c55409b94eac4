//! `hush chat` without a name, on a real pseudo-terminal: the conversation list shows a contact
//! and a group with their unread counts; arrows and Enter open the group, whose lines name
//! their authors and whose header lists the members with roles; the owner's `/timer` sets the
//! group timer; a line typed there reaches a member (read with `hush read --json`); Ctrl-O goes back to the list, where the contact's
//! message is still unread; `q` leaves.
//!
//! The pseudo-terminal's output is read through a terminal emulator, so the test sees the
//! screen as a user would.
//!
//! Needs the binaries built first (`cargo build --workspace --bins`), as the README's test
//! command does.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};

use hush_tests::cli::{introduce, poll_until, read_until_text, HushHome, RelayProcess};
use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
use rustix::termios::{tcsetwinsize, Winsize};

const ROWS: u16 = 24;
const COLS: u16 = 100;
const DOWN: &[u8] = b"\x1b[B";
const ENTER: &[u8] = b"\r";
const CTRL_O: &[u8] = b"\x0f";

/// A pseudo-terminal whose output feeds a terminal emulator, read on a thread.
struct Pty {
    master: File,
    terminal: std::path::PathBuf,
    screen: Arc<Mutex<vt100::Parser>>,
}

impl Pty {
    fn open() -> Pty {
        let master: OwnedFd = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).expect("openpt");
        grantpt(&master).expect("grantpt");
        unlockpt(&master).expect("unlockpt");
        let name = ptsname(&master, Vec::new()).expect("ptsname");
        let size = Winsize {
            ws_row: ROWS,
            ws_col: COLS,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        tcsetwinsize(&master, size).expect("window size");
        let screen = Arc::new(Mutex::new(vt100::Parser::new(ROWS, COLS, 0)));
        let mut reader = File::from(master.try_clone().expect("dup master"));
        let sink = Arc::clone(&screen);
        // Ends with an error once no process holds the terminal side open.
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().process(&buf[..n]);
            }
        });
        Pty {
            master: File::from(master),
            terminal: std::path::PathBuf::from(name.to_str().expect("pty name")),
            screen,
        }
    }

    fn open_terminal(&self) -> File {
        OpenOptions::new()
            .read(true)
            .write(true)
            .open(&self.terminal)
            .expect("open the terminal side")
    }

    fn spawn(&self, home: &HushHome, args: &[&str]) -> Child {
        home.command(args)
            .stdin(Stdio::from(self.open_terminal()))
            .stdout(Stdio::from(self.open_terminal()))
            .stderr(Stdio::from(self.open_terminal()))
            .spawn()
            .expect("spawn hush chat")
    }

    fn screen(&self) -> String {
        self.screen.lock().unwrap().screen().contents()
    }

    fn press(&mut self, keys: &[u8]) {
        self.master.write_all(keys).expect("type into the terminal");
    }

    fn type_line(&mut self, line: &str) {
        self.press(line.as_bytes());
        self.press(ENTER);
    }

    /// Waits until a row of the screen satisfies `check`; returns that row.
    #[track_caller]
    fn wait_for_row(&self, what: &str, check: impl Fn(&str) -> bool) -> String {
        let mut last = String::new();
        let found = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            poll_until(what, || {
                last = self.screen();
                last.lines().find(|row| check(row)).map(str::to_owned)
            })
        }));
        match found {
            Ok(row) => row,
            Err(_) => panic!("timed out waiting for {what}; screen:\n{last}"),
        }
    }
}

#[test]
fn the_conversation_list_counts_unread_and_switches_into_a_group() {
    let relay = RelayProcess::start();
    let (alice, bob, carol) = (HushHome::new(), HushHome::new(), HushHome::new());
    alice.init("alice", &relay.address);
    bob.init("bob", &relay.address);
    carol.init("carol", &relay.address);
    introduce(&alice, "bob", &bob, "alice");
    introduce(&alice, "carol", &carol, "alice");
    introduce(&bob, "carol", &carol, "bob");

    alice.hush(&["group", "create", "team"]).ok();
    alice.hush(&["group", "add", "team", "bob", "carol"]).ok();
    poll_until("carol to learn she is in team", || {
        let run = carol.hush(&["read", "--json"]).ok();
        run.json_lines()
            .iter()
            .any(|l| l["type"] == "notice" && l["contact"] == "team")
            .then_some(())
    });
    bob.hush(&["send", "alice", "a word for alice alone"]).ok();
    carol.hush(&["send", "team", "carol greets the team"]).ok();

    let mut pty = Pty::open();
    let mut child = pty.spawn(&alice, &["chat"]);

    // The list: both conversations with one unread message each.
    pty.wait_for_row("bob's row with 1 unread", |row| {
        row.contains("bob") && row.contains("contact") && row.contains("1 unread")
    });
    pty.wait_for_row("team's row with 1 unread", |row| {
        row.contains("team") && row.contains("group") && row.contains("1 unread")
    });
    assert!(
        !pty.screen().contains("carol greets the team"),
        "unread messages stay unshown in the list:\n{}",
        pty.screen()
    );

    // Contacts bob and carol, then the group: two rows down, and Enter.
    pty.press(DOWN);
    pty.press(DOWN);
    pty.wait_for_row("team selected", |row| row.starts_with("> team"));
    pty.press(ENTER);
    pty.wait_for_row("the group's header", |row| {
        row.contains("hush chat in group team")
    });
    pty.wait_for_row("the members with roles", |row| {
        row.contains("members: ")
            && row.contains("alice (owner, you)")
            && row.contains("bob")
            && row.contains("carol")
    });
    pty.wait_for_row("carol's line with its author", |row| {
        row.contains("carol: carol greets the team")
    });
    pty.wait_for_row("bob's unread message counted elsewhere", |row| {
        row.contains("1 unread elsewhere")
    });

    // The owner sets the group timer from the chat; the next line carries it.
    pty.type_line("/timer 1h");
    pty.wait_for_row("the new timer in the header", |row| {
        row.contains("hush chat in group team") && row.contains("timer 1h")
    });
    pty.wait_for_row("the timer notice", |row| {
        row.contains("you set the disappearing timer to 1h for every member")
    });
    pty.type_line("alice answers the team");
    pty.wait_for_row("the sent line", |row| {
        row.contains("you (59m") && row.contains("left): alice answers the team")
    });
    let got = read_until_text(&bob, "alice answers the team");
    assert_eq!(got["group"], "team", "{got}");
    assert_eq!(got["from"], "alice", "{got}");

    // Back to the list: the group is read, bob's message still waits.
    pty.press(CTRL_O);
    let team_row = pty.wait_for_row("the list with team selected", |row| {
        row.starts_with("> team")
    });
    assert!(!team_row.contains("unread"), "{team_row}");
    let bob_row = pty.wait_for_row("bob's row", |row| {
        row.contains("bob") && row.contains("contact")
    });
    assert!(bob_row.contains("1 unread"), "{bob_row}");

    pty.press(b"q");
    let status = poll_until("hush chat to exit", || child.try_wait().expect("wait"));
    assert!(status.success(), "{status:?}");
    // Only the group was opened: bob's message is still unread, and `read` shows it now.
    read_until_text(&alice, "a word for alice alone");
}
