//! Blob store tests against a real directory: the operations and their refusals, the budget,
//! the durability rule across a simulated crash, start-up reconciliation and the forensic
//! check that a deleted blob leaves nothing decryptable behind.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use hush_protocol::limits::MAX_BLOB_CHUNK;
use hush_protocol::{BlobCapability, BlobId};
use hush_vault::forensic::{self, Pattern};
use hush_vault::{DeviceKey, SlotId, Vault, VaultError, VaultOptions};
use rand::RngCore;

use super::cipher::DataKey;
use super::header;
use super::index::file_name;
use super::*;

const NOW: u64 = 1_800_000_000;

fn limits() -> BlobLimits {
    BlobLimits {
        max_bytes: 64 * 1024 * 1024,
        budget_bytes: 256 * 1024 * 1024,
        max_ttl_secs: 3600,
    }
}

fn caps() -> (BlobCapability, BlobCapability) {
    let (mut w, mut r) = ([0u8; 32], [0u8; 32]);
    rand::rngs::OsRng.fill_bytes(&mut w);
    rand::rngs::OsRng.fill_bytes(&mut r);
    (BlobCapability(w), BlobCapability(r))
}

fn random_bytes(n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    rand::rngs::OsRng.fill_bytes(&mut v);
    v
}

/// Uploads `data` in chunks of at most `MAX_BLOB_CHUNK` from `from`.
async fn upload(s: &BlobStore, id: BlobId, w: &BlobCapability, data: &[u8], from: usize) {
    let mut at = from;
    while at < data.len() {
        let end = (at + MAX_BLOB_CHUNK).min(data.len());
        let committed = s
            .write(id, w, at as u64, data[at..end].to_vec(), NOW)
            .await
            .unwrap();
        assert_eq!(committed, end as u64);
        at = end;
    }
}

async fn download(s: &BlobStore, id: BlobId, r: &BlobCapability, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        let part = s
            .read(id, r, out.len() as u64, MAX_BLOB_CHUNK as u32, NOW)
            .await
            .unwrap();
        assert!(!part.is_empty());
        out.extend_from_slice(&part);
    }
    out
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test]
async fn round_trip_in_chunks_and_ranges() {
    let dir = tempfile::tempdir().unwrap();
    let s = BlobStore::open(dir.path(), limits()).unwrap();
    let (w, r) = caps();
    let data = random_bytes(3 * MAX_BLOB_CHUNK + 1234);
    let c = s.create(&w, &r, data.len() as u64, 0, NOW).await.unwrap();
    assert_eq!(c.expires_at, NOW + 3600, "ttl 0 means the maximum");
    assert_eq!(s.status(c.id, &r, NOW).unwrap().committed, 0);
    upload(&s, c.id, &w, &data, 0).await;
    for cap in [&w, &r] {
        let st = s.status(c.id, cap, NOW).unwrap();
        assert_eq!(
            (st.total_len, st.committed),
            (data.len() as u64, data.len() as u64)
        );
    }
    assert_eq!(download(&s, c.id, &r, data.len()).await, data);
    let tail = s.read(c.id, &r, data.len() as u64 - 10, 100, NOW).await;
    assert_eq!(tail.unwrap(), data[data.len() - 10..]);
    let mid = s.read(c.id, &r, 70_000, 5, NOW).await.unwrap();
    assert_eq!(mid, data[70_000..70_005]);
    let end = s.read(c.id, &r, data.len() as u64, 100, NOW).await.unwrap();
    assert!(end.is_empty());
    // The bytes at rest are not the bytes uploaded, and only the relay's user may read them.
    let path = dir.path().join(BLOB_DIR).join(file_name(&c.id));
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(&dir.path().join(BLOB_DIR)), 0o700);
    assert_eq!(mode(&dir.path().join(BLOB_DIR).join(VAULT_FILE)), 0o600);
    let raw = std::fs::read(&path).unwrap();
    assert_eq!(raw.len() as u64, HEADER_LEN + data.len() as u64);
    assert!(!Pattern::pieces(&data, 32).found_in(&raw));
    s.delete(c.id, &r, NOW).await.unwrap();
    assert!(matches!(s.status(c.id, &w, NOW), Err(BlobError::NotFound)));
    assert!(matches!(
        s.delete(c.id, &w, NOW).await,
        Err(BlobError::NotFound)
    ));
    assert_eq!(s.reserved_bytes(), 0);
    // An empty blob is complete from the start.
    let empty = s.create(&w, &r, 0, 0, NOW).await.unwrap();
    let st = s.status(empty.id, &r, NOW).unwrap();
    assert_eq!((st.total_len, st.committed), (0, 0));
    assert!(s.read(empty.id, &r, 0, 10, NOW).await.unwrap().is_empty());
}

