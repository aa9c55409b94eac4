//! The request router: the one place that decides what each kind of request does.
//!
//! Sends and acks (one envelope per `Ack`, several per `AckMany`, which only `hush/2`
//! connections may send) join the connection's pipeline (`pipeline.rs`) and are answered as each
//! becomes durable. Every other request waits until those in flight are answered and is then
//! handled alone, in request order: queue requests by `ops.rs`, blob requests by
//! `blob::handler`, `Ping`, `Hello` and `NextCert` here (`Hello` through `access.rs`, which also decides
//! whether the connection may create queues and blobs). A new subscription starts its push task
//! (`push.rs`). Blob chunks (`BlobWrite`, `BlobRead`) are exempt from the request rate, which
//! QUIC flow control, in-order handling and the blob size cap bound instead.
//!
//! What it does not do: decode frames or apply the rate limit (`conn.rs`), or carry out an
//! operation itself (`ops.rs`, `pipeline.rs`, `blob`).

use std::sync::Arc;

use hush_protocol::{EnvelopeId, ErrorCode, Reply, Request};
use tokio::task::JoinSet;

use crate::blob::handler as blob;
use crate::ops::{ConnAuth, Shared};
use crate::outgoing::Outgoing;
use crate::pipeline::{Pipeline, SendRequest};
use crate::push::push_loop;
use crate::store::QueueStore;

/// What the router needs of one connection.
pub(crate) struct ConnState<'a> {
    /// What the connection has proven and used.
    pub(crate) auth: &'a mut ConnAuth,
    /// Its sends and acks in flight.
    pub(crate) pipeline: &'a mut Pipeline,
    /// Its subscriptions' push tasks.
    pub(crate) subs: &'a mut JoinSet<()>,
}

/// Whether a request is exempt from the request-rate limit: blob chunks, which QUIC flow control,
/// in-order handling and the blob size cap bound (a 150 MB/s transfer is ~2,300 chunks/s).
pub(crate) fn rate_exempt(req: &Request) -> bool {
    matches!(req, Request::BlobWrite { .. } | Request::BlobRead { .. })
}

/// Starts a send or an ack in the pipeline, which answers it (and returns `None`), or handles
/// any other request once everything in flight is answered (and returns its result).
pub(crate) async fn route<S: QueueStore>(
    shared: &Arc<Shared<S>>,
    conn: &mut ConnState<'_>,
    id: u32,
    req: Request,
    out: &Outgoing,
) -> Option<Result<Reply, ErrorCode>> {
    match req {
        Request::Send {
            sender_id,
            send_cap,
            ttl_secs,
            new_send_cap,
            body,
        } => {
            let send = SendRequest {
                sender_id,
                send_cap,
                ttl_secs,
                new_send_cap,
                body,
            };
            conn.pipeline.send(shared, id, send, out).await;
            None
        }
        Request::Ack {
            recipient_id,
            envelope_id,
        } => {
            let auth = &*conn.auth;
            conn.pipeline
                .ack(
                    shared,
                    auth,
                    id,
                    recipient_id,
                    envelope_ids(envelope_id),
                    out,
                )
                .await;
            None
        }
        // A `hush/1` connection gets what a `hush/1` relay answers to a tag it does not know.
        Request::AckMany { .. } if !conn.auth.version.batches() => Some(Err(ErrorCode::Malformed)),
        Request::AckMany {
            recipient_id,
            envelope_ids,
        } => {
            let auth = &*conn.auth;
            conn.pipeline
                .ack(shared, auth, id, recipient_id, envelope_ids, out)
                .await;
            None
        }
        req => {
            conn.pipeline.settle().await;
            let kind = req.kind();
            let result = in_order(shared, conn, id, req, out).await;
            if let Err(code) = result {
                tracing::debug!(op = kind, ?code, "request refused");
            }
            Some(result)
        }
    }
}

/// One ack's envelope as the list the pipeline takes.
fn envelope_ids(one: EnvelopeId) -> Vec<EnvelopeId> {
    vec![one]
}

/// Handles a request that is not pipelined, with nothing else of the connection in flight.
async fn in_order<S: QueueStore>(
    shared: &Arc<Shared<S>>,
    conn: &mut ConnState<'_>,
    id: u32,
    req: Request,
    out: &Outgoing,
) -> Result<Reply, ErrorCode> {
    let (blobs, now) = (&shared.blobs, shared.clock.now_secs());
    // Signed requests are checked against their whole body, so those arms borrow the fields.
    match req {
        Request::CreateQueue {
            recipient_key,
            ref send_cap,
            ..
        } => {
            shared.access.may_create(&conn.auth.standing)?;
            let create = shared.create_queue(conn.auth, id, &req, recipient_key, send_cap);
            create.await
        }
        Request::Retract {
            sender_id,
            ref send_cap,
            envelope_id,
        } => shared.retract(sender_id, send_cap, envelope_id).await,
        Request::Subscribe { recipient_id, .. } => {
            if shared.subscribe(conn.auth, id, &req, recipient_id).await? {
                let batches = conn.auth.version.batches();
                let pushes = push_loop(Arc::clone(shared), recipient_id, out.clone(), batches);
                conn.subs.spawn(pushes);
            }
            Ok(Reply::Done)
        }
        Request::Resecure {
            recipient_id,
            ref new_send_cap,
            ..
        } => {
            let resecure = shared.resecure(conn.auth, id, &req, recipient_id, new_send_cap);
            resecure.await
        }
        Request::DeleteQueue { recipient_id, .. } => {
            shared.delete_queue(conn.auth, id, &req, recipient_id).await
        }
        Request::Ping => Ok(Reply::Pong),
        Request::BlobCreate {
            write_cap,
            read_cap,
            total_len,
            ttl_secs,
        } => {
            shared.access.may_create(&conn.auth.standing)?;
            blob::create(blobs, &write_cap, &read_cap, total_len, ttl_secs, now).await
        }
        Request::Hello { token } => {
            #[cfg(feature = "testing")]
            if shared
                .before_hello
                .load(std::sync::atomic::Ordering::Relaxed)
            {
                return Err(ErrorCode::Malformed);
            }
            let standing = &mut conn.auth.standing;
            let info = shared.access.hello(standing, token, &shared.config);
            info.map(Reply::Welcome)
        }
        Request::NextCert => Ok(Reply::NextCert(shared.certs.pending())),
        Request::BlobWrite {
            blob_id,
            write_cap,
            offset,
            data,
        } => blob::write(blobs, blob_id, &write_cap, offset, data, now).await,
        Request::BlobStatus { blob_id, cap } => blob::status(blobs, blob_id, &cap, now).await,
        Request::BlobRead {
            blob_id,
            read_cap,
            offset,
            len,
        } => blob::read(blobs, blob_id, &read_cap, offset, len, now).await,
        Request::BlobDelete { blob_id, cap } => blob::delete(blobs, blob_id, &cap, now).await,
        // `route` keeps sends and acks from coming here; a kind this relay does not know is
        // malformed.
        _ => Err(ErrorCode::Malformed),
    }
}
