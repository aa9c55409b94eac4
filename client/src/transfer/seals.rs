//! What an upload has sent under its key: a 16-byte hash of every blob piece, recorded before
//! the piece first leaves, so that a piece sealed again (a retry from the relay's `committed`
//! offset, or a resume after a restart) is sent only if it is the very same ciphertext.
//!
//! A chunk's nonce is fixed by its position, so two different ciphertexts at one position
//! would be two messages under one (key, nonce): the XOR of their plaintexts leaks, and
//! Poly1305 forgeries become possible. A relay can force re-seals by under-reporting
//! `committed`; a file that changed meanwhile would then seal differently.
//! [`SealLog::note`] refuses such a piece, and the upload stops ([`ClientError::FileChanged`]).
//!
//! The hashes live in the encrypted store (`Transfer` namespace), beside the upload's record,
//! in segments of [`PER_SEGMENT`] hashes: record id `h || upload id (16) || segment (u32)`,
//! value `version (1) || hashes`. They are written in batches ([`SealLog::persist`]) before the
//! batch is sent, so they survive a crash. They go with the upload's record (the record first:
//! a record without its hashes would resume unchecked), and [`sweep_orphans`] removes any a
//! crash left without a record.
//!
//! What it does not do: read the file or talk to a relay (see `upload`).

use std::collections::HashSet;

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::tags::{SEAL_TAG, UPLOAD_TAG};
use crate::client::error::ClientError;
use crate::conversation::codec::DecodeError;
use crate::store::{LocalStore, Namespace, StoreKey};

/// Hashes per segment record (a segment covers 64 MiB of a file in standard chunks).
const PER_SEGMENT: u64 = 1024;
/// Length of one piece's hash.
const HASH_LEN: usize = 16;
/// Version byte of a segment record.
const SEALS_VERSION: u8 = 1;

/// A piece sealed again came out different from the one sent under the same nonce.
#[derive(Debug)]
pub(super) struct Differs;

/// The hashes of the pieces an upload has sent (or is about to send), in order.
pub(super) struct SealLog {
    id: Vec<u8>,
    hashes: Vec<[u8; HASH_LEN]>,
    /// How many of `hashes` are in the store.
    saved: usize,
}

fn hash(piece: &[u8]) -> [u8; HASH_LEN] {
    let mut h = Sha256::new();
    h.update(b"hush sealed piece\0");
    h.update(piece);
    let mut out = [0u8; HASH_LEN];
    out.copy_from_slice(&h.finalize()[..HASH_LEN]);
    out
}

/// The upload id inside an upload record's key.
fn upload_id(upload: &StoreKey) -> Vec<u8> {
    match upload {
        StoreKey::Transfer(id) if id.first() == Some(&UPLOAD_TAG) => id[1..].to_vec(),
        _ => Vec::new(),
    }
}

fn segment_key(id: &[u8], segment: u64) -> StoreKey {
    let mut key = Vec::with_capacity(1 + id.len() + 4);
    key.push(SEAL_TAG);
    key.extend_from_slice(id);
    key.extend_from_slice(&u32::try_from(segment).unwrap_or(u32::MAX).to_be_bytes());
    StoreKey::Transfer(key)
}

fn decode_segment(bytes: &[u8]) -> Result<Vec<[u8; HASH_LEN]>, DecodeError> {
    let (&version, rest) = bytes.split_first().ok_or(DecodeError::Truncated)?;
    if version != SEALS_VERSION {
        return Err(DecodeError::UnknownVersion(version));
    }
    if rest.len() % HASH_LEN != 0 || rest.len() as u64 > PER_SEGMENT * HASH_LEN as u64 {
        return Err(DecodeError::InvalidValue);
    }
    Ok(rest
        .chunks_exact(HASH_LEN)
        .map(|c| {
            let mut h = [0u8; HASH_LEN];
            h.copy_from_slice(c);
            h
        })
        .collect())
}

