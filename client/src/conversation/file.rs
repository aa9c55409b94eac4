//! The reference to an uploaded file that a file message carries, and its byte format.
//!
//! A [`FileRef`] says where the file's ciphertext is (the sender's relay, the blob id and the
//! read capability), how to open it (the file key, the nonce prefix and the chunk size) and
//! how to check it (the SHA-256 of the whole ciphertext and the plaintext size), the name the
//! sender suggests and when the relay deletes the blob. It travels inside the ratchet, so only
//! the two ends ever see the key or the capability.
//!
//! The sender's own record also keeps the blob's write capability, to retract the blob on
//! unsend, burn or expiry. It is part of the record, never of the payload.
//!
//! What it does not do: transfer or decrypt anything (the `Client` does, with
//! `crate::files`), or trust the name: [`FileRef::decode_payload`] sanitises it.

use std::fmt;

use hush_protocol::codec::{Reader, Writer};
use hush_protocol::ids::{BlobCapability, BlobId, BLOB_CAP_LEN, ID_LEN};
use hush_protocol::RelayAddress;
use subtle::ConstantTimeEq;

use super::codec::{read_relay, write_relay, DecodeError};
use crate::files::{
    sanitise_name, FileKey, Layout, NoncePrefix, Padding, FILE_KEY_LEN, MAX_FILE_NAME_LEN,
    NONCE_PREFIX_LEN,
};

/// Length of the ciphertext digest (SHA-256).
pub const FILE_DIGEST_LEN: usize = 32;

/// Where an uploaded file is and how to open it. Its `Debug` shows only the size and the
/// blob id's presence, never the key, capabilities or name.
#[derive(Clone)]
pub struct FileRef {
    /// The relay holding the blob: the sender's own relay.
    pub relay: RelayAddress,
    /// The blob's id on that relay.
    pub blob_id: BlobId,
    /// Authorises reading (and, once downloaded, deleting) the blob.
    pub read_cap: BlobCapability,
    /// The file key the chunks are sealed under.
    pub key: FileKey,
    /// The nonce prefix of the chunks.
    pub nonce_prefix: NoncePrefix,
    /// SHA-256 of the whole ciphertext.
    pub digest: [u8; FILE_DIGEST_LEN],
    /// The plaintext size in bytes.
    pub size: u64,
    /// Plaintext bytes per chunk.
    pub chunk: u32,
    /// The suggested file name, sanitised (see `crate::files::name`).
    pub name: String,
    /// When the relay deletes the blob (unix seconds, the relay's clock).
    pub expires_at: u64,
    /// The blob's write capability: only in the sender's own record.
    pub write_cap: Option<BlobCapability>,
    /// How the blob is padded past the ciphertext. Not one of the encoded fields: the kind tag
    /// of the payload, and the file flag of the record, say it.
    pub padding: Padding,
}

fn cap_eq(a: &BlobCapability, b: &BlobCapability) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

impl PartialEq for FileRef {
    fn eq(&self, o: &Self) -> bool {
        let write_caps = match (&self.write_cap, &o.write_cap) {
            (None, None) => true,
            (Some(a), Some(b)) => cap_eq(a, b),
            _ => false,
        };
        self.relay == o.relay
            && self.blob_id == o.blob_id
            && cap_eq(&self.read_cap, &o.read_cap)
            && bool::from(self.key.as_bytes().ct_eq(o.key.as_bytes()))
            && self.nonce_prefix == o.nonce_prefix
            && self.digest == o.digest
            && self.size == o.size
            && self.chunk == o.chunk
            && self.name == o.name
            && self.expires_at == o.expires_at
            && self.padding == o.padding
            && write_caps
    }
}

impl Eq for FileRef {}

impl fmt::Debug for FileRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileRef")
            .field("size", &self.size)
            .field("chunk", &self.chunk)
            .field("expires_at", &self.expires_at)
            .field("padding", &self.padding)
            .finish_non_exhaustive()
    }
}

impl FileRef {
    /// The file's layout, with its blob's padding. Fails for a chunk size no client uses.
    pub fn layout(&self) -> Result<Layout, crate::files::FileError> {
        Ok(Layout::new(self.size, self.chunk)?.with_padding(self.padding))
    }

    /// The fields the payload carries.
    pub(crate) fn encode_payload(&self, w: &mut Writer) {
        write_relay(w, &self.relay);
        w.raw(self.blob_id.as_bytes());
        w.raw(self.read_cap.as_bytes());
        w.raw(self.key.as_bytes());
        w.raw(&self.nonce_prefix.0);
        w.raw(&self.digest);
        w.u64(self.size);
        w.u64(u64::from(self.chunk));
        w.bytes(self.name.as_bytes());
        w.u64(self.expires_at);
    }

    /// Reads what [`FileRef::encode_payload`] wrote, for a blob padded as `padding` says. The
    /// name is sanitised; the layout is checked, so a file message with an impossible size or
    /// chunk never reaches a record.
    pub(crate) fn decode_payload(
        r: &mut Reader<'_>,
        padding: Padding,
    ) -> Result<FileRef, DecodeError> {
        let relay = read_relay(r)?;
        let blob_id = BlobId::from_bytes(r.array::<ID_LEN>()?);
        let read_cap = BlobCapability::from_bytes(r.array::<BLOB_CAP_LEN>()?);
        let key = FileKey::from_bytes(r.array::<FILE_KEY_LEN>()?);
        let nonce_prefix = NoncePrefix(r.array::<NONCE_PREFIX_LEN>()?);
        let digest = r.array::<FILE_DIGEST_LEN>()?;
        let size = r.u64()?;
        let chunk = u32::try_from(r.u64()?).map_err(|_| DecodeError::InvalidValue)?;
        Layout::new(size, chunk).map_err(|_| DecodeError::InvalidValue)?;
        let name = sanitise_name(r.str(MAX_FILE_NAME_LEN)?);
        let expires_at = r.u64()?;
        Ok(FileRef {
            relay,
            blob_id,
            read_cap,
            key,
            nonce_prefix,
            digest,
            size,
            chunk,
            name,
            expires_at,
            write_cap: None,
            padding,
        })
    }

    /// The record's form: the payload's fields and the optional write capability.
    pub(crate) fn encode_record(&self, w: &mut Writer) {
        self.encode_payload(w);
        w.opt_raw(self.write_cap.as_ref().map(|cap| &cap.as_bytes()[..]));
    }

    /// Reads what [`FileRef::encode_record`] wrote, for a blob padded as `padding` says.
    pub(crate) fn decode_record(
        r: &mut Reader<'_>,
        padding: Padding,
    ) -> Result<FileRef, DecodeError> {
        let mut file = FileRef::decode_payload(r, padding)?;
        file.write_cap = r
            .opt_array::<BLOB_CAP_LEN>()?
            .map(BlobCapability::from_bytes);
        Ok(file)
    }
}
