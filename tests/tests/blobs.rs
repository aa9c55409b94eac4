//! Blob transfer through a real relay over loopback QUIC: the round trip, every refusal, expiry
//! on a controlled clock, a restart on the sled store with a resumed upload, and what a deleted
//! blob leaves in the data directory (nothing readable, even with the key file).

use std::sync::Arc;
use std::time::Duration;

use hush_client::net::{RelayCallError, RelayClient};
use hush_protocol::limits::MAX_BLOB_CHUNK;
use hush_protocol::{BlobId, ErrorCode};
use hush_server::blob::{file_name, BLOB_DIR, HEADER_LEN, KEY_FILE, VAULT_FILE};
use hush_server::store::sled_store::SledStore;
use hush_server::ManualClock;
use hush_tests::blobs::{
    blob_caps, blob_files, download, files_with_a_piece_of, random_bytes, upload,
};
use hush_tests::{cap, envelope, forensic, key, TestRelay, START_SECS};
use hush_vault::{DeviceKey, Vault, VaultOptions};

fn refused(code: ErrorCode) -> RelayCallError {
    RelayCallError::Relay(code)
}

/// A queue round trip: the relay still serves queues.
async fn queues_still_work(sender: &RelayClient, receiver: &RelayClient) {
    let (k, c) = (key(), cap());
    let (rid, sid) = receiver.create_queue(&k, &c).await.unwrap();
    receiver.subscribe(&k, rid).await.unwrap();
    sender
        .send(sid, &c, 60, None, b"still here".to_vec())
        .await
        .unwrap();
    assert_eq!(envelope(receiver).await.1, b"still here");
}

#[tokio::test]
async fn a_blob_goes_up_in_chunks_comes_down_in_ranges_and_is_deleted() {
    let relay = TestRelay::start(|_| {});
    let (up, down) = (relay.client().await, relay.client().await);
    let (w, r) = blob_caps();
    let data = random_bytes(5 * MAX_BLOB_CHUNK + 777);
    let (id, expires_at) = up
        .blob_create(&w, &r, data.len() as u64, 600)
        .await
        .unwrap();
    assert_eq!(expires_at, START_SECS + 600);
    let st = down.blob_status(id, &r).await.unwrap();
    assert_eq!((st.total_len, st.committed), (data.len() as u64, 0));
    upload(&up, id, &w, &data[..2 * MAX_BLOB_CHUNK], 0)
        .await
        .unwrap();
    assert_eq!(
        down.blob_read(id, &r, 0, 10).await,
        Err(refused(ErrorCode::BlobIncomplete))
    );
    let st = up.blob_status(id, &w).await.unwrap();
    assert_eq!(st.committed, 2 * MAX_BLOB_CHUNK as u64);
    upload(&up, id, &w, &data, st.committed as usize)
        .await
        .unwrap();
    let st = down.blob_status(id, &r).await.unwrap();
    assert!(st.is_complete());
    assert_eq!(st.expires_at, expires_at);
    // Whole, in full chunks and in odd-sized ones.
    let full = download(&down, id, &r, data.len(), MAX_BLOB_CHUNK as u32);
    assert_eq!(full.await.unwrap(), data);
    assert_eq!(
        download(&down, id, &r, data.len(), 40_000).await.unwrap(),
        data
    );
    // Several reads in flight on one connection.
    let (a, b, c) = tokio::join!(
        down.blob_read(id, &r, 100, 1000),
        down.blob_read(id, &r, 200_000, 50_000),
        down.blob_read(id, &r, data.len() as u64 - 5, 1000),
    );
    assert_eq!(a.unwrap(), data[100..1100]);
    assert_eq!(b.unwrap(), data[200_000..250_000]);
    assert_eq!(c.unwrap(), data[data.len() - 5..]);
    assert_eq!(blob_files(relay.data_dir()).len(), 1);
    // The recipient's "download done".
    down.blob_delete(id, &r).await.unwrap();
    for (client, cap) in [(&up, &w), (&down, &r)] {
        assert_eq!(
            client.blob_status(id, cap).await,
            Err(refused(ErrorCode::NoBlob))
        );
    }
    assert_eq!(
        up.blob_delete(id, &w).await,
        Err(refused(ErrorCode::NoBlob))
    );
    assert!(blob_files(relay.data_dir()).is_empty());
    assert_eq!(relay.handle.blobs().counts().map(|c| c.1), Some(0));
    relay.stop().await;
}

