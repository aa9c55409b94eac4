//! A relay in the test's process that records the body of every envelope it queues: the
//! bodies are the markers a seizure of the relay's data directory must find while they are
//! pending, and not after (`attacker`). End-to-end tests drive the `hush` binary against it.

use std::future::{ready, Future};
use std::path::Path;
use std::sync::{Arc, Mutex};

use hush_server::store::sled_store::SledStore;

use crate::attacker::Markers;
use crate::intercept::{Call, Flow, Hooks, Intercept};
use crate::TestRelay;

/// Records the body of every envelope the relay queues.
#[derive(Default)]
pub struct Recorder {
    bodies: Mutex<Vec<Vec<u8>>>,
}

impl Hooks<SledStore> for Recorder {
    fn before(&self, _: &SledStore, call: &Call) -> impl Future<Output = Flow> + Send {
        if let Call::Send { envelope, .. } = call {
            self.bodies.lock().unwrap().push(envelope.body.clone());
        }
        ready(Flow::Go)
    }
}

/// A relay in this process on a sled store in its data directory, reading the wall clock.
pub struct RecordingRelay {
    relay: Option<TestRelay<Intercept<SledStore, Recorder>>>,
    /// The runtime it runs on, for a test's own async steps.
    pub rt: tokio::runtime::Runtime,
    /// The address clients use.
    pub address: String,
}

impl RecordingRelay {
    /// Starts one in a fresh data directory.
    pub fn start() -> RecordingRelay {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let dir = Arc::new(tempfile::tempdir().unwrap());
        let relay = {
            let _in = rt.enter();
            let store = SledStore::open(dir.path()).unwrap();
            TestRelay::wall_clock_on(Intercept::new(store, Recorder::default()), dir, |_| {})
        };
        let address = relay.address().to_string();
        RecordingRelay {
            relay: Some(relay),
            rt,
            address,
        }
    }

    /// The running relay.
    pub fn relay(&self) -> &TestRelay<Intercept<SledStore, Recorder>> {
        self.relay.as_ref().unwrap()
    }

    /// Its data directory.
    pub fn dir(&self) -> &Path {
        self.relay().data_dir()
    }

    /// How many envelopes it has queued so far.
    pub fn sent(&self) -> usize {
        self.relay()
            .handle
            .store()
            .hooks()
            .bodies
            .lock()
            .unwrap()
            .len()
    }

    /// The bodies of the envelopes queued since `since`, as markers.
    pub fn bodies_since(&self, since: usize, markers: Markers) -> Markers {
        let bodies = self.relay().handle.store().hooks().bodies.lock().unwrap()[since..].to_vec();
        assert!(!bodies.is_empty(), "nothing was queued");
        bodies.iter().enumerate().fold(markers, |m, (i, b)| {
            m.bytes(&format!("envelope body {i}"), b)
        })
    }
}

impl Drop for RecordingRelay {
    fn drop(&mut self) {
        if let Some(relay) = self.relay.take() {
            self.rt.block_on(relay.stop());
        }
    }
}
