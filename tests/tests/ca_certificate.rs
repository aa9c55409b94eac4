//! A relay serving an operator-supplied, CA-issued certificate chain: clients pin the leaf.

use hush_client::net::RelayClient;
use hush_protocol::{Reply, Request};
use hush_server::store::memory::MemoryStore;
use hush_server::{Relay, RelayConfig};
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};

#[tokio::test]
async fn a_ca_issued_chain_is_served_and_its_leaf_pinned() {
    let dir = tempfile::tempdir().unwrap();
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["relay.example".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &ca, &ca_key)
        .unwrap();
    let cert_path = dir.path().join("chain.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, leaf.pem() + &ca.pem()).unwrap();
    std::fs::write(&key_path, leaf_key.serialize_pem()).unwrap();

    let mut config = RelayConfig::loopback(&dir.path().join("data"));
    config.tls_cert = Some(cert_path);
    config.tls_key = Some(key_path);
    let relay = Relay::bind(config, MemoryStore::new()).unwrap();
    assert_eq!(
        relay.fingerprint(),
        hush_server::tls::fingerprint(leaf.der()),
        "the address pins the leaf certificate"
    );
    assert!(!dir
        .path()
        .join("data")
        .join(hush_server::tls::CERT_FILE)
        .exists());
    let handle = relay.spawn();
    let client = RelayClient::connect(handle.address()).await.unwrap();
    assert_eq!(client.call(Request::Ping).await, Ok(Reply::Pong));
    drop(client);
    handle.shutdown().await.unwrap();
}
