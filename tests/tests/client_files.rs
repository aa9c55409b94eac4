//! File transfer through the `Client` over a real relay on loopback: round trips, view-once,
//! timers, unsend and burn (with the blob gone from the relay and the staged copy from the
//! home), tampering, expiry, interrupted and resumed uploads and downloads, and a byte search
//! of every data directory after deletion.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use hush_client::{Client, ClientError, Clock, MessageView, TransferProgress};
use hush_server::blob::HEADER_LEN;
use hush_tests::clients::*;

/// A marker that occurs in every test file's plaintext.
const MARKER: &[u8] = b"HUSH-FILE-PLAINTEXT-MARKER-0c7e";

/// Writes a file of `len` bytes: the marker every 4 KiB over a counter pattern.
fn make_file(dir: &Path, name: &str, len: usize) -> PathBuf {
    let mut data: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
    let mut at = 0;
    while at + MARKER.len() <= len {
        data[at..at + MARKER.len()].copy_from_slice(MARKER);
        at += 4096;
    }
    let path = dir.join(name);
    std::fs::write(&path, &data).unwrap();
    path
}

fn no_progress(_: TransferProgress) {}

/// Receives until the file message arrives from `contact`.
async fn file_from(client: &Client, contact: &str) -> MessageView {
    let m = message_from(client, contact).await;
    assert!(m.file.is_some(), "not a file message: {m:?}");
    m
}

/// The staged ciphertext files in a home.
fn staged(home: &Path) -> Vec<PathBuf> {
    match std::fs::read_dir(home.join("files")) {
        Ok(d) => d.flatten().map(|e| e.path()).collect(),
        Err(_) => Vec::new(),
    }
}

