//! The `QueueStore` conformance suite, run from outside hush-server through its `testing`
//! feature, as a store backend in its own crate would run it.

use hush_server::store::conformance::run_all;
use hush_server::store::memory::MemoryStore;

#[tokio::test]
async fn a_store_outside_the_relay_crate_can_run_the_conformance_suite() {
    run_all(|| (MemoryStore::new(), ())).await;
}