impl SealLog {
    /// The empty log of the upload recorded under `upload`.
    pub(super) fn new(upload: &StoreKey) -> SealLog {
        SealLog {
            id: upload_id(upload),
            hashes: Vec::new(),
            saved: 0,
        }
    }

    /// The log of the upload recorded under `upload`, as stored; `None` if a segment does not
    /// decode or one before the last is not full (then what was sent is unknown).
    pub(super) fn load(
        store: &LocalStore,
        upload: &StoreKey,
    ) -> Result<Option<SealLog>, ClientError> {
        let mut log = SealLog::new(upload);
        for segment in 0.. {
            let Some(bytes) = store.get(&segment_key(&log.id, segment))? else {
                break;
            };
            let Ok(hashes) = decode_segment(&bytes) else {
                return Ok(None);
            };
            if log.hashes.len() as u64 != segment * PER_SEGMENT {
                return Ok(None);
            }
            log.hashes.extend(hashes);
        }
        log.saved = log.hashes.len();
        Ok(Some(log))
    }

    /// Pieces on record.
    pub(super) fn len(&self) -> u64 {
        self.hashes.len() as u64
    }

    /// Notes piece `index`, about to be sent or hashed again: a piece on record must be the
    /// same bytes ([`Differs`] if not), a new one (the next in order) is added.
    pub(super) fn note(&mut self, index: u64, piece: &[u8]) -> Result<(), Differs> {
        let h = hash(piece);
        match usize::try_from(index).ok() {
            Some(i) if i < self.hashes.len() => (self.hashes[i] == h).then_some(()).ok_or(Differs),
            Some(i) if i == self.hashes.len() => {
                self.hashes.push(h);
                Ok(())
            }
            // Out of order: never sent, and nothing to compare it with.
            _ => Err(Differs),
        }
    }

    /// Writes the hashes added since the last call to the store.
    pub(super) fn persist(&mut self, store: &LocalStore) -> Result<(), ClientError> {
        let per = PER_SEGMENT as usize;
        while self.saved < self.hashes.len() {
            let segment = self.saved / per;
            let end = ((segment + 1) * per).min(self.hashes.len());
            let mut value = Zeroizing::new(Vec::with_capacity(1 + (end - segment * per) * 16));
            value.push(SEALS_VERSION);
            for h in &self.hashes[segment * per..end] {
                value.extend_from_slice(h);
            }
            store.put(&segment_key(&self.id, segment as u64), &value)?;
            self.saved = end;
        }
        Ok(())
    }
}

/// Removes the seal segments of the upload recorded under `upload`.
pub(super) fn forget(store: &LocalStore, upload: &StoreKey) -> Result<(), ClientError> {
    let id = upload_id(upload);
    let mut segment = 0;
    while store.delete(&segment_key(&id, segment))? {
        segment += 1;
    }
    Ok(())
}

/// Removes every seal segment whose upload record is gone (a crash between the two deletes).
/// The segments are listed before the records: a record is written before its first segment,
/// so an upload starting meanwhile is never mistaken for an orphan.
pub(super) fn sweep_orphans(store: &LocalStore) -> Result<(), ClientError> {
    let tagged = |tag: u8| -> Result<Vec<Vec<u8>>, ClientError> {
        Ok(store
            .list(Namespace::Transfer, None)?
            .into_iter()
            .filter_map(|(key, _)| match key {
                StoreKey::Transfer(id) if id.first() == Some(&tag) => Some(id),
                _ => None,
            })
            .collect())
    };
    let segments = tagged(SEAL_TAG)?;
    if segments.is_empty() {
        return Ok(());
    }
    let uploads: HashSet<Vec<u8>> = tagged(UPLOAD_TAG)?
        .into_iter()
        .map(|id| id[1..].to_vec())
        .collect();
    for id in segments {
        // `h || upload id || segment (4)`.
        let owner = id.get(1..id.len().saturating_sub(4)).unwrap_or_default();
        if !uploads.contains(owner) {
            store.delete(&StoreKey::Transfer(id))?;
        }
    }
    Ok(())
}
