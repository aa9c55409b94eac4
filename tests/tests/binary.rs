//! The built `hush-server` binary: the first stdout line is the relay address, clients can use
//! it, settings layer as documented, and SIGTERM or SIGINT stop it with exit status 0.
//!
//! Needs the binaries built first (`cargo build --workspace --bins`), as the README's test
//! command does.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use hush_client::net::RelayClient;
use hush_protocol::{RelayAddress, Reply, Request};
use hush_tests::blobs::blob_caps;
use hush_tests::{bin_path, cap, envelope, key, DEADLINE};
use rustix::process::{kill_process, Pid, Signal};

struct Relay {
    child: Child,
    address: RelayAddress,
}

/// Starts the binary and reads the address from its first stdout line.
fn spawn(args: &[&str], env: &[(&str, &str)]) -> Relay {
    spawn_with_stderr(args, env, Stdio::null())
}

/// Like [`spawn`], with the relay's log (stderr) going to `stderr`.
fn spawn_with_stderr(args: &[&str], env: &[(&str, &str)], stderr: Stdio) -> Relay {
    let bin = bin_path("hush-server");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build --workspace --bins` first",
        bin.display()
    );
    let mut cmd = Command::new(bin);
    cmd.args(args)
        .stdout(Stdio::piped())
        .stderr(stderr)
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

#[tokio::test]
async fn logs_hold_no_bodies_capabilities_keys_or_queue_ids() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let log_path = dir.path().join("relay.log");
    let log = std::fs::File::create(&log_path).unwrap();
    // The most verbose level the relay and its libraries have.
    let relay = spawn_with_stderr(
        &["--listen", "127.0.0.1:0", "--data", data.to_str().unwrap()],
        &[("HUSH_LOG", "trace")],
        log.into(),
    );
    let client = RelayClient::connect(&relay.address).await.unwrap();
    let (k, c) = (key(), cap());
    let (rid, sid) = client.create_queue(&k, &c).await.unwrap();
    let body = b"log-canary: the merger closes on friday".to_vec();
    let sent = client.send(sid, &c, 600, None, body.clone()).await.unwrap();
    client.subscribe(&k, rid).await.unwrap();
    let (id, got) = envelope(&client).await;
    assert_eq!((id, &got), (sent, &body));
    client.ack(rid, id).await.unwrap();
    // A refused request is logged too: it must not echo what it was given.
    let wrong = cap();
    assert!(client
        .send(sid, &wrong, 600, None, body.clone())
        .await
        .is_err());
    client.delete_queue(&k, rid).await.unwrap();
    // A blob: created, written, refused a write with the wrong capability, read and deleted.
    let blob = b"log-canary: the blob of the merger contract".to_vec();
    let (w, r) = blob_caps();
    let (bid, _) = client
        .blob_create(&w, &r, blob.len() as u64, 600)
        .await
        .unwrap();
    assert!(client.blob_write(bid, &r, 0, blob.clone()).await.is_err());
    client.blob_write(bid, &w, 0, blob.clone()).await.unwrap();
    assert_eq!(client.blob_read(bid, &r, 0, 1000).await.unwrap(), blob);
    client.blob_delete(bid, &r).await.unwrap();
    drop(client);
    assert!(stop(relay, Signal::Term).await.success());

    let log = std::fs::read(&log_path).unwrap();
    assert!(!log.is_empty(), "the relay logged nothing at trace level");
    let text = String::from_utf8_lossy(&log).to_lowercase();
    let hex = |b: &[u8]| hex_lower(b);
    let secrets: Vec<(&str, Vec<u8>)> = vec![
        ("body", body.clone()),
        ("capability", c.as_bytes().to_vec()),
        ("wrong capability", wrong.as_bytes().to_vec()),
        ("recipient key", k.verifying_key().to_bytes().to_vec()),
        ("recipient id", rid.as_bytes().to_vec()),
        ("sender id", sid.as_bytes().to_vec()),
        ("envelope id", sent.as_bytes().to_vec()),
        ("blob", blob),
        ("blob write capability", w.as_bytes().to_vec()),
        ("blob read capability", r.as_bytes().to_vec()),
        ("blob id", bid.as_bytes().to_vec()),
    ];
    for (what, bytes) in &secrets {
        assert!(
            !log.windows(bytes.len()).any(|w| w == bytes.as_slice()),
            "raw {what} in the log"
        );
        assert!(!text.contains(&hex(bytes)), "hex {what} in the log");
        // Debug formatting of a byte array: "[1, 2, 3".
        let debug = format!("{:?}", &bytes[..8]);
        assert!(
            !text.contains(debug.trim_end_matches(']')),
            "debug-printed {what} in the log"
        );
    }
    assert!(!text.contains("log-canary"), "body text in the log");
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn two_binaries_on_one_jetstream_cluster_share_queues_and_one_certificate() {
    let cluster = hush_tests::nats::NatsCluster::start(3);
    let nats = cluster.urls().join(",");
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let args = |data: &std::path::Path| {
        let data = data.to_str().unwrap().to_owned();
        let list = [
            "--listen",
            "127.0.0.1:0",
            "--store",
            "jetstream",
            "--nats",
            &nats,
        ];
        let mut v: Vec<String> = list.iter().map(|s| s.to_string()).collect();
        v.extend(["--data".to_owned(), data]);
        v
    };
    let args_a = args(dir_a.path());
    let a = spawn(&args_a.iter().map(String::as_str).collect::<Vec<_>>(), &[]);
    // Node B gets node A's certificate and key, so both have one fingerprint.
    for file in [hush_server::tls::CERT_FILE, hush_server::tls::KEY_FILE] {
        std::fs::copy(dir_a.path().join(file), dir_b.path().join(file)).unwrap();
    }
    let args_b = args(dir_b.path());
    let b = spawn(&args_b.iter().map(String::as_str).collect::<Vec<_>>(), &[]);
    assert_eq!(a.address.fingerprint, b.address.fingerprint);
    let (via_a, via_b) = (
        RelayClient::connect(&a.address).await.unwrap(),
        RelayClient::connect(&b.address).await.unwrap(),
    );
    let (k, c) = (key(), cap());
    let (rid, sid) = via_a.create_queue(&k, &c).await.unwrap();
    via_b.subscribe(&k, rid).await.unwrap();
    let sent = via_a.send(sid, &c, 600, None, b"across".to_vec()).await;
    let (id, body) = envelope(&via_b).await;
    assert_eq!((Ok(id), body.as_slice()), (sent, &b"across"[..]));
    via_b.ack(rid, id).await.unwrap();
    drop((via_a, via_b));
    assert!(stop(a, Signal::Term).await.success());
    assert!(stop(b, Signal::Term).await.success());
}
