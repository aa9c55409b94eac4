//! What the transfers keep in the encrypted store (`Transfer` namespace) between calls, and
//! when each record ends. Every record has an owner and an end:
//!
//! - An upload in progress: the contact it goes to, the blob's relay, id and capabilities, the
//!   file key and nonce prefix, the source's path and stamp (size, modification and change
//!   times, device and inode), the blob's padding, and the blob's expiry (the TTL the relay
//!   granted), with the hashes of the pieces it sent (see `seals`). Running the same send again
//!   finds it (by contact and path, inside the sealed records: the record's id is random) and
//!   resumes; it is removed ([`forget_upload`]) once the file message is sent, when the blob
//!   expires (its blob owed a deletion), or when its contact is erased.
//! - A download: the contact it comes from, the name of its staged ciphertext in
//!   `<home>/files/`, and the blob's expiry. Written before the first staged byte; removed with
//!   the staged file when the file message is shredded, when the blob expires, or when its
//!   contact is erased.
//! - Owed relay deletions (see `owed`) and the names of decrypted temporary files (see
//!   `parts`).
//!
//! A record that does not decode is a [`DecodeError`] and is removed where it is met.
//!
//! What it does not do: move file data (see `upload` and `download`).

use std::path::{Path, PathBuf};

use hush_protocol::ids::{BlobCapability, BlobId, BLOB_CAP_LEN, ID_LEN};
use hush_protocol::RelayAddress;
use rand::rngs::OsRng;
use rand::RngCore;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::disk::{files_dir, io_error, remove_if_there};
use super::owed::owe_deletion;
use super::source::FileStamp;
use super::{seals, Transfers};
use crate::client::error::ClientError;
use crate::conversation::codec::{
    read_relay, versioned_reader, versioned_writer, write_relay, DecodeError,
};
use crate::conversation::limits::ENCODING_VERSION;
use crate::files::{FileKey, NoncePrefix, Padding, FILE_KEY_LEN, NONCE_PREFIX_LEN};
use crate::store::limits::MAX_NAME_LEN;
use crate::store::{LocalStore, Namespace, StoreKey};
use hush_protocol::codec::{Reader, Writer};

use super::tags::{DOWNLOAD_TAG, UPLOAD_TAG};

/// Longest source path kept in an upload record, in bytes.
const MAX_PATH_LEN: usize = 4096;
/// Version byte of an upload record with its contact (version 1 had none).
const UPLOAD_VERSION_2: u8 = 2;
/// Version byte of an upload record with the source's full stamp and the blob's padding, whose
/// pieces' hashes are on record (see `seals`).
const UPLOAD_VERSION: u8 = 3;
/// The padding byte of an upload record: Padmé.
const PADDING_PADME: u8 = 1;
/// The padding byte of an upload record: none.
const PADDING_NONE: u8 = 0;

/// An upload in progress, as its record holds it.
pub(crate) struct UploadRecord {
    /// The contact it goes to; `None` for a record written before uploads had an owner.
    pub(crate) contact: Option<String>,
    pub(crate) relay: RelayAddress,
    pub(crate) blob_id: BlobId,
    pub(crate) write_cap: BlobCapability,
    pub(crate) read_cap: BlobCapability,
    pub(crate) key: FileKey,
    pub(crate) prefix: NoncePrefix,
    /// The source's stamp when the upload began (only size and mtime in a legacy record).
    pub(crate) stamp: FileStamp,
    pub(crate) padding: Padding,
    pub(crate) expires_at: u64,
    pub(crate) path: String,
    /// Written before the hashes of sent pieces were kept (versions 1 and 2): what was sent
    /// under its key is unknown, so it is never resumed.
    pub(crate) legacy: bool,
}

