//! Start-up reconciliation of the database with the key vault after a crash.
//!
//! A crash between a write and its group commit can leave one side ahead of the other: an
//! envelope whose key never reached the vault (or was already shredded), or a vault key that no
//! envelope refers to. Neither was ever acknowledged to anyone, so both are dropped: envelopes
//! that no longer decrypt are removed (and their queue's counters fixed), and unreferenced keys
//! are shredded.
//!
//! What it does not do: repair damaged sled files (sled's own recovery runs before this).

use std::collections::HashSet;

use hush_protocol::RecipientId;
use hush_vault::{SlotId, Vault, SEAL_OVERHEAD};

use super::backend;
use super::codec::{
    body_aad, envelope_id_key, envelope_key_seq, envelope_prefix, expiry_key, queue_key,
    EnvelopeHead, QueueValue, QUEUE_PREFIX,
};
use crate::store::StoreError;

/// Drops half-written envelopes and orphaned keys, then flushes both.
pub(super) fn reconcile(db: &sled::Db, vault: &Vault) -> Result<(), StoreError> {
    let mut referenced = HashSet::new();
    let mut dropped = 0u64;
    for item in db.scan_prefix(QUEUE_PREFIX) {
        let (k, v) = item.map_err(backend)?;
        let bytes = k.get(1..).and_then(|b| b.try_into().ok());
        let r = RecipientId::from_bytes(bytes.ok_or_else(|| backend("bad queue key"))?);
        let q = QueueValue::decode(&v)?;
        dropped += reconcile_queue(db, vault, &r, q, &mut referenced)?;
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

/// Checks every envelope of queue `r`; returns how many it dropped.
fn reconcile_queue(
    db: &sled::Db,
    vault: &Vault,
    r: &RecipientId,
    mut q: QueueValue,
    referenced: &mut HashSet<u64>,
) -> Result<u64, StoreError> {
    let (mut count, mut bytes, mut dropped) = (0u64, 0u64, 0u64);
    let mut batch = sled::Batch::default();
    for item in db.scan_prefix(envelope_prefix(r)) {
        let (k, v) = item.map_err(backend)?;
        let seq = envelope_key_seq(&k)?;
        let (head, sealed) = EnvelopeHead::decode(&v)?;
        let opens = vault
            .get(SlotId::from_index(head.slot))
            .and_then(|key| key.open(&body_aad(r, seq, &head.id), sealed))
            .is_ok();
        if opens && referenced.insert(head.slot) {
            count += 1;
            bytes += sealed.len().saturating_sub(SEAL_OVERHEAD) as u64;
        } else {
            batch.remove(k);
            batch.remove(&envelope_id_key(r, &head.id)[..]);
            batch.remove(&expiry_key(head.expires_at, r, seq)[..]);
            dropped += 1;
        }
    }
    if dropped > 0 || q.count != count || q.bytes != bytes {
        q.count = count;
        q.bytes = bytes;
        batch.insert(&queue_key(r)[..], &q.encode()[..]);
        db.apply_batch(batch).map_err(backend)?;
    }
    Ok(dropped)
}
