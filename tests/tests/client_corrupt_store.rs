//! A damaged home: `Client::open` on a home whose files were truncated, overwritten or removed
//! (the key vault, the sled database, the key file, the marker) returns a typed error that says
//! what to do, never panics, changes none of the files it could not read, and the same home,
//! restored from a copy, opens with its contacts and history intact.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use hush_client::store::{KeySource, StoreError};
use hush_client::{Client, ClientError};
use hush_tests::clients::*;
use hush_vault::{VaultError, SLOT_LEN};

/// Every file under a directory, by relative path.
type Snapshot = BTreeMap<PathBuf, Vec<u8>>;

fn snapshot(dir: &Path) -> Snapshot {
    let mut out = Snapshot::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(dir).unwrap().to_path_buf();
                out.insert(rel, fs::read(&path).unwrap());
            }
        }
    }
    out
}

/// Puts the directory back exactly as `snap` has it (files 0600, directories 0700).
fn restore(dir: &Path, snap: &Snapshot) {
    if dir.exists() {
        fs::remove_dir_all(dir).unwrap();
    }
    fs::create_dir_all(dir).unwrap();
    for (rel, bytes) in snap {
        let path = dir.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, bytes).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    }
}

struct Fixture {
    _dirs: (tempfile::TempDir, tempfile::TempDir),
    home: PathBuf,
    pristine: Snapshot,
    /// Another home's valid key file.
    other_key: Vec<u8>,
}

/// Alice's home after a conversation with Bob: a contact, a session and four messages.
async fn fixture() -> Fixture {
    let relay = relay();
    let (alice, bob, ha, hb) = pair(relay.address(), relay.address()).await;
    for text in ["one", "two"] {
        alice.send_text("bob", text, None, false).await.unwrap();
        message_from(&bob, "alice").await;
        bob.send_text("alice", text, None, false).await.unwrap();
        message_from(&alice, "bob").await;
    }
    alice.close().await;
    bob.close().await;
    let home = ha.path().join("home");
    Fixture {
        pristine: snapshot(&home),
        other_key: fs::read(hb.path().join("home/device.key")).unwrap(),
        home,
        _dirs: (ha, hb),
    }
}

/// Opens the home, in a task so that a panic is caught and named.
async fn open(home: &Path) -> Result<(), ClientError> {
    let home = home.to_path_buf();
    let task = tokio::spawn(async move {
        Client::open_with(&home, KeySource::KeyFile, options())
            .await
            .map(drop)
    });
    match task.await {
        Ok(result) => result,
        Err(e) => panic!("Client::open panicked: {e}"),
    }
}

/// Damages the home with `damage`, checks that opening it fails as `expected` says without
/// touching any file, then restores it and checks that it opens with everything in it.
async fn check(
    f: &Fixture,
    case: &str,
    damage: impl FnOnce(&Path),
    expected: impl Fn(&ClientError) -> bool,
) {
    restore(&f.home, &f.pristine);
    damage(&f.home);
    let damaged = snapshot(&f.home);
    let err = match open(&f.home).await {
        Ok(()) => panic!("{case}: a damaged home opened"),
        Err(e) => e,
    };
    assert!(expected(&err), "{case}: unexpected error {err:?}");
    let text = err.to_string();
    assert!(
        ["restore", "backup", "chmod", "run `hush init`"]
            .iter()
            .any(|hint| text.contains(hint)),
        "{case}: the message says what to do: {text}"
    );
    assert!(
        snapshot(&f.home) == damaged,
        "{case}: the failed open changed files"
    );
    restore(&f.home, &f.pristine);
    let client = Client::open_with(&f.home, KeySource::KeyFile, options())
        .await
        .unwrap_or_else(|e| panic!("{case}: the restored home does not open: {e}"));
    let history = client.history("bob").await.unwrap();
    assert_eq!(history.len(), 4, "{case}");
    client.close().await;
}

