//! A home written by the previous store format (format 1: contacts' records keyed by tags of
//! their names) still opens: its contacts and messages are found, a burn's old placeholder is
//! dropped, and nothing of the old layout stays.
//!
//! `tests/fixtures/format1-home/alice` was made by the `hush` binary of store format 1 with its
//! key file: alice invited bob and carol, sent "legacy hello from alice" to bob, read bob's
//! "legacy reply from bob", sent "carol note" to carol and burned carol (leaving format 1's
//! placeholder).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use hush_client::store::{KeySource, LocalStore, Namespace};
use hush_client::ContactStatus;
use hush_tests::attacker::{Markers, Seizure};
use hush_tests::clients::reopen;

/// Copies the fixture home to a fresh directory with the modes hush expects.
fn fixture_copy() -> (tempfile::TempDir, PathBuf) {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/format1-home/alice");
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("alice");
    copy_dir(&from, &home);
    // sled keeps an (empty) blobs directory, which git does not.
    fs::create_dir_all(home.join("db/blobs")).unwrap();
    fs::set_permissions(home.join("db/blobs"), fs::Permissions::from_mode(0o700)).unwrap();
    (dir, home)
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    fs::set_permissions(to, fs::Permissions::from_mode(0o700)).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
            fs::set_permissions(&target, fs::Permissions::from_mode(0o600)).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_format_1_home_opens_with_its_contacts_and_messages() {
    let (_dir, home) = fixture_copy();
    // The old layout is really there: the contact records sit under their format 1 keys.
    {
        let store = LocalStore::open(&home, KeySource::KeyFile).unwrap();
        assert_eq!(store.list(Namespace::LegacyContact, None).unwrap().len(), 2);
        assert!(store.list(Namespace::Contact, None).unwrap().is_empty());
    }
    let text = || Markers::new().text("legacy hello from alice");
    let _ = text().seen_in(&Seizure::home(&home));

    let alice = reopen(&home).await;
    let contacts = alice.contacts().await;
    assert_eq!(
        contacts.len(),
        1,
        "burned carol's placeholder is gone: {contacts:?}"
    );
    assert_eq!(contacts[0].name, "bob");
    assert_eq!(contacts[0].status, ContactStatus::Active);
    let texts: Vec<String> = alice
        .history("bob")
        .await
        .unwrap()
        .iter()
        .filter_map(|m| m.body.as_ref().map(|b| b.as_str().to_owned()))
        .collect();
    assert_eq!(texts, ["legacy hello from alice", "legacy reply from bob"]);
    alice.close().await;

    // Migrated once: the old layout is gone and nothing of it can be opened.
    let store = LocalStore::open(&home, KeySource::KeyFile).unwrap();
    for ns in Namespace::ALL.into_iter().filter(|ns| ns.is_legacy()) {
        assert!(store.list(ns, None).unwrap().is_empty(), "{ns:?}");
    }
    assert_eq!(store.list(Namespace::Contact, None).unwrap().len(), 1);
    assert_eq!(store.list(Namespace::Message, None).unwrap().len(), 2);
    drop(store);
    let after = Seizure::home(&home);
    after.assert_no_orphan_keys();
    // The text is still there (migrated, not lost), now under the new layout.
    let _ = text().seen_in(&after);
    let again = reopen(&home).await;
    assert_eq!(again.history("bob").await.unwrap().len(), 2);
    again.close().await;
}
