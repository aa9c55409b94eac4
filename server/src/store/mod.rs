//! Where the relay keeps queues and pending envelopes: the [`QueueStore`] trait.
//!
//! The relay's queue semantics (`ops.rs`, with sends and acks pipelined in `pipeline.rs` and
//! pushes read in `push.rs`) are written against this trait only. Two implementations live
//! here: [`memory::MemoryStore`] for tests, and [`sled_store::SledStore`], the embedded
//! default. A networked backend (Redis Cluster, say) can implement the same trait later, so
//! that relay nodes become stateless; it reports its failures as [`StoreError::Backend`] with a
//! [`BackendFailure`] kind, and proves its behaviour with the `conformance` suite (enabled by
//! this crate's `testing` feature).
//!
//! Wake-ups for subscribed recipients go through the store too ([`QueueStore::watch`]): a
//! networked backend would feed them from its own pub/sub, not from a map inside one process.
//!
//! What this module does not do: authorise recipient operations (the relay checks their
//! signatures in `ops.rs` before a store call), or decide TTLs and quotas (the relay passes
//! them in).

use std::future::Future;

use hush_protocol::{EnvelopeId, RecipientId, SenderId};
use subtle::ConstantTimeEq;

#[cfg(any(test, feature = "testing"))]
pub mod conformance;
pub mod jetstream;
pub mod memory;
pub mod sled_store;
mod wake;

pub use wake::{WakeRegistry, Wakeup};

/// A histogram of group-commit latencies in seconds ([`QueueStore::commit_latency`]).
pub type CommitLatency = prometheus_client::metrics::histogram::Histogram;

/// SHA-256 of a send capability. The relay never stores the capability itself.
pub type CapHash = [u8; 32];

/// Everything the relay knows about one queue.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct QueueRecord {
    /// The id recipient operations use.
    pub recipient_id: RecipientId,
    /// The id sends use.
    pub sender_id: SenderId,
    /// The recipient's Ed25519 public key, which authorises recipient operations.
    pub recipient_key: [u8; 32],
    /// Hash of the current send capability.
    pub send_cap_hash: CapHash,
    /// Unix seconds of the last send, subscribe or ack; idle queues are swept after a limit.
    pub last_active: u64,
}

/// An envelope to append to a queue.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct NewEnvelope {
    /// The relay-assigned random id, returned to the sender.
    pub id: EnvelopeId,
    /// Opaque ciphertext.
    pub body: Vec<u8>,
    /// Unix seconds after which the envelope is removed unread.
    pub expires_at: u64,
}

/// An envelope waiting in a queue.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct StoredEnvelope {
    /// Position in the queue; strictly increasing in send order, never reused within a queue.
    pub seq: u64,
    /// The relay-assigned random id.
    pub id: EnvelopeId,
    /// Opaque ciphertext.
    pub body: Vec<u8>,
    /// Unix seconds after which the envelope is removed unread.
    pub expires_at: u64,
}

/// Per-queue limits the store enforces atomically with an append.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Quota {
    /// Most envelopes pending in one queue.
    pub max_messages: u32,
    /// Most body bytes pending in one queue.
    pub max_bytes: u64,
}

/// What an expiry sweep removed.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct SweepStats {
    /// Envelopes removed because they expired.
    pub expired_envelopes: u64,
    /// Queues removed because they were idle too long (their envelopes included).
    pub idle_queues: u64,
}

/// How much a store holds now: for the relay's metrics and `hush-server stats`. Counts only:
/// no id, and nothing per queue.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct StoreStats {
    /// Queues.
    pub queues: u64,
    /// Envelopes waiting to be delivered (expired ones the sweep has not removed included).
    pub envelopes: u64,
    /// Body bytes of those envelopes.
    pub envelope_bytes: u64,
    /// The earliest `expires_at` (Unix seconds) of any waiting envelope. The relay keeps no
    /// send time, so this, not an age, is what it can tell about its oldest envelope.
    pub earliest_expiry: Option<u64>,
}

