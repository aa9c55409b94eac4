//! Protocol versions between clients and relays. The version is the ALPN value (`hush/1`); a
//! client and a relay that share none fail the handshake, and the client says so in those
//! words (not as an unreachable relay). Within `hush/1`, `Hello` is an addition both sides may
//! lack: a client from before it works against a current relay, and a current client against a
//! relay from before it (`relay_limits.rs` covers that direction with whole clients).

use std::sync::Arc;

use hush_client::net::{client_config_with_alpn, RelayCallError, RelayClient};
use hush_client::store::KeySource;
use hush_client::{Client, ClientError};
use hush_protocol::{ErrorCode, Push, RelayAddress, Reply, Request};
use hush_server::tls;
use hush_tests::clients::options;
use hush_tests::{cap, envelope, key, TestRelay};

#[tokio::test]
async fn a_client_of_another_version_is_told_so_and_the_relay_serves_on() {
    let relay = TestRelay::start(|_| {});
    let addr = relay.address();
    let sock = relay.handle.local_addr();
    for alpn in [&b"hush/0"[..], b"hush/2"] {
        let other = client_config_with_alpn(addr.fingerprint, alpn).unwrap();
        let err = RelayClient::connect_with(sock, &addr.host, other)
            .await
            .unwrap_err();
        assert_eq!(err, RelayCallError::Version);
        assert!(err.to_string().contains("protocol version"), "{err}");
    }
    let ok = relay.client().await;
    assert_eq!(ok.call(Request::Ping).await, Ok(Reply::Pong));
}

/// A relay that speaks only `hush/2`, with a certificate of its own; its address pins it.
async fn newer_relay(dir: &std::path::Path) -> (RelayAddress, tokio::task::JoinHandle<()>) {
    let identity = tls::load_or_generate(dir, &["localhost".to_owned()]).unwrap();
    let fingerprint = identity.fingerprint;
    let mut crypto = tls::server_crypto(identity).unwrap();
    crypto.alpn_protocols = vec![b"hush/2".to_vec()];
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(crypto).unwrap();
    let server = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    let endpoint = quinn::Endpoint::server(server, "127.0.0.1:0".parse().unwrap()).unwrap();
    let port = endpoint.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        while let Some(incoming) = endpoint.accept().await {
            // The handshake fails for want of a shared version; nothing more to serve.
            let _ = incoming.await;
        }
    });
    let address = RelayAddress::new("127.0.0.1", port, fingerprint);
    (address, task)
}

#[tokio::test]
async fn a_relay_of_a_newer_version_is_a_clear_error_for_this_client() {
    let dir = tempfile::tempdir().unwrap();
    let (address, task) = newer_relay(dir.path()).await;
    assert_eq!(
        RelayClient::connect(&address).await.unwrap_err(),
        RelayCallError::Version
    );
    let home = tempfile::tempdir().unwrap();
    let client = Client::init_with(
        home.path(),
        "x",
        address.clone(),
        KeySource::KeyFile,
        options(),
    )
    .await
    .unwrap();
    let err = client.invite("y").await.unwrap_err();
    assert!(matches!(err, ClientError::RelayVersion { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains(&address.to_string()) && text.contains("version"),
        "{text}"
    );
    client.close().await;
    task.abort();
}

#[tokio::test]
async fn a_client_from_before_hello_uses_every_queue_request_as_before() {
    let relay = TestRelay::start(|_| {});
    // Neither connection ever says Hello.
    let (owner, sender) = (relay.client().await, relay.client().await);
    let (k, c) = (key(), cap());
    let (rid, sid) = owner.create_queue(&k, &c).await.unwrap();
    owner.subscribe(&k, rid).await.unwrap();
    assert!(matches!(
        hush_tests::any_push(&owner).await,
        Push::Drained { .. }
    ));
    sender
        .send(sid, &c, 0, None, b"old".to_vec())
        .await
        .unwrap();
    let (eid, body) = envelope(&owner).await;
    assert_eq!(body, b"old");
    owner.ack(rid, eid).await.unwrap();
    owner.delete_queue(&k, rid).await.unwrap();
    // Every answer an older client can get is a code it knows (1 to 15).
    let err = sender.send(sid, &c, 0, None, b"gone".to_vec()).await;
    assert_eq!(err, Err(RelayCallError::Relay(ErrorCode::Auth)));
}
