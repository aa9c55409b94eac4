//! Start-up reconciliation of the database with the key vault after a crash.
//!
//! A crash between a write and its group commit can leave one side ahead of the other: an
//! envelope whose key never reached the vault (or was already shredded), or a vault key that no
//! envelope refers to. Neither was ever acknowledged to anyone, so both are dropped: envelopes
//! that no longer decrypt are removed, and unreferenced keys are shredded. (Queue counters are
//! not stored: the in-memory index recounts them after this.)
//!
//! What it does not do: repair damaged sled files (sled's own recovery runs before this).

use std::collections::HashSet;

use hush_protocol::RecipientId;
use hush_vault::{SlotId, Vault};

use super::codec::{
    body_aad, envelope_key_seq, envelope_prefix, EnvelopeHead, LEGACY_PREFIXES, QUEUE_PREFIX,
};
use super::error::backend;
use crate::store::StoreError;

/// Drops half-written envelopes, orphaned keys and the on-disk indexes older versions kept,
/// then flushes both.
pub(super) fn reconcile(db: &sled::Db, vault: &Vault) -> Result<(), StoreError> {
    drop_legacy_indexes(db)?;
    let mut referenced = HashSet::new();
    let mut dropped = 0u64;
    for item in db.scan_prefix(QUEUE_PREFIX).keys() {
        let k = item.map_err(backend)?;
        let bytes = k.get(1..).and_then(|b| b.try_into().ok());
        let r = RecipientId::from_bytes(bytes.ok_or_else(|| backend("bad queue key"))?);
        dropped += reconcile_queue(db, vault, &r, &mut referenced)?;
    }
    let mut orphans = 0u64;
    for slot in vault.occupied_slots() {
        if !referenced.contains(&slot.index()) {
            vault.shred_deferred(slot).map_err(backend)?;
            orphans += 1;
        }
    }
    if dropped > 0 || orphans > 0 {
        tracing::warn!(
            dropped,
            orphans,
            "dropped records left unfinished by a crash"
        );
    }
    vault.sync().map_err(backend)?;
    db.flush().map_err(backend)?;
    Ok(())
}

/// The envelope-id and expiry indexes that versions before the in-memory index kept in sled.
fn drop_legacy_indexes(db: &sled::Db) -> Result<(), StoreError> {
    let mut batch = sled::Batch::default();
    let mut any = false;
    for prefix in LEGACY_PREFIXES {
        for key in db.scan_prefix(prefix).keys() {
            batch.remove(key.map_err(backend)?);
            any = true;
        }
    }
    if any {
        db.apply_batch(batch).map_err(backend)?;
    }
    Ok(())
}

/// Checks every envelope of queue `r`; returns how many it dropped.
fn reconcile_queue(
    db: &sled::Db,
    vault: &Vault,
    r: &RecipientId,
    referenced: &mut HashSet<u64>,
) -> Result<u64, StoreError> {
    let mut dropped = 0u64;
    let mut batch = sled::Batch::default();
    for item in db.scan_prefix(envelope_prefix(r)) {
        let (k, v) = item.map_err(backend)?;
        let seq = envelope_key_seq(&k)?;
        let (head, sealed) = EnvelopeHead::decode(&v)?;
        let opens = vault
            .get(SlotId::from_index(head.slot))
            .and_then(|key| key.open(&body_aad(r, seq, &head.id), sealed))
            .is_ok();
        if !(opens && referenced.insert(head.slot)) {
            batch.remove(k);
            dropped += 1;
        }
    }
    if dropped > 0 {
        db.apply_batch(batch).map_err(backend)?;
    }
    Ok(dropped)
}