fn corrupt(e: &ClientError) -> bool {
    matches!(
        e,
        ClientError::Store(StoreError::Corrupt { .. }) | ClientError::Corrupt { .. }
    )
}

fn edit(path: &Path, f: impl FnOnce(&mut Vec<u8>)) {
    let mut bytes = fs::read(path).unwrap();
    f(&mut bytes);
    fs::write(path, bytes).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_key_vault_is_a_typed_error_and_left_as_it_was() {
    let f = fixture().await;
    let vault = PathBuf::from("keys.vault");
    let len = f.pristine[&vault].len();
    assert!(len > 128 + 4 * 64, "the vault holds several slots");
    // The vault keeps free slots (zeros) after the live ones; cut into the live ones.
    let live_end = f.pristine[&vault].iter().rposition(|&b| b != 0).unwrap() + 1;
    for cut in [0, 60, 128 + 20, (128 + live_end) / 2, live_end - 1] {
        check(
            &f,
            &format!("vault cut to {cut} bytes"),
            |h| edit(&h.join(&vault), |b| b.truncate(cut)),
            corrupt,
        )
        .await;
    }
    // The magic and version, the authenticated header and its check block.
    for at in [0, 8, 40, 70] {
        check(
            &f,
            &format!("vault header byte {at} flipped"),
            |h| edit(&h.join(&vault), |b| b[at] ^= 0x20),
            |e| {
                corrupt(e)
                    || matches!(
                        e,
                        ClientError::Store(StoreError::KeyFile(VaultError::WrongKey))
                    )
            },
        )
        .await;
    }
    // A byte of every slot that holds a key.
    let slots = (len - 128) / SLOT_LEN;
    let mut live = 0;
    for slot in 0..slots {
        let start = 128 + slot * SLOT_LEN;
        if f.pristine[&vault][start..start + SLOT_LEN]
            .iter()
            .all(|&b| b == 0)
        {
            continue;
        }
        live += 1;
        let at = start + (slot * 7) % SLOT_LEN;
        check(
            &f,
            &format!("vault slot {slot} byte {at} flipped"),
            |h| edit(&h.join(&vault), |b| b[at] ^= 0x01),
            corrupt,
        )
        .await;
    }
    assert!(
        live >= 6,
        "identity, settings, contact, session, messages: {live}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_database_is_a_typed_error_and_left_as_it_was() {
    let f = fixture().await;
    let log = PathBuf::from("db/db");
    let len = f.pristine[&log].len();
    let (mut left_alone, mut torn) = (0, 0);
    for at in (0..len).step_by(89) {
        let case = format!("database log byte {at} flipped");
        restore(&f.home, &f.pristine);
        edit(&f.home.join(&log), |b| b[at] ^= 0x01);
        let damaged = snapshot(&f.home);
        match open(&f.home).await {
            // A byte sled never reads: nothing was lost.
            Ok(()) => assert_full(&f.home, &case).await,
            Err(e) if snapshot(&f.home) == damaged => {
                assert!(
                    matches!(e, ClientError::Store(StoreError::Corrupt { .. })),
                    "{case}: {e:?}"
                );
                left_alone += 1;
            }
            // sled cannot tell a damaged final write from one a crash tore, and drops it like
            // one. The client then finds the record that write replaced missing.
            Err(e) => {
                assert!(
                    matches!(&e, ClientError::Corrupt { what } if what.contains("missing")),
                    "{case}: files changed, and {e:?}"
                );
                torn += 1;
            }
        }
        restore(&f.home, &f.pristine);
        assert_full(&f.home, &case).await;
    }
    assert!(
        left_alone > 10 * torn.max(1),
        "{left_alone} left alone, {torn} torn"
    );
    // sled's configuration file: sled rewrites it, or refuses; either way nothing is lost.
    restore(&f.home, &f.pristine);
    fs::write(f.home.join("db/conf"), b"garbage").unwrap();
    match open(&f.home).await {
        Ok(()) => assert_full(&f.home, "database config garbage").await,
        Err(e) => assert!(
            corrupt(&e) || matches!(e, ClientError::Store(StoreError::Database(_))),
            "{e:?}"
        ),
    }
    // The whole log, and the whole directory.
    check(
        &f,
        "database log emptied",
        |h| fs::write(h.join("db/db"), b"").unwrap(),
        corrupt,
    )
    .await;
    check(
        &f,
        "database removed",
        |h| fs::remove_dir_all(h.join("db")).unwrap(),
        corrupt,
    )
    .await;
}

/// Opens the home and checks that the contact and all four messages are there.
async fn assert_full(home: &Path, case: &str) {
    let client = Client::open_with(home, KeySource::KeyFile, options())
        .await
        .unwrap_or_else(|e| panic!("{case}: {e}"));
    assert_eq!(client.history("bob").await.unwrap().len(), 4, "{case}");
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_wrong_or_malformed_key_file_is_a_typed_error() {
    let f = fixture().await;
    let key = PathBuf::from("device.key");
    check(
        &f,
        "key file removed",
        |h| fs::remove_file(h.join(&key)).unwrap(),
        |e| matches!(e, ClientError::Store(StoreError::KeyFileMissing { .. })),
    )
    .await;
    check(
        &f,
        "another home's key file",
        |h| fs::write(h.join(&key), &f.other_key).unwrap(),
        |e| {
            matches!(
                e,
                ClientError::Store(StoreError::KeyFile(VaultError::WrongKey))
            )
        },
    )
    .await;
    for (case, bytes) in [
        ("key file cut short", f.pristine[&key][..7].to_vec()),
        ("key file empty", Vec::new()),
        ("key file too long", [&f.pristine[&key][..], b"x"].concat()),
    ] {
        check(
            &f,
            case,
            |h| fs::write(h.join(&key), &bytes).unwrap(),
            |e| {
                matches!(
                    e,
                    ClientError::Store(StoreError::KeyFile(
                        VaultError::InvalidKeyFile | VaultError::WrongKey
                    ))
                )
            },
        )
        .await;
    }
    check(
        &f,
        "key file readable by others",
        |h| fs::set_permissions(h.join(&key), fs::Permissions::from_mode(0o644)).unwrap(),
        |e| {
            matches!(
                e,
                ClientError::Store(StoreError::KeyFile(VaultError::KeyFilePermissions { .. }))
            )
        },
    )
    .await;
    check(
        &f,
        "key vault removed",
        |h| fs::remove_file(h.join("keys.vault")).unwrap(),
        corrupt,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_garbage_or_missing_marker_is_a_typed_error_and_nothing_is_wiped() {
    let f = fixture().await;
    for (case, bytes) in [
        ("marker garbage", &b"not a hush store at all"[..]),
        ("marker empty", &b""[..]),
        ("marker of an unknown key kind", &b"HUSHSTO1\x09"[..]),
    ] {
        check(
            &f,
            case,
            |h| fs::write(h.join("store.marker"), bytes).unwrap(),
            corrupt,
        )
        .await;
    }
    check(
        &f,
        "marker removed",
        |h| fs::remove_file(h.join("store.marker")).unwrap(),
        |e| matches!(e, ClientError::NotInitialised { .. }),
    )
    .await;
    // `init` on that home refuses rather than wipe the records it finds.
    restore(&f.home, &f.pristine);
    fs::remove_file(f.home.join("store.marker")).unwrap();
    let relay: hush_protocol::RelayAddress = format!("hush://127.0.0.1:1#{}", "ab".repeat(32))
        .parse()
        .unwrap();
    let err = Client::init(&f.home, "alice", relay, KeySource::KeyFile)
        .await
        .unwrap_err();
    assert!(corrupt(&err), "{err:?}");
    let marker = PathBuf::from("store.marker");
    fs::write(f.home.join(&marker), &f.pristine[&marker]).unwrap();
    assert_full(&f.home, "marker put back after the refused init").await;
}
