//! A [`QueueStore`] wrapper that lets a test step into every call: [`Intercept`] runs the
//! test's [`Hooks`] before and after each operation of the store it wraps.
//!
//! A hook sees the call ([`Call`]) and the wrapped store. Before the call it can let it through
//! ([`Flow::Go`]), fail it without touching the store ([`Flow::Fail`]), answer it as if it had
//! found nothing to do ([`Flow::Skip`]), or answer a send as accepted without queueing it
//! ([`Flow::Accept`]); a hook that awaits stalls the call. After a call that reached the store,
//! it learns whether the store succeeded. Hooks it does not write do nothing.
//!
//! What it does not do: change how the relay uses the store. `start_send` keeps the trait's
//! default, so a send reaches the hooks as one [`Call::Send`] and runs whole.

use std::future::{ready, Future};
use std::sync::Arc;

use hush_protocol::{EnvelopeId, RecipientId, SenderId};
use hush_server::store::{
    CapHash, CommitLatency, NewEnvelope, QueueRecord, QueueStore, Quota, StoreError, StoreStats,
    StoredEnvelope, SweepStats, Wakeup,
};

/// One call on the store, as the hooks see it.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Call {
    /// [`QueueStore::create_queue`].
    CreateQueue(QueueRecord),
    /// [`QueueStore::queue`].
    Queue(RecipientId),
    /// [`QueueStore::send`].
    Send {
        /// The queue's sender id.
        sender: SenderId,
        /// The envelope to append.
        envelope: NewEnvelope,
        /// The capability that replaces the queue's, if any.
        new_cap_hash: Option<CapHash>,
    },
    /// [`QueueStore::retract`].
    Retract(SenderId, EnvelopeId),
    /// [`QueueStore::pending`].
    Pending(RecipientId),
    /// [`QueueStore::ack`].
    Ack(RecipientId, EnvelopeId),
    /// [`QueueStore::set_send_cap`].
    SetSendCap(RecipientId),
    /// [`QueueStore::touch`].
    Touch(RecipientId),
    /// [`QueueStore::delete_queue`].
    DeleteQueue(RecipientId),
    /// [`QueueStore::sweep`].
    Sweep,
    /// [`QueueStore::flush`].
    Flush,
}

impl Call {
    /// Whether the call changes what the store holds (everything but `queue` and `pending`).
    pub fn is_write(&self) -> bool {
        !matches!(self, Call::Queue(_) | Call::Pending(_))
    }
}

/// What to do with a call, decided before it reaches the store.
#[derive(Debug)]
pub enum Flow {
    /// Let it through.
    Go,
    /// Fail it with this error; the store is not touched.
    Fail(StoreError),
    /// Answer it without touching the store, as if there were nothing to do: `false` for ack,
    /// retract and delete, nothing found for reads, success for the rest. Not for sends.
    Skip,
    /// Answer a send as accepted onto this queue without touching the store. Sends only.
    Accept(RecipientId),
}

/// What a test does around the store's calls. Every hook defaults to doing nothing.
pub trait Hooks<S: QueueStore>: Send + Sync + 'static {
    /// Runs before each call; `store` is the wrapped store. Awaiting here stalls the call.
    fn before(&self, store: &S, call: &Call) -> impl Future<Output = Flow> + Send {
        let _ = (store, call);
        ready(Flow::Go)
    }

    /// Runs after each call that reached the store, with whether the store succeeded.
    fn after(&self, store: &S, call: &Call, ok: bool) -> impl Future<Output = ()> + Send {
        let _ = (store, call, ok);
        ready(())
    }
}

/// A store whose calls pass through `H`'s hooks. Clones share the store and the hooks.
pub struct Intercept<S, H> {
    store: Arc<S>,
    hooks: Arc<H>,
}

impl<S, H> Clone for Intercept<S, H> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            hooks: self.hooks.clone(),
        }
    }
}

impl<S: QueueStore, H: Hooks<S>> Intercept<S, H> {
    /// Wraps `store`, running `hooks` around its calls.
    pub fn new(store: S, hooks: H) -> Self {
        Self {
            store: Arc::new(store),
            hooks: Arc::new(hooks),
        }
    }

    /// The wrapped store, for calls the hooks must not see.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The hooks.
    pub fn hooks(&self) -> &H {
        &self.hooks
    }

    /// How many envelopes wait in queue `rid` now, past the hooks.
    ///
    /// # Panics
    /// If the store fails.
    pub async fn pending_count(&self, rid: RecipientId) -> usize {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        self.store.pending(rid, 0, 10, now).await.unwrap().len()
    }

