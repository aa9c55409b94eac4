//! `hush chat` on a real pseudo-terminal: a SIGTERM or SIGHUP while it runs leaves the terminal
//! as it found it (main screen, cooked mode with echo), and the process exits with an error
//! that names the signal.
//!
//! Needs the binaries built first (`cargo build --workspace --bins`), as the README's test
//! command does.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use hush_tests::cli::{introduce, poll_until, HushHome, RelayProcess};
use rustix::process::{kill_process, Pid, Signal};
use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
use rustix::termios::{tcgetattr, tcsetwinsize, LocalModes, Winsize};

const ENTER_ALTERNATE_SCREEN: &[u8] = b"\x1b[?1049h";
const LEAVE_ALTERNATE_SCREEN: &[u8] = b"\x1b[?1049l";

/// A pseudo-terminal of 80×24: the master side, read on a thread into `output`, and the path of
/// the terminal side.
struct Pty {
    master: OwnedFd,
    terminal: std::path::PathBuf,
    output: Arc<Mutex<Vec<u8>>>,
}

impl Pty {
    fn open() -> Pty {
        let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).expect("openpt");
        grantpt(&master).expect("grantpt");
        unlockpt(&master).expect("unlockpt");
        let name = ptsname(&master, Vec::new()).expect("ptsname");
        let size = Winsize {
            ws_row: 24,
            ws_col: 80,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        tcsetwinsize(&master, size).expect("window size");
        let output = Arc::new(Mutex::new(Vec::new()));
        let mut reader = File::from(master.try_clone().expect("dup master"));
        let sink = Arc::clone(&output);
        // Ends with an error once no process holds the terminal side open.
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Pty {
            master,
            terminal: std::path::PathBuf::from(name.to_str().expect("pty name")),
            output,
        }
    }

    fn open_terminal(&self) -> File {
        OpenOptions::new()
            .read(true)
            .write(true)
            .open(&self.terminal)
            .expect("open the terminal side")
    }

    fn output_contains(&self, needle: &[u8]) -> bool {
        let out = self.output.lock().unwrap();
        out.windows(needle.len()).any(|w| w == needle)
    }
}

#[test]
fn a_signal_during_chat_restores_the_terminal() {
    let relay = RelayProcess::start();
    let (alice, bob) = (HushHome::new(), HushHome::new());
    alice.init("alice", &relay.address);
    bob.init("bob", &relay.address);
    introduce(&alice, "bob", &bob, "alice");

    for signal in [Signal::Term, Signal::Hup] {
        let pty = Pty::open();
        // Held by the test, so the terminal's settings can be read after the chat exits.
        let terminal = pty.open_terminal();
        let mut child = alice
            .command(&["chat", "bob"])
            .stdin(Stdio::from(pty.open_terminal()))
            .stdout(Stdio::from(pty.open_terminal()))
            .stderr(Stdio::from(pty.open_terminal()))
            .spawn()
            .expect("spawn hush chat");
        let before = tcgetattr(terminal.as_fd()).expect("tcgetattr");
        assert!(before
            .local_modes
            .contains(LocalModes::ICANON | LocalModes::ECHO));

        poll_until("the chat to take over the terminal", || {
            pty.output_contains(ENTER_ALTERNATE_SCREEN).then_some(())
        });
        poll_until("the terminal to be in raw mode", || {
            let modes = tcgetattr(terminal.as_fd()).expect("tcgetattr").local_modes;
            (!modes.contains(LocalModes::ICANON)).then_some(())
        });
        kill_process(Pid::from_child(&child), signal).expect("signal hush chat");
        let status = poll_until("hush chat to exit", || {
            child.try_wait().expect("wait for hush chat")
        });

        assert_eq!(status.code(), Some(1), "{signal:?}: {status:?}");
        let after = tcgetattr(terminal.as_fd()).expect("tcgetattr");
        assert!(
            after
                .local_modes
                .contains(LocalModes::ICANON | LocalModes::ECHO),
            "{signal:?}: the terminal was left in raw mode"
        );
        poll_until("the chat to leave the alternate screen", || {
            pty.output_contains(LEAVE_ALTERNATE_SCREEN).then_some(())
        });
        let name = if signal == Signal::Term {
            "SIGTERM"
        } else {
            "SIGHUP"
        };
        poll_until("the chat to say why it stopped", || {
            pty.output_contains(name.as_bytes()).then_some(())
        });
        drop(pty.master);
    }
}
