//! What file transfers keep between calls: uploads in progress, blob deletions still owed to a
//! relay, and the staged ciphertext of downloaded files.
//!
//! - An upload in progress is one record in the encrypted store (`Transfer` namespace), keyed
//!   by a hash of the contact and the source path: the blob's relay, id and capabilities, the
//!   file key and nonce prefix, and the source's size and modification time. Running the same
//!   send again finds it and resumes; it is removed once the file message is sent.
//! - A blob deletion owed to a relay (the sender's retract, the recipient's "done") is also a
//!   record, written before the message that held the capability is shredded, and removed once
//!   the relay confirms (or says the blob is already gone). A relay out of reach is retried on
//!   the next action or tick.
//! - A downloaded file's ciphertext is staged in `<home>/files/`, named by a hash of the
//!   contact and the message id. It is useless without the file key, which lives only in the
//!   message's record; deleting the message removes the staged file and shreds the key.
//!
//! What it does not do: move data (see `upload` and `download`) or decide when a message is
//! deleted (the conversation does; the driver calls [`forget_file`]).

use std::fs::{self, DirBuilder};
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hush_protocol::ids::{BlobCapability, BlobId, BLOB_CAP_LEN, ID_LEN};
use hush_protocol::{ErrorCode, RelayAddress};
use sha2::{Digest, Sha256};

use super::{ClientError, Inner};
use crate::conversation::codec::{
    read_relay, versioned_reader, versioned_writer, write_relay, DecodeError,
};
use crate::conversation::{MessageId, MessageRecord};
use crate::files::{FileKey, NoncePrefix, FILE_KEY_LEN, NONCE_PREFIX_LEN};
use crate::store::{LocalStore, Namespace, StoreKey};

/// Relay requests a transfer keeps in flight on its connection.
pub(crate) const IN_FLIGHT: usize = 16;
/// Retries in a row without progress before a transfer gives up as interrupted.
pub(crate) const MAX_STALLS: u32 = 5;
/// How long a transfer waits after the relay said it sends too fast.
const RATE_PAUSE: Duration = Duration::from_millis(200);
/// Longest source path kept in an upload record, in bytes.
const MAX_PATH_LEN: usize = 4096;
/// First byte of an upload record's id.
const UPLOAD_TAG: u8 = b'u';
/// First byte of an owed deletion's id.
const DELETION_TAG: u8 = b'd';
/// The directory of staged downloads, inside the home.
const FILES_DIR: &str = "files";

/// How far a transfer got, for a progress bar: ciphertext bytes moved of the total.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TransferProgress {
    /// Bytes moved so far (including what an earlier, interrupted run moved).
    pub done: u64,
    /// Bytes in all.
    pub total: u64,
}

/// An upload in progress, as its record holds it.
pub(crate) struct UploadRecord {
    pub(crate) relay: RelayAddress,
    pub(crate) blob_id: BlobId,
    pub(crate) write_cap: BlobCapability,
    pub(crate) read_cap: BlobCapability,
    pub(crate) key: FileKey,
    pub(crate) prefix: NoncePrefix,
    pub(crate) size: u64,
    pub(crate) mtime: (u64, u32),
    pub(crate) expires_at: u64,
    pub(crate) path: String,
}

