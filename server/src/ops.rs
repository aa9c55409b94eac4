//! Queue semantics: what each request does, given the relay's shared state and one
//! connection's authentication state.
//!
//! Sender operations are authorised by the send capability (the store compares its SHA-256 in
//! constant time). Recipient operations are authorised by an Ed25519 signature, checked with
//! `verify_strict`, over the signing input bound to this connection's TLS exporter value. Ack
//! needs no signature of its own: it is allowed only on a queue this connection subscribed to
//! with a signed subscribe.
//!
//! What it does not do: read or write the network, or push envelopes (`conn.rs` does both).

use std::collections::HashSet;
use std::sync::Arc;

use ed25519_dalek::{Signature, VerifyingKey};
use hush_protocol::auth::{signing_input, EXPORTER_LEN};
use hush_protocol::{EnvelopeId, ErrorCode, RecipientId, Reply, Request, SendCapability, SenderId};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::blob::BlobStore;
use crate::clock::Clock;
use crate::config::RelayConfig;
use crate::store::{CapHash, NewEnvelope, QueueRecord, QueueStore, Quota, StoreError};

/// State every connection of one relay shares.
pub(crate) struct Shared<S> {
    pub(crate) store: S,
    pub(crate) blobs: BlobStore,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) config: RelayConfig,
}

/// What one connection has proven and used.
pub(crate) struct ConnAuth {
    /// The connection's TLS exporter value.
    pub(crate) exporter: [u8; EXPORTER_LEN],
    /// Queues created on this connection.
    pub(crate) queues_created: u32,
    /// Queues subscribed on this connection.
    pub(crate) subscriptions: HashSet<RecipientId>,
}

/// What the connection must do after answering.
pub(crate) enum Effect {
    /// Nothing.
    None,
    /// Start pushing this queue's envelopes.
    Subscribe(RecipientId),
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

    /// Executes one request.
    pub(crate) async fn handle(
        &self,
        auth: &mut ConnAuth,
        id: u32,
        req: Request,
    ) -> (Result<Reply, ErrorCode>, Effect) {
        let mut effect = Effect::None;
        // Send and the blob requests move their bytes on without a copy; the rest are read by
        // reference.
        let req = match req {
            Request::Send {
                sender_id,
                send_cap,
                ttl_secs,
                new_send_cap,
                body,
            } => {
                let r = self
                    .send(sender_id, &send_cap, ttl_secs, new_send_cap.as_ref(), body)
                    .await;
                return (r, effect);
            }
            blob @ (Request::BlobCreate { .. }
            | Request::BlobWrite { .. }
            | Request::BlobStatus { .. }
            | Request::BlobRead { .. }
            | Request::BlobDelete { .. }) => {
                return (self.blobs.handle(blob, self.clock.now_secs()).await, effect);
            }
            other => other,
        };
        let req = &req;
        let result = match req {
            Request::CreateQueue {
                recipient_key,
                send_cap,
                ..
            } => self.create(auth, id, req, *recipient_key, send_cap).await,
            Request::Retract {
                sender_id,
                send_cap,
                envelope_id,
            } => self
                .store
                .retract(*sender_id, cap_hash(send_cap), *envelope_id)
                .await
                .map(|was_pending| Reply::Retracted { was_pending })
                .map_err(store_err),
            Request::Subscribe { recipient_id, .. } => {
                let r = self.subscribe(auth, id, req, *recipient_id).await;
                if r.is_ok() && auth.subscriptions.insert(*recipient_id) {
                    effect = Effect::Subscribe(*recipient_id);
                }
                r
            }
            Request::Ack {
                recipient_id,
                envelope_id,
            } => self.ack(auth, *recipient_id, *envelope_id).await,
            Request::Resecure {
                recipient_id,
                new_send_cap,
                ..
            } => match self.authorise(auth, id, req, *recipient_id).await {
                Ok(()) => self
                    .store
                    .set_send_cap(*recipient_id, cap_hash(new_send_cap))
                    .await
                    .map(|()| Reply::Done)
                    .map_err(|e| match e {
                        StoreError::Auth => ErrorCode::NoQueue,
                        e => store_err(e),
                    }),
                Err(e) => Err(e),
            },
            Request::DeleteQueue { recipient_id, .. } => {
                match self.authorise(auth, id, req, *recipient_id).await {
                    Ok(()) => match self.store.delete_queue(*recipient_id).await {
                        Ok(true) => {
                            auth.subscriptions.remove(recipient_id);
                            Ok(Reply::Done)
                        }
                        Ok(false) => Err(ErrorCode::NoQueue),
                        Err(e) => Err(store_err(e)),
                    },
                    Err(e) => Err(e),
                }
            }
            Request::Ping => Ok(Reply::Pong),
            _ => Err(ErrorCode::Malformed),
        };
        (result, effect)
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

    async fn create(
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

    async fn send(
        &self,
        sender: SenderId,
        cap: &SendCapability,
        ttl_secs: u32,
        new_cap: Option<&SendCapability>,
        body: Vec<u8>,
    ) -> Result<Reply, ErrorCode> {
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
        self.store
            .send(
                sender,
                cap_hash(cap),
                envelope,
                new_cap.map(cap_hash),
                self.quota(),
                now,
            )
            .await
            .map_err(store_err)?;
        Ok(Reply::Sent { envelope_id })
    }

    async fn subscribe(
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

    async fn ack(
        &self,
        auth: &ConnAuth,
        rid: RecipientId,
        envelope: EnvelopeId,
    ) -> Result<Reply, ErrorCode> {
        if !auth.subscriptions.contains(&rid) {
            return Err(ErrorCode::NotSubscribed);
        }
        self.store
            .ack(rid, envelope, self.clock.now_secs())
            .await
            .map(|_| Reply::Done)
            .map_err(store_err)
    }
}