impl UploadRecord {
    /// The record's encoding (always the current version).
    pub(crate) fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut w = Writer::with_capacity(256);
        w.u8(UPLOAD_VERSION);
        w.bytes(self.contact.as_deref().unwrap_or_default().as_bytes());
        write_relay(&mut w, &self.relay);
        w.raw(self.blob_id.as_bytes());
        w.raw(self.write_cap.as_bytes());
        w.raw(self.read_cap.as_bytes());
        w.raw(self.key.as_bytes());
        w.raw(&self.prefix.0);
        let st = &self.stamp;
        for v in [st.size, st.mtime.0, u64::from(st.mtime.1)] {
            w.u64(v);
        }
        for v in [st.ctime.0, u64::from(st.ctime.1), st.dev, st.inode] {
            w.u64(v);
        }
        w.u8(match self.padding {
            Padding::None => PADDING_NONE,
            Padding::Padme => PADDING_PADME,
        });
        w.u64(self.expires_at);
        w.bytes(self.path.as_bytes());
        Zeroizing::new(w.finish())
    }

    /// Decodes an upload record of any version.
    pub(crate) fn decode(bytes: &[u8]) -> Result<UploadRecord, DecodeError> {
        let version = *bytes.first().ok_or(DecodeError::Truncated)?;
        let (mut r, contact) = match version {
            UPLOAD_VERSION | UPLOAD_VERSION_2 => {
                let mut r = Reader::new(&bytes[1..]);
                let contact = r.str(MAX_NAME_LEN)?.to_owned();
                (r, Some(contact))
            }
            ENCODING_VERSION => (versioned_reader(bytes)?, None),
            v => return Err(DecodeError::UnknownVersion(v)),
        };
        let relay = read_relay(&mut r)?;
        let blob_id = BlobId::from_bytes(r.array::<ID_LEN>()?);
        let write_cap = BlobCapability::from_bytes(r.array::<BLOB_CAP_LEN>()?);
        let read_cap = BlobCapability::from_bytes(r.array::<BLOB_CAP_LEN>()?);
        let key = FileKey::from_bytes(r.array::<FILE_KEY_LEN>()?);
        let prefix = NoncePrefix(r.array::<NONCE_PREFIX_LEN>()?);
        let mut stamp = FileStamp {
            size: r.u64()?,
            mtime: (r.u64()?, read_nanos(&mut r)?),
            ..FileStamp::default()
        };
        let legacy = version != UPLOAD_VERSION;
        let mut padding = Padding::None;
        if !legacy {
            stamp.ctime = (r.u64()?, read_nanos(&mut r)?);
            stamp.dev = r.u64()?;
            stamp.inode = r.u64()?;
            padding = match r.u8()? {
                PADDING_NONE => Padding::None,
                PADDING_PADME => Padding::Padme,
                _ => return Err(DecodeError::InvalidValue),
            };
        }
        let record = UploadRecord {
            contact,
            relay,
            blob_id,
            write_cap,
            read_cap,
            key,
            prefix,
            stamp,
            padding,
            expires_at: r.u64()?,
            path: r.str(MAX_PATH_LEN)?.to_owned(),
            legacy,
        };
        r.finish()?;
        Ok(record)
    }
}

/// Nanoseconds, stored as a u64.
fn read_nanos(r: &mut Reader<'_>) -> Result<u32, DecodeError> {
    u32::try_from(r.u64()?).map_err(|_| DecodeError::InvalidValue)
}

/// A fresh random id for a record whose first byte is `tag`.
pub(super) fn random_key(tag: u8) -> StoreKey {
    let mut id = [0u8; 17];
    id[0] = tag;
    OsRng.fill_bytes(&mut id[1..]);
    StoreKey::Transfer(id.to_vec())
}

/// A download: whose file it is, where its ciphertext is staged, and when the blob expires.
pub(crate) struct DownloadRecord {
    pub(crate) contact: String,
    /// The staged file's name inside `<home>/files/`.
    pub(crate) staged: String,
    pub(crate) expires_at: u64,
}

impl DownloadRecord {
    /// The record's id: a hash of the staged file's name (itself derived from a key).
    pub(crate) fn key_for(staged: &Path) -> StoreKey {
        let name = staged.file_name().unwrap_or_default();
        let mut h = Sha256::new();
        h.update(b"hush download record\0");
        h.update(name.as_encoded_bytes());
        let mut id = vec![DOWNLOAD_TAG];
        id.extend_from_slice(&h.finalize()[..16]);
        StoreKey::Transfer(id)
    }

    fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut w = versioned_writer(128);
        w.bytes(self.contact.as_bytes());
        w.bytes(self.staged.as_bytes());
        w.u64(self.expires_at);
        Zeroizing::new(w.finish())
    }

    fn decode(bytes: &[u8]) -> Result<DownloadRecord, DecodeError> {
        let mut r = versioned_reader(bytes)?;
        let record = DownloadRecord {
            contact: r.str(MAX_NAME_LEN)?.to_owned(),
            staged: r.str(MAX_PATH_LEN)?.to_owned(),
            expires_at: r.u64()?,
        };
        r.finish()?;
        if record.staged.contains('/') || record.staged.starts_with('.') {
            return Err(DecodeError::InvalidValue);
        }
        Ok(record)
    }

    /// Where its staged ciphertext is.
    fn staged_path(&self, home: &Path) -> PathBuf {
        files_dir(home).join(&self.staged)
    }
}

