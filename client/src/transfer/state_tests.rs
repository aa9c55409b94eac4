//! The transfer records' owners and ends: expiry, a contact's erasure, damaged records, records
//! written before they had an owner, and temporary file names on record.

use std::path::Path;
use std::sync::Arc;

use hush_protocol::ids::{BlobCapability, BlobId};
use hush_protocol::RelayAddress;

use super::owed::DELETION_TAG;
use super::parts::PART_TAG;
use super::seals::SealLog;
use super::source::FileStamp;
use super::state::{record_download, UploadRecord};
use super::tags::{DOWNLOAD_TAG, SEAL_TAG, UPLOAD_TAG};
use super::Transfers;
use crate::client::Clock;
use crate::conversation::codec::versioned_writer;
use crate::conversation::codec::write_relay;
use crate::files::{FileKey, NoncePrefix, Padding};
use crate::net::{RelayPool, RetryPolicy};
use crate::store::{KeySource, LocalStore, Namespace, StoreKey};

fn relay() -> RelayAddress {
    format!("hush://127.0.0.1:4433#{}", "ab".repeat(32))
        .parse()
        .unwrap()
}

fn transfers() -> (tempfile::TempDir, Transfers) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(LocalStore::create(&dir.path().join("home"), KeySource::KeyFile).unwrap());
    let (pool, _rx) = RelayPool::new(RetryPolicy::default());
    (dir, Transfers::new(store, pool, relay(), Clock::system()))
}

fn upload(contact: Option<&str>, blob: u8, expires_at: u64) -> UploadRecord {
    UploadRecord {
        contact: contact.map(str::to_owned),
        relay: relay(),
        blob_id: BlobId::from_bytes([blob; 16]),
        write_cap: BlobCapability::from_bytes([2; 32]),
        read_cap: BlobCapability::from_bytes([3; 32]),
        key: FileKey::from_bytes([4; 32]),
        prefix: NoncePrefix([5; crate::files::NONCE_PREFIX_LEN]),
        stamp: FileStamp {
            size: 10,
            mtime: (1, 2),
            ctime: (3, 4),
            dev: 5,
            inode: 6,
        },
        padding: Padding::Padme,
        expires_at,
        path: "/tmp/source".into(),
        legacy: false,
    }
}

fn put_upload(t: &Transfers, id: u8, up: &UploadRecord) -> StoreKey {
    let key = StoreKey::Transfer(vec![UPLOAD_TAG, id]);
    t.store.put(&key, &up.encode()).unwrap();
    key
}

/// The ids (first byte: kind) of every transfer record.
fn ids(t: &Transfers) -> Vec<Vec<u8>> {
    t.store
        .list(Namespace::Transfer, None)
        .unwrap()
        .into_iter()
        .filter_map(|(k, _)| match k {
            StoreKey::Transfer(id) => Some(id),
            _ => None,
        })
        .collect()
}

fn count(t: &Transfers, tag: u8) -> usize {
    ids(t).iter().filter(|id| id.first() == Some(&tag)).count()
}

/// Stages a file for `contact`, on record; returns its path.
fn staged(t: &Transfers, contact: &str, name: &str, expires_at: u64) -> std::path::PathBuf {
    let dir = super::disk::ensure_files_dir(t.store.home()).unwrap();
    let path = dir.join(name);
    record_download(&t.store, contact, &path, expires_at).unwrap();
    std::fs::write(&path, b"ciphertext").unwrap();
    path
}

#[test]
fn expired_uploads_and_downloads_are_removed_and_blobs_owed_a_deletion() {
    let (_d, t) = transfers();
    put_upload(&t, 1, &upload(Some("bob"), 1, 100));
    put_upload(&t, 2, &upload(Some("bob"), 2, 300));
    let old = staged(&t, "bob", "old.blob", 100);
    let new = staged(&t, "bob", "new.blob", 300);

    t.expire_records(200).unwrap();
    assert_eq!(count(&t, UPLOAD_TAG), 1, "the live upload stays");
    assert_eq!(count(&t, DOWNLOAD_TAG), 1, "the live download stays");
    assert_eq!(
        count(&t, DELETION_TAG),
        1,
        "the expired upload's blob is owed a deletion"
    );
    assert!(!old.exists() && new.exists());

    t.expire_records(300).unwrap();
    assert_eq!(count(&t, UPLOAD_TAG) + count(&t, DOWNLOAD_TAG), 0);
    assert!(!new.exists());
}

