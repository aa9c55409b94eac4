//! The relay tells clients its limits (`Hello` → `Welcome`), and clients use them: the relay's
//! envelope lifetime for the hard expiry of unread messages, and its blob limit to refuse a
//! file before uploading any of it. Against a relay from before `Hello` (played by a current
//! relay told to answer it as they did), clients fall back to the protocol's defaults and
//! everything still works. Real relays and real clients over loopback QUIC.

use std::sync::Arc;

use hush_client::{Client, ClientError};
use hush_protocol::limits::{DEFAULT_MAX_TTL_SECS, MAX_ENVELOPE_LEN};
use hush_server::config::RelayConfig;
use hush_server::store::memory::MemoryStore;
use hush_tests::clients::{message_from, pair, relay, TestRelay};

const DAY: u64 = 24 * 60 * 60;

fn relay_with(tune: impl FnOnce(&mut RelayConfig)) -> TestRelay {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    TestRelay::wall_clock_on(MemoryStore::new(), dir, tune)
}

/// Whether any connection to `relay` carried a request of `kind`.
fn carried(relay: &TestRelay, kind: &str) -> bool {
    let log = relay.handle.connections().snapshot();
    log.values()
        .any(|r| r.carried.iter().any(|c| c.kind == kind))
}

/// Sends `to` a message with a one-minute timer from `from` (who call each other by the names
/// `pair` gives), and returns when the receiver's copy must be gone if never read, less the
/// time it was sent.
async fn unread_lifetime(to: &Client, from: &Client) -> u64 {
    let timer = Some(std::time::Duration::from_secs(60));
    from.send_text(to.name(), "read me", timer, false)
        .await
        .unwrap();
    let got = message_from(to, from.name()).await;
    let start = got.sent_at.min(got.received_at);
    got.expires_at.expect("a timed message expires") - start
}

#[tokio::test]
async fn a_relay_announces_its_limits() {
    let relay = relay_with(|c| {
        c.max_ttl = std::time::Duration::from_secs(DAY);
        c.max_envelope_len = 4096;
        c.queue_max_messages = 7;
        c.queue_max_bytes = 70_000;
        c.blob_max_bytes = 123_456;
        c.blob_ttl = std::time::Duration::from_secs(3600);
    });
    let info = relay.client().await.hello(None).await.unwrap().unwrap();
    assert_eq!(info.max_ttl_secs, DAY);
    assert_eq!(info.max_envelope_len, 4096);
    assert_eq!(info.queue_max_messages, 7);
    assert_eq!(info.queue_max_bytes, 70_000);
    assert_eq!(info.blob_max_bytes, 123_456);
    assert_eq!(info.blob_ttl_secs, 3600);
    assert!(info.may_create);
    let defaults = relay_with(|_| {});
    let info = defaults.client().await.hello(None).await.unwrap().unwrap();
    assert_eq!(info.max_ttl_secs, DEFAULT_MAX_TTL_SECS);
    assert_eq!(info.max_envelope_len as usize, MAX_ENVELOPE_LEN);
}

#[tokio::test]
async fn unread_messages_expire_with_the_receiving_relays_lifetime() {
    let alices = relay_with(|c| c.max_ttl = std::time::Duration::from_secs(DAY));
    let bobs = relay();
    let (alice, bob, _ha, _hb) = pair(alices.address(), bobs.address()).await;
    // Alice receives on a relay that keeps envelopes one day; Bob on one that keeps them seven.
    assert_eq!(unread_lifetime(&alice, &bob).await, DAY);
    assert_eq!(unread_lifetime(&bob, &alice).await, DEFAULT_MAX_TTL_SECS);
    // What Alice learned outlives the process.
    let home = alice.home().to_owned();
    alice.close().await;
    let alice = hush_tests::clients::reopen(&home).await;
    assert_eq!(unread_lifetime(&alice, &bob).await, DAY);
}

#[tokio::test]
async fn a_client_falls_back_to_the_defaults_with_a_relay_from_before_hello() {
    let alices = relay_with(|c| {
        c.max_ttl = std::time::Duration::from_secs(DAY);
        c.blob_max_bytes = 100_000;
    });
    alices.handle.act_before_hello();
    assert_eq!(alices.client().await.hello(None).await, Ok(None));
    let bobs = relay();
    // Queues are created, and messages flow, as before.
    let (alice, bob, _ha, hb) = pair(alices.address(), bobs.address()).await;
    assert_eq!(unread_lifetime(&alice, &bob).await, DEFAULT_MAX_TTL_SECS);
    // No blob limit announced: the relay's own refusal still makes the same error.
    let alices_file = hb.path().join("for-bob.bin");
    std::fs::write(&alices_file, vec![7u8; 200_000]).unwrap();
    alices.handle.connections().start();
    let err = alice
        .send_file("bob", &alices_file, None, false, &|_| {})
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClientError::FileTooLarge { max: None, .. }),
        "{err:?}"
    );
    assert!(carried(&alices, "blob_create"), "the relay was asked");
}

#[tokio::test]
async fn a_file_over_the_relays_blob_limit_is_refused_before_any_upload() {
    let alices = relay_with(|c| c.blob_max_bytes = 100_000);
    let bobs = relay();
    let (alice, _bob, ha, _hb) = pair(alices.address(), bobs.address()).await;
    alices.handle.connections().start();
    let big = ha.path().join("big.bin");
    std::fs::write(&big, vec![7u8; 200_000]).unwrap();
    let err = alice
        .send_file("bob", &big, None, false, &|_| {})
        .await
        .unwrap_err();
    match &err {
        ClientError::FileTooLarge { size, max } => {
            assert_eq!((*size, *max), (200_000, Some(100_000)));
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("100000 bytes at most"), "{err}");
    assert!(carried(&alices, "hello"));
    assert!(!carried(&alices, "blob_create"), "nothing was reserved");
    // A file under the limit goes, and the same log sees its blob created.
    let small = ha.path().join("small.bin");
    std::fs::write(&small, vec![7u8; 1_000]).unwrap();
    alice
        .send_file("bob", &small, None, false, &|_| {})
        .await
        .unwrap();
    assert!(carried(&alices, "blob_create"));
}
