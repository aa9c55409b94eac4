//! Shared fixtures for the `Client` tests: relays on 127.0.0.1 port 0, homes in temporary
//! directories, and waiting on events with a deadline instead of sleeping.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::path::Path;
use std::time::Duration;

use hush_client::conversation::MessageId;
use hush_client::net::RetryPolicy;
use hush_client::store::KeySource;
use hush_client::{Client, ClientEvent, ClientOptions, Clock, MessageView};
use hush_protocol::RelayAddress;
use hush_server::store::memory::MemoryStore;
use hush_server::store::sled_store::SledStore;
use hush_server::store::QueueStore;
use hush_server::{Relay, RelayConfig, RelayHandle};

/// The longest any test waits for something to happen.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// A relay on loopback and its data directory.
pub struct TestRelay<S: QueueStore = MemoryStore> {
    pub handle: RelayHandle<S>,
    pub dir: tempfile::TempDir,
}

pub fn relay() -> TestRelay {
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::bind(RelayConfig::loopback(dir.path()), MemoryStore::new()).unwrap();
    TestRelay {
        handle: relay.spawn(),
        dir,
    }
}

pub fn sled_relay() -> TestRelay<SledStore> {
    sled_relay_in(tempfile::tempdir().unwrap(), None)
}

/// A sled relay on `dir` (its certificate and queues), listening on `listen` or a fresh port.
pub fn sled_relay_in(
    dir: tempfile::TempDir,
    listen: Option<std::net::SocketAddr>,
) -> TestRelay<SledStore> {
    let store = SledStore::open(&dir.path().join("queues")).unwrap();
    let mut config = RelayConfig::loopback(dir.path());
    if let Some(addr) = listen {
        config.listen = addr;
    }
    let relay = Relay::bind(config, store).unwrap();
    TestRelay {
        handle: relay.spawn(),
        dir,
    }
}

impl<S: QueueStore> TestRelay<S> {
    pub fn address(&self) -> RelayAddress {
        self.handle.address().clone()
    }
}

/// Fails fast on unreachable relays: two attempts, short timeouts.
pub fn options() -> ClientOptions {
    ClientOptions::with_retry(
        RetryPolicy::new(2, Duration::from_secs(2))
            .with_delays(Duration::from_millis(50), Duration::from_millis(100)),
    )
}

pub async fn init(home: &Path, name: &str, relay: RelayAddress) -> Client {
    init_clocked(home, name, relay, Clock::system()).await
}

pub async fn init_clocked(home: &Path, name: &str, relay: RelayAddress, clock: Clock) -> Client {
    let options = options().with_clock(clock);
    Client::init_with(home, name, relay, KeySource::KeyFile, options)
        .await
        .unwrap()
}

pub async fn reopen(home: &Path) -> Client {
    reopen_clocked(home, Clock::system()).await
}

pub async fn reopen_clocked(home: &Path, clock: Clock) -> Client {
    Client::open_with(home, KeySource::KeyFile, options().with_clock(clock))
        .await
        .unwrap()
}

/// Two homes with contacts: `alice` invites, `bob` accepts, and Alice's receive completes it.
/// Alice calls Bob "bob" and Bob calls Alice "alice".
pub async fn pair(
    alice_relay: RelayAddress,
    bob_relay: RelayAddress,
) -> (Client, Client, tempfile::TempDir, tempfile::TempDir) {
    pair_clocked(alice_relay, bob_relay, Clock::system()).await
}

/// As [`pair`], both clients reading `clock`.
pub async fn pair_clocked(
    alice_relay: RelayAddress,
    bob_relay: RelayAddress,
    clock: Clock,
) -> (Client, Client, tempfile::TempDir, tempfile::TempDir) {
    let (ha, hb) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let alice = init_clocked(&ha.path().join("home"), "alice", alice_relay, clock.clone()).await;
    let bob = init_clocked(&hb.path().join("home"), "bob", bob_relay, clock).await;
    let token = alice.invite("bob").await.unwrap();
    bob.accept(&token, "alice").await.unwrap();
    let events = until(&alice, |e| matches!(e, ClientEvent::ContactJoined { .. })).await;
    assert!(events.iter().any(|e| e
        == &ClientEvent::ContactJoined {
            contact: "bob".into()
        }));
    (alice, bob, ha, hb)
}

/// Receives until an event matches, failing the test at the deadline. Returns every event seen.
pub async fn until(client: &Client, want: impl Fn(&ClientEvent) -> bool) -> Vec<ClientEvent> {
    let end = tokio::time::Instant::now() + DEADLINE;
    let mut all = Vec::new();
    loop {
        let left = end.saturating_duration_since(tokio::time::Instant::now());
        assert!(!left.is_zero(), "deadline passed; events so far: {all:?}");
        let events = client.receive(None, Some(left)).await.unwrap();
        let done = events.iter().any(&want);
        all.extend(events);
        if done {
            return all;
        }
    }
}

/// Receives until a message arrives from `contact`, and returns it.
pub async fn message_from(client: &Client, contact: &str) -> MessageView {
    let events = until(
        client,
        |e| matches!(e, ClientEvent::Message { contact: c, .. } if c == contact),
    )
    .await;
    events
        .into_iter()
        .find_map(|e| match e {
            ClientEvent::Message {
                contact: c,
                message,
            } if c == contact => Some(message),
            _ => None,
        })
        .unwrap()
}

/// Ticks until message `id` of `contact` has expired, failing at the deadline.
pub async fn expired(client: &Client, contact: &str, id: MessageId) {
    let end = std::time::Instant::now() + DEADLINE;
    loop {
        client.tick().await.unwrap();
        if !client
            .history(contact)
            .await
            .unwrap()
            .iter()
            .any(|m| m.id == id)
        {
            return;
        }
        assert!(std::time::Instant::now() < end, "message never expired");
        // Waits for the clock to move on: expiry is in whole seconds of wall time.
        let next = client.next_deadline().await;
        let pause = next
            .and_then(|t| t.duration_since(std::time::SystemTime::now()).ok())
            .unwrap_or(Duration::from_millis(50))
            .min(Duration::from_millis(500));
        tokio::time::sleep(pause.max(Duration::from_millis(10))).await;
    }
}

/// Whether `needle` occurs anywhere in the files under `dir`.
pub fn dir_contains(dir: &Path, needle: &[u8]) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if dir_contains(&path, needle) {
                return true;
            }
        } else if let Ok(bytes) = std::fs::read(&path) {
            if bytes.windows(needle.len()).any(|w| w == needle) {
                return true;
            }
        }
    }
    false
}
