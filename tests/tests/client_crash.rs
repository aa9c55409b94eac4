//! A reader killed between storing a message and acking it: `hush read` (the built binary) is
//! SIGKILLed by the relay itself, from inside its ack handler, at the n-th ack of a round (n
//! chosen at random), either before the relay applies that ack (the envelope stays queued and
//! comes again) or right after (only the reply is lost). At that moment the client has stored
//! the message and is waiting for the relay's answer, and has printed none of the round's
//! messages. Across all the readers, killed or not, every message is shown exactly once:
//! nothing lost, nothing shown twice, and Bob's history holds each message once.

use std::collections::BTreeMap;
use std::future::Future;
use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hush_protocol::{EnvelopeId, RecipientId, SenderId};
use hush_server::store::memory::MemoryStore;
use hush_server::store::{
    CapHash, NewEnvelope, QueueRecord, QueueStore, Quota, StoreError, StoredEnvelope, SweepStats,
    Wakeup,
};
use hush_server::ManualClock;
use hush_tests::cli::{built, history_texts, introduce, poll_until, HushHome};
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

/// A [`MemoryStore`] whose ack handler kills the reader at a planned point.
#[derive(Clone, Default)]
struct KillOnAck {
    inner: MemoryStore,
    plan: Arc<Mutex<Plan>>,
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

impl QueueStore for KillOnAck {
    fn create_queue(
        &self,
        queue: QueueRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.inner.create_queue(queue)
    }

    fn queue(
        &self,
        recipient: RecipientId,
    ) -> impl Future<Output = Result<Option<QueueRecord>, StoreError>> + Send {
        self.inner.queue(recipient)
    }

    fn send(
        &self,
        sender: SenderId,
        cap_hash: CapHash,
        envelope: NewEnvelope,
        new_cap_hash: Option<CapHash>,
        quota: Quota,
        now: u64,
    ) -> impl Future<Output = Result<RecipientId, StoreError>> + Send {
        self.inner
            .send(sender, cap_hash, envelope, new_cap_hash, quota, now)
    }

    fn retract(
        &self,
        sender: SenderId,
        cap_hash: CapHash,
        envelope: EnvelopeId,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        self.inner.retract(sender, cap_hash, envelope)
    }

    fn pending(
        &self,
        recipient: RecipientId,
        from_seq: u64,
        limit: usize,
        now: u64,
    ) -> impl Future<Output = Result<Vec<StoredEnvelope>, StoreError>> + Send {
        self.inner.pending(recipient, from_seq, limit, now)
    }

    async fn ack(
        &self,
        recipient: RecipientId,
        envelope: EnvelopeId,
        now: u64,
    ) -> Result<bool, StoreError> {
        if !self.on_ack(true) {
            return Ok(false);
        }
        let applied = self.inner.ack(recipient, envelope, now).await;
        self.on_ack(false);
        applied
    }

    fn set_send_cap(
        &self,
        recipient: RecipientId,
        new_cap_hash: CapHash,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.inner.set_send_cap(recipient, new_cap_hash)
    }

    fn touch(
        &self,
        recipient: RecipientId,
        now: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.inner.touch(recipient, now)
    }

    fn delete_queue(
        &self,
        recipient: RecipientId,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        self.inner.delete_queue(recipient)
    }

    fn sweep(
        &self,
        now: u64,
        idle_after: u64,
    ) -> impl Future<Output = Result<SweepStats, StoreError>> + Send {
        self.inner.sweep(now, idle_after)
    }

    fn watch(&self, recipient: RecipientId) -> Wakeup {
        self.inner.watch(recipient)
    }

    fn flush(&self) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.inner.flush()
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
    let store = KillOnAck::default();
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
        store.arm(child.id(), at, apply_first);
        let (killed, texts) = finish(child);
        assert_eq!(killed, store.disarm(), "round {round}");
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