#[tokio::test]
async fn each_capability_allows_only_its_own_operations() {
    let dir = tempfile::tempdir().unwrap();
    let s = BlobStore::open(dir.path(), limits()).unwrap();
    let (w, r) = caps();
    let (stranger, _) = caps();
    let c = s.create(&w, &r, 10, 60, NOW).await.unwrap();
    let e = s.write(c.id, &r, 0, vec![1; 5], NOW).await.unwrap_err();
    assert!(
        matches!(e, BlobError::NotFound),
        "the read cap cannot write"
    );
    let e = s.write(c.id, &stranger, 0, vec![1; 5], NOW).await;
    assert!(matches!(e, Err(BlobError::NotFound)));
    assert!(matches!(
        s.status(c.id, &stranger, NOW),
        Err(BlobError::NotFound)
    ));
    assert!(matches!(
        s.status(BlobId([0; 16]), &w, NOW),
        Err(BlobError::NotFound)
    ));
    assert_eq!(s.write(c.id, &w, 0, vec![1; 10], NOW).await.unwrap(), 10);
    let e = s.read(c.id, &w, 0, 10, NOW).await;
    assert!(
        matches!(e, Err(BlobError::NotFound)),
        "the write cap cannot read"
    );
    assert_eq!(s.read(c.id, &r, 0, 10, NOW).await.unwrap(), vec![1; 10]);
    let e = s.delete(c.id, &stranger, NOW).await;
    assert!(matches!(e, Err(BlobError::NotFound)));
    let e = s.create(&w, &w, 10, 60, NOW).await;
    assert!(matches!(e, Err(BlobError::Malformed(_))), "equal caps");
    // The write cap retracts.
    s.delete(c.id, &w, NOW).await.unwrap();
    assert!(matches!(
        s.read(c.id, &r, 0, 10, NOW).await,
        Err(BlobError::NotFound)
    ));
}

#[tokio::test]
async fn writes_must_be_in_order_and_within_the_declared_length() {
    let dir = tempfile::tempdir().unwrap();
    let s = BlobStore::open(dir.path(), limits()).unwrap();
    let (w, r) = caps();
    let c = s.create(&w, &r, 100, 60, NOW).await.unwrap();
    assert_eq!(s.write(c.id, &w, 0, vec![7; 40], NOW).await.unwrap(), 40);
    for wrong in [0, 39, 41, 100] {
        match s.write(c.id, &w, wrong, vec![7; 10], NOW).await {
            Err(BlobError::Offset { committed: 40 }) => {}
            other => panic!("offset {wrong}: {other:?}"),
        }
    }
    let e = s.write(c.id, &w, 40, vec![7; 61], NOW).await;
    assert!(matches!(e, Err(BlobError::TooLarge)));
    assert!(matches!(
        s.read(c.id, &r, 0, 10, NOW).await,
        Err(BlobError::Incomplete)
    ));
    assert_eq!(s.write(c.id, &w, 40, vec![], NOW).await.unwrap(), 40);
    assert_eq!(s.write(c.id, &w, 40, vec![8; 60], NOW).await.unwrap(), 100);
    let e = s.read(c.id, &r, 101, 1, NOW).await;
    assert!(matches!(e, Err(BlobError::Malformed(_))));
    let e = s.read(c.id, &r, 0, MAX_BLOB_CHUNK as u32 + 1, NOW).await;
    assert!(matches!(e, Err(BlobError::Malformed(_))));
    let e = s.create(&w, &r, limits().max_bytes + 1, 60, NOW).await;
    assert!(matches!(e, Err(BlobError::TooLarge)));
}

#[tokio::test]
async fn the_budget_is_reserved_at_create_and_released_on_delete() {
    let dir = tempfile::tempdir().unwrap();
    let budget = 2 * (1000 + HEADER_LEN);
    let s = BlobStore::open(
        dir.path(),
        BlobLimits {
            budget_bytes: budget,
            ..limits()
        },
    )
    .unwrap();
    let (w, r) = caps();
    let a = s.create(&w, &r, 1000, 60, NOW).await.unwrap();
    let b = s.create(&w, &r, 1000, 60, NOW).await.unwrap();
    assert_eq!(s.reserved_bytes(), budget);
    let e = s.create(&w, &r, 1, 60, NOW).await;
    assert!(matches!(e, Err(BlobError::NoSpace)));
    s.delete(a.id, &w, NOW).await.unwrap();
    let c = s.create(&w, &r, 1000, 60, NOW).await.unwrap();
    assert!(s.status(b.id, &r, NOW).is_ok() && s.status(c.id, &r, NOW).is_ok());
    // More than the disk could hold is refused too, whatever the budget.
    let huge_dir = tempfile::tempdir().unwrap();
    let huge = BlobStore::open(
        huge_dir.path(),
        BlobLimits {
            max_bytes: u64::MAX,
            budget_bytes: u64::MAX,
            ..limits()
        },
    );
    let huge = huge.unwrap();
    let free = rustix::fs::statvfs(huge_dir.path()).unwrap();
    let too_much = free
        .f_bavail
        .saturating_mul(free.f_frsize)
        .saturating_add(1);
    let e = huge.create(&w, &r, too_much, 60, NOW).await;
    assert!(matches!(e, Err(BlobError::NoSpace)));
    assert!(huge.is_empty());
}

