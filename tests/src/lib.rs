//! hush-tests: end-to-end tests that run real relays and real clients over loopback QUIC.
//!
//! This library holds the shared fixtures: a relay on `127.0.0.1:0` (with a clock the test
//! controls, or the wall clock for tests of whole clients), fresh keys and capabilities, and
//! awaiting a push with a deadline instead of sleeping. [`clients`] drives whole `Client`s,
//! [`intercept`] wraps a queue store with hooks, [`monitor`] scrapes a relay's metrics,
//! [`nats`] starts a NATS JetStream cluster, and [`forensic`] searches directories for bytes
//! that must be gone. The tests themselves live in `tests/`; tests that need no relay
//! stay in the crate they test.

pub mod attacker;
pub mod blobs;
pub mod cli;
pub mod clients;
pub mod fuzzing;
pub mod hostile;
pub mod intercept;
pub mod monitor;
pub mod nats;
pub mod recording;
pub mod socks5;

pub use hush_vault::forensic;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use hush_client::net::RelayClient;
use hush_protocol::RelayAddress;
use hush_protocol::{Push, SendCapability};
use hush_server::store::memory::MemoryStore;
use hush_server::store::QueueStore;
use hush_server::{ManualClock, Relay, RelayConfig, RelayHandle};
use rand::rngs::OsRng;
use rand::RngCore;

/// The longest any test waits for an event before failing.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// The time the test clock starts at (Unix seconds).
pub const START_SECS: u64 = 1_800_000_000;

/// A relay on loopback and its own data directory, reading a manual clock or the wall clock.
pub struct TestRelay<S: QueueStore = MemoryStore> {
    /// The running relay.
    pub handle: RelayHandle<S>,
    /// The clock the relay reads, unless it reads the wall clock.
    clock: Option<ManualClock>,
    /// Holds the data directory until the test ends.
    pub dir: Arc<tempfile::TempDir>,
}

impl TestRelay<MemoryStore> {
    /// A relay on a fresh in-memory store, configured by `tune`.
    pub fn start(tune: impl FnOnce(&mut RelayConfig)) -> Self {
        let dir = Arc::new(tempfile::tempdir().expect("tempdir"));
        Self::start_on(
            MemoryStore::new(),
            dir,
            ManualClock::at_secs(START_SECS),
            tune,
        )
    }
}

impl<S: QueueStore> TestRelay<S> {
    /// A relay on `store`, keeping its certificate in `dir`.
    pub fn start_on(
        store: S,
        dir: Arc<tempfile::TempDir>,
        clock: ManualClock,
        tune: impl FnOnce(&mut RelayConfig),
    ) -> Self {
        let mut config = RelayConfig::loopback(dir.path());
        tune(&mut config);
        let relay = Relay::bind_with_clock(config, store, Arc::new(clock.clone())).expect("bind");
        Self {
            handle: relay.spawn(),
            clock: Some(clock),
            dir,
        }
    }

    /// A relay on `store` reading the wall clock, as a deployed relay does, keeping its
    /// certificate in `dir`. Tests of whole clients use it: their clients read the wall clock
    /// too.
    pub fn wall_clock_on(
        store: S,
        dir: Arc<tempfile::TempDir>,
        tune: impl FnOnce(&mut RelayConfig),
    ) -> Self {
        let mut config = RelayConfig::loopback(dir.path());
        tune(&mut config);
        let relay = Relay::bind(config, store).expect("bind");
        Self {
            handle: relay.spawn(),
            clock: None,
            dir,
        }
    }

    /// A relay on `store` serving blobs from `blobs` (such as the JetStream blob backend),
    /// reading the wall clock, keeping its certificate in `dir`.
    pub fn wall_clock_with_blobs(
        store: S,
        blobs: hush_server::blob::Blobs,
        dir: Arc<tempfile::TempDir>,
        tune: impl FnOnce(&mut RelayConfig),
    ) -> Self {
        let mut config = RelayConfig::loopback(dir.path());
        tune(&mut config);
        let clock = Arc::new(hush_server::SystemClock);
        let relay = Relay::bind_with_blobs(config, store, blobs, clock).expect("bind");
        Self {
            handle: relay.spawn(),
            clock: None,
            dir,
        }
    }

    /// The clock the relay reads; advance it to expire things. Panics for a relay on the wall
    /// clock.
    pub fn clock(&self) -> &ManualClock {
        self.clock
            .as_ref()
            .expect("this relay reads the wall clock, not a manual one")
    }

    /// The address clients use: host, port and certificate fingerprint.
    pub fn address(&self) -> RelayAddress {
        self.handle.address().clone()
    }

    /// A new client connection to this relay.
    pub async fn client(&self) -> RelayClient {
        RelayClient::connect(self.handle.address())
            .await
            .expect("connect to test relay")
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Stops the relay gracefully.
    pub async fn stop(self) {
        self.handle.shutdown().await.expect("graceful shutdown");
    }
}

/// A fresh recipient key.
pub fn key() -> SigningKey {
    SigningKey::generate(&mut OsRng)
}

/// A fresh send capability.
pub fn cap() -> SendCapability {
    let mut b = [0u8; 32];
    OsRng.fill_bytes(&mut b);
    SendCapability::from_bytes(b)
}

/// The next push other than [`Push::Drained`], failing the test if none arrives before
/// [`DEADLINE`]. (`Drained` marks the end of a subscription's backlog; [`drained`] awaits it.)
pub async fn push(client: &RelayClient) -> Push {
    loop {
        match any_push(client).await {
            Push::Drained { .. } => continue,
            other => return other,
        }
    }
}

/// The next push of any kind, failing the test if none arrives before [`DEADLINE`].
pub async fn any_push(client: &RelayClient) -> Push {
    tokio::time::timeout(DEADLINE, client.next_push())
        .await
        .expect("no push before the deadline")
        .expect("connection closed while waiting for a push")
}

/// Awaits the `Drained` push of the subscription to `rid`, returning the envelope ids pushed
/// before it.
pub async fn drained(
    client: &RelayClient,
    rid: hush_protocol::RecipientId,
) -> Vec<hush_protocol::EnvelopeId> {
    let mut ids = Vec::new();
    loop {
        match any_push(client).await {
            Push::Drained { recipient_id } if recipient_id == rid => return ids,
            Push::Envelope {
                recipient_id,
                envelope_id,
                ..
            } if recipient_id == rid => ids.push(envelope_id),
            _ => {}
        }
    }
}

/// The body of the next push, which must be an envelope, and its id.
pub async fn envelope(client: &RelayClient) -> (hush_protocol::EnvelopeId, Vec<u8>) {
    match push(client).await {
        Push::Envelope {
            envelope_id, body, ..
        } => (envelope_id, body),
        other => panic!("expected an envelope, got {other:?}"),
    }
}

/// Where cargo put the workspace binaries: next to the test executable's directory.
pub fn bin_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let deps = exe.parent().expect("test binary directory");
    let dir = if deps.ends_with("deps") {
        deps.parent().expect("target profile directory")
    } else {
        deps
    };
    dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
}