#[test]
fn forgetting_a_contact_shreds_its_transfer_records_only() {
    let (_d, t) = transfers();
    put_upload(&t, 1, &upload(Some("bob"), 1, u64::MAX));
    let carols = put_upload(&t, 2, &upload(Some("carol"), 2, u64::MAX));
    let bobs = staged(&t, "bob", "bob.blob", u64::MAX);
    let carols_file = staged(&t, "carol", "carol.blob", u64::MAX);

    super::state::forget_contact(&t.store, "bob").unwrap();
    assert!(!bobs.exists() && carols_file.exists());
    assert_eq!(count(&t, DOWNLOAD_TAG), 1);
    assert_eq!(
        ids(&t)
            .iter()
            .filter(|id| id.first() == Some(&UPLOAD_TAG))
            .collect::<Vec<_>>(),
        [&match carols {
            StoreKey::Transfer(id) => id,
            _ => unreachable!(),
        }]
    );
    assert_eq!(count(&t, DELETION_TAG), 1, "bob's blob is owed a deletion");
    let found = t.find_upload("carol", Path::new("/tmp/source")).unwrap();
    assert!(found.is_some_and(|(_, up)| up.contact.as_deref() == Some("carol")));
    assert!(t
        .find_upload("bob", Path::new("/tmp/source"))
        .unwrap()
        .is_none());
}

/// An upload record as written before uploads had an owner (version 1).
fn v1_upload(up: &UploadRecord) -> Vec<u8> {
    let mut w = versioned_writer(256);
    write_relay(&mut w, &up.relay);
    w.raw(up.blob_id.as_bytes());
    w.raw(up.write_cap.as_bytes());
    w.raw(up.read_cap.as_bytes());
    w.raw(up.key.as_bytes());
    w.raw(&up.prefix.0);
    w.u64(up.stamp.size);
    w.u64(up.stamp.mtime.0);
    w.u64(u64::from(up.stamp.mtime.1));
    w.u64(up.expires_at);
    w.bytes(up.path.as_bytes());
    w.finish()
}

#[test]
fn an_upload_record_without_an_owner_decodes_and_goes_with_any_contact() {
    let (_d, t) = transfers();
    let old = v1_upload(&upload(None, 7, u64::MAX));
    let back = UploadRecord::decode(&old).unwrap();
    assert_eq!(
        (back.contact, back.blob_id),
        (None, BlobId::from_bytes([7; 16]))
    );
    t.store
        .put(&StoreKey::Transfer(vec![UPLOAD_TAG, 9]), &old)
        .unwrap();
    super::state::forget_contact(&t.store, "anyone").unwrap();
    assert_eq!(count(&t, UPLOAD_TAG), 0);
    assert_eq!(count(&t, DELETION_TAG), 1);
}

#[test]
fn damaged_transfer_records_are_typed_errors_and_removed() {
    let (_d, t) = transfers();
    assert!(UploadRecord::decode(&[2, 0xff]).is_err());
    assert!(UploadRecord::decode(&[]).is_err());
    for tag in [UPLOAD_TAG, DOWNLOAD_TAG, PART_TAG] {
        t.store
            .put(&StoreKey::Transfer(vec![tag, 1]), b"\x01garbage")
            .unwrap();
    }
    t.store
        .put(&StoreKey::Transfer(vec![UPLOAD_TAG, 2]), b"")
        .unwrap();
    t.expire_records(0).unwrap();
    t.clean_parts().unwrap();
    assert!(ids(&t).is_empty(), "left: {:?}", ids(&t));
}

