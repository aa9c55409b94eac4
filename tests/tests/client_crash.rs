//! A reader killed between storing a message and acking it: `hush read` (the built binary) is
//! SIGKILLed by the relay itself, from inside its ack handler, at the n-th ack of a round (n
//! chosen at random), either before the relay applies that ack (the envelope stays queued and
//! comes again) or right after (only the reply is lost). At that moment the client has stored
//! the message and is waiting for the relay's answer, and has printed none of the round's
//! messages. Across all the readers, killed or not, every message is shown exactly once:
//! nothing lost, nothing shown twice, and Bob's history holds each message once.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hush_server::store::memory::MemoryStore;
use hush_server::ManualClock;
use hush_tests::cli::{built, history_texts, introduce, poll_until, HushHome};
use hush_tests::intercept::{Call, Flow, Hooks, Intercept};
use hush_tests::{TestRelay, DEADLINE, START_SECS};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

/// Rounds of "send a batch, start a reader, kill it".
const ROUNDS: usize = 8;
/// Messages per round.
const BATCH: usize = 4;

/// When to kill the reader: at the `at`-th ack counted since arming, before or after applying it.
#[derive(Default)]
struct Plan {
    pid: Option<i32>,
    at: usize,
    apply_first: bool,
    acks: usize,
    killed: bool,
}

/// Ack hooks that kill the reader at a planned point.
#[derive(Default)]
struct KillOnAck {
    plan: Mutex<Plan>,
}

impl KillOnAck {
    fn arm(&self, pid: u32, at: usize, apply_first: bool) {
        *self.plan.lock().unwrap() = Plan {
            pid: Some(i32::try_from(pid).unwrap()),
            at,
            apply_first,
            acks: 0,
            killed: false,
        };
    }

    fn disarm(&self) -> bool {
        let mut plan = self.plan.lock().unwrap();
        plan.pid = None;
        plan.killed
    }

    /// Counts an ack; kills the reader if this is the planned one. Returns whether to apply it.
    fn on_ack(&self, before_apply: bool) -> bool {
        let mut plan = self.plan.lock().unwrap();
        let Some(pid) = plan.pid else {
            return true;
        };
        if before_apply {
            plan.acks += 1;
        }
        if plan.acks != plan.at || plan.apply_first == before_apply {
            return true;
        }
        let pid = rustix::process::Pid::from_raw(pid).unwrap();
        rustix::process::kill_process(pid, rustix::process::Signal::Kill).unwrap();
        plan.pid = None;
        plan.killed = true;
        // Killed before applying: the relay never records this ack.
        !before_apply
    }
}

impl Hooks<MemoryStore> for KillOnAck {
    async fn before(&self, _: &MemoryStore, call: &Call) -> Flow {
        match call {
            // Not applied: the ack answers "not pending", as the store would for a lost one.
            Call::Ack(..) if !self.on_ack(true) => Flow::Skip,
            _ => Flow::Go,
        }
    }

    async fn after(&self, _: &MemoryStore, call: &Call, _: bool) {
        if let Call::Ack(..) = call {
            self.on_ack(false);
        }
    }
}

/// `hush --home HOME read --json`, started in the background.
fn spawn_read(home: &HushHome) -> Child {
    let mut cmd = Command::new(built("hush"));
    cmd.arg("--home")
        .arg(home.path())
        .args(["read", "--json"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for key in ["HUSH_HOME", "HUSH_PASSPHRASE", "RUST_LOG"] {
        cmd.env_remove(key);
    }
    cmd.spawn().expect("spawn hush read")
}

/// Waits for the child to end (killed or not), failing the test after [`DEADLINE`]. Returns
/// whether it was killed, and the texts of the messages it printed.
fn finish(mut child: Child) -> (bool, Vec<String>) {
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(started.elapsed() < DEADLINE, "hush read never ended");
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    (status.signal() == Some(9), message_texts(&out))
}

fn message_texts(json_lines: &str) -> Vec<String> {
    json_lines
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["type"] == "message")
        .map(|v| v["text"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_reader_killed_between_storing_and_acking_shows_every_message_once() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let store = Intercept::new(MemoryStore::new(), KillOnAck::default());
    let relay = {
        let _in_runtime = runtime.enter();
        TestRelay::start_on(
            store.clone(),
            Arc::new(tempfile::tempdir().unwrap()),
            ManualClock::at_secs(START_SECS),
            |_| {},
        )
    };
    let address = relay.handle.address().to_string();
    let (alice, bob) = (HushHome::new(), HushHome::new());
    alice.init("alice", &address);
    bob.init("bob", &address);
    introduce(&alice, "bob", &bob, "alice");

    let mut rng = ChaCha20Rng::seed_from_u64(0x6b11);
    let (mut sent, mut printed, mut kills) = (Vec::new(), Vec::new(), 0);
    for round in 0..ROUNDS {
        for i in 0..BATCH {
            let text = format!("round {round} message {i}");
            alice.hush(&["send", "bob", &text]).ok();
            sent.push(text);
        }
        // The last round kills after the last ack: everything stored, nothing printed.
        let at = if round == ROUNDS - 1 {
            BATCH
        } else {
            rng.gen_range(1..=BATCH)
        };
        let apply_first = round % 2 == 1;
        let child = spawn_read(&bob);
        store.hooks().arm(child.id(), at, apply_first);
        let (killed, texts) = finish(child);
        assert_eq!(killed, store.hooks().disarm(), "round {round}");
        // A killed reader may have shown, before receiving, what an earlier one stored.
        kills += usize::from(killed);
        printed.extend(texts);
    }
    assert!(
        kills >= ROUNDS - 1,
        "only {kills} of {ROUNDS} readers were killed"
    );

    // Readers that run to the end show what the killed ones stored and what they left queued.
    poll_until("every message to be shown", || {
        let run = bob.hush(&["read", "--json"]).ok();
        printed.extend(message_texts(&run.stdout));
        sent.iter().all(|t| printed.contains(t)).then_some(())
    });
    let again = bob.hush(&["read", "--json"]).ok();
    printed.extend(message_texts(&again.stdout));

    let mut shown: BTreeMap<&str, usize> = BTreeMap::new();
    for t in &printed {
        *shown.entry(t.as_str()).or_default() += 1;
    }
    for t in &sent {
        assert_eq!(shown.get(t.as_str()), Some(&1), "{t:?} shown {shown:?}");
    }
    assert_eq!(shown.len(), sent.len(), "nothing else was shown: {shown:?}");
    let mut history = history_texts(&bob, "alice");
    history.sort();
    sent.sort();
    assert_eq!(history, sent, "Bob's history holds each message once");
    runtime.block_on(relay.stop());
}
