//! What the transfers keep in the encrypted store (`Transfer` namespace) between calls.
//!
//! - An upload in progress is one record, keyed by a hash of the contact and the source path:
//!   the blob's relay, id and capabilities, the file key and nonce prefix, and the source's size
//!   and modification time. Running the same send again finds it and resumes; it is removed
//!   once the file message is sent.
//! - A blob deletion owed to a relay (the sender's retract, the recipient's "done") is also a
//!   record, written before the message that held the capability is shredded, and removed once
//!   the relay confirms (or says the blob is already gone). A relay out of reach is retried on
//!   the next action or tick.
//!
//! What it does not do: move file data (see `upload` and `download`).

use std::path::Path;

use hush_protocol::ids::{BlobCapability, BlobId, BLOB_CAP_LEN, ID_LEN};
use hush_protocol::{ErrorCode, RelayAddress};
use sha2::{Digest, Sha256};

use super::Transfers;
use crate::client::error::ClientError;
use crate::conversation::codec::{
    read_relay, versioned_reader, versioned_writer, write_relay, DecodeError,
};
use crate::files::{FileKey, NoncePrefix, FILE_KEY_LEN, NONCE_PREFIX_LEN};
use crate::store::{LocalStore, Namespace, StoreKey};

/// Longest source path kept in an upload record, in bytes.
const MAX_PATH_LEN: usize = 4096;
/// First byte of an upload record's id.
const UPLOAD_TAG: u8 = b'u';
/// First byte of an owed deletion's id.
const DELETION_TAG: u8 = b'd';

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

impl Transfers {
    /// Carries out the blob deletions owed to relays. A relay out of reach keeps its deletion
    /// for the next call; nothing else fails this.
    pub(crate) async fn run_deletions(&self) {
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
