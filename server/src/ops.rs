//! Queue semantics: what each request does, given the relay's shared state and one
//! connection's authentication state.
//!
//! Sender operations are authorised by the send capability (the store compares its SHA-256 in
//! constant time). Recipient operations are authorised by an Ed25519 signature, checked with
//! `verify_strict`, over the signing input bound to this connection's TLS exporter value. Ack
//! needs no signature of its own: it is allowed only on a queue this connection subscribed to
//! with a signed subscribe.
//!
//! Each request kind has its own method here; which one a request calls is decided in
//! `router.rs`.
//!
//! What it does not do: route requests (`router.rs`), read or write the network (`conn.rs`,
//! `outgoing.rs`), push envelopes (`push.rs`) or handle blob requests (`blob`).

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use ed25519_dalek::{Signature, VerifyingKey};
use hush_protocol::auth::{signing_input, WireVersion, EXPORTER_LEN};
use hush_protocol::{EnvelopeId, ErrorCode, RecipientId, Reply, Request, SendCapability, SenderId};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::access::{Access, Standing};
use crate::blob::Blobs;
use crate::clock::Clock;
use crate::config::RelayConfig;
use crate::store::{CapHash, NewEnvelope, QueueRecord, QueueStore, Quota, StoreError};

/// State every connection of one relay shares.
pub(crate) struct Shared<S> {
    pub(crate) store: S,
    pub(crate) blobs: Blobs,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) config: RelayConfig,
    /// What the relay counts for its metrics.
    pub(crate) metrics: crate::metrics::Metrics,
    /// Who may create queues and blobs.
    pub(crate) access: Arc<Access>,
    /// The certificate served and the rotation announced (`NextCert`).
    pub(crate) certs: crate::rotate::CertState,
    /// Set to answer `Hello` as relays from before it did (`Malformed`), so tests can play an
    /// older relay (tests only).
    #[cfg(feature = "testing")]
    pub(crate) before_hello: std::sync::atomic::AtomicBool,
    /// Which requests each connection carried (tests only).
    #[cfg(feature = "testing")]
    pub(crate) connections: crate::observe::ConnectionLog,
}

/// What one connection has proven and used.
pub(crate) struct ConnAuth {
    /// The connection's TLS exporter value.
    pub(crate) exporter: [u8; EXPORTER_LEN],
    /// Queues created on this connection.
    pub(crate) queues_created: u32,
    /// Queues subscribed on this connection.
    pub(crate) subscriptions: HashSet<RecipientId>,
    /// What its `Hello` presented, for creating queues and blobs.
    pub(crate) standing: Standing,
    /// The protocol version it negotiated: whether it may batch acks and pushes.
    pub(crate) version: WireVersion,
}

fn cap_hash(cap: &SendCapability) -> CapHash {
    Sha256::digest(cap.as_bytes()).into()
}

fn store_err(e: StoreError) -> ErrorCode {
    match e {
        StoreError::Auth => ErrorCode::Auth,
        StoreError::QueueFull => ErrorCode::QueueFull,
        other => {
            tracing::warn!(error = %other, "store operation failed");
            ErrorCode::Storage
        }
    }
}

fn random_id() -> [u8; 16] {
    let mut b = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b
}

/// Checks a recipient signature over the channel-bound signing input.
fn verify(key: &[u8; 32], auth: &ConnAuth, id: u32, req: &Request) -> Result<(), ErrorCode> {
    let sig = req.signature().ok_or(ErrorCode::Auth)?;
    let vk = VerifyingKey::from_bytes(key).map_err(|_| ErrorCode::Auth)?;
    let msg = signing_input(&auth.exporter, id, &req.signed_part());
    vk.verify_strict(&msg, &Signature::from_bytes(sig))
        .map_err(|_| ErrorCode::Auth)
}

