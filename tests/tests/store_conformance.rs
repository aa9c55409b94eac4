//! The `QueueStore` conformance suite, run from outside hush-server through its `testing`
//! feature, as a store backend in its own crate would run it: on the memory store, and on the
//! JetStream store over a 3-node NATS cluster that the test starts on loopback.

use std::sync::atomic::{AtomicUsize, Ordering};

use hush_server::store::conformance::run_all;
use hush_server::store::jetstream::{JetStreamConfig, JetStreamStore};
use hush_server::store::memory::MemoryStore;
use hush_tests::nats::NatsCluster;

#[tokio::test]
async fn a_store_outside_the_relay_crate_can_run_the_conformance_suite() {
    run_all(|| (MemoryStore::new(), ())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jetstream_store_conforms_on_a_three_node_cluster() {
    let cluster = NatsCluster::start(3);
    let urls = cluster.urls();
    let cases = AtomicUsize::new(0);
    // Each case gets fresh, empty streams under its own prefix, replicated three times.
    run_all(|| {
        let mut config = JetStreamConfig::new(urls.clone());
        config.prefix = format!("case{}", cases.fetch_add(1, Ordering::Relaxed));
        let open = JetStreamStore::open(&config);
        let handle = tokio::runtime::Handle::current();
        let store = tokio::task::block_in_place(|| handle.block_on(open)).expect("open store");
        (store, ())
    })
    .await;
    drop(cluster);
}