#[tokio::test]
async fn expired_blobs_are_gone_before_the_sweep_and_their_files_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let s = BlobStore::open(dir.path(), limits()).unwrap();
    let (w, r) = caps();
    let done = s.create(&w, &r, 5, 10, NOW).await.unwrap();
    s.write(done.id, &w, 0, vec![1; 5], NOW).await.unwrap();
    let partial = s.create(&w, &r, 5, 10, NOW).await.unwrap();
    s.write(partial.id, &w, 0, vec![1; 2], NOW).await.unwrap();
    let later = s.create(&w, &r, 5, 20, NOW).await.unwrap();
    assert_eq!(s.sweep(NOW + 9).await.unwrap(), 0);
    assert!(matches!(
        s.status(done.id, &r, NOW + 10),
        Err(BlobError::NotFound)
    ));
    let e = s.write(partial.id, &w, 2, vec![1; 3], NOW + 10).await;
    assert!(matches!(e, Err(BlobError::NotFound)));
    assert_eq!(s.sweep(NOW + 10).await.unwrap(), 2);
    let blob_dir = dir.path().join(BLOB_DIR);
    assert!(!blob_dir.join(file_name(&done.id)).exists());
    assert!(!blob_dir.join(file_name(&partial.id)).exists());
    assert!(blob_dir.join(file_name(&later.id)).exists());
    assert_eq!(s.len(), 1);
    assert_eq!(s.reserved_bytes(), 5 + HEADER_LEN);
}

#[tokio::test]
async fn a_crash_keeps_what_was_checkpointed_and_the_upload_resumes_from_there() {
    let dir = tempfile::tempdir().unwrap();
    let (w, r) = caps();
    let total = CHECKPOINT_BYTES as usize + 3 * MAX_BLOB_CHUNK;
    let data = random_bytes(total);
    let (small, big) = {
        let s = BlobStore::open(dir.path(), limits()).unwrap();
        let small = s.create(&w, &r, 1000, 60, NOW).await.unwrap();
        s.write(small.id, &w, 0, vec![3; 500], NOW).await.unwrap();
        let big = s.create(&w, &r, total as u64, 60, NOW).await.unwrap();
        upload(&s, big.id, &w, &data[..total - MAX_BLOB_CHUNK], 0).await;
        // Dropped without a flush: a crash, as far as the files are concerned.
        (small.id, big.id)
    };
    let s = BlobStore::open(dir.path(), limits()).unwrap();
    let st = s.status(small, &w, NOW).unwrap();
    assert_eq!(
        st.committed, 0,
        "nothing of the small upload was checkpointed"
    );
    let small_file = dir.path().join(BLOB_DIR).join(file_name(&small));
    assert_eq!(
        std::fs::metadata(&small_file).unwrap().len(),
        HEADER_LEN,
        "its undurable bytes were cut off"
    );
    // The background checkpoint asked for at 8 MiB covered at least that much (the store
    // waits for queued checkpoints when it is dropped), but not the last, unsynced writes.
    let st = s.status(big, &w, NOW).unwrap();
    assert!(
        st.committed >= CHECKPOINT_BYTES && st.committed <= (total - MAX_BLOB_CHUNK) as u64,
        "the big one kept its checkpoint: {}",
        st.committed
    );
    let file = dir.path().join(BLOB_DIR).join(file_name(&big));
    assert_eq!(
        std::fs::metadata(&file).unwrap().len(),
        HEADER_LEN + st.committed,
        "the file matches the recorded length"
    );
    upload(&s, big, &w, &data, st.committed as usize).await;
    assert_eq!(download(&s, big, &r, total).await, data);
    // A graceful flush keeps everything.
    s.write(small, &w, 0, vec![3; 700], NOW).await.unwrap();
    s.flush().await.unwrap();
    drop(s);
    let s = BlobStore::open(dir.path(), limits()).unwrap();
    assert_eq!(s.status(small, &r, NOW).unwrap().committed, 700);
    assert_eq!(s.len(), 2);
}

