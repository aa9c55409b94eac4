//! `hush-server stats --data DIR` on a data directory a relay served a conversation from:
//! refused while the relay runs, then counts what it left, as text and as JSON.

use std::process::Command;

use hush_protocol::{BlobCapability, Reply, Request};
use hush_tests::cli::built;
use hush_tests::hostile::process::ServerProcess;
use hush_tests::{cap, envelope, key};

fn stats(data: &std::path::Path, json: bool) -> std::process::Output {
    let mut cmd = Command::new(built("hush-server"));
    cmd.arg("stats")
        .arg("--data")
        .arg(data)
        .env_remove("HUSH_DATA");
    if json {
        cmd.arg("--json");
    }
    cmd.output().expect("run hush-server stats")
}

#[tokio::test]
async fn stats_counts_what_a_stopped_relay_left_and_refuses_a_running_one() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let relay = ServerProcess::start(&data, "127.0.0.1:0", &[]);
    let client = relay.client().await;
    let (k, c) = (key(), cap());
    let (rid, sid) = client.create_queue(&k, &c).await.unwrap();
    client.create_queue(&key(), &cap()).await.unwrap();
    for n in 0..3u8 {
        client
            .send(sid, &c, 3600, None, vec![n; 1000])
            .await
            .unwrap();
    }
    // One is delivered and acked: two stay pending.
    client.subscribe(&k, rid).await.unwrap();
    let (first, _) = envelope(&client).await;
    client.ack(rid, first).await.unwrap();
    let blob = Request::BlobCreate {
        write_cap: BlobCapability::from_bytes([1; 32]),
        read_cap: BlobCapability::from_bytes([2; 32]),
        total_len: 5000,
        ttl_secs: 3600,
    };
    assert!(matches!(
        client.call(blob).await,
        Ok(Reply::BlobCreated { .. })
    ));

    // While the relay runs, stats refuses and says why.
    let running = stats(&data, false);
    assert!(!running.status.success());
    let why = String::from_utf8_lossy(&running.stderr);
    assert!(
        why.contains("running relay") && why.contains("stop it first"),
        "{why}"
    );

    // Killed (every answered send is durable), the directory is counted.
    drop(client);
    relay.sigkill();
    let text = stats(&data, false);
    assert!(
        text.status.success(),
        "{}",
        String::from_utf8_lossy(&text.stderr)
    );
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.contains("queues: 2\n"), "{text}");
    assert!(
        text.contains("envelopes pending: 2 (2000 bytes)\n"),
        "{text}"
    );
    assert!(text.contains("blobs: 1 ("), "{text}");
    assert!(text.contains("earliest envelope expiry: 20"), "{text}");

    let json = stats(&data, true);
    assert!(json.status.success());
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["queues"], 2);
    assert_eq!(v["envelopes"], 2);
    assert_eq!(v["envelope_bytes"], 2000);
    assert_eq!(v["blobs"], 1);
    assert!(v["blob_bytes"].as_u64().unwrap() >= 4096);
    assert!(v["vault_bytes"].as_u64().unwrap() > 0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let expiry = v["earliest_expiry"].as_u64().unwrap();
    assert!(expiry > now && expiry <= now + 3600, "{expiry} vs {now}");

    // A directory with no relay store is refused by name.
    let empty = tempfile::tempdir().unwrap();
    let none = stats(empty.path(), false);
    assert!(!none.status.success());
    assert!(String::from_utf8_lossy(&none.stderr).contains("no relay store"));
}
