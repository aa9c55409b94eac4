//! Finding and reading a complete blob's chunks on JetStream: the chunk holding an offset is
//! found from a per-node cursor (where this node's last read of the blob ended, so a
//! sequential download costs one or two requests per read) or else by a binary search over
//! stream sequences (the chunks of one blob are in the stream in offset order), then read
//! forward until the range is whole.
//!
//! What it does not do: check capabilities, expiry or completeness (`mod.rs` does, before
//! calling here).

use std::sync::PoisonError;

use hush_protocol::BlobId;

use super::{record, JetStreamBlobs, CURSOR_SCAN, MAX_CURSORS};
use crate::blob::BlobError;
use crate::store::jetstream::api::{Get, Msg};

impl JetStreamBlobs {
    /// Reads `n` bytes from `offset`, starting with the chunk message `first`, which starts at
    /// or before `offset`; `last_seq` is the blob's last chunk. Remembers where it ended for the
    /// next read.
    ///
    /// Each byte comes from the last chunk (in stream order) that starts at or before it: the
    /// rule the search in [`JetStreamBlobs::chunk_at`] follows too, so two reads of one range
    /// agree even where two chunks start at the same offset (see `write` in `mod.rs`). Before
    /// using a chunk's bytes the read therefore looks at the next chunk, unless this one is the
    /// last.
    pub(super) async fn read_from(
        &self,
        id: &BlobId,
        hash: &str,
        first: Msg,
        range: (u64, u64),
        last_seq: u64,
    ) -> Result<Vec<u8>, BlobError> {
        let (offset, n) = range;
        let subject = self.inner.names.chunks(hash);
        // n <= MAX_BLOB_CHUNK, checked by the caller.
        let mut out = Vec::with_capacity(n as usize);
        let mut cur = Some(first);
        let mut pos = offset;
        loop {
            // The chunks went away under the read: the blob was deleted.
            let m = cur.take().ok_or(BlobError::NotFound)?;
            let seq = m.seq;
            let next = match seq < last_seq {
                true => {
                    let after = Get::Next {
                        from: seq + 1,
                        filter: &subject,
                    };
                    self.nats().get(self.stream(), after).await?
                }
                false => None,
            };
            let limit = match &next {
                Some(nm) => record::chunk_offset(&nm.data)?,
                None => u64::MAX,
            };
            let (at, data) = record::decode_chunk(m.data)?;
            if at > pos {
                return Err(BlobError::Corrupt("blob chunks do not follow each other"));
            }
            let end = (at + data.len() as u64).min(limit);
            if end > pos {
                let want = (n - (pos - offset)).min(end - pos);
                let from = (pos - at) as usize;
                out.extend_from_slice(&data[from..from + want as usize]);
                pos += want;
                if pos == offset + n {
                    self.remember(*id, at, seq);
                    return Ok(out);
                }
            }
            cur = next;
        }
    }

    fn remember(&self, id: BlobId, offset: u64, seq: u64) {
        let mut cursors = self
            .inner
            .cursors
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if cursors.len() >= MAX_CURSORS && !cursors.contains_key(&id) {
            cursors.clear();
        }
        cursors.insert(id, (offset, seq));
    }

    pub(super) fn forget(&self, id: &BlobId) {
        let mut cursors = self
            .inner
            .cursors
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        cursors.remove(id);
    }

    /// The chunk message that holds byte `target` of a complete blob whose last chunk is at
    /// stream sequence `last_seq`.
    pub(super) async fn chunk_at(
        &self,
        id: &BlobId,
        hash: &str,
        target: u64,
        last_seq: u64,
    ) -> Result<Msg, BlobError> {
        let cursor = {
            let cursors = self.inner.cursors.lock();
            cursors
                .unwrap_or_else(PoisonError::into_inner)
                .get(id)
                .copied()
        };
        if let Some((at, seq)) = cursor.filter(|(at, _)| *at <= target) {
            if let Some(m) = self.scan_from(hash, seq, at, target).await? {
                return Ok(m);
            }
        }
        self.search(hash, target, last_seq).await
    }

    /// Scans forward from the chunk at `seq` (which starts at `at`) for the one holding
    /// `target`, over at most [`CURSOR_SCAN`] chunks; `None` if it is further on, or if the
    /// cursor no longer names a chunk of this blob.
    async fn scan_from(
        &self,
        hash: &str,
        mut seq: u64,
        at: u64,
        target: u64,
    ) -> Result<Option<Msg>, BlobError> {
        let subject = self.inner.names.chunks(hash);
        for _ in 0..CURSOR_SCAN {
            let filter = Get::Next {
                from: seq,
                filter: &subject,
            };
            let Some(m) = self.nats().get(self.stream(), filter).await? else {
                return Ok(None);
            };
            let start = record::chunk_offset(&m.data)?;
            // The cursor's own chunk must still be there, and no chunk may start past target.
            if (m.seq == seq && start != at) || start > target {
                return Ok(None);
            }
            let end = start + (m.data.len() - record::CHUNK_HEADER_LEN) as u64;
            if target < end {
                return Ok(Some(m));
            }
            seq = m.seq + 1;
        }
        Ok(None)
    }

    /// Binary search over stream sequences for the last chunk that starts at or before
    /// `target`: the chunks of one blob are in the stream in offset order, between its first
    /// chunk and `last_seq`.
    async fn search(&self, hash: &str, target: u64, last_seq: u64) -> Result<Msg, BlobError> {
        let subject = self.inner.names.chunks(hash);
        let next = |from: u64| {
            self.nats().get(
                self.stream(),
                Get::Next {
                    from,
                    filter: &subject,
                },
            )
        };
        let Some(mut best) = next(0).await? else {
            return Err(BlobError::NotFound);
        };
        let mut hi = last_seq;
        while best.seq < hi {
            let mid = best.seq + (hi - best.seq).div_ceil(2);
            let Some(m) = next(mid).await? else {
                return Err(BlobError::NotFound);
            };
            if record::chunk_offset(&m.data)? <= target {
                best = m;
            } else {
                hi = mid - 1;
            }
        }
        Ok(best)
    }
}
