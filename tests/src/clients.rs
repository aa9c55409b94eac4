//! Fixtures for tests of whole `Client`s against a real relay: relays on the wall clock (the
//! clients read it too), homes in temporary directories, a contact pair, and waiting on
//! events with a deadline instead of sleeping.
//!
//! What it does not do: drive the `hush` binary (that is [`crate::cli`]) or speak the relay
//! protocol by hand (that is [`crate::hostile`]).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hush_client::conversation::MessageId;
use hush_client::net::RetryPolicy;
use hush_client::store::KeySource;
use hush_client::{Client, ClientEvent, ClientOptions, Clock, MessageView};
use hush_protocol::RelayAddress;
use hush_server::store::memory::MemoryStore;
use hush_server::store::sled_store::SledStore;

pub use crate::forensic::{self, Pattern};
pub use crate::{TestRelay, DEADLINE};

/// A relay on a fresh in-memory store, reading the wall clock.
pub fn relay() -> TestRelay {
    let dir = Arc::new(tempfile::tempdir().expect("tempdir"));
    TestRelay::wall_clock_on(MemoryStore::new(), dir, |_| {})
}

/// A relay on a fresh sled store, reading the wall clock.
pub fn sled_relay() -> TestRelay<SledStore> {
    sled_relay_in(Arc::new(tempfile::tempdir().expect("tempdir")), None)
}

/// A sled relay on `dir` (its certificate and queues), listening on `listen` or a fresh port.
pub fn sled_relay_in(
    dir: Arc<tempfile::TempDir>,
    listen: Option<std::net::SocketAddr>,
) -> TestRelay<SledStore> {
    let store = SledStore::open(&dir.path().join("queues")).expect("open the sled store");
    TestRelay::wall_clock_on(store, dir, |config| {
        if let Some(addr) = listen {
            config.listen = addr;
        }
    })
}

/// Fails fast on unreachable relays: two attempts, short timeouts.
pub fn options() -> ClientOptions {
    ClientOptions::with_retry(
        RetryPolicy::new(2, Duration::from_secs(2))
            .with_delays(Duration::from_millis(50), Duration::from_millis(100)),
    )
}

/// A new home at `home` for `name`, its queue on `relay`, key in a key file.
pub async fn init(home: &Path, name: &str, relay: RelayAddress) -> Client {
    init_clocked(home, name, relay, Clock::system()).await
}

/// As [`init`], the client reading `clock`.
pub async fn init_clocked(home: &Path, name: &str, relay: RelayAddress, clock: Clock) -> Client {
    let options = options().with_clock(clock);
    Client::init_with(home, name, relay, KeySource::KeyFile, options)
        .await
        .unwrap()
}

/// Opens the existing home at `home`.
pub async fn reopen(home: &Path) -> Client {
    reopen_clocked(home, Clock::system()).await
}

/// As [`reopen`], the client reading `clock`.
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

/// `a` invites `b`, calling them `b_name`; `b` accepts, calling `a` `a_name`; returns once `a`
/// has seen `b` join.
pub async fn connect(a: &Client, b_name: &str, b: &Client, a_name: &str) {
    let token = a.invite(b_name).await.unwrap();
    b.accept(&token, a_name).await.unwrap();
    until(
        a,
        |e| matches!(e, ClientEvent::ContactJoined { contact } if contact == b_name),
    )
    .await;
}

/// The names of `client`'s contacts.
pub async fn contact_names(client: &Client) -> Vec<String> {
    client
        .contacts()
        .await
        .into_iter()
        .map(|c| c.name)
        .collect()
}
