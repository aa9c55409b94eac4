//! A relay whose disk fails: every write is refused with a typed `Storage` error and nothing is
//! acknowledged, the relay stays up and keeps reading, and once writes succeed again the same
//! clients carry on with nothing acknowledged lost.
//!
//! The failing disk is an `Intercept` wrapper around a real [`QueueStore`] whose hooks, while its
//! switch is on, fail every mutating call with [`StoreError::Backend`] before touching the
//! store, as an I/O error or a full disk would. It wraps the in-memory store and the sled store.
//!
//! A real full disk: the relay binary on a 16 MiB tmpfs. This needs the right to mount; where
//! mounting fails (no root, no CAP_SYS_ADMIN) those tests print why and pass without running.
//! They show that a full disk is refused with `Storage`, and that a restart once there is room
//! again loses nothing acknowledged. Recovery in place, without a restart, does not work yet:
//! after ENOSPC sled 0.34 either keeps returning the error or blocks its flush for good (an
//! ignored test shows it).
//!
//! Reads that fail: a subscription whose read of pending envelopes fails reads again after a
//! pause, so the envelope is pushed once reads work, without waiting for another send.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use hush_client::net::{RelayCallError, RelayClient};
use hush_protocol::{EnvelopeId, ErrorCode, Reply, Request, SendCapability, SenderId};
use hush_server::store::memory::MemoryStore;
use hush_server::store::sled_store::SledStore;
use hush_server::store::{QueueStore, StoreError};
use hush_server::ManualClock;
use hush_tests::hostile::process::ServerProcess;
use hush_tests::hostile::raw::StalledReader;
use hush_tests::intercept::{Call, Flow, Hooks, Intercept};
use hush_tests::monitor::{get, sample, scrape};
use hush_tests::{cap, drained, envelope, key, TestRelay, DEADLINE, START_SECS};

/// Envelopes waiting before the disk fails: 8 MiB, far more than the relay's outgoing queue and
/// the QUIC windows hold, so most are read from the store while it is failing.
const BACKLOG: u32 = 128;
/// Size of each backlog envelope.
const BACKLOG_BODY: usize = 64 * 1024;

/// A failing disk: while `failing` is on, every write fails before reaching the store.
#[derive(Default)]
struct Faults {
    failing: AtomicBool,
    /// Reads (`pending`) that ran while writes were failing.
    reads_while_failing: AtomicU64,
    /// While on, reads of pending envelopes fail too.
    failing_reads: AtomicBool,
    /// Reads of pending envelopes that failed.
    failed_reads: AtomicU64,
}

impl Faults {
    fn set_failing(&self, on: bool) {
        self.failing.store(on, Ordering::SeqCst);
    }
}

impl<S: QueueStore> Hooks<S> for Faults {
    async fn before(&self, _: &S, call: &Call) -> Flow {
        let failing = self.failing.load(Ordering::SeqCst);
        if let Call::Pending(_) = call {
            if self.failing_reads.load(Ordering::SeqCst) {
                self.failed_reads.fetch_add(1, Ordering::SeqCst);
                return Flow::Fail(StoreError::transient("injected: read error"));
            }
            if failing {
                self.reads_while_failing.fetch_add(1, Ordering::SeqCst);
            }
        }
        if failing && call.is_write() {
            return Flow::Fail(StoreError::transient("injected: no space left on device"));
        }
        Flow::Go
    }
}

/// A store whose writes fail while its switch is on. Clones share the store and the switch.
type FaultyStore<S> = Intercept<S, Faults>;

fn faulty<S: QueueStore>(inner: S) -> FaultyStore<S> {
    Intercept::new(inner, Faults::default())
}

const STORAGE: RelayCallError = RelayCallError::Relay(ErrorCode::Storage);

fn numbered(n: u32) -> Vec<u8> {
    let mut b = vec![0x5a; BACKLOG_BODY];
    b[..4].copy_from_slice(&n.to_be_bytes());
    b
}