impl UploadRecord {
    pub(crate) fn encode(&self) -> zeroize::Zeroizing<Vec<u8>> {
        let mut w = versioned_writer(256);
        write_relay(&mut w, &self.relay);
        w.raw(self.blob_id.as_bytes());
        w.raw(self.write_cap.as_bytes());
        w.raw(self.read_cap.as_bytes());
        w.raw(self.key.as_bytes());
        w.raw(&self.prefix.0);
        w.u64(self.size);
        w.u64(self.mtime.0);
        w.u64(u64::from(self.mtime.1));
        w.u64(self.expires_at);
        w.bytes(self.path.as_bytes());
        zeroize::Zeroizing::new(w.finish())
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<UploadRecord, DecodeError> {
        let mut r = versioned_reader(bytes)?;
        let relay = read_relay(&mut r)?;
        let record = UploadRecord {
            relay,
            blob_id: BlobId::from_bytes(r.array::<ID_LEN>()?),
            write_cap: BlobCapability::from_bytes(r.array::<BLOB_CAP_LEN>()?),
            read_cap: BlobCapability::from_bytes(r.array::<BLOB_CAP_LEN>()?),
            key: FileKey::from_bytes(r.array::<FILE_KEY_LEN>()?),
            prefix: NoncePrefix(r.array::<NONCE_PREFIX_LEN>()?),
            size: r.u64()?,
            mtime: (
                r.u64()?,
                u32::try_from(r.u64()?).map_err(|_| DecodeError::InvalidValue)?,
            ),
            expires_at: r.u64()?,
            path: r.str(MAX_PATH_LEN)?.to_owned(),
        };
        r.finish()?;
        Ok(record)
    }
}

/// The store key of the upload of `path` to `contact`.
pub(crate) fn upload_key(contact: &str, path: &Path) -> StoreKey {
    let mut h = Sha256::new();
    h.update(b"hush upload\0");
    h.update((contact.len() as u64).to_be_bytes());
    h.update(contact.as_bytes());
    h.update(path.as_os_str().as_encoded_bytes());
    let mut id = vec![UPLOAD_TAG];
    id.extend_from_slice(&h.finalize()[..16]);
    StoreKey::Transfer(id)
}

/// A blob deletion owed to a relay.
struct Deletion {
    relay: RelayAddress,
    blob_id: BlobId,
    cap: BlobCapability,
}

impl Deletion {
    fn key(&self) -> StoreKey {
        let mut id = vec![DELETION_TAG];
        id.extend_from_slice(self.blob_id.as_bytes());
        StoreKey::Transfer(id)
    }

    fn encode(&self) -> zeroize::Zeroizing<Vec<u8>> {
        let mut w = versioned_writer(128);
        write_relay(&mut w, &self.relay);
        w.raw(self.blob_id.as_bytes());
        w.raw(self.cap.as_bytes());
        zeroize::Zeroizing::new(w.finish())
    }

    fn decode(bytes: &[u8]) -> Result<Deletion, DecodeError> {
        let mut r = versioned_reader(bytes)?;
        let d = Deletion {
            relay: read_relay(&mut r)?,
            blob_id: BlobId::from_bytes(r.array::<ID_LEN>()?),
            cap: BlobCapability::from_bytes(r.array::<BLOB_CAP_LEN>()?),
        };
        r.finish()?;
        Ok(d)
    }
}

/// Records that blob `blob_id` on `relay` must be deleted with `cap`.
pub(crate) fn owe_deletion(
    store: &LocalStore,
    relay: &RelayAddress,
    blob_id: BlobId,
    cap: &BlobCapability,
) -> Result<(), ClientError> {
    let d = Deletion {
        relay: relay.clone(),
        blob_id,
        cap: cap.clone(),
    };
    store.put(&d.key(), &d.encode())?;
    Ok(())
}

/// Turns an I/O error on `path` into the client's error that names it.
pub(crate) fn io_error(path: &Path) -> impl FnOnce(io::Error) -> ClientError + '_ {
    move |source| ClientError::FileIo {
        path: path.to_path_buf(),
        source,
    }
}

/// The directory of staged downloads.
pub(crate) fn files_dir(home: &Path) -> PathBuf {
    home.join(FILES_DIR)
}

/// Creates the staging directory (mode 0700) if needed.
pub(crate) fn ensure_files_dir(home: &Path) -> io::Result<PathBuf> {
    let dir = files_dir(home);
    DirBuilder::new().recursive(true).mode(0o700).create(&dir)?;
    Ok(dir)
}

/// Where the ciphertext of `contact`'s file message `id` is staged.
pub(crate) fn staged_path(home: &Path, contact: &str, id: MessageId) -> PathBuf {
    let mut h = Sha256::new();
    h.update(b"hush staged\0");
    h.update((contact.len() as u64).to_be_bytes());
    h.update(contact.as_bytes());
    h.update(id.as_bytes());
    let name: String = h.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    files_dir(home).join(format!("{name}.blob"))
}

