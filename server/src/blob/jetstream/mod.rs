//! [`JetStreamBlobs`]: blobs on the NATS JetStream cluster that the relay nodes share, so an
//! upload or a download started through one node resumes through another.
//!
//! One stream, `<prefix>_blobs`, replicated like the queue streams, holds every blob: a meta
//! message and the chunks in upload order, on subjects named by a hash of the blob id (see
//! `record.rs` for the bytes). It offers the operations and errors of the local
//! [`crate::blob::BlobStore`]:
//!
//! - Create checks the two capabilities differ, the size limit and the budget (the stream's
//!   bytes plus the new blob's length), then publishes the meta message on an empty subject.
//! - A write reads the meta (capability compared in constant time, expiry) and the last chunk,
//!   whose offset and length are the committed length, and publishes the new chunk only if the
//!   chunk subject's last sequence is still the one read; of two nodes appending at once, one
//!   gets the `Offset` refusal with the new committed length. (A clustered nats-server 2.9
//!   can accept both when they arrive together: then both chunks start at the same offset,
//!   the later one sets the committed length and, where they overlap, is the one every read
//!   takes; chunks never leave a gap, and an uploader resending a range sends the same bytes.) A
//!   write acknowledged has a quorum of copies, so the committed length a status reports is
//!   durable.
//! - A read finds the chunk holding its offset and reads forward from it (`read.rs`).
//! - Delete (either capability) erases the meta message, so no new request finds the blob,
//!   then every chunk; a write that raced the deletion erases its own chunk again.
//! - The sweep reads the clear expiry of every meta message and deletes the expired blobs; two
//!   nodes sweeping at once each count only the blobs whose meta message they erased.
//!
//! The stream's maximum age is the longest blob TTL plus [`MAX_AGE_MARGIN`], so whatever a
//! deletion left behind (a node lost half-way through erasing) is removed by JetStream itself;
//! its byte limit is the blob budget, discarding new messages, so a write past it is refused
//! with `NoSpace`.
//!
//! What it does not do: reserve a blob's whole length at creation (the budget check counts the
//! bytes stored, see `docs/decisions.md`), limit the number of blobs (the local store's limit
//! is its key vault's), encrypt the uploaded bytes again (they are the client's ciphertext), or
//! keep anything on the node's disk.

mod read;
mod record;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hush_protocol::limits::MAX_BLOB_CHUNK;
use hush_protocol::{BlobCapability, BlobId};
use rand::RngCore;
use serde_json::json;
use subtle::ConstantTimeEq;

use super::params::{cap_hash, BlobLimits, CapHash};
use super::{BlobError, Created, Status};
use crate::store::jetstream::api::{Api, Checked, Get};
use crate::store::jetstream::connect_client;
use crate::store::jetstream::JetStreamConfig;
use record::Meta;

/// How much longer than the longest blob TTL JetStream keeps a blob message (one hour): room
/// for clocks that disagree, and for the sweep to come first.
pub const MAX_AGE_MARGIN: Duration = Duration::from_secs(3600);
/// The stream settings an operator may change (blob TTL, budget, largest chunk); a stream
/// that differs in any is updated on open.
const STREAM_LIMITS: [&str; 3] = ["max_age", "max_bytes", "max_msg_size"];
/// How many download cursors a node remembers; past it, it forgets them all.
const MAX_CURSORS: usize = 4096;
/// How many chunks a read scans forward from a cursor before it searches instead.
const CURSOR_SCAN: usize = 4;
/// Room in the stream's message size limit for the publish headers (the expected sequence).
const HEADROOM: usize = 1024;
/// How long opening the backend waits for the cluster to take JetStream requests.
const READY_WITHIN: Duration = Duration::from_secs(60);

/// Which capability a request presented.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Access {
    Write,
    Read,
    Either,
}

/// Stream and subject names under one prefix.
#[derive(Clone, Debug)]
struct Names {
    prefix: String,
    stream: String,
}

impl Names {
    fn meta(&self, hash: &str) -> String {
        format!("{}.bm.{hash}", self.prefix)
    }

