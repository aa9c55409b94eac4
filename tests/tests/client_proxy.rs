//! A client configured with a SOCKS5 proxy reaches relays only through it (QUIC over UDP
//! ASSOCIATE), and fails closed, with an error naming the proxy, when the proxy is gone or
//! cannot carry UDP. A tap in front of the relay records every source address the relay sees.

use std::net::SocketAddr;

use hush_client::net::{ProxyError, Socks5Proxy};
use hush_client::store::KeySource;
use hush_client::{Client, ClientError, ClientEvent};
use hush_tests::clients::*;
use hush_tests::socks5::{ProxyMode, Socks5Server, UdpTap};
use hush_tests::TestRelay;

async fn init_proxied(
    home: &std::path::Path,
    relay: hush_protocol::RelayAddress,
    url: &str,
) -> Client {
    let proxy: Socks5Proxy = url.parse().unwrap();
    let options = options().with_proxy(proxy);
    Client::init_with(home, "alice", relay, KeySource::KeyFile, options)
        .await
        .unwrap()
}

/// A relay with a tap in front, a proxy in `mode`, and Alice's fresh home using the proxy
/// (with `credentials` instead of the proxy's own, if given).
async fn alone_behind(
    mode: ProxyMode,
    credentials: Option<&str>,
) -> (TestRelay, UdpTap, Socks5Server, Client, tempfile::TempDir) {
    let relay = relay();
    let tap = UdpTap::start(relay.handle.local_addr()).await;
    let proxy = Socks5Server::start(mode).await;
    let url = match credentials {
        Some(c) => format!("socks5://{c}@{}", proxy.addr()),
        None => proxy.url(),
    };
    let home = tempfile::tempdir().unwrap();
    let via_tap = tap.address(&relay.address());
    let alice = init_proxied(&home.path().join("home"), via_tap, &url).await;
    (relay, tap, proxy, alice, home)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxied_client_converses_and_fails_closed_when_the_proxy_stops() {
    let relay = relay();
    let tap = UdpTap::start(relay.handle.local_addr()).await;
    let via_tap = tap.address(&relay.address());
    let proxy = Socks5Server::start(ProxyMode {
        credentials: Some(("hush".into(), "s3cret".into())),
        ..ProxyMode::default()
    })
    .await;
    let (ha, hb) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let alice = init_proxied(&ha.path().join("home"), via_tap.clone(), &proxy.url()).await;
    let bob = init(&hb.path().join("home"), "bob", via_tap.clone()).await;

    let token = alice.invite("bob").await.unwrap();
    bob.accept(&token, "alice").await.unwrap();
    until(&alice, |e| matches!(e, ClientEvent::ContactJoined { .. })).await;
    alice
        .send_text("bob", "via the proxy", None, false)
        .await
        .unwrap();
    let got = message_from(&bob, "alice").await;
    assert_eq!(got.body.unwrap().as_str(), "via the proxy");
    bob.send_text("alice", "back to you", None, false)
        .await
        .unwrap();
    let got = message_from(&alice, "bob").await;
    assert_eq!(got.body.unwrap().as_str(), "back to you");

    // The proxy carried Alice's traffic, and the relay saw the proxy's address for her.
    assert!(proxy.relayed() > 0);
    let proxy_addrs = proxy.udp_addrs();
    let seen = tap.sources();
    assert!(
        seen.iter().any(|s| proxy_addrs.contains(s)),
        "{seen:?} {proxy_addrs:?}"
    );
    // The tap does see direct clients: Bob's own sockets.
    let direct: Vec<&SocketAddr> = seen.iter().filter(|s| !proxy_addrs.contains(s)).collect();
    assert!(!direct.is_empty(), "the tap saw no direct client");

    bob.close().await;
    let before = tap.sources();
    proxy.stop().await;

    // Every call that needs a relay now fails naming the proxy; none goes out directly.
    let name = proxy.addr().to_string();
    let err = alice
        .send_text("bob", "nope", None, false)
        .await
        .unwrap_err();
    match &err {
        ClientError::Proxy(ProxyError::Unreachable { proxy, .. })
        | ClientError::Proxy(ProxyError::Closed { proxy }) => assert_eq!(proxy, &name),
        other => panic!("expected a proxy error, got {other:?}"),
    }
    let text = err.to_string();
    assert!(text.contains(&format!("SOCKS5 proxy {name}")), "{text}");
    assert!(
        text.contains("did not connect directly") || text.contains("did not fall back"),
        "{text}"
    );
    let err = alice.receive(None, None).await.unwrap_err();
    assert!(matches!(err, ClientError::Proxy(_)), "{err:?}");
    let err = alice.invite("carol").await.unwrap_err();
    assert!(matches!(err, ClientError::Proxy(_)), "{err:?}");
    assert_eq!(
        tap.sources(),
        before,
        "a datagram reached the relay from a new address"
    );
    alice.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_that_refuses_udp_associate_gets_a_clear_error_and_nothing_is_sent() {
    let mode = ProxyMode {
        refuse_udp: true,
        ..ProxyMode::default()
    };
    let (_relay, tap, proxy, alice, _home) = alone_behind(mode, None).await;

    let err = alice.invite("bob").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "the SOCKS5 proxy {} refused UDP ASSOCIATE (command not supported) (Tor and `ssh -D` \
             do not carry UDP); use a proxy that supports UDP, or a VPN",
            proxy.addr()
        )
    );
    assert!(matches!(
        err,
        ClientError::Proxy(ProxyError::UdpRefused { reply: 7, .. })
    ));
    assert_eq!(proxy.associations(), 0);
    assert!(
        tap.sources().is_empty(),
        "the relay saw {:?}",
        tap.sources()
    );
    alice.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_proxy_password_is_a_clear_error() {
    let mode = ProxyMode {
        credentials: Some(("hush".into(), "right".into())),
        ..ProxyMode::default()
    };
    let (_relay, tap, _proxy, alice, _home) = alone_behind(mode, Some("hush:wrong")).await;
    let err = alice.invite("bob").await.unwrap_err();
    assert!(
        matches!(err, ClientError::Proxy(ProxyError::AuthFailed { .. })),
        "{err:?}"
    );
    assert!(tap.sources().is_empty());
    alice.close().await;
}
