//! Opening the blob directory at start-up, and reconciling it after a crash.
//!
//! Every `*.blob` file is checked: its header must decode, name the blob its file name names,
//! and its wrapped key must open under the vault slot it names (a slot no other file claimed).
//! A file that fails is a blob whose creation or deletion a crash interrupted; it was never
//! acknowledged as created (or was already deleted), so it is removed. A file longer than its
//! recorded committed length holds writes that were never made durable: it is cut back, and
//! the uploader resumes from the recorded length. Vault slots no surviving file uses are
//! shredded.
//!
//! What it does not do: expire blobs (the relay's first sweep, which runs at start-up, does),
//! or touch files in the directory that are not named like blob files (it warns about them).

use std::collections::HashSet;
use std::fs::{DirBuilder, File, OpenOptions};
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Mutex;

use hush_protocol::BlobId;
use hush_vault::{DeviceKey, SlotId, Vault, VaultOptions};

use super::checkpoint::Checkpointer;
use super::cipher::DataKey;
use super::entry::{Blob, Progress};
use super::error::BlobError;
use super::header::{self, HEADER_LEN};
use super::index::{sync_dir, Index, Inner};
use super::params::{BlobLimits, BLOB_DIR, KEY_FILE, MAX_STORED_BLOBS, VAULT_FILE};

/// The blob id a file name such as `<32 hex digits>.blob` names.
fn parse_name(name: &str) -> Option<BlobId> {
    let hex_id = name.strip_suffix(".blob")?;
    let bytes: [u8; 16] = hex::decode(hex_id).ok()?.try_into().ok()?;
    Some(BlobId(bytes))
}

/// Opens (or creates, mode 0700) `<data_dir>/blobs`, its vault and the device key file, and
/// reconciles them. Blocks on disk.
pub(super) fn open(data_dir: &Path, limits: BlobLimits) -> Result<Inner, BlobError> {
    let dir = data_dir.join(BLOB_DIR);
    DirBuilder::new().recursive(true).mode(0o700).create(&dir)?;
    let key = DeviceKey::load_or_create_key_file(&data_dir.join(KEY_FILE))?;
    let options = VaultOptions {
        max_slots: MAX_STORED_BLOBS,
    };
    let vault = Vault::open(&dir.join(VAULT_FILE), &key, options)?;
    let mut index = Index::default();
    let mut claimed = HashSet::new();
    let (mut dropped, mut cut, mut unknown) = (0u64, 0u64, 0u64);
    let mut written = 0u64;
    for entry in std::fs::read_dir(&dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(id) = name.to_str().and_then(parse_name) else {
            if name != VAULT_FILE {
                unknown += 1;
            }
            continue;
        };
        match load(&entry.path(), id, &vault, &mut claimed) {
            Ok((blob, was_cut)) => {
                cut += u64::from(was_cut);
                written += blob.progress().committed;
                index.reserved += blob.total_len.saturating_add(HEADER_LEN);
                index.blobs.insert(id, std::sync::Arc::new(blob));
            }
            // An I/O failure says nothing about the file: stop rather than delete a blob.
            Err(e @ (BlobError::Io(_) | BlobError::Vault(hush_vault::VaultError::Io(_)))) => {
                return Err(e)
            }
            Err(e) => {
                tracing::debug!(error = %e, "dropping an unfinished blob file");
                std::fs::remove_file(entry.path())?;
                dropped += 1;
            }
        }
    }
    let mut orphans = 0u64;
    for slot in vault.occupied_slots() {
        if !claimed.contains(&slot.index()) {
            vault.shred_deferred(slot)?;
            orphans += 1;
        }
    }
    vault.sync()?;
    sync_dir(&dir)?;
    if dropped > 0 || orphans > 0 || cut > 0 {
        tracing::warn!(
            dropped,
            orphans,
            cut,
            "blob store: dropped blobs a crash left unfinished and cut uploads back to their durable length"
        );
    }
    if unknown > 0 {
        tracing::warn!(
            unknown,
            "blob store: the blob directory holds files the relay did not make; they are left alone"
        );
    }
    tracing::info!(blobs = index.blobs.len(), "blob store open");
    Ok(Inner {
        dir,
        vault,
        limits,
        index: Mutex::new(index),
        written: AtomicU64::new(written),
        checkpointer: Checkpointer::start()?,
    })
}

/// Loads one blob file, cutting it back to its durable length; says whether it cut.
fn load(
    path: &Path,
    id: BlobId,
    vault: &Vault,
    claimed: &mut HashSet<u64>,
) -> Result<(Blob, bool), BlobError> {
    let file = OpenOptions::new().read(true).write(true).open(path)?;
    let h = header::read(&file)?;
    if h.id != id {
        return Err(BlobError::Corrupt("header names another blob"));
    }
    if h.committed > h.total_len {
        return Err(BlobError::Corrupt(
            "committed length past the declared length",
        ));
    }
    let slot = SlotId::from_index(h.slot);
    let slot_key = vault.get(slot)?;
    let key = DataKey::unwrap(&slot_key, &id, &h.wrapped_key)?;
    if !claimed.insert(h.slot) {
        return Err(BlobError::Corrupt("vault slot claimed twice"));
    }
    let (committed, seq, was_cut) = settle_length(&file, &h)?;
    let blob = Blob {
        id,
        write_hash: h.write_hash,
        read_hash: h.read_hash,
        total_len: h.total_len,
        expires_at: h.expires_at,
        slot,
        key,
        wrapped_key: h.wrapped_key,
        path: path.to_owned(),
        progress: Mutex::new(Progress {
            committed,
            durable: committed,
            seq,
            deleted: false,
            checkpointing: false,
        }),
        published: AtomicU64::new(committed),
        gone: AtomicBool::new(false),
    };
    if committed != h.committed {
        blob.header(seq, committed).write_to(&file)?;
        file.sync_data()?;
    }
    Ok((blob, was_cut))
}

/// Makes the file's length agree with the header: cuts undurable bytes off, or (if the file is
/// somehow shorter) lowers the committed length. Returns the committed length, the header
/// sequence number to use and whether the file was cut.
fn settle_length(file: &File, h: &header::Header) -> Result<(u64, u64, bool), BlobError> {
    let data_len = file.metadata()?.len().saturating_sub(HEADER_LEN);
    if data_len > h.committed {
        file.set_len(HEADER_LEN + h.committed)?;
        file.sync_all()?;
        return Ok((h.committed, h.seq, true));
    }
    if data_len < h.committed {
        return Ok((data_len, h.seq + 1, true));
    }
    Ok((h.committed, h.seq, false))
}