impl<S: QueueStore> Shared<S> {
    fn quota(&self) -> Quota {
        Quota {
            max_messages: self.config.queue_max_messages,
            max_bytes: self.config.queue_max_bytes,
        }
    }

    /// The recipient key of a queue, or `NoQueue`.
    async fn recipient_key(&self, rid: RecipientId) -> Result<[u8; 32], ErrorCode> {
        match self.store.queue(rid).await.map_err(store_err)? {
            Some(rec) => Ok(rec.recipient_key),
            None => Err(ErrorCode::NoQueue),
        }
    }

    /// Removes a pending envelope for its sender.
    pub(crate) async fn retract(
        &self,
        sender: SenderId,
        cap: &SendCapability,
        envelope: EnvelopeId,
    ) -> Result<Reply, ErrorCode> {
        let was_pending = self
            .store
            .retract(sender, cap_hash(cap), envelope)
            .await
            .map_err(store_err)?;
        self.metrics.retracts.inc();
        Ok(Reply::Retracted { was_pending })
    }

    /// Subscribes the connection to queue `rid` after checking the signature of `req`. Returns
    /// whether the subscription is new, so that its pushes must start.
    pub(crate) async fn subscribe(
        &self,
        auth: &mut ConnAuth,
        id: u32,
        req: &Request,
        rid: RecipientId,
    ) -> Result<bool, ErrorCode> {
        self.check_subscribe(auth, id, req, rid).await?;
        Ok(auth.subscriptions.insert(rid))
    }

    /// Replaces queue `rid`'s send capability, as signed in `req`.
    pub(crate) async fn resecure(
        &self,
        auth: &ConnAuth,
        id: u32,
        req: &Request,
        rid: RecipientId,
        new_cap: &SendCapability,
    ) -> Result<Reply, ErrorCode> {
        self.authorise(auth, id, req, rid).await?;
        self.store
            .set_send_cap(rid, cap_hash(new_cap))
            .await
            .map(|()| Reply::Done)
            .map_err(|e| match e {
                StoreError::Auth => ErrorCode::NoQueue,
                e => store_err(e),
            })
    }

    /// Deletes queue `rid`, as signed in `req`, and ends this connection's subscription to it.
    pub(crate) async fn delete_queue(
        &self,
        auth: &mut ConnAuth,
        id: u32,
        req: &Request,
        rid: RecipientId,
    ) -> Result<Reply, ErrorCode> {
        self.authorise(auth, id, req, rid).await?;
        match self.store.delete_queue(rid).await {
            Ok(true) => {
                auth.subscriptions.remove(&rid);
                Ok(Reply::Done)
            }
            Ok(false) => Err(ErrorCode::NoQueue),
            Err(e) => Err(store_err(e)),
        }
    }

    async fn authorise(
        &self,
        auth: &ConnAuth,
        id: u32,
        req: &Request,
        rid: RecipientId,
    ) -> Result<(), ErrorCode> {
        let key = self.recipient_key(rid).await?;
        verify(&key, auth, id, req)
    }

    /// Creates a queue for the key that signed `req`, within the connection's queue cap.
    pub(crate) async fn create_queue(
        &self,
        auth: &mut ConnAuth,
        id: u32,
        req: &Request,
        recipient_key: [u8; 32],
        send_cap: &SendCapability,
    ) -> Result<Reply, ErrorCode> {
        if auth.queues_created >= self.config.max_queues_per_connection {
            return Err(ErrorCode::TooManyQueues);
        }
        verify(&recipient_key, auth, id, req)?;
        let now = self.clock.now_secs();
        // 128-bit random ids collide with negligible probability; retry once anyway.
        for _ in 0..2 {
            let record = QueueRecord {
                recipient_id: RecipientId(random_id()),
                sender_id: SenderId(random_id()),
                recipient_key,
                send_cap_hash: cap_hash(send_cap),
                last_active: now,
            };
            let (recipient_id, sender_id) = (record.recipient_id, record.sender_id);
            match self.store.create_queue(record).await {
                Ok(()) => {
                    auth.queues_created += 1;
                    return Ok(Reply::Created {
                        recipient_id,
                        sender_id,
                    });
                }
                Err(StoreError::Exists) => continue,
                Err(e) => return Err(store_err(e)),
            }
        }
        Err(ErrorCode::Storage)
    }