/// The whole scenario, on any store.
async fn a_failing_disk_refuses_writes_and_recovers<S: QueueStore>(inner: S) {
    let store = faulty(inner);
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let clock = ManualClock::at_secs(START_SECS);
    let relay = TestRelay::start_on(store.clone(), dir, clock, |_| {});
    let (owner, sender, other) = (
        relay.client().await,
        relay.client().await,
        relay.client().await,
    );
    let (k, c) = (key(), cap());
    let (rid, sid) = owner.create_queue(&k, &c).await.unwrap();
    let (other_rid, other_sid) = owner.create_queue(&k, &c).await.unwrap();
    for n in 0..BACKLOG {
        sender.send(sid, &c, 600, None, numbered(n)).await.unwrap();
    }
    let retractable = sender
        .send(other_sid, &c, 600, None, b"retract me".to_vec())
        .await
        .unwrap();
    owner.subscribe(&k, other_rid).await.unwrap();
    assert_eq!(drained(&owner, other_rid).await, vec![retractable]);
    let mut stalled =
        StalledReader::subscribe(relay.handle.address(), relay.handle.local_addr(), &k, rid).await;
    let stalled_before = stalled.bodies.len();

    store.hooks().set_failing(true);
    // Every write is refused with a typed error, and nothing is acknowledged.
    assert_eq!(
        sender.send(sid, &c, 600, None, b"lost".to_vec()).await,
        Err(STORAGE)
    );
    assert_eq!(owner.create_queue(&k, &c).await, Err(STORAGE));
    assert_eq!(owner.ack(other_rid, retractable).await, Err(STORAGE));
    assert_eq!(
        sender.retract(other_sid, &c, retractable).await,
        Err(STORAGE)
    );
    assert_eq!(owner.resecure(&k, other_rid, &cap()).await, Err(STORAGE));
    assert_eq!(owner.delete_queue(&k, other_rid).await, Err(STORAGE));
    // A new subscription marks the queue active, which is a write: refused too.
    assert_eq!(other.subscribe(&k, other_rid).await, Err(STORAGE));
    // The relay is up, and the stalled subscription is fed from the store while it fails.
    assert_eq!(other.call(Request::Ping).await, Ok(Reply::Pong));
    stalled.read_bodies(BACKLOG as usize).await;
    assert!(
        store.hooks().reads_while_failing.load(Ordering::SeqCst) > 0,
        "the backlog ({stalled_before} pushed before the failure) was read while failing"
    );
    for (n, body) in (0..BACKLOG).zip(&stalled.bodies) {
        assert_eq!(body, &numbered(n), "backlog in order");
    }
    assert_eq!(stalled.bodies.len(), BACKLOG as usize);
    stalled.close();

    store.hooks().set_failing(false);
    // The same clients carry on: the ack and the send that failed now succeed.
    owner.ack(other_rid, retractable).await.unwrap();
    let after = sender
        .send(sid, &c, 600, None, b"after".to_vec())
        .await
        .unwrap();
    other.subscribe(&k, rid).await.unwrap();
    for n in 0..BACKLOG {
        assert_eq!(envelope(&other).await.1, numbered(n));
    }
    // The send refused during the failure was never stored: the next envelope is the new one.
    assert_eq!(envelope(&other).await, (after, b"after".to_vec()));
    // The acked envelope stays acked for a fresh subscription.
    let fresh = relay.client().await;
    fresh.subscribe(&k, other_rid).await.unwrap();
    assert!(drained(&fresh, other_rid).await.is_empty());
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_disk_under_the_memory_store() {
    a_failing_disk_refuses_writes_and_recovers(MemoryStore::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_disk_under_the_sled_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_sled(&dir.path().join("queues"));
    a_failing_disk_refuses_writes_and_recovers(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_envelope_whose_read_failed_is_pushed_once_reads_work() {
    let store = faulty(MemoryStore::new());
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let relay = TestRelay::start_on(store.clone(), dir, ManualClock::at_secs(START_SECS), |_| {});
    let (reader, sender) = (relay.client().await, relay.client().await);
    let (k, c) = (key(), cap());
    let (rid, sid) = reader.create_queue(&k, &c).await.unwrap();
    reader.subscribe(&k, rid).await.unwrap();
    assert!(drained(&reader, rid).await.is_empty());
    store.hooks().failing_reads.store(true, Ordering::SeqCst);
    let id = sender
        .send(sid, &c, 600, None, b"x".to_vec())
        .await
        .unwrap();
    // Wait (with a deadline) until the subscription has tried and failed to read it.
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while store.hooks().failed_reads.load(Ordering::SeqCst) == 0 {
        assert!(tokio::time::Instant::now() < deadline, "no read was tried");
        tokio::task::yield_now().await;
    }
    store.hooks().failing_reads.store(false, Ordering::SeqCst);
    // Reads work again: the envelope is pushed without another send.
    assert_eq!(envelope(&reader).await, (id, b"x".to_vec()));
    relay.stop().await;
}

fn open_sled(path: &Path) -> SledStore {
    SledStore::open(path).expect("open sled store")
}

/// A tmpfs mounted for one test, unmounted (lazily, so even while busy) on drop.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    /// Mounts a tmpfs of `size` bytes, or says why it cannot.
    fn mount(size: u64) -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .stderr(std::process::Stdio::piped())
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
        }
        Ok(Self { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Fills the disk under a relay process: sends 32 KiB envelopes until one is refused, which must
/// be a typed `Storage` error. Returns the acknowledged envelopes, in order.
async fn fill_until_refused(
    sender: &RelayClient,
    sid: SenderId,
    c: &SendCapability,
) -> Vec<(EnvelopeId, Vec<u8>)> {
    let mut sent = Vec::new();
    // Far more than 16 MiB if it were all accepted.
    for n in 0..1024u32 {
        let mut body = vec![0x77; 32 * 1024];
        body[..4].copy_from_slice(&n.to_be_bytes());
        let answer = tokio::time::timeout(DEADLINE, sender.send(sid, c, 600, None, body.clone()))
            .await
            .expect("a send on a full disk is answered");
        match answer {
            Ok(id) => sent.push((id, body)),
            Err(e) => {
                assert_eq!(e, STORAGE, "a full disk is a storage error");
                return sent;
            }
        }
    }
    panic!("the disk never filled up");
}

/// A relay process on a 16 MiB tmpfs holding 2 MiB of ballast, or why there is none.
struct FullDiskSetup {
    relay: ServerProcess,
    disk: SmallDisk,
    ballast: std::path::PathBuf,
}

fn full_disk_setup() -> Option<FullDiskSetup> {
    full_disk_setup_with(&[], None)
}

/// As [`full_disk_setup`], the relay started with `extra` flags and its log going to `log`.
fn full_disk_setup_with(
    extra: &[&str],
    log: Option<(&str, std::fs::File)>,
) -> Option<FullDiskSetup> {
    let disk = match SmallDisk::mount(16 * 1024 * 1024) {
        Ok(d) => d,
        Err(why) => {
            eprintln!("skipped: a full disk needs a tmpfs mount, which failed here: {why}");
            return None;
        }
    };
    // Ballast to delete later, so that the full disk gets room again.
    let ballast = disk.path().join("ballast");
    std::fs::write(&ballast, vec![0u8; 2 * 1024 * 1024]).unwrap();
    let data = disk.path().join("relay");
    let relay = ServerProcess::start_logging(&data, "127.0.0.1:0", extra, log);
    Some(FullDiskSetup {
        relay,
        disk,
        ballast,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_sends_and_a_restart_with_room_loses_nothing() {
    let Some(FullDiskSetup {
        relay,
        disk,
        ballast,
    }) = full_disk_setup()
    else {
        return;
    };
    let (owner, sender) = (relay.client().await, relay.client().await);
    let (k, c) = (key(), cap());
    let (rid, sid) = owner.create_queue(&k, &c).await.unwrap();
    let sent = fill_until_refused(&sender, sid, &c).await;
    eprintln!("full disk: {} sends acknowledged, then refused", sent.len());
    assert!(!sent.is_empty());
    // While the disk stays full, every send is refused the same way, and the relay answers.
    for _ in 0..3 {
        let again = tokio::time::timeout(DEADLINE, sender.send(sid, &c, 600, None, vec![1; 1024]))
            .await
            .expect("a send on a full disk is answered");
        assert_eq!(again, Err(STORAGE));
    }
    assert_eq!(sender.call(Request::Ping).await, Ok(Reply::Pong));

    // Room again, and a restart (the store does not recover from a full disk in place; see
    // `a_full_disk_recovers_in_place`).
    std::fs::remove_file(&ballast).unwrap();
    let listen = relay.listen_addr();
    relay.sigkill();
    drop((owner, sender));
    let relay = ServerProcess::start(&disk.path().join("relay"), &listen, &[]);
    let client = relay.client().await;
    client.subscribe(&k, rid).await.unwrap();
    let mut got = Vec::new();
    while got.len() < sent.len() {
        got.push(envelope(&client).await);
    }
    assert_eq!(got, sent, "everything acknowledged, in order");
    // The refused send was not stored: the next envelope is a new one.
    let after = client
        .send(sid, &c, 600, None, b"after".to_vec())
        .await
        .expect("a send once the disk has room");
    assert_eq!(envelope(&client).await, (after, b"after".to_vec()));
    drop(relay);
    drop(disk);
}

/// The monitoring address a relay logged at start, read from its log file at `path`.
async fn logged_metrics_addr(path: &Path) -> std::net::SocketAddr {
    let end = tokio::time::Instant::now() + DEADLINE;
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let line = text
            .lines()
            .find(|l| l.contains("metrics and health check listening"));
        if let Some(addr) = line.and_then(|l| l.split("addr=").nth(1)) {
            let addr = addr.split_whitespace().next().unwrap_or_default();
            return addr.parse().expect("a socket address in the log");
        }
        assert!(
            tokio::time::Instant::now() < end,
            "no metrics address logged:\n{text}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_answers_503_once_the_disk_is_full() {
    let logs = tempfile::tempdir().unwrap();
    let log_path = logs.path().join("relay.log");
    let log = Some(("info", std::fs::File::create(&log_path).unwrap()));
    let Some(FullDiskSetup { relay, disk, .. }) =
        full_disk_setup_with(&["--metrics", "127.0.0.1:0"], log)
    else {
        return;
    };
    let addr = logged_metrics_addr(&log_path).await;
    assert_eq!(get(addr, "/healthz").await.status, 200);
    let sender = relay.client().await;
    let (k, c) = (key(), cap());
    let (_, sid) = sender.create_queue(&k, &c).await.unwrap();
    fill_until_refused(&sender, sid, &c).await;
    // A real full disk: the probe's write, or the store's flush, fails (or hangs past the
    // probe's timeout), and the check says so while the relay keeps answering.
    assert_eq!(get(addr, "/healthz").await.status, 503);
    assert_eq!(sender.call(Request::Ping).await, Ok(Reply::Pong));
    let text = scrape(addr).await;
    let storage = sample(&text, "hush_request_errors_total{code=\"storage\"}");
    assert!(storage.is_some_and(|n| n >= 1.0), "{text}");
    drop(relay);
    drop(disk);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "known: after ENOSPC, sled 0.34 either keeps returning the error or blocks its \
            flush forever, so the relay needs a restart once the disk has room"]
async fn a_full_disk_recovers_in_place() {
    let Some(FullDiskSetup {
        relay,
        disk,
        ballast,
    }) = full_disk_setup()
    else {
        return;
    };
    let sender = relay.client().await;
    let (k, c) = (key(), cap());
    let (_, sid) = sender.create_queue(&k, &c).await.unwrap();
    fill_until_refused(&sender, sid, &c).await;
    std::fs::remove_file(&ballast).unwrap();
    let answer = tokio::time::timeout(DEADLINE, sender.send(sid, &c, 600, None, b"x".to_vec()))
        .await
        .expect("a send once the disk has room is answered");
    assert!(answer.is_ok(), "a send once the disk has room: {answer:?}");
    drop(relay);
    drop(disk);
}