#[tokio::test]
async fn every_refusal_is_typed_and_the_relay_keeps_serving() {
    let budget = 2 * (100_000 + HEADER_LEN);
    let relay = TestRelay::start(|c| {
        c.blob_max_bytes = 100_000;
        c.blob_budget_bytes = budget;
    });
    let (client, other) = (relay.client().await, relay.client().await);
    let (w, r) = blob_caps();
    let (stranger, _) = blob_caps();
    assert_eq!(
        client.blob_create(&w, &r, 100_001, 60).await,
        Err(refused(ErrorCode::TooLarge))
    );
    assert_eq!(
        client.blob_create(&w, &w, 10, 60).await,
        Err(refused(ErrorCode::Malformed))
    );
    let (id, _) = client.blob_create(&w, &r, 100_000, 60).await.unwrap();
    let chunk = vec![5u8; 50_000];
    // Wrong capability, or the read capability, cannot write; an unknown id is the same.
    for (bid, cap) in [(id, &stranger), (id, &r), (BlobId([0; 16]), &w)] {
        assert_eq!(
            client.blob_write(bid, cap, 0, chunk.clone()).await,
            Err(refused(ErrorCode::NoBlob))
        );
    }
    assert_eq!(
        client.blob_write(id, &w, 0, chunk.clone()).await,
        Ok(50_000)
    );
    for wrong in [0, 49_999, 50_001] {
        assert_eq!(
            client.blob_write(id, &w, wrong, chunk.clone()).await,
            Err(refused(ErrorCode::BlobOffset))
        );
    }
    assert_eq!(
        client.blob_write(id, &w, 50_000, vec![5; 50_001]).await,
        Err(refused(ErrorCode::TooLarge)),
        "past the declared length"
    );
    assert_eq!(
        client.blob_read(id, &r, 0, 10).await,
        Err(refused(ErrorCode::BlobIncomplete))
    );
    assert_eq!(client.blob_write(id, &w, 50_000, chunk).await, Ok(100_000));
    assert_eq!(
        client.blob_read(id, &w, 0, 10).await,
        Err(refused(ErrorCode::NoBlob)),
        "the write capability cannot read"
    );
    assert_eq!(
        client.blob_read(id, &stranger, 0, 10).await,
        Err(refused(ErrorCode::NoBlob))
    );
    assert_eq!(
        client.blob_read(id, &r, 100_001, 10).await,
        Err(refused(ErrorCode::Malformed))
    );
    assert_eq!(
        client.blob_delete(id, &stranger).await,
        Err(refused(ErrorCode::NoBlob))
    );
    // The budget holds two blobs of the maximum size; a third is refused until one goes.
    let (second, _) = client.blob_create(&w, &r, 100_000, 60).await.unwrap();
    assert_eq!(
        other.blob_create(&w, &r, 1, 60).await,
        Err(refused(ErrorCode::NoSpace))
    );
    queues_still_work(&client, &other).await;
    client.blob_delete(second, &w).await.unwrap();
    assert_eq!(
        client.blob_write(second, &w, 0, vec![1]).await,
        Err(refused(ErrorCode::NoBlob)),
        "a retracted blob takes no more writes"
    );
    other.blob_create(&w, &r, 1, 60).await.unwrap();
    assert_eq!(
        client.blob_read(id, &r, 99_990, 100).await.unwrap(),
        [5; 10]
    );
    queues_still_work(&other, &client).await;
    relay.stop().await;
}

#[tokio::test]
async fn expired_blobs_are_refused_and_the_sweep_removes_their_files() {
    let relay = TestRelay::start(|c| c.blob_ttl = Duration::from_secs(3600));
    let client = relay.client().await;
    let (w, r) = blob_caps();
    let (capped, exp) = client.blob_create(&w, &r, 10, u32::MAX).await.unwrap();
    assert_eq!(exp, START_SECS + 3600, "the TTL is capped at the relay's");
    let (_, exp) = client.blob_create(&w, &r, 10, 0).await.unwrap();
    assert_eq!(exp, START_SECS + 3600, "0 means the relay's maximum");
    let (short, exp) = client.blob_create(&w, &r, 10, 60).await.unwrap();
    assert_eq!(exp, START_SECS + 60);
    client.blob_write(short, &w, 0, vec![1; 4]).await.unwrap();
    let short_file = relay.data_dir().join(BLOB_DIR).join(file_name(&short));
    assert!(short_file.exists());
    relay.clock().advance(Duration::from_secs(60));
    assert_eq!(
        client.blob_status(short, &w).await,
        Err(refused(ErrorCode::NoBlob))
    );
    assert_eq!(
        client.blob_write(short, &w, 4, vec![1; 6]).await,
        Err(refused(ErrorCode::NoBlob))
    );
    relay.handle.sweep_now().await.unwrap();
    assert!(!short_file.exists(), "the unfinished upload's file is gone");
    assert_eq!(blob_files(relay.data_dir()).len(), 2);
    assert_eq!(client.blob_status(capped, &r).await.unwrap().committed, 0);
    relay.clock().advance(Duration::from_secs(3540));
    relay.handle.sweep_now().await.unwrap();
    assert!(blob_files(relay.data_dir()).is_empty());
    assert_eq!(relay.handle.blobs().counts().map(|c| c.0), Some(0));
    relay.stop().await;
}

