//! The built `hush-server` binary: the first stdout line is the relay address, clients can use
//! it, settings layer as documented, and SIGTERM or SIGINT stop it with exit status 0.
//!
//! Needs the binaries built first (`cargo build --workspace --bins`), as the README's test
//! command does.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use hush_client::net::RelayClient;
use hush_protocol::{RelayAddress, Reply, Request};
use hush_tests::{bin_path, cap, envelope, key, DEADLINE};
use rustix::process::{kill_process, Pid, Signal};

struct Relay {
    child: Child,
    address: RelayAddress,
}

/// Starts the binary and reads the address from its first stdout line.
fn spawn(args: &[&str], env: &[(&str, &str)]) -> Relay {
    let bin = bin_path("hush-server");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build --workspace --bins` first",
        bin.display()
    );
    let mut cmd = Command::new(bin);
    cmd.args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn hush-server");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read first line");
    let token = line.trim_end();
    assert!(!token.contains(' '), "one token: {token:?}");
    let address = token.parse().expect("first stdout line is a relay address");
    Relay { child, address }
}

/// Sends `signal` and waits (with a deadline) for the exit status.
async fn stop(mut relay: Relay, signal: Signal) -> std::process::ExitStatus {
    let pid = Pid::from_raw(relay.child.id() as i32).expect("pid");
    kill_process(pid, signal).expect("signal");
    tokio::time::timeout(
        DEADLINE,
        tokio::task::spawn_blocking(move || relay.child.wait()),
    )
    .await
    .expect("relay exited before the deadline")
    .expect("join")
    .expect("wait")
}

#[tokio::test]
async fn prints_its_address_serves_and_exits_zero_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let relay = spawn(&["--listen", "127.0.0.1:0", "--data", data], &[]);
    assert_eq!(relay.address.host, "127.0.0.1");
    let client = RelayClient::connect(&relay.address).await.unwrap();
    let (k, c) = (key(), cap());
    let (rid, sid) = client.create_queue(&k, &c).await.unwrap();
    client
        .send(sid, &c, 600, None, b"one".to_vec())
        .await
        .unwrap();
    client
        .send(sid, &c, 600, None, b"two".to_vec())
        .await
        .unwrap();
    client.subscribe(&k, rid).await.unwrap();
    assert_eq!(envelope(&client).await.1, b"one");
    drop(client);
    let fingerprint = relay.address.fingerprint;
    assert!(stop(relay, Signal::Term).await.success());

    // A second start on the same data directory reuses the certificate and still holds the
    // unacked envelopes, in order.
    let relay = spawn(&["--listen", "127.0.0.1:0", "--data", data], &[]);
    assert_eq!(relay.address.fingerprint, fingerprint);
    let client = RelayClient::connect(&relay.address).await.unwrap();
    client.subscribe(&k, rid).await.unwrap();
    let (first, body) = envelope(&client).await;
    assert_eq!(body, b"one");
    assert_eq!(envelope(&client).await.1, b"two");
    client.ack(rid, first).await.unwrap();
    assert_eq!(client.call(Request::Ping).await, Ok(Reply::Pong));
    assert!(stop(relay, Signal::Int).await.success());
}

#[tokio::test]
async fn flags_override_environment_and_public_addr_names_the_host() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let toml = dir.path().join("relay.toml");
    std::fs::write(&toml, "listen = \"127.0.0.1:1\"\n").unwrap();
    // The file says port 1, the environment says 0.0.0.0:0; the environment wins. The flag
    // --public-addr beats HUSH_PUBLIC_ADDR.
    let relay = spawn(
        &[
            "--config",
            toml.to_str().unwrap(),
            "--public-addr",
            "relay.example:7777",
        ],
        &[
            ("HUSH_LISTEN", "0.0.0.0:0"),
            ("HUSH_DATA", data),
            ("HUSH_PUBLIC_ADDR", "ignored.example:1"),
        ],
    );
    assert_eq!(relay.address.host, "relay.example");
    assert_eq!(relay.address.port, 7777);
    assert!(dir.path().join(hush_server::tls::CERT_FILE).exists());
    assert!(stop(relay, Signal::Term).await.success());
}