/// Why a store operation failed. Clones carry the same failure (a group commit reports one
/// failure to every writer it covered).
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// No queue has that id, or the presented send capability does not match. The two are not
    /// distinguished so that a sender cannot probe which queues exist.
    #[error("no such queue, or not authorised")]
    Auth,
    /// A queue with one of those ids already exists.
    #[error("queue id already exists")]
    Exists,
    /// The queue has reached its pending-message or pending-byte quota.
    #[error("queue is full")]
    QueueFull,
    /// The backing storage failed (I/O error, disk full, corruption, a lost connection).
    /// Nothing was acknowledged. The relay answers every kind with the same error code; `kind`
    /// tells a caller that retries (a networked backend, say) whether trying again may help.
    #[error("storage failure ({kind}): {detail}")]
    Backend {
        /// Whether the same operation may succeed if tried again.
        kind: BackendFailure,
        /// What failed, for the relay's log; never sent to clients.
        detail: String,
    },
}

impl StoreError {
    /// A backend failure that may clear by itself: see [`BackendFailure::Transient`].
    pub fn transient(detail: impl std::fmt::Display) -> StoreError {
        StoreError::Backend {
            kind: BackendFailure::Transient,
            detail: detail.to_string(),
        }
    }

    /// A backend failure that trying again will not cure: see [`BackendFailure::Permanent`].
    pub fn permanent(detail: impl std::fmt::Display) -> StoreError {
        StoreError::Backend {
            kind: BackendFailure::Permanent,
            detail: detail.to_string(),
        }
    }

    /// Whether this is a backend failure worth retrying. The other errors (`Auth`, `Exists`,
    /// `QueueFull`) are answers, not failures: the same call gets the same answer.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            StoreError::Backend {
                kind: BackendFailure::Transient,
                ..
            }
        )
    }
}

/// Whether a backend failure may clear if the same operation is tried again.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum BackendFailure {
    /// Trying again later may succeed: a timeout, an interrupted call, a full disk or key vault
    /// (space comes back as envelopes are acked or expire), a busy resource or a lost
    /// connection.
    Transient,
    /// Trying again will not help: corrupt or unreadable data, an unsupported operation, a
    /// permission problem, a bug, or a store that has stopped.
    Permanent,
}

impl BackendFailure {
    /// Classifies an I/O error by its kind: the kinds that describe a passing condition are
    /// transient, every other kind is permanent.
    pub fn of_io(e: &std::io::Error) -> BackendFailure {
        use std::io::ErrorKind as K;
        match e.kind() {
            K::Interrupted
            | K::WouldBlock
            | K::TimedOut
            | K::StorageFull
            | K::QuotaExceeded
            | K::ResourceBusy
            | K::OutOfMemory
            | K::ConnectionRefused
            | K::ConnectionReset
            | K::ConnectionAborted
            | K::NotConnected
            | K::BrokenPipe
            | K::HostUnreachable
            | K::NetworkUnreachable
            | K::NetworkDown => BackendFailure::Transient,
            _ => BackendFailure::Permanent,
        }
    }
}

impl std::fmt::Display for BackendFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BackendFailure::Transient => "transient",
            BackendFailure::Permanent => "permanent",
        })
    }
}

/// Compares two capability hashes in constant time.
pub fn cap_matches(stored: &CapHash, presented: &CapHash) -> bool {
    stored.ct_eq(presented).into()
}