/// Removes a file, which may not exist.
pub(crate) fn remove_if_there(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// What must happen when a file message's record is about to be shredded: the blob it points
/// to is owed a deletion (with the write capability if we sent it, else the read capability),
/// and the staged ciphertext goes.
pub(crate) fn forget_file(
    store: &LocalStore,
    contact: &str,
    record: &MessageRecord,
) -> Result<(), ClientError> {
    let Some(file) = &record.file else {
        return Ok(());
    };
    let cap = file.write_cap.as_ref().unwrap_or(&file.read_cap);
    owe_deletion(store, &file.relay, file.blob_id, cap)?;
    let staged = staged_path(store.home(), contact, record.id);
    remove_if_there(&staged).map_err(io_error(&staged))
}

/// [`forget_file`] for message `id` of `contact`, as stored.
pub(crate) fn forget_stored(
    store: &LocalStore,
    contact: &str,
    id: MessageId,
) -> Result<(), ClientError> {
    if let Some(bytes) = store.get(&StoreKey::Message(contact.to_owned(), id))? {
        if let Ok(record) = MessageRecord::decode(&bytes) {
            forget_file(store, contact, &record)?;
        }
    }
    Ok(())
}

/// [`forget_file`] for every message of `contact`, before the conversation is erased.
pub(crate) fn forget_all(store: &LocalStore, contact: &str) -> Result<(), ClientError> {
    for (_, bytes) in store.list(Namespace::Message, Some(contact))? {
        if let Ok(record) = MessageRecord::decode(&bytes) {
            forget_file(store, contact, &record)?;
        }
    }
    Ok(())
}

/// What one failed relay call means for a transfer.
pub(crate) enum Interrupt {
    /// Ask the relay where the blob stands and go on from there (after `pause`, and on a new
    /// connection if `reconnect`).
    Retry {
        pause: Option<Duration>,
        reconnect: bool,
    },
    /// The blob is gone from the relay.
    Gone,
    /// Stop with this error.
    Fatal(ClientError),
}

/// Classifies a failed blob call on `relay`.
pub(crate) fn classify(relay: &RelayAddress, e: crate::net::ClientError) -> Interrupt {
    use crate::net::ClientError as E;
    match e {
        E::Relay(ErrorCode::RateLimited) => Interrupt::Retry {
            pause: Some(RATE_PAUSE),
            reconnect: false,
        },
        E::Relay(ErrorCode::BlobOffset) => Interrupt::Retry {
            pause: None,
            reconnect: false,
        },
        E::Relay(ErrorCode::ShuttingDown) => Interrupt::Retry {
            pause: None,
            reconnect: true,
        },
        E::Relay(ErrorCode::NoBlob) => Interrupt::Gone,
        E::Relay(ErrorCode::NoSpace) => Interrupt::Fatal(ClientError::RelayFull {
            relay: relay.clone(),
        }),
        E::Relay(code) => Interrupt::Fatal(ClientError::Relay {
            relay: relay.clone(),
            code,
        }),
        E::Protocol => Interrupt::Fatal(ClientError::RelayProtocol {
            relay: relay.clone(),
        }),
        _ => Interrupt::Retry {
            pause: None,
            reconnect: true,
        },
    }
}

impl Inner {
    /// Carries out the blob deletions owed to relays. A relay out of reach keeps its deletion
    /// for the next call; nothing else fails this.
    pub(crate) async fn run_blob_deletions(&self) {
        let owed = match self.store.list(Namespace::Transfer, None) {
            Ok(all) => all,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list owed blob deletions");
                return;
            }
        };
        for (key, value) in owed {
            let StoreKey::Transfer(id) = &key else {
                continue;
            };
            if id.first() != Some(&DELETION_TAG) {
                continue;
            }
            let Ok(d) = Deletion::decode(&value) else {
                let _ = self.store.delete(&key);
                continue;
            };
            let r = self
                .pool
                .run(&d.relay, |conn| {
                    let cap = d.cap.clone();
                    async move { conn.client().blob_delete(d.blob_id, &cap).await }
                })
                .await;
            match r {
                Ok(()) => {}
                Err(e) if e.code() == Some(ErrorCode::NoBlob) => {}
                Err(e) => {
                    tracing::debug!(error = %e, "blob deletion deferred");
                    continue;
                }
            }
            if let Err(e) = self.store.delete(&key) {
                tracing::warn!(error = %e, "cannot drop a done blob deletion");
            }
        }
    }
}
