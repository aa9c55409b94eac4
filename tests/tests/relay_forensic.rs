//! Blob deletion seen by an attacker who holds the relay's data directory and its `device.key`
//! (`hush_tests::attacker`): after a blob is deleted (by its uploader, by its reader's "done",
//! or at its expiry), nothing in the directory names it or keeps the key that decrypted it.
//!
//! The attacker reads blob files as raw bytes (their contents are encrypted at rest under a
//! per-blob key, so the uploaded bytes are never found raw, before or after). What the search
//! sees raw while the blob exists, and must not see after, is its id (the file's name, and the
//! header's copy) and the SHA-256 hashes of its two capabilities (in the header). The blob key
//! vault is opened with the device key: the slot that wrapped the blob's key must be shredded.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hush_protocol::{BlobCapability, BlobId};
use hush_server::blob::{BLOB_DIR, KEY_FILE, VAULT_FILE};
use hush_server::store::sled_store::SledStore;
use hush_server::ManualClock;
use hush_tests::attacker::{Markers, Seizure};
use hush_tests::blobs::{blob_caps, blob_files, random_bytes, upload};
use hush_tests::forensic::Pattern;
use hush_tests::{TestRelay, START_SECS};
use hush_vault::{DeviceKey, Vault, VaultOptions};
use sha2::{Digest, Sha256};

/// A relay on a sled store in its own data directory (as `hush-server` lays it out), with a
/// manual clock.
fn sled_relay() -> TestRelay<SledStore> {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let store = SledStore::open(dir.path()).unwrap();
    TestRelay::start_on(store, dir, ManualClock::at_secs(START_SECS), |_| {})
}

/// Occupied slots of the relay's blob key vault, read from a copy with the device key.
fn blob_key_slots(data_dir: &Path) -> usize {
    let copy = tempfile::tempdir().unwrap();
    std::fs::copy(data_dir.join(KEY_FILE), copy.path().join("device.key")).unwrap();
    std::fs::copy(
        data_dir.join(BLOB_DIR).join(VAULT_FILE),
        copy.path().join("keys.vault"),
    )
    .unwrap();
    let key = DeviceKey::load_or_create_key_file(&copy.path().join("device.key")).unwrap();
    let vault = Vault::open(
        &copy.path().join("keys.vault"),
        &key,
        VaultOptions::default(),
    )
    .unwrap();
    vault.occupied_slots().len()
}

/// What the attacker can tie to blob `id` in the data directory.
fn blob_markers(id: BlobId, w: &BlobCapability, r: &BlobCapability) -> Markers {
    Markers::new()
        .message_id(id.as_bytes())
        .bytes("write capability hash", &Sha256::digest(w.as_bytes()))
        .bytes("read capability hash", &Sha256::digest(r.as_bytes()))
}

#[derive(Clone, Copy, Debug)]
enum Removal {
    /// The uploader deletes it with the write capability.
    ByWriter,
    /// The reader deletes it with the read capability once downloaded.
    ByReader,
    /// It outlives its lifetime and the sweep removes it.
    Expiry,
}

async fn relay_forgets_a_blob(removal: Removal) {
    let relay = sled_relay();
    let client = relay.client().await;
    // Another blob stays: the directory is not simply empty afterwards.
    let (w2, r2) = blob_caps();
    let (other, _) = client.blob_create(&w2, &r2, 1000, 3600).await.unwrap();
    upload(&client, other, &w2, &random_bytes(1000), 0)
        .await
        .unwrap();

    let (w, r) = blob_caps();
    let data = random_bytes(64 * 1024);
    let (id, _) = client
        .blob_create(&w, &r, data.len() as u64, 60)
        .await
        .unwrap();
    upload(&client, id, &w, &data, 0).await.unwrap();
    assert_eq!(blob_files(relay.data_dir()).len(), 2);
    let slots = blob_key_slots(relay.data_dir());
    assert_eq!(slots, 2, "one key per blob");
    let before = Seizure::relay(relay.data_dir());
    let seen = blob_markers(id, &w, &r).seen_in(&before);
    // Sealed at rest: the uploaded bytes are in no file, raw.
    assert!(
        hush_tests::forensic::files_holding(relay.data_dir(), &Pattern::pieces(&data, 32))
            .is_empty(),
        "blob bytes are encrypted at rest"
    );

    match removal {
        Removal::ByWriter => client.blob_delete(id, &w).await.unwrap(),
        Removal::ByReader => client.blob_delete(id, &r).await.unwrap(),
        Removal::Expiry => {
            relay.clock().advance(Duration::from_secs(61));
            relay.handle.sweep_now().await.unwrap();
        }
    }
    assert_eq!(
        blob_files(relay.data_dir()).len(),
        1,
        "the other blob stays"
    );
    assert_eq!(
        blob_key_slots(relay.data_dir()),
        slots - 1,
        "the deleted blob's key slot is shredded"
    );
    seen.gone_from(&Seizure::relay(relay.data_dir()));
    drop(client);
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_forgets_a_blob_its_uploader_deleted() {
    relay_forgets_a_blob(Removal::ByWriter).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_forgets_a_blob_its_reader_deleted() {
    relay_forgets_a_blob(Removal::ByReader).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_forgets_an_expired_blob_after_the_sweep() {
    relay_forgets_a_blob(Removal::Expiry).await;
}
