//! Segments (store format 3): the envelopes of one writer round stored as one sled record, and
//! the in-memory count of what each segment still holds.
//!
//! A segment's value is a run of entries, `slot (u64 BE) ‖ length (u32 BE) ‖ sealed envelope
//! record`, each record sealed under its own vault key exactly as format 2 stored it on its own
//! (`seal`). The slot is a vault position, as a format 2 sled key was: it names no client id.
//!
//! Removing an envelope (ack, retract, expiry, queue deletion) writes nothing to the segment:
//! the envelope's key is shredded, which makes its entry unreadable for good, and the
//! [`Segments`] table counts it off. Once a segment holds no live envelope its key is removed.
//! On open, `recovery` rebuilds the counts by opening every entry: an entry whose key is gone
//! (or was reused for another envelope, whose key does not open it) is dead.
//!
//! A round's envelopes are split into segments of about [`SEGMENT_TARGET_BYTES`], so that a
//! sled leaf of segments (17 keys at most) stays below sled 0.34's blob threshold (about
//! 128 KiB for one log item) and is never written out as a blob file. One envelope larger
//! than that gets a segment of its own.
//!
//! What it does not do: seal or open records (`seal`), hold locks (the caller holds the
//! table's), or decide when a round ends (`writer`).

use std::collections::HashMap;

use super::codec::{corrupt, segment_key};
use crate::store::StoreError;

/// Bytes of entries after which a segment is closed and the next envelope starts another.
pub(super) const SEGMENT_TARGET_BYTES: usize = 6 * 1024;
/// Bytes in front of each entry's sealed record: its slot and its length.
const ENTRY_HEAD_LEN: usize = 12;

/// Where one envelope's sealed record sits: its segment, and its place in the segment's value.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) struct Place {
    pub(super) seg: u64,
    /// Offset of the sealed record in the segment's value.
    pub(super) at: u32,
    /// Length of the sealed record.
    pub(super) len: u32,
}

impl Place {
    /// The sealed record in `value`, the segment's value; `None` if it does not fit.
    pub(super) fn slice<'v>(&self, value: &'v [u8]) -> Option<&'v [u8]> {
        let start = self.at as usize;
        value.get(start..start.checked_add(self.len as usize)?)
    }
}

/// Appends an entry for the record sealed in `slot` to a segment's value: the caller seals the
/// record into `value` with `seal`. Returns the record's offset and length.
pub(super) fn push_entry(
    value: &mut Vec<u8>,
    slot: u64,
    seal: impl FnOnce(&mut Vec<u8>),
) -> (u32, u32) {
    let head = value.len();
    value.extend_from_slice(&slot.to_be_bytes());
    value.extend_from_slice(&[0u8; 4]);
    let at = value.len();
    seal(value);
    let len = value.len() - at;
    value[head + 8..at].copy_from_slice(&(len as u32).to_be_bytes());
    (at as u32, len as u32)
}

/// The entries of a segment's value: each one's slot, offset and length.
pub(super) fn entries(value: &[u8]) -> Result<Vec<(u64, u32, u32)>, StoreError> {
    let mut out = Vec::new();
    let mut rest = 0usize;
    while rest < value.len() {
        let head = value
            .get(rest..rest + ENTRY_HEAD_LEN)
            .ok_or_else(|| corrupt("segment"))?;
        let mut slot = [0u8; 8];
        slot.copy_from_slice(&head[..8]);
        let mut len = [0u8; 4];
        len.copy_from_slice(&head[8..]);
        let (at, len) = (rest + ENTRY_HEAD_LEN, u32::from_be_bytes(len));
        let end = at
            .checked_add(len as usize)
            .filter(|end| *end <= value.len() && *end <= u32::MAX as usize)
            .ok_or_else(|| corrupt("segment"))?;
        out.push((u64::from_be_bytes(slot), at as u32, len));
        rest = end;
    }
    Ok(out)
}

/// How many live envelopes each stored segment holds, and the id the next segment gets.
#[derive(Default, Debug)]
pub(super) struct Segments {
    live: HashMap<u64, u32>,
    next_id: u64,
}

impl Segments {
    /// A table of `live` counts, loaded from disk, whose next segment gets an id above
    /// `highest` (the highest id on disk, live or not).
    pub(super) fn loaded(live: HashMap<u64, u32>, highest: Option<u64>) -> Segments {
        Segments {
            live,
            next_id: highest.map_or(0, |h| h.saturating_add(1)),
        }
    }