#[test]
fn a_temporary_file_on_record_is_removed_unless_a_save_here_is_writing_it() {
    let (d, t) = transfers();
    let cut_off = d.path().join(".hush-cut-off.part");
    let part = t.parts.begin(&cut_off).unwrap();
    std::fs::write(&cut_off, b"plaintext").unwrap();
    t.clean_parts().unwrap();
    assert!(cut_off.exists(), "a save in progress keeps its file");
    // The process that wrote it is gone: the record outlives it.
    drop(part);
    assert_eq!(count(&t, PART_TAG), 1);
    t.clean_parts().unwrap();
    assert!(!cut_off.exists());
    assert_eq!(count(&t, PART_TAG), 0);
}

/// An upload record as written before the source's full stamp and the sent pieces' hashes were
/// kept (version 2).
fn v2_upload(up: &UploadRecord) -> Vec<u8> {
    let mut w = hush_protocol::codec::Writer::with_capacity(256);
    w.u8(2);
    w.bytes(up.contact.as_deref().unwrap_or_default().as_bytes());
    let v1 = v1_upload(up);
    w.raw(&v1[1..]);
    w.finish()
}

#[test]
fn upload_records_of_every_version_decode_and_only_the_current_one_resumes() {
    let up = upload(Some("bob"), 7, u64::MAX);
    let back = UploadRecord::decode(&up.encode()).unwrap();
    assert_eq!(
        (back.stamp, back.padding, back.legacy),
        (up.stamp, Padding::Padme, false)
    );
    assert_eq!(back.contact.as_deref(), Some("bob"));
    assert_eq!(back.encode(), up.encode());
    let v2 = UploadRecord::decode(&v2_upload(&up)).unwrap();
    assert_eq!(v2.contact.as_deref(), Some("bob"));
    assert_eq!((v2.stamp.size, v2.stamp.mtime), (10, (1, 2)));
    assert_eq!((v2.padding, v2.legacy), (Padding::None, true));
    let v1 = UploadRecord::decode(&v1_upload(&up)).unwrap();
    assert!(v1.legacy && v1.contact.is_none());
    // Every truncation of the current version fails.
    let bytes = up.encode();
    for cut in 0..bytes.len() {
        assert!(UploadRecord::decode(&bytes[..cut]).is_err(), "cut {cut}");
    }
}

#[test]
fn sent_pieces_are_checked_survive_a_reload_and_go_with_their_upload() {
    let (_d, t) = transfers();
    let key = put_upload(&t, 1, &upload(Some("bob"), 1, 100));
    let mut log = SealLog::new(&key);
    // More than one segment's worth.
    for i in 0..1500u64 {
        log.note(i, &i.to_be_bytes()).unwrap();
    }
    log.persist(&t.store).unwrap();
    assert_eq!(count(&t, SEAL_TAG), 2);
    let mut back = SealLog::load(&t.store, &key).unwrap().unwrap();
    assert_eq!(back.len(), 1500);
    // The same bytes again pass; other bytes at a position sent, or a gap, do not.
    back.note(1499, &1499u64.to_be_bytes()).unwrap();
    assert!(back.note(3, b"other bytes").is_err());
    assert!(back.note(1501, b"gap").is_err());
    back.note(1500, b"next").unwrap();
    // A damaged segment makes the log unknown.
    let segment = ids(&t).into_iter().find(|id| id[0] == SEAL_TAG).unwrap();
    t.store.put(&StoreKey::Transfer(segment), b"\x09").unwrap();
    assert!(SealLog::load(&t.store, &key).unwrap().is_none());
    // The upload ends (its blob expired): its hashes go with it.
    t.expire_records(200).unwrap();
    assert_eq!(count(&t, UPLOAD_TAG) + count(&t, SEAL_TAG), 0);
}

#[test]
fn hashes_left_without_their_upload_are_swept() {
    let (_d, t) = transfers();
    let live = put_upload(&t, 1, &upload(Some("bob"), 1, u64::MAX));
    let gone = StoreKey::Transfer(vec![UPLOAD_TAG, 2]);
    for key in [&live, &gone] {
        let mut log = SealLog::new(key);
        log.note(0, b"piece").unwrap();
        log.persist(&t.store).unwrap();
    }
    assert_eq!(count(&t, SEAL_TAG), 2);
    t.expire_records(0).unwrap();
    assert_eq!(count(&t, SEAL_TAG), 1);
    assert_eq!(SealLog::load(&t.store, &live).unwrap().unwrap().len(), 1);
}