    fn chunks(&self, hash: &str) -> String {
        format!("{}.bc.{hash}", self.prefix)
    }
}

/// A blob's meta message, opened, and where it is.
struct Found {
    meta: Meta,
    seq: u64,
}

/// Blobs on NATS JetStream. Cheap to clone; clones share one connection.
#[derive(Clone)]
pub struct JetStreamBlobs {
    inner: Arc<Inner>,
}

struct Inner {
    nats: Api,
    names: Names,
    limits: BlobLimits,
    /// Per blob, the offset and stream sequence of the chunk a read last used.
    cursors: Mutex<HashMap<BlobId, (u64, u64)>>,
}

impl std::fmt::Debug for JetStreamBlobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JetStreamBlobs")
            .field("stream", &self.inner.names.stream)
            .field("limits", &self.inner.limits)
            .finish_non_exhaustive()
    }
}

/// The stream configuration: replicas as the queue streams, age and bytes from the limits.
fn stream_config(names: &Names, replicas: usize, limits: &BlobLimits) -> serde_json::Value {
    let max_age = Duration::from_secs(limits.max_ttl_secs) + MAX_AGE_MARGIN;
    let p = &names.prefix;
    json!({
        "name": names.stream,
        "subjects": [format!("{p}.bm.*"), format!("{p}.bc.*")],
        "retention": "limits",
        "storage": "file",
        "num_replicas": replicas,
        "discard": "new",
        "max_consumers": -1,
        "max_msgs": -1,
        "max_bytes": i64::try_from(limits.budget_bytes).unwrap_or(i64::MAX),
        "max_age": u64::try_from(max_age.as_nanos()).unwrap_or(u64::MAX),
        "max_msg_size": (MAX_BLOB_CHUNK + record::CHUNK_HEADER_LEN + HEADROOM) as i64,
        "max_msgs_per_subject": -1,
        "allow_direct": false,
        "deny_delete": false,
        "deny_purge": false,
    })
}