#[tokio::test]
async fn start_up_removes_unfinished_files_and_orphaned_keys() {
    let dir = tempfile::tempdir().unwrap();
    let (w, r) = caps();
    let keep = {
        let s = BlobStore::open(dir.path(), limits()).unwrap();
        let c = s.create(&w, &r, 4, 60, NOW).await.unwrap();
        s.write(c.id, &w, 0, vec![9; 4], NOW).await.unwrap();
        c.id
    };
    let blob_dir = dir.path().join(BLOB_DIR);
    // A file a crash left before its header, and one whose key never reached the vault.
    std::fs::write(blob_dir.join(file_name(&BlobId([1; 16]))), b"").unwrap();
    let mut orphan = std::fs::read(blob_dir.join(file_name(&keep))).unwrap();
    orphan[100] ^= 1;
    std::fs::write(blob_dir.join(file_name(&BlobId([2; 16]))), orphan).unwrap();
    std::fs::write(blob_dir.join("notes.txt"), b"operator's file").unwrap();
    // A key no file refers to.
    let key = DeviceKey::load_or_create_key_file(&dir.path().join(KEY_FILE)).unwrap();
    {
        let vault = Vault::open(&blob_dir.join(VAULT_FILE), &key, VaultOptions::default());
        let vault = vault.unwrap();
        vault.allocate().unwrap();
        vault.sync().unwrap();
        assert_eq!(vault.slots_in_use(), 2);
    }
    let s = BlobStore::open(dir.path(), limits()).unwrap();
    assert_eq!(s.len(), 1);
    assert_eq!(s.read(keep, &r, 0, 4, NOW).await.unwrap(), vec![9; 4]);
    let mut names: Vec<_> = files_under(&blob_dir)
        .into_iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut want = vec![
        file_name(&keep),
        VAULT_FILE.to_owned(),
        "notes.txt".to_owned(),
    ];
    want.sort();
    assert_eq!(names, want);
    assert_eq!(s.inner.vault.slots_in_use(), 1);
}

#[tokio::test]
async fn a_deleted_blob_leaves_nothing_decryptable_even_with_the_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let (w, r) = caps();
    let secret = random_bytes(200_000);
    let kept = random_bytes(1000);
    let (gone, stays, snapshot, slot) = {
        let s = BlobStore::open(dir.path(), limits()).unwrap();
        let gone = s
            .create(&w, &r, secret.len() as u64, 60, NOW)
            .await
            .unwrap();
        upload(&s, gone.id, &w, &secret, 0).await;
        let stays = s.create(&w, &r, kept.len() as u64, 60, NOW).await.unwrap();
        upload(&s, stays.id, &w, &kept, 0).await;
        let path = dir.path().join(BLOB_DIR).join(file_name(&gone.id));
        // What an attacker may have copied (or the disk may keep) before the delete.
        let snapshot = std::fs::read(&path).unwrap();
        // The search does find the blob's bytes while they are there.
        let before = Pattern::pieces(&snapshot[HEADER_LEN as usize..], 32);
        assert!(forensic::files_holding(dir.path(), &before).contains(&path));
        let slot = s.inner.slot_of(&gone.id).unwrap();
        s.delete(gone.id, &r, NOW).await.unwrap();
        (gone.id, stays.id, snapshot, slot)
    };
    let at_rest = &snapshot[HEADER_LEN as usize..];
    let plaintext = Pattern::pieces(&secret, 32);
    forensic::assert_can_see(dir.path(), &plaintext);
    let found = forensic::files_holding(dir.path(), &plaintext);
    assert!(found.is_empty(), "plaintext in {found:?}");
    let found = forensic::files_holding(dir.path(), &Pattern::pieces(at_rest, 32));
    assert!(found.is_empty(), "ciphertext in {found:?}");
    // The attacker holds the device key file and the pre-delete copy of the blob file.
    let key = DeviceKey::load_or_create_key_file(&dir.path().join(KEY_FILE)).unwrap();
    let vault_path = dir.path().join(BLOB_DIR).join(VAULT_FILE);
    let vault = Vault::open(&vault_path, &key, VaultOptions::default()).unwrap();
    assert!(matches!(vault.get(slot), Err(VaultError::EmptySlot(_))));
    let snapshot_file = dir.path().join("copy");
    std::fs::write(&snapshot_file, &snapshot).unwrap();
    let h = header::read(&std::fs::File::open(&snapshot_file).unwrap()).unwrap();
    assert_eq!(h.id, gone);
    let remaining: Vec<SlotId> = vault.occupied_slots();
    assert_eq!(remaining.len(), 1, "only the other blob's key remains");
    for slot in remaining {
        let slot_key = vault.get(slot).unwrap();
        assert!(DataKey::unwrap(&slot_key, &gone, &h.wrapped_key).is_err());
        // Even the surviving key, used as if it were the data key, yields nothing of it.
        let other = DataKey::unwrap(&slot_key, &stays, &h.wrapped_key);
        assert!(other.is_err());
    }
}
