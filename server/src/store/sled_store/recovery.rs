//! Loading the store: opening every record with its vault key to rebuild the in-memory index
//! and the segment table, and, on open, dropping what a crash left half-written.
//!
//! An envelope in a segment is live if its record opens with the key in its slot: an acked,
//! retracted or expired envelope's key was shredded (or its slot since holds another
//! envelope's key, which does not open it), so its entry is dead. A segment with no live
//! entry is removed.
//!
//! A crash between a write and its group commit can leave one side ahead of the other: a record
//! whose key never reached the vault (or was already shredded), or a vault key that no record
//! refers to. Neither was ever acknowledged to anyone, so both are dropped on open
//! ([`Repair::Yes`]): queue records that no longer open are removed, as are segments with no
//! live envelope; unreferenced keys are shredded, and keys of no kind this format writes are
//! removed. (Queue counters are not stored: the index recounts them.)
//!
//! What it does not do: repair damaged sled files (sled's own recovery runs before this), or
//! read format 1 (`migrate` rewrites it first).

use std::collections::{HashMap, HashSet};

use hush_protocol::RecipientId;
use hush_vault::{SlotId, Vault};

use super::codec::{key_slot, FORMAT_KEY, QUEUE_PREFIX, SEGMENT_PREFIX};
use super::error::backend;
use super::mem::{EnvelopeMeta, QueueMem};
use super::seal::{open_envelope, open_queue, sealed_body_len};
use super::segment::{entries, Place, Segments};
use crate::store::StoreError;

/// Whether loading may change what is on disk.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Repair {
    /// On open, before anything else runs: drop what does not open, shred unreferenced keys.
    Yes,
    /// While the store runs (rebuilding the index after a failure): only read. A key another
    /// thread has just allocated has no record yet, and must not be shredded.
    No,
}

/// What `load` builds: every queue with its envelopes, as the index keeps them.
type Queues = HashMap<RecipientId, QueueMem>;

/// Every queue `db` holds, with its envelopes, as the index keeps them, and the live count of
/// every segment.
pub(super) fn load(
    db: &sled::Db,
    vault: &Vault,
    repair: Repair,
) -> Result<(Queues, Segments), StoreError> {
    let mut batch = sled::Batch::default();
    let mut referenced = HashSet::new();
    let mut dropped = 0u64;
    let mut queues: Queues = HashMap::new();
    for item in db.scan_prefix(QUEUE_PREFIX) {
        let (k, v) = item.map_err(backend)?;
        let slot = key_slot(&k)?;
        let opened = vault
            .get(SlotId::from_index(slot))
            .map_err(backend)
            .and_then(|key| open_queue(&key, slot, &v));
        match opened {
            Ok((r, value)) if !queues.contains_key(&r) => {
                referenced.insert(slot);
                queues.insert(r, QueueMem::from_stored(value, slot));
            }
            _ => {
                batch.remove(k);
                dropped += 1;
            }
        }
    }
    let mut live = HashMap::new();
    let mut highest = None;
    for item in db.scan_prefix(SEGMENT_PREFIX) {
        let (k, v) = item.map_err(backend)?;
        let seg = key_slot(&k)?;
        highest = highest.max(Some(seg));
        // A segment that does not parse is dropped whole: its envelopes were never answered.
        let slots = entries(&v).map_or_else(
            |_| Vec::new(),
            |e| load_segment(vault, &mut queues, seg, &v, &e),
        );
        let n_live = slots.len() as u32;
        referenced.extend(slots);
        if n_live > 0 {
            live.insert(seg, n_live);
        } else {
            batch.remove(k);
            dropped += 1;
        }
    }
    if repair == Repair::Yes {
        dropped += drop_unknown_keys(db, &mut batch)?;
        finish_repair(db, vault, batch, &referenced, dropped)?;
    }
    let queues = queues.into_iter().map(|(r, q)| (r, q.loaded())).collect();
    Ok((queues, Segments::loaded(live, highest)))
}

/// Adds the live envelopes of segment `seg` (value `v`, entries `entries`) to their queues.
/// Returns the slots of those it added.
fn load_segment(
    vault: &Vault,
    queues: &mut Queues,
    seg: u64,
    v: &[u8],
    entries: &[(u64, u32, u32)],
) -> Vec<u64> {
    let mut added = Vec::new();
    for &(slot, at, len) in entries {
        let place = Place { seg, at, len };
        let Some(sealed) = place.slice(v) else {
            continue;
        };
        let Ok(key) = vault.get(SlotId::from_index(slot)) else {
            continue;
        };
        let Ok((head, _)) = open_envelope(&key, slot, sealed) else {
            continue;
        };
        let meta = EnvelopeMeta {
            seq: head.seq,
            expires_at: head.expires_at,
            slot,
            body_len: sealed_body_len(sealed.len()),
            place,
        };
        let kept = queues
            .get_mut(&head.recipient)
            .is_some_and(|q| q.add_loaded(head.id, meta));
        if kept {
            added.push(slot);
        }
    }
    added
}

/// Stages the removal of every key of a kind this format does not write (the envelope-id and
/// expiry indexes of versions before the in-memory index, say). Returns how many.
fn drop_unknown_keys(db: &sled::Db, batch: &mut sled::Batch) -> Result<u64, StoreError> {
    let mut n = 0u64;
    for key in db.iter().keys() {
        let key = key.map_err(backend)?;
        let known = key.as_ref() == FORMAT_KEY
            || (key.len() == 9 && [QUEUE_PREFIX[0], SEGMENT_PREFIX[0]].contains(&key[0]));
        if !known {
            batch.remove(key);
            n += 1;
        }
    }
    Ok(n)
}

/// Applies the removals, shreds the keys no record refers to, and flushes both.
fn finish_repair(
    db: &sled::Db,
    vault: &Vault,
    batch: sled::Batch,
    referenced: &HashSet<u64>,
    dropped: u64,
) -> Result<(), StoreError> {
    if dropped > 0 {
        db.apply_batch(batch).map_err(backend)?;
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