    /// Queues `body` on `rid` as if its sender had sent it, under a fresh envelope id and
    /// past the hooks, as a relay that forges or replays envelopes would.
    ///
    /// # Panics
    /// If the queue does not exist or the store refuses the envelope.
    pub async fn inject(&self, rid: RecipientId, body: Vec<u8>) {
        let queue = self.store.queue(rid).await.unwrap().expect("queue exists");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let envelope = NewEnvelope {
            id: EnvelopeId::from_bytes(rand::random()),
            body,
            expires_at: now + 3600,
        };
        let quota = Quota {
            max_messages: 1 << 20,
            max_bytes: 1 << 30,
        };
        self.store
            .send(
                queue.sender_id,
                queue.send_cap_hash,
                envelope,
                None,
                quota,
                now,
            )
            .await
            .unwrap();
    }

    /// Runs `call` through the hooks around `op`, answering `skipped` on [`Flow::Skip`].
    async fn run<T>(
        &self,
        call: Call,
        skipped: impl FnOnce(Flow) -> Result<T, StoreError>,
        op: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        match self.hooks.before(&self.store, &call).await {
            Flow::Go => {
                let result = op.await;
                self.hooks.after(&self.store, &call, result.is_ok()).await;
                result
            }
            Flow::Fail(e) => Err(e),
            flow => skipped(flow),
        }
    }
}

/// The answer to a skipped call that returns `T`.
fn nothing<T: Default>(flow: Flow) -> Result<T, StoreError> {
    assert!(matches!(flow, Flow::Skip), "{flow:?} answers sends only");
    Ok(T::default())
}

impl<S: QueueStore, H: Hooks<S>> QueueStore for Intercept<S, H> {
    async fn create_queue(&self, queue: QueueRecord) -> Result<(), StoreError> {
        let call = Call::CreateQueue(queue.clone());
        self.run(call, nothing, self.store.create_queue(queue))
            .await
    }

    async fn queue(&self, recipient: RecipientId) -> Result<Option<QueueRecord>, StoreError> {
        let call = Call::Queue(recipient);
        self.run(call, nothing, self.store.queue(recipient)).await
    }

    async fn send(
        &self,
        sender: SenderId,
        cap_hash: CapHash,
        envelope: NewEnvelope,
        new_cap_hash: Option<CapHash>,
        quota: Quota,
        now: u64,
    ) -> Result<RecipientId, StoreError> {
        let call = Call::Send {
            sender,
            envelope: envelope.clone(),
            new_cap_hash,
        };
        let accepted = |flow| match flow {
            Flow::Accept(rid) => Ok(rid),
            other => panic!("a send cannot be answered with {other:?}"),
        };
        let op = self
            .store
            .send(sender, cap_hash, envelope, new_cap_hash, quota, now);
        self.run(call, accepted, op).await
    }

    async fn retract(
        &self,
        sender: SenderId,
        cap_hash: CapHash,
        envelope: EnvelopeId,
    ) -> Result<bool, StoreError> {
        let call = Call::Retract(sender, envelope);
        let op = self.store.retract(sender, cap_hash, envelope);
        self.run(call, nothing, op).await
    }

    async fn pending(
        &self,
        recipient: RecipientId,
        from_seq: u64,
        limit: usize,
        now: u64,
    ) -> Result<Vec<StoredEnvelope>, StoreError> {
        let call = Call::Pending(recipient);
        let op = self.store.pending(recipient, from_seq, limit, now);
        self.run(call, nothing, op).await
    }

    async fn ack(
        &self,
        recipient: RecipientId,
        envelope: EnvelopeId,
        now: u64,
    ) -> Result<bool, StoreError> {
        let call = Call::Ack(recipient, envelope);
        let op = self.store.ack(recipient, envelope, now);
        self.run(call, nothing, op).await
    }

    async fn set_send_cap(
        &self,
        recipient: RecipientId,
        new_cap_hash: CapHash,
    ) -> Result<(), StoreError> {
        let call = Call::SetSendCap(recipient);
        let op = self.store.set_send_cap(recipient, new_cap_hash);
        self.run(call, nothing, op).await
    }

    async fn touch(&self, recipient: RecipientId, now: u64) -> Result<(), StoreError> {
        let call = Call::Touch(recipient);
        self.run(call, nothing, self.store.touch(recipient, now))
            .await
    }

    async fn delete_queue(&self, recipient: RecipientId) -> Result<bool, StoreError> {
        let call = Call::DeleteQueue(recipient);
        self.run(call, nothing, self.store.delete_queue(recipient))
            .await
    }

    async fn sweep(&self, now: u64, idle_after: u64) -> Result<SweepStats, StoreError> {
        self.run(Call::Sweep, nothing, self.store.sweep(now, idle_after))
            .await
    }

    fn watch(&self, recipient: RecipientId) -> Wakeup {
        self.store.watch(recipient)
    }

    async fn flush(&self) -> Result<(), StoreError> {
        self.run(Call::Flush, nothing, self.store.flush()).await
    }

    // Counts are read past the hooks: they change nothing. (`probe` keeps the default, a
    // flush, so a failing disk fails the relay's health check.)
    fn stats(&self) -> Option<StoreStats> {
        self.store.stats()
    }

    fn commit_latency(&self) -> Option<CommitLatency> {
        self.store.commit_latency()
    }
}
