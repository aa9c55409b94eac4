//! An upload never puts two different ciphertexts under one (key, nonce): a relay that
//! under-reports `committed` forces the client to seal chunks again, and the source file
//! changes meanwhile (between two attempts, or during one). The relay records every write it
//! receives; no offset of the blob may get two different byte strings, and the send fails with
//! `FileChanged` (its blob owed a deletion, no message sent).

use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hush_client::files::PLAIN_CHUNK;
use hush_client::{Client, ClientError, TransferProgress};
use hush_protocol::ErrorCode;
use hush_tests::clients::*;
use hush_tests::hostile::blob_relay::{conflicting_writes, LyingBlobRelay, Received, Script};

/// Twenty chunks and a bit: more than one batch of writes in flight.
const LEN: usize = 20 * PLAIN_CHUNK + 5;

fn no_progress(_: TransferProgress) {}

fn make_file(dir: &Path) -> PathBuf {
    let path = dir.join("draft.bin");
    let data: Vec<u8> = (0..LEN).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&path, data).unwrap();
    path
}

/// Changes bytes inside chunk 1 of the file, in place (same inode).
fn change_chunk_one(path: &Path) {
    let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.seek(SeekFrom::Start(PLAIN_CHUNK as u64 + 10)).unwrap();
    f.write_all(b"changed while it was being sent").unwrap();
    f.sync_all().unwrap();
}

/// Alice and Bob paired on a real relay, which then stops; a lying relay running `script`
/// takes its address (and certificate), so Alice's uploads go to it.
async fn alice_on_a_lying_relay(
    script: Script,
) -> (Client, LyingBlobRelay, tempfile::TempDir, tempfile::TempDir) {
    let relay = relay();
    let addr = relay.handle.local_addr();
    let dir = relay.dir.clone();
    let (alice, _bob, ha, hb) = pair(relay.address(), relay.address()).await;
    relay.stop().await;
    let liar = LyingBlobRelay::start(dir.path(), addr, script);
    (alice, liar, ha, hb)
}

/// The outcome every scenario must have.
async fn assert_stopped_without_reuse(
    alice: &Client,
    liar: &LyingBlobRelay,
    sent: Result<(), ClientError>,
) {
    let err = sent.unwrap_err();
    assert!(matches!(err, ClientError::FileChanged { .. }), "{err:?}");
    assert!(err
        .to_string()
        .contains("changed while it was being sent; nothing was sent"));
    let received = liar.received();
    // Chunk 1 had reached the relay once before it forced the retry.
    let chunk_one = (PLAIN_CHUNK + 16) as u64;
    assert!(received.iter().any(|w| w.offset == chunk_one));
    // The search finds a conflict where there is one: the same writes with chunk 1 sent again,
    // altered.
    let mut forged: Vec<Received> = received.clone();
    let mut again = received
        .iter()
        .find(|w| w.offset == chunk_one)
        .unwrap()
        .clone();
    again.data[0] ^= 1;
    forged.push(again);
    assert!(!conflicting_writes(&forged).is_empty());
    // No offset of any blob got two different ciphertexts.
    assert!(
        conflicting_writes(&received).is_empty(),
        "two ciphertexts under one nonce reached the relay"
    );
    // Nothing reached Bob, and the abandoned blob is owed a deletion, carried out on the tick.
    assert!(alice
        .history("bob")
        .await
        .unwrap()
        .iter()
        .all(|m| m.file.is_none()));
    let _ = alice.tick().await;
    assert_eq!(liar.deleted(), vec![received[0].blob]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_changed_between_attempts_is_never_sealed_again_under_the_same_nonce() {
    let src = tempfile::tempdir().unwrap();
    let path = make_file(src.path());
    let target = path.clone();
    let script = Script {
        // The fourth write fails, and the file changes before the relay says so.
        write: Box::new(move |n, _| {
            (n == 3).then(|| {
                change_chunk_one(&target);
                ErrorCode::BlobOffset
            })
        }),
        // Every status after the first claims the relay holds nothing.
        status: Box::new(|n, held| if n == 0 { held } else { 0 }),
    };
    let (alice, liar, _ha, _hb) = alice_on_a_lying_relay(script).await;
    let sent = alice
        .send_file("bob", &path, None, false, &no_progress)
        .await
        .map(|_| ());
    assert_stopped_without_reuse(&alice, &liar, sent).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_changed_during_an_attempt_is_caught_by_the_hashes_of_what_was_sent() {
    let src = tempfile::tempdir().unwrap();
    let path = make_file(src.path());
    let target = path.clone();
    let changed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let seen = changed.clone();
    let script = Script {
        write: Box::new(|n, _| (n == 3).then_some(ErrorCode::BlobOffset)),
        // The second status (the retry's, after the client checked the file) changes the file
        // and claims the relay holds nothing: the client seals chunk 1 again from new bytes.
        status: Box::new(move |n, held| {
            if n == 1 {
                change_chunk_one(&target);
                seen.store(true, std::sync::atomic::Ordering::SeqCst);
                0
            } else {
                held
            }
        }),
    };
    let (alice, liar, _ha, _hb) = alice_on_a_lying_relay(script).await;
    let sent = alice
        .send_file("bob", &path, None, false, &no_progress)
        .await
        .map(|_| ());
    assert!(changed.load(std::sync::atomic::Ordering::SeqCst));
    // The retry did ask the relay where to go on from.
    assert_eq!(liar.statuses(), 2);
    assert_stopped_without_reuse(&alice, &liar, sent).await;
}