/// The blob files a relay holds (its data directory's `blobs/`, less the key vault).
fn relay_blobs(data: &Path) -> Vec<PathBuf> {
    match std::fs::read_dir(data.join("blobs")) {
        Ok(d) => d
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file() && p.file_name().is_some_and(|n| n != "keys.vault"))
            .filter(|p| std::fs::metadata(p).is_ok_and(|m| m.len() >= HEADER_LEN))
            .collect(),
        Err(_) => Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_round_trips_is_kept_encrypted_and_is_never_overwritten() {
    let relay = relay();
    let (alice, bob, ha, hb) = pair(relay.address(), relay.address()).await;
    let src = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    // Three full chunks and a bit: several relay writes, a short last chunk.
    let path = make_file(src.path(), "report.pdf", 3 * 65_520 + 1234);
    let last = std::sync::Arc::new(AtomicU64::new(0));
    let seen = last.clone();
    let id = alice
        .send_file("bob", &path, None, false, &move |p| {
            seen.store(p.done, Ordering::SeqCst);
            assert!(p.done <= p.total);
        })
        .await
        .unwrap()
        .id;
    assert_eq!(last.load(Ordering::SeqCst), 3 * 65_536 + 1234 + 16);
    assert_eq!(relay_blobs(relay.dir.path()).len(), 1);

    let m = file_from(&bob, "alice").await;
    assert_eq!(m.id, id);
    let f = m.file.clone().unwrap();
    assert_eq!((f.name.as_str(), f.size), ("report.pdf", 3 * 65_520 + 1234));
    let mine = alice.history("bob").await.unwrap();
    assert_eq!(mine[0].file.as_ref().unwrap().name, "report.pdf");
    // Only received files can be saved.
    assert!(matches!(
        alice.save_file(id, out.path(), &no_progress).await,
        Err(ClientError::Conversation(_))
    ));

    let saved = bob.save_file(id, out.path(), &no_progress).await.unwrap();
    assert_eq!(saved, out.path().join("report.pdf"));
    assert_eq!(
        std::fs::read(&saved).unwrap(),
        std::fs::read(&path).unwrap()
    );
    // Download done: the relay deleted the blob. The home keeps only ciphertext.
    assert!(relay_blobs(relay.dir.path()).is_empty());
    assert_eq!(staged(&hb.path().join("home")).len(), 1);
    // The search does find the plaintext where it is: in the saved file.
    let marker = Pattern::bytes(MARKER);
    assert_eq!(
        forensic::files_holding(out.path(), &marker),
        vec![saved.clone()]
    );
    assert!(forensic::files_holding(hb.path(), &marker).is_empty());
    assert!(forensic::files_holding(ha.path(), &marker).is_empty());
    assert!(forensic::files_holding(relay.dir.path(), &marker).is_empty());

    // Never overwritten; saving again elsewhere works from the staged copy, with no relay.
    let again = bob.save_file(id, out.path(), &no_progress).await;
    assert!(
        matches!(&again, Err(ClientError::FileExists { path }) if path == &saved),
        "{again:?}"
    );
    assert!(again
        .unwrap_err()
        .to_string()
        .contains("does not overwrite"));
    let other = out.path().join("copy.pdf");
    bob.save_file(id, &other, &no_progress).await.unwrap();
    assert_eq!(
        std::fs::read(&other).unwrap(),
        std::fs::read(&path).unwrap()
    );
    // No temporary file is left beside the destinations.
    let mut names: Vec<String> = std::fs::read_dir(out.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["copy.pdf", "report.pdf"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_and_odd_names_files_arrive_as_safe_names() {
    let relay = relay();
    let (alice, bob, _ha, _hb) = pair(relay.address(), relay.address()).await;
    let src = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let path = src.path().join("..hidden\u{7}name");
    std::fs::write(&path, b"").unwrap();
    let id = alice
        .send_file("bob", &path, None, false, &no_progress)
        .await
        .unwrap()
        .id;
    let m = file_from(&bob, "alice").await;
    assert_eq!(m.file.as_ref().unwrap().name, "hidden_name");
    let saved = bob.save_file(id, out.path(), &no_progress).await.unwrap();
    assert_eq!(saved, out.path().join("hidden_name"));
    assert_eq!(std::fs::read(&saved).unwrap(), b"");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_view_once_file_is_deleted_once_saved() {
    let relay = relay();
    let (alice, bob, _ha, hb) = pair(relay.address(), relay.address()).await;
    let src = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let path = make_file(src.path(), "once.bin", 100_000);
    let id = alice
        .send_file("bob", &path, None, true, &no_progress)
        .await
        .unwrap()
        .id;
    let m = file_from(&bob, "alice").await;
    assert!(m.view_once);
    // Showing it reveals only its name and size; it is still there to save.
    assert_eq!(bob.display("alice", id).await.unwrap().body, None);
    bob.save_file(id, out.path(), &no_progress).await.unwrap();
    assert_eq!(
        std::fs::read(out.path().join("once.bin")).unwrap(),
        std::fs::read(&path).unwrap()
    );
    assert!(bob.history("alice").await.unwrap().is_empty());
    assert!(staged(&hb.path().join("home")).is_empty());
    let second = bob
        .save_file(id, &out.path().join("again.bin"), &no_progress)
        .await;
    assert!(
        matches!(second, Err(ClientError::Conversation(_))),
        "{second:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timers_delete_the_local_copy_and_the_senders_expiry_retracts_the_blob() {
    let relay = relay();
    let clock = Clock::system();
    let (alice, bob, _ha, hb) = pair_clocked(relay.address(), relay.address(), clock.clone()).await;
    let src = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let timer = Some(Duration::from_secs(60));
    let kept = make_file(src.path(), "kept.bin", 70_000);
    let unread = make_file(src.path(), "unread.bin", 70_000);
    let id_kept = alice
        .send_file("bob", &kept, timer, false, &no_progress)
        .await
        .unwrap()
        .id;
    file_from(&bob, "alice").await;
    bob.save_file(id_kept, out.path(), &no_progress)
        .await
        .unwrap();
    assert_eq!(staged(&hb.path().join("home")).len(), 1);
    let id_unread = alice
        .send_file("bob", &unread, timer, false, &no_progress)
        .await
        .unwrap()
        .id;
    file_from(&bob, "alice").await;
    assert_eq!(relay_blobs(relay.dir.path()).len(), 1);

    clock.advance(Duration::from_secs(61));
    // Bob's saved copy expired 60 s after he saved it: record and staged copy are gone.
    expired(&bob, "alice", id_kept).await;
    assert!(staged(&hb.path().join("home")).is_empty());
    // Alice's copies expired 60 s after sending: her expiry retracted the unread blob.
    expired(&alice, "bob", id_unread).await;
    assert!(relay_blobs(relay.dir.path()).is_empty());
    // Bob has not read the second one yet (its hard expiry is far off), but it is gone.
    let late = bob
        .save_file(id_unread, out.path(), &no_progress)
        .await
        .unwrap_err();
    assert!(matches!(late, ClientError::FileExpired), "{late:?}");
    assert_eq!(
        late.to_string(),
        "the file expired on the relay; ask the sender to send it again"
    );
    assert!(!out.path().join("unread.bin").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsend_retracts_the_blob_and_removes_the_staged_copy() {
    let relay = relay();
    let (alice, bob, ha, hb) = pair(relay.address(), relay.address()).await;
    let src = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let path = make_file(src.path(), "a.bin", 200_000);
    // Saved, then unsent: the staged ciphertext goes with the message.
    let saved_id = alice
        .send_file("bob", &path, None, false, &no_progress)
        .await
        .unwrap()
        .id;
    file_from(&bob, "alice").await;
    bob.save_file(saved_id, out.path(), &no_progress)
        .await
        .unwrap();
    let bob_home = hb.path().join("home");
    let piece = {
        let staged = std::fs::read(&staged(&bob_home)[0]).unwrap();
        staged[100_000..100_048].to_vec()
    };
    // The search does find the piece while it is there.
    assert!(
        forensic::files_holding(hb.path(), &Pattern::bytes(&piece)).contains(&staged(&bob_home)[0])
    );
    alice.unsend("bob", saved_id).await.unwrap();
    until(&bob, |e| {
        matches!(e, hush_client::ClientEvent::Unsent { .. })
    })
    .await;
    assert!(staged(&bob_home).is_empty());
    // Unsent before Bob saved it: the blob is gone from the relay at once, and a save that
    // races the unsend says the file is gone.
    let other = alice
        .send_file("bob", &path, None, false, &no_progress)
        .await
        .unwrap()
        .id;
    file_from(&bob, "alice").await;
    assert_eq!(relay_blobs(relay.dir.path()).len(), 1);
    alice.unsend("bob", other).await.unwrap();
    assert!(relay_blobs(relay.dir.path()).is_empty());
    let err = bob
        .save_file(other, &out.path().join("b.bin"), &no_progress)
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::FileExpired), "{err:?}");
    assert!(!out.path().join("b.bin").exists());
    // Forensics: neither the plaintext nor any piece of the ciphertext is left anywhere.
    for dir in [ha.path(), hb.path(), relay.dir.path()] {
        forensic::assert_gone(dir, &Pattern::bytes(MARKER));
        forensic::assert_gone(dir, &Pattern::bytes(&piece));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn burn_deletes_every_file_on_both_sides_and_on_the_relay() {
    let relay = relay();
    let (alice, bob, ha, hb) = pair(relay.address(), relay.address()).await;
    let src = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let path = make_file(src.path(), "c.bin", 150_000);
    let saved = alice
        .send_file("bob", &path, None, false, &no_progress)
        .await
        .unwrap()
        .id;
    file_from(&bob, "alice").await;
    bob.save_file(saved, out.path(), &no_progress)
        .await
        .unwrap();
    let bob_home = hb.path().join("home");
    let piece = std::fs::read(&staged(&bob_home)[0]).unwrap()[50_000..50_048].to_vec();
    // The search does find the piece while it is there.
    assert!(
        forensic::files_holding(hb.path(), &Pattern::bytes(&piece)).contains(&staged(&bob_home)[0])
    );
    let pending = alice
        .send_file("bob", &path, None, false, &no_progress)
        .await
        .unwrap()
        .id;
    file_from(&bob, "alice").await;
    assert_eq!(relay_blobs(relay.dir.path()).len(), 1);

    alice.burn("bob").await.unwrap();
    assert!(relay_blobs(relay.dir.path()).is_empty());
    until(&bob, |e| {
        matches!(e, hush_client::ClientEvent::Burned { .. })
    })
    .await;
    assert!(staged(&bob_home).is_empty());
    assert!(matches!(
        bob.save_file(pending, out.path(), &no_progress).await,
        Err(ClientError::Conversation(_)) | Err(ClientError::Burned)
    ));
    for dir in [ha.path(), hb.path(), relay.dir.path()] {
        forensic::assert_gone(dir, &Pattern::bytes(MARKER));
        forensic::assert_gone(dir, &Pattern::bytes(&piece));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_blob_is_refused_and_nothing_is_written() {
    let relay = relay();
    let (alice, bob, _ha, hb) = pair(relay.address(), relay.address()).await;
    let src = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let path = make_file(src.path(), "t.bin", 300_000);
    let id = alice
        .send_file("bob", &path, None, false, &no_progress)
        .await
        .unwrap()
        .id;
    file_from(&bob, "alice").await;
    // Flip one bit of the stored blob (the relay's at-rest layer is a bare keystream).
    let blob = relay_blobs(relay.dir.path()).pop().unwrap();
    let mut bytes = std::fs::read(&blob).unwrap();
    bytes[HEADER_LEN as usize + 200_000] ^= 0x20;
    std::fs::write(&blob, &bytes).unwrap();

    let err = bob
        .save_file(id, out.path(), &no_progress)
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::FileTampered), "{err:?}");
    assert_eq!(
        err.to_string(),
        "the file was tampered with or corrupted; nothing was written"
    );
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0);
    // The bad copy is not kept: a later save downloads again (and fails the same way).
    assert!(staged(&hb.path().join("home")).is_empty());
    assert!(matches!(
        bob.save_file(id, out.path(), &no_progress).await,
        Err(ClientError::FileTampered)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_blob_says_so_without_writing() {
    let relay = relay();
    let clock = Clock::system();
    let (alice, bob, _ha, _hb) =
        pair_clocked(relay.address(), relay.address(), clock.clone()).await;
    let src = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let path = make_file(src.path(), "late.bin", 1000);
    let id = alice
        .send_file("bob", &path, None, false, &no_progress)
        .await
        .unwrap()
        .id;
    let m = file_from(&bob, "alice").await;
    let past = m.file.unwrap().expires_at - clock.now_secs() + 1;
    clock.advance(Duration::from_secs(past));
    let err = bob
        .save_file(id, out.path(), &no_progress)
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::FileExpired), "{err:?}");
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0);
}

/// Runs `op` until its progress passes `at` bytes, then drops it mid-transfer (as a killed
/// process would stop).
async fn cut_at<F, Fut>(at: u64, op: F)
where
    F: FnOnce(&'static (dyn Fn(TransferProgress) + Send + Sync)) -> Fut,
    Fut: std::future::Future,
{
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let tx = Mutex::new(Some(tx));
    let progress: &'static (dyn Fn(TransferProgress) + Send + Sync) =
        Box::leak(Box::new(move |p: TransferProgress| {
            if p.done >= at {
                if let Some(tx) = tx.lock().unwrap().take() {
                    let _ = tx.send(());
                }
            }
        }));
    tokio::select! {
        _ = op(progress) => panic!("the transfer finished before it was cut"),
        _ = rx => {}
    }
}

/// Records the first progress report of a transfer.
fn first_report() -> (
    std::sync::Arc<Mutex<Option<u64>>>,
    impl Fn(TransferProgress) + Send + Sync,
) {
    let first = std::sync::Arc::new(Mutex::new(None));
    let seen = first.clone();
    (first, move |p: TransferProgress| {
        seen.lock().unwrap().get_or_insert(p.done);
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_upload_and_a_cut_download_resume_where_they_stopped() {
    let relay = relay();
    let (alice, bob, _ha, _hb) = pair(relay.address(), relay.address()).await;
    let src = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let len = 40 * 65_520 + 77;
    let path = make_file(src.path(), "big.bin", len);

    cut_at(1 << 20, |progress| {
        alice.send_file("bob", &path, None, false, progress)
    })
    .await;
    let (first, progress) = first_report();
    let id = alice
        .send_file("bob", &path, None, false, &progress)
        .await
        .unwrap()
        .id;
    let resumed_from = first.lock().unwrap().unwrap();
    assert!(
        resumed_from >= 1 << 20,
        "upload restarted at {resumed_from}"
    );

    file_from(&bob, "alice").await;
    cut_at(1 << 20, |progress| bob.save_file(id, out.path(), progress)).await;
    assert!(!out.path().join("big.bin").exists());
    let (first, progress) = first_report();
    bob.save_file(id, out.path(), &progress).await.unwrap();
    let resumed_from = first.lock().unwrap().unwrap();
    assert!(
        resumed_from >= 1 << 20,
        "download restarted at {resumed_from}"
    );
    assert_eq!(
        std::fs::read(out.path().join("big.bin")).unwrap(),
        std::fs::read(&path).unwrap()
    );
    // Only the message's file is left: the finished upload's record went with it.
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_restart_interrupts_the_upload_and_the_same_send_resumes_it() {
    let relay = sled_relay();
    let address = relay.address();
    let addr = relay.handle.local_addr();
    let (alice, bob, _ha, _hb) = pair(address.clone(), address.clone()).await;
    let src = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    // Large enough that the upload cannot finish while the relay's graceful stop takes effect
    // (at 30 chunks it sometimes did on a loaded machine, and the send then failed later).
    let path = make_file(src.path(), "r.bin", 160 * 65_520);

    // The relay goes down mid-upload: the send fails, saying how to resume.
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let tx = Mutex::new(Some(tx));
    let stop_at = move |p: TransferProgress| {
        if p.done >= 600_000 {
            if let Some(tx) = tx.lock().unwrap().take() {
                let _ = tx.send(());
            }
        }
    };
    let TestRelay { handle, dir, .. } = relay;
    let shutdown = async move {
        let _ = rx.await;
        handle.shutdown().await.unwrap();
    };
    let (sent, ()) = tokio::join!(
        alice.send_file("bob", &path, None, false, &stop_at),
        shutdown
    );
    let err = sent.unwrap_err();
    assert!(
        matches!(err, ClientError::TransferInterrupted { .. }),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "transfer interrupted; run the same command again to resume"
    );

    // Back on the same port and data directory: the same send goes on from what it kept.
    let relay = sled_relay_in(dir, Some(addr));
    assert_eq!(relay.address(), address);
    let (first, progress) = first_report();
    let id = alice
        .send_file("bob", &path, None, false, &progress)
        .await
        .unwrap()
        .id;
    assert!(first.lock().unwrap().unwrap() > 0);
    file_from(&bob, "alice").await;
    bob.save_file(id, out.path(), &no_progress).await.unwrap();
    assert_eq!(
        std::fs::read(out.path().join("r.bin")).unwrap(),
        std::fs::read(&path).unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_over_the_relays_cap_is_refused_before_uploading() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = hush_server::RelayConfig::loopback(dir.path());
    config.blob_max_bytes = 100_000;
    let relay = hush_server::Relay::bind(config, hush_server::store::memory::MemoryStore::new())
        .unwrap()
        .spawn();
    let (alice, _bob, _ha, _hb) = pair(relay.address().clone(), relay.address().clone()).await;
    let src = tempfile::tempdir().unwrap();
    let path = make_file(src.path(), "huge.bin", 200_000);
    let err = alice
        .send_file("bob", &path, None, false, &no_progress)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClientError::FileTooLarge { size: 200_000, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("nothing was uploaded"));
    assert!(relay_blobs(dir.path()).is_empty());
    // A missing file is a clear error naming it.
    let missing = src.path().join("nope.bin");
    let err = alice
        .send_file("bob", &missing, None, false, &no_progress)
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::FileIo { .. }), "{err:?}");
    assert!(err.to_string().contains("nope.bin"));
}