/// Storage for queues and their pending envelopes.
///
/// Every mutating method returns only once its effect is durable (for persistent stores), so the
/// relay may acknowledge to the client as soon as the future resolves. Implementations group
/// concurrent writers into one flush.
pub trait QueueStore: Send + Sync + 'static {
    /// Registers a new queue. Fails with [`StoreError::Exists`] if either id is taken.
    fn create_queue(
        &self,
        queue: QueueRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Looks a queue up by its recipient id.
    fn queue(
        &self,
        recipient: RecipientId,
    ) -> impl Future<Output = Result<Option<QueueRecord>, StoreError>> + Send;

    /// Appends an envelope to the queue that `sender` names, after checking (atomically with the
    /// append, in constant time) that `cap_hash` matches the queue's send capability and that
    /// the quota allows it. When `new_cap_hash` is given, the queue's capability is replaced in
    /// the same atomic step. Wakes the queue's watchers once durable. Returns the recipient id.
    fn send(
        &self,
        sender: SenderId,
        cap_hash: CapHash,
        envelope: NewEnvelope,
        new_cap_hash: Option<CapHash>,
        quota: Quota,
        now: u64,
    ) -> impl Future<Output = Result<RecipientId, StoreError>> + Send;

    /// Starts a [`QueueStore::send`] and resolves once the send has its place in the queue's
    /// order, to a future that resolves as `send` does. A send started after that (by the same
    /// caller, to the same queue) gets a later seq. The relay uses this to keep many sends of one
    /// connection waiting for durability at once, in request order.
    ///
    /// The default runs the whole send in the outer future. A store that applies writes in the
    /// order they were submitted overrides it to return as soon as the send is submitted.
    fn start_send(
        &self,
        sender: SenderId,
        cap_hash: CapHash,
        envelope: NewEnvelope,
        new_cap_hash: Option<CapHash>,
        quota: Quota,
        now: u64,
    ) -> impl Future<Output = impl Future<Output = Result<RecipientId, StoreError>> + Send + 'static>
           + Send {
        // The outer future yields the inner one on purpose: that is the two-step contract.
        #[allow(clippy::async_yields_async)]
        async move {
            let sent = self
                .send(sender, cap_hash, envelope, new_cap_hash, quota, now)
                .await;
            std::future::ready(sent)
        }
    }

    /// Removes a pending envelope on behalf of its sender, after checking `cap_hash` as
    /// [`QueueStore::send`] does. Returns whether the envelope was still pending.
    fn retract(
        &self,
        sender: SenderId,
        cap_hash: CapHash,
        envelope: EnvelopeId,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Up to `limit` pending, unexpired envelopes with `seq >= from_seq`, in order.
    fn pending(
        &self,
        recipient: RecipientId,
        from_seq: u64,
        limit: usize,
        now: u64,
    ) -> impl Future<Output = Result<Vec<StoredEnvelope>, StoreError>> + Send;

    /// Removes an envelope on behalf of the recipient. Returns whether it was pending.
    fn ack(
        &self,
        recipient: RecipientId,
        envelope: EnvelopeId,
        now: u64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Replaces the queue's send capability (recipient-authorised re-secure).
    fn set_send_cap(
        &self,
        recipient: RecipientId,
        new_cap_hash: CapHash,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Marks the queue active now, so the idle sweep keeps it.
    fn touch(
        &self,
        recipient: RecipientId,
        now: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Deletes the queue and every envelope in it. Returns whether it existed. Watchers see the
    /// queue gone.
    fn delete_queue(
        &self,
        recipient: RecipientId,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Removes envelopes whose `expires_at <= now`, and queues whose `last_active` is older than
    /// `now - idle_after`.
    fn sweep(
        &self,
        now: u64,
        idle_after: u64,
    ) -> impl Future<Output = Result<SweepStats, StoreError>> + Send;

    /// A handle that fires after each append to the queue (and when it is deleted).
    fn watch(&self, recipient: RecipientId) -> Wakeup;

    /// Makes everything written so far durable. Called on graceful shutdown.
    fn flush(&self) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Checks that the store still accepts writes, for the relay's health check. The default
    /// is a [`QueueStore::flush`]; a store that can do a cheaper real write overrides it.
    fn probe(&self) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.flush()
    }

    /// How much the store holds now, or `None` if it cannot count cheaply (the default).
    /// Called on every metrics scrape, so it must not block for long.
    fn stats(&self) -> Option<StoreStats> {
        None
    }

    /// The store's group-commit latency histogram (seconds per flush), if it commits in
    /// groups; the relay exports it as `hush_store_commit_seconds`.
    fn commit_latency(&self) -> Option<CommitLatency> {
        None
    }
}
