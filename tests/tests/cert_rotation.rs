//! Certificate rotation end to end: `rotate-cert` on a running relay, clients that learn the
//! next certificate over their pinned connections and keep working after the switch with the
//! address they had, a new user with the printed address, a client that missed the grace
//! period, a relay restarted during it, and an announcement that cannot be forged.
//!
//! The relays read a manual clock started at the wall clock's time, so the switch happens when
//! the test moves it, at the relay's next sweep tick (every 20 ms here); tests poll for it with
//! a deadline.

use std::sync::Arc;
use std::time::Duration;

use hush_client::net::{Pins, RelayClient};
use hush_client::store::KeySource;
use hush_client::{Client, ClientError};
use hush_protocol::{CertRotation, RelayAddress, Reply, Request};
use hush_server::rotate;
use hush_server::store::sled_store::SledStore;
use hush_server::{Clock, ManualClock};
use hush_tests::clients::{message_from, options, until};
use hush_tests::{TestRelay, DEADLINE};

const GRACE: Duration = Duration::from_secs(3600);

fn wall_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A sled relay on `dir` reading `clock`, checking for a due rotation every 20 ms.
fn relay_on(
    dir: Arc<tempfile::TempDir>,
    clock: ManualClock,
    listen: Option<std::net::SocketAddr>,
) -> TestRelay<SledStore> {
    let store = SledStore::open(&dir.path().join("queues")).unwrap();
    TestRelay::start_on(store, dir, clock, |c| {
        c.sweep_interval = Duration::from_millis(20);
        if let Some(addr) = listen {
            c.listen = addr;
        }
    })
}

fn new_relay() -> TestRelay<SledStore> {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    relay_on(dir, ManualClock::at_secs(wall_secs()), None)
}

/// Makes the next certificate, switching after [`GRACE`] on the relay's clock, and waits until
/// the running relay announces it.
async fn rotate_running(relay: &TestRelay<SledStore>) -> CertRotation {
    let now = relay.clock().now_secs();
    let next = rotate::rotate(relay.data_dir(), GRACE, now, &["localhost".into()]).unwrap();
    eventually("the relay announces the rotation", || {
        relay.handle.pending_rotation() == Some(next)
    })
    .await;
    next
}

/// Moves the relay's clock past the switch and waits until it serves the next certificate.
async fn switch(relay: &TestRelay<SledStore>, next: &CertRotation) {
    relay.clock().advance(GRACE + Duration::from_secs(1));
    eventually("the relay serves the new certificate", || {
        relay.handle.serving_fingerprint() == next.fingerprint
    })
    .await;
}