    /// Checks a send and starts it; resolves once it has its place in the queue's order (see
    /// [`QueueStore::start_send`]), to a future that resolves to the reply once it is durable.
    pub(crate) async fn start_send(
        &self,
        sender: SenderId,
        cap: &SendCapability,
        ttl_secs: u32,
        new_cap: Option<&SendCapability>,
        body: Vec<u8>,
    ) -> Result<impl Future<Output = Result<Reply, ErrorCode>> + Send + 'static, ErrorCode> {
        if body.len() > self.config.max_envelope_len {
            return Err(ErrorCode::TooLarge);
        }
        let max_ttl = self.config.max_ttl.as_secs();
        let ttl = if ttl_secs == 0 {
            max_ttl
        } else {
            u64::from(ttl_secs).min(max_ttl)
        };
        let now = self.clock.now_secs();
        let envelope_id = EnvelopeId(random_id());
        let envelope = NewEnvelope {
            id: envelope_id,
            body,
            expires_at: now.saturating_add(ttl),
        };
        let sent = self
            .store
            .start_send(
                sender,
                cap_hash(cap),
                envelope,
                new_cap.map(cap_hash),
                self.quota(),
                now,
            )
            .await;
        // Boxed to the store future's declared `'static` bound: its type names `&self`'s lifetime.
        let sent: Pin<Box<dyn Future<Output = Result<RecipientId, StoreError>> + Send>> =
            Box::pin(sent);
        Ok(async move {
            sent.await.map_err(store_err)?;
            Ok(Reply::Sent { envelope_id })
        })
    }

    async fn check_subscribe(
        &self,
        auth: &ConnAuth,
        id: u32,
        req: &Request,
        rid: RecipientId,
    ) -> Result<Reply, ErrorCode> {
        self.authorise(auth, id, req, rid).await?;
        if !auth.subscriptions.contains(&rid)
            && auth.subscriptions.len() >= self.config.max_subscriptions_per_connection as usize
        {
            return Err(ErrorCode::TooManySubscriptions);
        }
        self.store
            .touch(rid, self.clock.now_secs())
            .await
            .map_err(store_err)?;
        Ok(Reply::Done)
    }

    /// Acks several envelopes of one queue for a connection that [`may_ack`] allowed: all
    /// queued with the store at once, answered once every one is durable (the first error
    /// otherwise; acks are idempotent, so a client may send the same list again).
    pub(crate) async fn ack_many_subscribed(
        &self,
        rid: RecipientId,
        envelopes: &[EnvelopeId],
    ) -> Result<Reply, ErrorCode> {
        let now = self.clock.now_secs();
        let acks = envelopes.iter().map(|e| self.store.ack(rid, *e, now));
        for result in futures_util::future::join_all(acks).await {
            result.map_err(store_err)?;
        }
        Ok(Reply::Done)
    }

    /// Acks for a connection that [`may_ack`] allowed.
    pub(crate) async fn ack_subscribed(
        &self,
        rid: RecipientId,
        envelope: EnvelopeId,
    ) -> Result<Reply, ErrorCode> {
        self.store
            .ack(rid, envelope, self.clock.now_secs())
            .await
            .map(|_| Reply::Done)
            .map_err(store_err)
    }
}

/// Whether this connection may ack on queue `rid`: only after a signed subscribe to it.
pub(crate) fn may_ack(auth: &ConnAuth, rid: RecipientId) -> Result<(), ErrorCode> {
    if auth.subscriptions.contains(&rid) {
        Ok(())
    } else {
        Err(ErrorCode::NotSubscribed)
    }
}