/// Records that `contact`'s file whose blob expires at `expires_at` is being staged at
/// `staged`, before the first byte is written there.
pub(crate) fn record_download(
    store: &LocalStore,
    contact: &str,
    staged: &Path,
    expires_at: u64,
) -> Result<(), ClientError> {
    let d = DownloadRecord {
        contact: contact.to_owned(),
        staged: staged
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        expires_at,
    };
    store.put(&DownloadRecord::key_for(staged), &d.encode())?;
    Ok(())
}

/// Removes the staged ciphertext at `staged` and its download record.
pub(crate) fn forget_download(store: &LocalStore, staged: &Path) -> Result<(), ClientError> {
    remove_if_there(staged).map_err(io_error(staged))?;
    store.delete(&DownloadRecord::key_for(staged))?;
    Ok(())
}

/// One stored transfer record, as met by a sweep.
enum Met {
    Upload(Box<UploadRecord>),
    Download(DownloadRecord),
}

/// Every upload and download record, decoded; a damaged one is removed on the way.
fn records(store: &LocalStore) -> Result<Vec<(StoreKey, Met)>, ClientError> {
    let mut out = Vec::new();
    for (key, value) in store.list(Namespace::Transfer, None)? {
        let StoreKey::Transfer(id) = &key else {
            continue;
        };
        let met = match id.first() {
            Some(&UPLOAD_TAG) => UploadRecord::decode(&value).map(|u| Met::Upload(Box::new(u))),
            Some(&DOWNLOAD_TAG) => DownloadRecord::decode(&value).map(Met::Download),
            _ => continue,
        };
        match met {
            Ok(m) => out.push((key, m)),
            Err(e) => {
                tracing::warn!(error = %e, "removing a damaged transfer record");
                store.delete(&key)?;
            }
        }
    }
    Ok(out)
}

/// Ends a record: an upload's blob is owed a deletion, a download's staged file goes.
fn end(store: &LocalStore, key: &StoreKey, met: &Met) -> Result<(), ClientError> {
    match met {
        Met::Upload(up) => {
            owe_deletion(store, &up.relay, up.blob_id, &up.write_cap)?;
            return forget_upload(store, key);
        }
        Met::Download(d) => {
            let staged = d.staged_path(store.home());
            remove_if_there(&staged).map_err(io_error(&staged))?;
        }
    }
    store.delete(key)?;
    Ok(())
}

/// Removes the upload record under `key`, then the hashes of what it sent.
pub(super) fn forget_upload(store: &LocalStore, key: &StoreKey) -> Result<(), ClientError> {
    store.delete(key)?;
    seals::forget(store, key)
}

/// Shreds every transfer record of contact `name` and what it kept: uploads in progress
/// (their blobs owed a deletion) and staged downloads. An upload record written before
/// uploads had an owner goes too (resuming it only saves an upload).
pub(crate) fn forget_contact(store: &LocalStore, name: &str) -> Result<(), ClientError> {
    for (key, met) in records(store)? {
        let owned = match &met {
            Met::Upload(up) => up.contact.as_deref().is_none_or(|c| c == name),
            Met::Download(d) => d.contact == name,
        };
        if owned {
            end(store, &key, &met)?;
        }
    }
    Ok(())
}

impl Transfers {
    /// Removes every upload and download record whose blob expired at or before `now` (unix
    /// seconds), with what it kept: an upload's blob is owed a deletion, a download's staged
    /// ciphertext is removed. A damaged record is removed too, and so are the hashes of an
    /// upload whose record is gone.
    pub(crate) fn expire_records(&self, now: u64) -> Result<(), ClientError> {
        for (key, met) in records(&self.store)? {
            let expires_at = match &met {
                Met::Upload(up) => up.expires_at,
                Met::Download(d) => d.expires_at,
            };
            if expires_at <= now {
                end(&self.store, &key, &met)?;
            }
        }
        seals::sweep_orphans(&self.store)
    }

    /// The stored upload to `contact` of the source at `path`, with its record's key.
    pub(crate) fn find_upload(
        &self,
        contact: &str,
        path: &Path,
    ) -> Result<Option<(StoreKey, UploadRecord)>, ClientError> {
        let path = path.to_string_lossy();
        for (key, met) in records(&self.store)? {
            if let Met::Upload(up) = met {
                if up.contact.as_deref() == Some(contact) && up.path == path {
                    return Ok(Some((key, *up)));
                }
            }
        }
        Ok(None)
    }
}
