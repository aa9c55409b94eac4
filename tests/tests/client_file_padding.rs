//! What the relay learns of a file's size: its blob is padded to Padmé of the ciphertext's
//! length, so files whose sizes differ by a few bytes look the same, and the recipient still
//! gets the exact file back, at every edge of the chunking.

use std::path::{Path, PathBuf};

use hush_client::files::PLAIN_CHUNK;
use hush_client::{Client, TransferProgress};
use hush_server::blob::HEADER_LEN;
use hush_tests::clients::*;

fn no_progress(_: TransferProgress) {}

/// Padmé as the PURBs paper defines it: `L` rounded up to a multiple of `2^(E-S)`, where
/// `E = floor(log2 L)` and `S = floor(log2 E) + 1`.
fn padme(len: u64) -> u64 {
    let e = (len as f64).log2().floor() as u32;
    let s = (e as f64).log2().floor() as u32 + 1;
    let mask = (1u64 << (e - s)) - 1;
    (len + mask) & !mask
}

/// The file's ciphertext length: a 16-byte tag per chunk, one chunk even when empty.
fn cipher_len(size: u64) -> u64 {
    size + 16 * size.div_ceil(PLAIN_CHUNK as u64).max(1)
}

fn make_file(dir: &Path, len: usize) -> PathBuf {
    let path = dir.join(format!("f{len}.bin"));
    let data: Vec<u8> = (0..len).map(|i| (i * 13 % 251) as u8).collect();
    std::fs::write(&path, data).unwrap();
    path
}

/// The sizes of the blobs the relay holds, as its data directory shows them.
fn blob_sizes(data: &Path) -> Vec<u64> {
    hush_tests::blobs::blob_files(data)
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len() - HEADER_LEN)
        .collect()
}

/// Sends the file at `path`, checks what the relay holds, saves it on Bob's side and checks
/// the bytes. Returns the relay-visible size.
async fn round_trip(
    alice: &Client,
    bob: &Client,
    relay: &TestRelay,
    path: &Path,
    out: &Path,
) -> u64 {
    let size = std::fs::metadata(path).unwrap().len();
    let id = alice
        .send_file("bob", path, None, false, &no_progress)
        .await
        .unwrap()
        .id;
    let sizes = blob_sizes(relay.data_dir());
    assert_eq!(sizes.len(), 1);
    assert_eq!(sizes[0], padme(cipher_len(size)), "file of {size} bytes");
    let m = message_from(bob, "alice").await;
    assert_eq!(m.file.unwrap().size, size);
    let saved = bob.save_file(id, out, &no_progress).await.unwrap();
    assert_eq!(std::fs::read(&saved).unwrap(), std::fs::read(path).unwrap());
    // Download done: the relay deleted the blob.
    assert!(blob_sizes(relay.data_dir()).is_empty());
    sizes[0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blobs_are_padded_to_padme_and_padded_files_arrive_exact() {
    let relay = relay();
    let (alice, bob, _ha, _hb) = pair(relay.address(), relay.address()).await;
    let src = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let c = PLAIN_CHUNK;
    for len in [0, 1, c - 1, c, c + 1, 3 * 1024 * 1024 + 4321] {
        round_trip(
            &alice,
            &bob,
            &relay,
            &make_file(src.path(), len),
            out.path(),
        )
        .await;
    }
    // Sizes a few bytes apart look the same to the relay, and the padding is not nothing.
    let a = round_trip(
        &alice,
        &bob,
        &relay,
        &make_file(src.path(), 3 * c + 1234),
        out.path(),
    )
    .await;
    let b = round_trip(
        &alice,
        &bob,
        &relay,
        &make_file(src.path(), 3 * c + 1240),
        out.path(),
    )
    .await;
    assert_eq!(a, b);
    assert!(a > cipher_len(3 * c as u64 + 1240));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn altered_padding_is_refused_and_nothing_is_written() {
    let relay = relay();
    let (alice, bob, _ha, _hb) = pair(relay.address(), relay.address()).await;
    let src = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let path = make_file(src.path(), 3 * PLAIN_CHUNK + 1234);
    let id = alice
        .send_file("bob", &path, None, false, &no_progress)
        .await
        .unwrap()
        .id;
    message_from(&bob, "alice").await;
    // Flip the blob's last byte, which is padding (the relay's at-rest layer is a keystream).
    let blob = hush_tests::blobs::blob_files(relay.data_dir())
        .pop()
        .unwrap();
    let mut bytes = std::fs::read(&blob).unwrap();
    let size = std::fs::metadata(&path).unwrap().len();
    assert!(bytes.len() as u64 - HEADER_LEN > cipher_len(size));
    *bytes.last_mut().unwrap() ^= 0x20;
    std::fs::write(&blob, &bytes).unwrap();
    let err = bob
        .save_file(id, out.path(), &no_progress)
        .await
        .unwrap_err();
    assert!(
        matches!(err, hush_client::ClientError::FileTampered),
        "{err:?}"
    );
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0);
}