#[tokio::test]
async fn a_restart_on_the_sled_store_keeps_blobs_and_the_upload_resumes() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let clock = ManualClock::at_secs(START_SECS);
    let open = || SledStore::open(dir.path()).expect("open sled store");
    let relay = TestRelay::start_on(open(), dir.clone(), clock.clone(), |_| {});
    let client = relay.client().await;
    let (w, r) = blob_caps();
    let done = random_bytes(3 * MAX_BLOB_CHUNK + 5);
    let (done_id, _) = client
        .blob_create(&w, &r, done.len() as u64, 0)
        .await
        .unwrap();
    upload(&client, done_id, &w, &done, 0).await.unwrap();
    let partial = random_bytes(4 * MAX_BLOB_CHUNK + 11);
    let (part_id, _) = client
        .blob_create(&w, &r, partial.len() as u64, 0)
        .await
        .unwrap();
    upload(&client, part_id, &w, &partial[..2 * MAX_BLOB_CHUNK + 3], 0)
        .await
        .unwrap();
    drop(client);
    relay.stop().await;

    let relay = TestRelay::start_on(open(), dir.clone(), clock, |_| {});
    let client = relay.client().await;
    let st = client.blob_status(done_id, &r).await.unwrap();
    assert!(st.is_complete());
    let back = download(&client, done_id, &r, done.len(), MAX_BLOB_CHUNK as u32);
    assert_eq!(back.await.unwrap(), done);
    let st = client.blob_status(part_id, &w).await.unwrap();
    assert_eq!(
        st.committed,
        2 * MAX_BLOB_CHUNK as u64 + 3,
        "a graceful stop keeps every byte written"
    );
    assert_eq!(
        client.blob_read(part_id, &r, 0, 1).await,
        Err(refused(ErrorCode::BlobIncomplete))
    );
    upload(&client, part_id, &w, &partial, st.committed as usize)
        .await
        .unwrap();
    let back = download(&client, part_id, &r, partial.len(), MAX_BLOB_CHUNK as u32);
    assert_eq!(back.await.unwrap(), partial);
    relay.stop().await;
}

#[tokio::test]
async fn a_deleted_blob_leaves_nothing_readable_in_the_data_directory() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let store = SledStore::open(dir.path()).unwrap();
    let clock = ManualClock::at_secs(START_SECS);
    let relay = TestRelay::start_on(store, dir.clone(), clock, |_| {});
    let client = relay.client().await;
    let (w, r) = blob_caps();
    let secret = random_bytes(6 * MAX_BLOB_CHUNK);
    let (gone, _) = client
        .blob_create(&w, &r, secret.len() as u64, 0)
        .await
        .unwrap();
    upload(&client, gone, &w, &secret, 0).await.unwrap();
    let (wk, rk) = blob_caps();
    let kept = random_bytes(MAX_BLOB_CHUNK);
    let (stays, _) = client
        .blob_create(&wk, &rk, kept.len() as u64, 0)
        .await
        .unwrap();
    upload(&client, stays, &wk, &kept, 0).await.unwrap();
    assert!(
        files_with_a_piece_of(dir.path(), &secret).is_empty(),
        "blobs are encrypted at rest"
    );
    let gone_file = dir.path().join(BLOB_DIR).join(file_name(&gone));
    let at_rest = std::fs::read(&gone_file).unwrap()[HEADER_LEN as usize..].to_vec();
    // The search does find the blob's bytes while they are there.
    assert_eq!(
        files_with_a_piece_of(dir.path(), &at_rest),
        vec![gone_file.clone()]
    );
    // The sender retracts it.
    client.blob_delete(gone, &w).await.unwrap();
    drop(client);
    relay.stop().await;

    assert!(!gone_file.exists());
    forensic::assert_can_see(dir.path(), &forensic::Pattern::pieces(&secret, 32));
    assert_eq!(
        files_with_a_piece_of(dir.path(), &secret),
        Vec::<std::path::PathBuf>::new()
    );
    assert_eq!(
        files_with_a_piece_of(dir.path(), &at_rest),
        Vec::<std::path::PathBuf>::new()
    );
    // With the device key file, only the surviving blob's key is left in the blob vault.
    let device = DeviceKey::load_or_create_key_file(&dir.path().join(KEY_FILE)).unwrap();
    let vault_path = dir.path().join(BLOB_DIR).join(VAULT_FILE);
    let vault = Vault::open(&vault_path, &device, VaultOptions::default()).unwrap();
    assert_eq!(vault.slots_in_use(), 1);
    drop(vault);
    // And the relay, restarted, serves the other blob and knows nothing of the deleted one.
    let store = SledStore::open(dir.path()).unwrap();
    let relay = TestRelay::start_on(store, dir.clone(), ManualClock::at_secs(START_SECS), |_| {});
    let client = relay.client().await;
    assert_eq!(
        client.blob_status(gone, &r).await,
        Err(refused(ErrorCode::NoBlob))
    );
    let back = download(&client, stays, &rk, kept.len(), MAX_BLOB_CHUNK as u32);
    assert_eq!(back.await.unwrap(), kept);
    relay.stop().await;
}