    /// A fresh segment id, never handed out before by this table.
    fn start(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Counts one more live envelope in `seg`.
    fn add(&mut self, seg: u64) {
        *self.live.entry(seg).or_insert(0) += 1;
    }

    /// Counts one envelope of `seg` gone. True if that was its last: its key is to be removed.
    pub(super) fn release(&mut self, seg: u64) -> bool {
        match self.live.get_mut(&seg) {
            Some(n) if *n > 1 => {
                *n -= 1;
                false
            }
            Some(_) => {
                self.live.remove(&seg);
                true
            }
            // Not counted (already released): nothing refers to it.
            None => false,
        }
    }

    /// Takes back a [`Segments::release`] of `seg` whose batch was not applied.
    pub(super) fn restore(&mut self, seg: u64) {
        self.add(seg);
    }

    /// Forgets `seg`, a segment whose batch was not applied.
    fn forget(&mut self, seg: u64) {
        self.live.remove(&seg);
    }

    /// How many segments hold a live envelope.
    #[cfg(test)]
    pub(super) fn count(&self) -> usize {
        self.live.len()
    }
}

/// The segments one batch writes and releases: new envelopes go into open segments of about
/// [`SEGMENT_TARGET_BYTES`], and segments whose last envelope goes are removed in the same
/// batch. [`SegmentRound::undo`] takes it all back from the table if the batch is refused.
pub(super) struct SegmentRound<'t> {
    table: &'t mut Segments,
    open: Option<(u64, Vec<u8>)>,
    created: Vec<u64>,
    released: Vec<u64>,
}

impl<'t> SegmentRound<'t> {
    /// A round over `table`.
    pub(super) fn new(table: &'t mut Segments) -> SegmentRound<'t> {
        SegmentRound {
            table,
            open: None,
            created: Vec::new(),
            released: Vec::new(),
        }
    }

    /// Adds an envelope whose record `seal` writes (`sealed_len` bytes long) under the key in
    /// `slot`, closing the open segment into `batch` first if it is full. Returns its place.
    pub(super) fn append(
        &mut self,
        batch: &mut sled::Batch,
        slot: u64,
        sealed_len: usize,
        seal: impl FnOnce(&mut Vec<u8>),
    ) -> Place {
        let full = self.open.as_ref().is_some_and(|(_, value)| {
            !value.is_empty() && value.len() + ENTRY_HEAD_LEN + sealed_len > SEGMENT_TARGET_BYTES
        });
        if full {
            self.close(batch);
        }
        let (seg, value) = match &mut self.open {
            Some(open) => open,
            none => {
                let id = self.table.start();
                self.created.push(id);
                let capacity = SEGMENT_TARGET_BYTES.max(ENTRY_HEAD_LEN + sealed_len);
                none.insert((id, Vec::with_capacity(capacity)))
            }
        };
        let (at, len) = push_entry(value, slot, seal);
        let seg = *seg;
        self.table.add(seg);
        Place { seg, at, len }
    }

    /// Counts an envelope of `seg` gone; if it was the segment's last, stages its removal and
    /// returns true.
    pub(super) fn release(&mut self, batch: &mut sled::Batch, seg: u64) -> bool {
        self.released.push(seg);
        let emptied = self.table.release(seg);
        if emptied {
            batch.remove(&segment_key(seg)[..]);
        }
        emptied
    }

    /// Stages the open segment, if any, in `batch`.
    pub(super) fn close(&mut self, batch: &mut sled::Batch) {
        if let Some((seg, value)) = self.open.take() {
            batch.insert(&segment_key(seg)[..], value);
        }
    }

    /// Takes the round back from the table: its batch was not applied.
    pub(super) fn undo(self) {
        for seg in self.created {
            self.table.forget(seg);
        }
        for seg in self.released {
            self.table.restore(seg);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_truncation_is_corrupt() {
        let mut value = Vec::new();
        let a = push_entry(&mut value, 7, |v| v.extend_from_slice(b"first"));
        let b = push_entry(&mut value, u64::MAX, |v| v.extend_from_slice(b"second!"));
        assert_eq!(
            entries(&value).unwrap(),
            vec![(7, a.0, a.1), (u64::MAX, b.0, b.1)]
        );
        let place = Place {
            seg: 0,
            at: b.0,
            len: b.1,
        };
        assert_eq!(place.slice(&value), Some(&b"second!"[..]));
        assert!(entries(&value[..value.len() - 1]).is_err());
        assert!(entries(&value[..5]).is_err());
        assert!(entries(&[]).unwrap().is_empty());
    }

    #[test]
    fn a_segment_goes_once_its_last_envelope_goes_and_a_refused_round_is_undone() {
        let mut table = Segments::default();
        let mut batch = sled::Batch::default();
        let mut round = SegmentRound::new(&mut table);
        let big = SEGMENT_TARGET_BYTES / 2 - ENTRY_HEAD_LEN;
        let places: Vec<Place> = (0..3)
            .map(|slot| round.append(&mut batch, slot, big, |v| v.resize(v.len() + big, 1)))
            .collect();
        round.close(&mut batch);
        // Two fit in the first segment, the third starts another.
        assert_eq!(places[0].seg, places[1].seg);
        assert_ne!(places[1].seg, places[2].seg);
        assert_eq!(table.count(), 2);
        assert!(!table.release(places[0].seg));
        assert!(table.release(places[1].seg));
        assert!(!table.release(places[1].seg), "released twice");
        let mut round = SegmentRound::new(&mut table);
        round.release(&mut batch, places[2].seg);
        round.append(&mut batch, 9, 10, |v| v.resize(v.len() + 10, 2));
        round.undo();
        assert_eq!(
            table.count(),
            1,
            "the third's segment is back, the new one gone"
        );
        assert!(table.release(places[2].seg));
        assert_eq!(table.start(), 3, "ids are not handed out twice");
    }
}