async fn eventually(what: &str, cond: impl Fn() -> bool) {
    let end = tokio::time::Instant::now() + DEADLINE;
    while !cond() {
        assert!(tokio::time::Instant::now() < end, "deadline passed: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A client that asks its relay for a pending rotation every 50 ms while connected.
async fn init(home: &std::path::Path, name: &str, relay: RelayAddress) -> Client {
    let options = options().with_next_cert_recheck(Duration::from_millis(50));
    Client::init_with(home, name, relay, KeySource::KeyFile, options)
        .await
        .unwrap()
}

async fn reopen(home: &std::path::Path) -> Client {
    let options = options().with_next_cert_recheck(Duration::from_millis(50));
    Client::open_with(home, KeySource::KeyFile, options)
        .await
        .unwrap()
}

/// `inviter` invites, `joiner` accepts, and the inviter sees the contact join.
async fn introduce(inviter: &Client, joiner: &Client, inviter_name: &str, joiner_name: &str) {
    let token = inviter.invite(joiner_name).await.unwrap();
    joiner.accept(&token, inviter_name).await.unwrap();
    until(inviter, |e| {
        matches!(e, hush_client::ClientEvent::ContactJoined { .. })
    })
    .await;
}

#[tokio::test]
async fn clients_connected_during_the_grace_period_keep_working_after_the_switch() {
    let relay = new_relay();
    let old = relay.address();
    let (ha, hb) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let alice = init(&ha.path().join("home"), "alice", old.clone()).await;
    let bob = init(&hb.path().join("home"), "bob", old.clone()).await;
    introduce(&alice, &bob, "alice", "bob").await;

    let next = rotate_running(&relay).await;
    // Both learn the next certificate over the connections they already have.
    for client in [&alice, &bob] {
        let want = Pins {
            current: old.fingerprint,
            next: Some(next.fingerprint),
        };
        eventually("the client learns the next certificate", || {
            client.certificate_pins(&old) == want
        })
        .await;
    }
    alice.close().await;
    bob.close().await;
    switch(&relay, &next).await;

    // After the switch, with the address they always had (and what they stored), they connect
    // afresh and talk.
    let alice = reopen(&ha.path().join("home")).await;
    let bob = reopen(&hb.path().join("home")).await;
    assert_eq!(alice.relay(), &old);
    bob.send_text("alice", "after the switch", None, false)
        .await
        .unwrap();
    assert_eq!(
        message_from(&alice, "bob").await.body.unwrap().as_str(),
        "after the switch"
    );
    // Having seen the new certificate, they no longer accept the old one.
    let only_new = Pins {
        current: next.fingerprint,
        next: None,
    };
    assert_eq!(alice.certificate_pins(&old), only_new);
    assert_eq!(bob.certificate_pins(&old), only_new);
    alice.close().await;
    bob.close().await;
    relay.stop().await;
}

#[tokio::test]
async fn the_printed_address_works_for_new_users_from_the_switch_on() {
    let relay = new_relay();
    let old = relay.address();
    let next = rotate_running(&relay).await;
    let printed = RelayAddress {
        fingerprint: next.fingerprint,
        ..old.clone()
    };
    let (hc, hd) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let carol = init(&hc.path().join("home"), "carol", printed.clone()).await;
    // Before the switch the relay still serves the old certificate: the new address is refused
    // with the error that names the relay.
    match carol.invite("dave").await {
        Err(ClientError::CertificateChanged { relay }) => assert_eq!(relay, printed),
        other => panic!("expected CertificateChanged, got {other:?}"),
    }
    switch(&relay, &next).await;
    let dave = init(&hd.path().join("home"), "dave", printed.clone()).await;
    introduce(&carol, &dave, "carol", "dave").await;
    dave.send_text("carol", "hello", None, false).await.unwrap();
    assert_eq!(
        message_from(&carol, "dave").await.body.unwrap().as_str(),
        "hello"
    );
    carol.close().await;
    dave.close().await;
    relay.stop().await;
}

#[tokio::test]
async fn a_client_that_missed_the_grace_period_gets_a_clear_error() {
    let relay = new_relay();
    let old = relay.address();
    let he = tempfile::tempdir().unwrap();
    let erin = init(&he.path().join("home"), "erin", old.clone()).await;
    erin.invite("someone").await.unwrap();
    erin.close().await;
    // Erin is not running during the whole grace period.
    let next = rotate_running(&relay).await;
    switch(&relay, &next).await;

    let erin = reopen(&he.path().join("home")).await;
    let err = erin.invite("someone else").await.unwrap_err();
    assert!(
        matches!(&err, ClientError::CertificateChanged { relay } if relay == &old),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains(&old.to_string()), "{text}");
    assert!(
        text.contains("ask them for the relay's new address"),
        "{text}"
    );
    erin.close().await;
    relay.stop().await;
}

#[tokio::test]
async fn a_relay_restarted_during_the_grace_period_announces_then_switches_at_start() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let clock = ManualClock::at_secs(wall_secs());
    let relay = relay_on(dir.clone(), clock.clone(), None);
    let old = relay.address();
    let listen = relay.handle.local_addr();
    let next = rotate_running(&relay).await;
    relay.stop().await;

    // Restarted before the switch: it serves the old certificate and announces the new one,
    // also to a connection that asks by hand; an older client that never asks works as before.
    let relay = relay_on(dir.clone(), clock.clone(), Some(listen));
    assert_eq!(relay.handle.serving_fingerprint(), old.fingerprint);
    let raw = RelayClient::connect(&old).await.unwrap();
    assert_eq!(raw.call(Request::Ping).await.unwrap(), Reply::Pong);
    assert_eq!(
        raw.call(Request::NextCert).await.unwrap(),
        Reply::NextCert(Some(next))
    );
    drop(raw);
    // A second rotation while one is pending is refused, naming the pending one.
    let again = rotate::rotate(dir.path(), GRACE, clock.now_secs(), &[]).unwrap_err();
    assert!(
        again.to_string().contains(&next.fingerprint.to_hex()),
        "{again}"
    );
    relay.stop().await;

    // Started after the switch time: it promotes the new certificate before serving.
    clock.advance(GRACE);
    let relay = relay_on(dir.clone(), clock.clone(), Some(listen));
    assert_eq!(relay.handle.serving_fingerprint(), next.fingerprint);
    assert_eq!(relay.address().fingerprint, next.fingerprint);
    assert_eq!(relay.handle.pending_rotation(), None);
    let raw = RelayClient::connect(&relay.address()).await.unwrap();
    assert_eq!(
        raw.call(Request::NextCert).await.unwrap(),
        Reply::NextCert(None)
    );
    drop(raw);
    relay.stop().await;
}

#[tokio::test]
async fn a_rotation_is_learned_only_over_a_pinned_connection() {
    // An impostor at some address, with a rotation of its own pending.
    let impostor = new_relay();
    let forged = rotate_running(&impostor).await;
    let genuine = new_relay();

    // The search works: a client that pins the impostor's own certificate learns its rotation.
    let hp = tempfile::tempdir().unwrap();
    let pinned = init(&hp.path().join("home"), "p", impostor.address()).await;
    pinned.invite("x").await.unwrap();
    eventually("a pinned connection learns the announcement", || {
        pinned.certificate_pins(&impostor.address()).next == Some(forged.fingerprint)
    })
    .await;
    pinned.close().await;

    // A client that expects the genuine relay's certificate at the impostor's host and port
    // never completes a handshake with it, so never hears its announcement.
    let target = RelayAddress {
        fingerprint: genuine.address().fingerprint,
        ..impostor.address()
    };
    let hv = tempfile::tempdir().unwrap();
    let victim = init(&hv.path().join("home"), "v", target.clone()).await;
    let err = victim.invite("x").await.unwrap_err();
    assert!(
        matches!(err, ClientError::CertificateChanged { .. }),
        "{err:?}"
    );
    assert_eq!(
        victim.certificate_pins(&target),
        Pins {
            current: genuine.address().fingerprint,
            next: None
        }
    );
    victim.close().await;
    impostor.stop().await;
    genuine.stop().await;
}

/// `hush-server rotate-cert --data DIR [--grace D] [--public-addr HOST:PORT]`.
fn rotate_cert(data: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(hush_tests::cli::built("hush-server"))
        .arg("rotate-cert")
        .arg("--data")
        .arg(data)
        .args(args)
        .env_remove("HUSH_DATA")
        .env_remove("HUSH_PUBLIC_ADDR")
        .output()
        .unwrap()
}

#[test]
fn rotate_cert_prints_the_address_the_relay_serves_from_the_switch_on() {
    let empty = tempfile::tempdir().unwrap();
    let refused = rotate_cert(empty.path(), &[]);
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("start the relay once"), "{err}");

    let relay = hush_tests::cli::RelayProcess::start();
    let listen = relay.listen_addr();
    let old = relay.address.clone();
    let out = rotate_cert(
        relay.data.path(),
        &["--grace", "0s", "--public-addr", &listen],
    );
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let printed: RelayAddress = stdout.lines().next().unwrap().parse().unwrap();
    assert_eq!(printed.host_port(), listen);
    assert_ne!(printed.to_string(), old);

    // Restarted after the switch time, the relay prints (and serves) the printed address.
    let data = relay.stop();
    let relay = hush_tests::cli::RelayProcess::start_at(data, &listen, &[]);
    assert_eq!(relay.address, printed.to_string());
}