impl JetStreamBlobs {
    /// Connects to the cluster of `config`, waits (up to a minute) until it takes JetStream
    /// requests, and creates the blob stream, or updates its age and byte limits to `limits`.
    pub async fn open(
        config: &JetStreamConfig,
        limits: BlobLimits,
    ) -> Result<JetStreamBlobs, BlobError> {
        let client = connect_client(config, "hush-relay-blobs", None)
            .await
            .map_err(|e| BlobError::Backend(e.to_string()))?;
        let nats = Api::new(client);
        let names = Names {
            prefix: config.prefix.clone(),
            stream: format!("{}_blobs", config.prefix),
        };
        let wanted = stream_config(&names, config.replicas, &limits);
        let deadline = tokio::time::Instant::now() + READY_WITHIN;
        let mut pause = Duration::from_millis(20);
        while let Err(e) = nats
            .ensure_stream_updating(wanted.clone(), &STREAM_LIMITS)
            .await
        {
            if tokio::time::Instant::now() >= deadline {
                return Err(e.into());
            }
            tracing::debug!(error = %e, "waiting for NATS JetStream (blobs)");
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(1));
        }
        Ok(JetStreamBlobs {
            inner: Arc::new(Inner {
                nats,
                names,
                limits,
                cursors: Mutex::default(),
            }),
        })
    }

    fn nats(&self) -> &Api {
        &self.inner.nats
    }

    fn stream(&self) -> &str {
        &self.inner.names.stream
    }

    /// The live blob `id`'s meta, if `cap` authorises `access` to it.
    async fn find(
        &self,
        id: &BlobId,
        hash: &str,
        cap: &CapHash,
        access: Access,
        now: u64,
    ) -> Result<Found, BlobError> {
        let subject = self.inner.names.meta(hash);
        let Some(m) = self.nats().get(self.stream(), Get::Last(&subject)).await? else {
            return Err(BlobError::NotFound);
        };
        let meta = Meta::open(id, &subject, &m.data)?;
        let w = meta.write_hash.ct_eq(cap);
        let r = meta.read_hash.ct_eq(cap);
        let allowed: bool = match access {
            Access::Write => w,
            Access::Read => r,
            Access::Either => w | r,
        }
        .into();
        if !allowed || meta.expires_at <= now {
            return Err(BlobError::NotFound);
        }
        Ok(Found { meta, seq: m.seq })
    }

    /// The committed length of the blob with this hash and the sequence of its last chunk (0
    /// if none).
    async fn committed(&self, hash: &str) -> Result<(u64, u64), BlobError> {
        let subject = self.inner.names.chunks(hash);
        match self.nats().get(self.stream(), Get::Last(&subject)).await? {
            None => Ok((0, 0)),
            Some(m) => {
                let offset = record::chunk_offset(&m.data)?;
                let len = (m.data.len() - record::CHUNK_HEADER_LEN) as u64;
                Ok((offset + len, m.seq))
            }
        }
    }

    /// Creates a blob of `total_len` bytes. `ttl_secs = 0` means the maximum.
    pub async fn create(
        &self,
        write_cap: &BlobCapability,
        read_cap: &BlobCapability,
        total_len: u64,
        ttl_secs: u32,
        now: u64,
    ) -> Result<Created, BlobError> {
        let limits = &self.inner.limits;
        let (write_hash, read_hash) = (cap_hash(write_cap), cap_hash(read_cap));
        limits.check_new(&write_hash, &read_hash, total_len)?;
        let stored = self.nats().stream_bytes(self.stream()).await?;
        if stored.saturating_add(total_len) > limits.budget_bytes {
            return Err(BlobError::NoSpace);
        }
        let expires_at = limits.expiry(ttl_secs, now);
        let meta = Meta {
            write_hash,
            read_hash,
            total_len,
            expires_at,
        };
        let mut id = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut id);
        let id = BlobId(id);
        let subject = self.inner.names.meta(&record::blob_hash(&id));
        let payload = meta.seal(&id, &subject);
        match self
            .nats()
            .publish_checked(&subject, payload, Some(0))
            .await?
        {
            Checked::Stored(_) => Ok(Created { id, expires_at }),
            Checked::Full => Err(BlobError::NoSpace),
            // A fresh random id whose subject is taken: practically impossible.
            Checked::Conflict => Err(BlobError::Backend("blob id collision".to_owned())),
        }
    }

    /// Appends `data` at `offset`; returns the committed length after it.
    pub async fn write(
        &self,
        id: BlobId,
        write_cap: &BlobCapability,
        offset: u64,
        data: Vec<u8>,
        now: u64,
    ) -> Result<u64, BlobError> {
        let hash = record::blob_hash(&id);
        let found = self
            .find(&id, &hash, &cap_hash(write_cap), Access::Write, now)
            .await?;
        let (committed, last_seq) = self.committed(&hash).await?;
        if offset != committed {
            return Err(BlobError::Offset { committed });
        }
        let len = data.len() as u64;
        if data.len() > MAX_BLOB_CHUNK || len > found.meta.total_len.saturating_sub(committed) {
            return Err(BlobError::TooLarge);
        }
        if data.is_empty() {
            return Ok(committed);
        }
        let subject = self.inner.names.chunks(&hash);
        let chunk = record::encode_chunk(offset, &data);
        let seq = match self
            .nats()
            .publish_checked(&subject, chunk, Some(last_seq))
            .await?
        {
            Checked::Stored(seq) => seq,
            Checked::Full => return Err(BlobError::NoSpace),
            Checked::Conflict => {
                let (committed, _) = self.committed(&hash).await?;
                return Err(BlobError::Offset { committed });
            }
        };
        self.confirm(&hash, found.seq, seq).await?;
        Ok(committed + len)
    }

    /// Erases a chunk just published at `seq` again if a deletion erased the blob's meta
    /// message (sequence `meta_seq`) before the chunk landed, and so may have missed it.
    async fn confirm(&self, hash: &str, meta_seq: u64, seq: u64) -> Result<(), BlobError> {
        let meta_subject = self.inner.names.meta(hash);
        let still = self.nats().get(self.stream(), Get::Last(&meta_subject));
        if still.await?.is_none_or(|m| m.seq != meta_seq) {
            self.nats().erase(self.stream(), seq).await?;
            return Err(BlobError::NotFound);
        }
        Ok(())
    }

    /// How far the blob's upload got; either capability works.
    pub async fn status(
        &self,
        id: BlobId,
        cap: &BlobCapability,
        now: u64,
    ) -> Result<Status, BlobError> {
        let hash = record::blob_hash(&id);
        let found = self
            .find(&id, &hash, &cap_hash(cap), Access::Either, now)
            .await?;
        let (committed, _) = self.committed(&hash).await?;
        Ok(Status {
            total_len: found.meta.total_len,
            committed,
            expires_at: found.meta.expires_at,
        })
    }

    /// Up to `len` bytes of the complete blob from `offset`.
    pub async fn read(
        &self,
        id: BlobId,
        read_cap: &BlobCapability,
        offset: u64,
        len: u32,
        now: u64,
    ) -> Result<Vec<u8>, BlobError> {
        let hash = record::blob_hash(&id);
        let found = self
            .find(&id, &hash, &cap_hash(read_cap), Access::Read, now)
            .await?;
        let total = found.meta.total_len;
        let (committed, last_seq) = self.committed(&hash).await?;
        if committed < total {
            return Err(BlobError::Incomplete);
        }
        if len as usize > MAX_BLOB_CHUNK {
            return Err(BlobError::Malformed("read longer than the chunk limit"));
        }
        if offset > total {
            return Err(BlobError::Malformed("read starts past the blob's end"));
        }
        let n = u64::from(len).min(total - offset);
        if n == 0 {
            return Ok(Vec::new());
        }
        let start = self.chunk_at(&id, &hash, offset, last_seq).await?;
        self.read_from(&id, &hash, start, (offset, n), last_seq)
            .await
    }

    /// Deletes the blob (either capability): erases its meta message, then its chunks.
    pub async fn delete(
        &self,
        id: BlobId,
        cap: &BlobCapability,
        now: u64,
    ) -> Result<(), BlobError> {
        let hash = record::blob_hash(&id);
        let found = self
            .find(&id, &hash, &cap_hash(cap), Access::Either, now)
            .await?;
        self.forget(&id);
        if !self.nats().erase(self.stream(), found.seq).await? {
            // Another request or node deleted it first, and erases the chunks.
            return Err(BlobError::NotFound);
        }
        self.erase_chunks(&hash).await
    }

    /// Erases every chunk of the blob with this hash.
    async fn erase_chunks(&self, hash: &str) -> Result<(), BlobError> {
        let subject = self.inner.names.chunks(hash);
        let mut from = 0;
        while let Some(m) = self
            .nats()
            .get(
                self.stream(),
                Get::Next {
                    from,
                    filter: &subject,
                },
            )
            .await?
        {
            self.nats().erase(self.stream(), m.seq).await?;
            from = m.seq + 1;
        }
        Ok(())
    }

    /// Deletes every blob whose time is up at `now`, finished or not; returns how many this
    /// call deleted (a blob another node's sweep deleted first is not counted here).
    pub async fn sweep(&self, now: u64) -> Result<u64, BlobError> {
        let filter = self.inner.names.meta("*");
        let mut from = 0;
        let mut deleted = 0;
        while let Some(m) = self
            .nats()
            .get(
                self.stream(),
                Get::Next {
                    from,
                    filter: &filter,
                },
            )
            .await?
        {
            from = m.seq + 1;
            match record::meta_expiry(&m.data) {
                Ok(expires_at) if expires_at > now => continue,
                Ok(_) => {}
                // One damaged message must not stop the expiry of every other blob; JetStream's
                // maximum age removes it.
                Err(e) => {
                    tracing::warn!(error = %e, "skipping a blob meta message in the sweep");
                    continue;
                }
            }
            let Some(hash) = m.subject.rsplit('.').next() else {
                continue;
            };
            if self.nats().erase(self.stream(), m.seq).await? {
                self.erase_chunks(hash).await?;
                deleted += 1;
            }
        }
        Ok(deleted)
    }

    /// The limits this backend enforces.
    pub fn limits(&self) -> BlobLimits {
        self.inner.limits
    }
}
