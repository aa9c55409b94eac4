//! The few JetStream calls the store makes, over the JetStream JSON API.
//!
//! Reads go to the stream leader (`STREAM.MSG.GET`, not the direct-get API that a lagging
//! replica may answer), so a read sees every write acknowledged before it. Writes are
//! publishes that JetStream acknowledges only once a quorum of the stream's replicas has them;
//! a conditional publish states the subject's expected last sequence, which is how the store
//! serialises the writes to one queue without a lock in the relay. Deletions erase: the server
//! overwrites the message bytes.
//!
//! The blob backend on JetStream (`crate::blob::jetstream`) makes its calls through it too.
//!
//! What this module does not do: know what the messages mean (`queue.rs`, `codec.rs`, and the
//! blob backend's `record.rs`).

use std::time::Duration;

use async_nats::jetstream::context::{Publish, PublishErrorKind};
use async_nats::jetstream::Context;
use base64::Engine;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::store::StoreError;

/// JetStream's error code for "no message found".
const NO_MESSAGE: u64 = 10037;
/// JetStream's error code for "stream not found".
const NO_STREAM: u64 = 10059;
/// JetStream's error code for a failed message deletion (the message is gone already).
const DELETE_FAILED: u64 = 10057;
/// JetStream's error code for "sequence not found": another node erased the message first.
const NO_SEQUENCE: u64 = 10043;
/// JetStream's error code for a conditional publish whose expected last sequence is stale.
const WRONG_LAST_SEQUENCE: u64 = 10071;
/// How long a publish whose acknowledgement was lost is retried, with the same message id so
/// that JetStream keeps one copy.
const PUBLISH_RETRY_FOR: Duration = Duration::from_secs(20);
/// The duplicate window of the queue stream: a publish retried within it is stored once.
pub(super) const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// An error reply of the JetStream API.
#[derive(Deserialize, Debug)]
struct ApiError {
    #[serde(default)]
    err_code: u64,
    #[serde(default)]
    description: String,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Reply<T> {
    Err { error: ApiError },
    Ok(T),
}

#[derive(Deserialize)]
struct MsgGetReply {
    message: StoredMsg,
}

#[derive(Deserialize)]
struct StoredMsg {
    subject: String,
    seq: u64,
    #[serde(default)]
    data: Option<String>,
}

#[derive(Deserialize)]
struct PubAck {
    seq: u64,
}

#[derive(Deserialize)]
struct Success {
    #[serde(default)]
    success: bool,
}

/// One message read back: stream sequence, subject and payload.
#[derive(Debug)]
pub(crate) struct Msg {
    /// The stream sequence.
    pub seq: u64,
    /// The subject it was published to.
    pub subject: String,
    /// Its payload.
    pub data: Vec<u8>,
}

/// Which message a read asks for.
pub(crate) enum Get<'a> {
    /// The last message on a subject.
    Last(&'a str),
    /// The first message at or after a sequence whose subject matches a filter (wildcards
    /// allowed).
    Next { from: u64, filter: &'a str },
}

/// The outcome of a conditional publish.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Published {
    /// Stored on a quorum at this stream sequence.
    Stored(u64),
    /// The subject's last sequence was not the one expected: nothing was stored.
    Conflict,
}

/// The outcome of a publish that a full stream may refuse ([`Api::publish_checked`]).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Checked {
    /// Stored on a quorum at this stream sequence.
    Stored(u64),
    /// The subject's last sequence was not the one expected: nothing was stored.
    Conflict,
    /// The stream is full (its byte limit, which discards new messages): nothing was stored.
    Full,
}

/// A JetStream context with the store's request helpers.
#[derive(Clone)]
pub(crate) struct Api {
    js: Context,
    client: async_nats::Client,
}

fn transient(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::transient(format!("jetstream {what}: {e}"))
}

fn api_failure(what: &str, e: &ApiError) -> StoreError {
    StoreError::transient(format!(
        "jetstream {what}: {} (code {})",
        e.description, e.err_code
    ))
}

impl Api {
    /// Wraps a connected client.
    pub(crate) fn new(client: async_nats::Client) -> Api {
        Api {
            js: async_nats::jetstream::new(client.clone()),
            client,
        }
    }

    async fn call<T: DeserializeOwned>(
        &self,
        subject: String,
        body: &Value,
    ) -> Result<Result<T, ApiError>, StoreError> {
        let reply: Reply<T> = self
            .js
            .request(subject, body)
            .await
            .map_err(|e| transient("request", e))?;
        Ok(match reply {
            Reply::Ok(v) => Ok(v),
            Reply::Err { error } => Err(error),
        })
    }

    /// Reads one message, or `None` if there is none.
    pub(crate) async fn get(
        &self,
        stream: &str,
        which: Get<'_>,
    ) -> Result<Option<Msg>, StoreError> {
        let body = match which {
            Get::Last(subject) => json!({ "last_by_subj": subject }),
            Get::Next { from, filter } => json!({ "seq": from.max(1), "next_by_subj": filter }),
        };
        let reply = self.call::<MsgGetReply>(format!("STREAM.MSG.GET.{stream}"), &body);
        match reply.await? {
            Ok(r) => {
                let data = match r.message.data {
                    Some(b64) => base64::engine::general_purpose::STANDARD
                        .decode(b64)
                        .map_err(|e| transient("message decode", e))?,
                    None => Vec::new(),
                };
                Ok(Some(Msg {
                    seq: r.message.seq,
                    subject: r.message.subject,
                    data,
                }))
            }
            Err(e) if e.err_code == NO_MESSAGE => Ok(None),
            Err(e) => Err(api_failure("read", &e)),
        }
    }

    /// Erases one message (the server overwrites its bytes). Returns `false` if it was gone
    /// already, so two nodes removing the same message do not fail.
    pub(crate) async fn erase(&self, stream: &str, seq: u64) -> Result<bool, StoreError> {
        let body = json!({ "seq": seq, "no_erase": false });
        let reply = self.call::<Success>(format!("STREAM.MSG.DELETE.{stream}"), &body);
        match reply.await? {
            Ok(s) => Ok(s.success),
            Err(e) if [DELETE_FAILED, NO_MESSAGE, NO_SEQUENCE].contains(&e.err_code) => Ok(false),
            Err(e) => Err(api_failure("delete", &e)),
        }
    }

    /// Publishes `payload` and waits for the quorum acknowledgement. With `expected_last`, the
    /// publish is stored only if the subject's last stream sequence is that one (0: no message
    /// on the subject). With `msg_id`, a publish whose acknowledgement was lost is retried, and
    /// JetStream keeps one copy.
    pub(super) async fn publish(
        &self,
        subject: &str,
        payload: Vec<u8>,
        expected_last: Option<u64>,
        msg_id: Option<&str>,
    ) -> Result<Published, StoreError> {
        let (published, _) = self
            .publish_acked(subject, payload, expected_last, msg_id)
            .await?;
        Ok(published)
    }

    /// [`Api::publish`] with a message id, also saying whether JetStream found the id in its
    /// duplicate window (`true`: nothing new was stored; the sequence is the first copy's).
    pub(super) async fn publish_once(
        &self,
        subject: &str,
        payload: Vec<u8>,
        expected_last: Option<u64>,
        msg_id: &str,
    ) -> Result<(Published, bool), StoreError> {
        self.publish_acked(subject, payload, expected_last, Some(msg_id))
            .await
    }

    async fn publish_acked(
        &self,
        subject: &str,
        payload: Vec<u8>,
        expected_last: Option<u64>,
        msg_id: Option<&str>,
    ) -> Result<(Published, bool), StoreError> {
        let deadline = tokio::time::Instant::now() + PUBLISH_RETRY_FOR;
        loop {
            let mut publish = Publish::build().payload(payload.clone().into());
            if let Some(seq) = expected_last {
                publish = publish.expected_last_subject_sequence(seq);
            }
            if let Some(id) = msg_id {
                publish = publish.message_id(id);
            }
            let acked = match self.js.send_publish(subject.to_owned(), publish).await {
                Ok(ack) => ack.await,
                Err(e) => Err(e),
            };
            match acked {
                Ok(ack) => return Ok((Published::Stored(ack.sequence), ack.duplicate)),
                Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => {
                    return Ok((Published::Conflict, false))
                }
                Err(e) if msg_id.is_some() && tokio::time::Instant::now() < deadline => {
                    tracing::debug!(error = %e, "jetstream publish unacknowledged; retrying");
                }
                Err(e) => return Err(transient("publish", e)),
            }
        }
    }

    /// Creates a stream unless one of that name exists.
    pub(super) async fn ensure_stream(&self, config: Value) -> Result<(), StoreError> {
        self.ensure_stream_updating(config, &[]).await
    }

    /// Creates the stream `config` describes, or, if one of that name exists and any of the
    /// `limits` keys of its configuration differ from `config`'s (an operator changed a TTL or
    /// a budget), updates it to `config`.
    pub(crate) async fn ensure_stream_updating(
        &self,
        config: Value,
        limits: &[&str],
    ) -> Result<(), StoreError> {
        let name = config["name"].as_str().unwrap_or_default().to_owned();
        let empty = json!({});
        let info = self.call::<Value>(format!("STREAM.INFO.{name}"), &empty);
        let existing = match info.await? {
            Ok(v) => v,
            Err(e) if e.err_code == NO_STREAM => {
                let created = self.call::<Value>(format!("STREAM.CREATE.{name}"), &config);
                return match created.await? {
                    Ok(_) => Ok(()),
                    // Another node created it at the same time.
                    Err(_) if self.exists(&name).await? => Ok(()),
                    Err(e) => Err(api_failure("stream create", &e)),
                };
            }
            Err(e) => return Err(api_failure("stream info", &e)),
        };
        let current = &existing["config"];
        if limits.iter().all(|k| current[k] == config[k]) {
            return Ok(());
        }
        let updated = self.call::<Value>(format!("STREAM.UPDATE.{name}"), &config);
        match updated.await? {
            Ok(_) => Ok(()),
            Err(e) => Err(api_failure("stream update", &e)),
        }
    }

    /// Bytes the stream holds now.
    pub(crate) async fn stream_bytes(&self, stream: &str) -> Result<u64, StoreError> {
        let empty = json!({});
        let info = self.call::<Value>(format!("STREAM.INFO.{stream}"), &empty);
        match info.await? {
            Ok(v) => Ok(v["state"]["bytes"].as_u64().unwrap_or(0)),
            Err(e) => Err(api_failure("stream info", &e)),
        }
    }

    /// Publishes `payload` once, with no retry, and waits for the quorum acknowledgement.
    /// With `expected_last`, the message is stored only if the subject's last stream sequence
    /// is that one (0: no message on the subject yet). A stream at its byte limit answers
    /// [`Checked::Full`].
    pub(crate) async fn publish_checked(
        &self,
        subject: &str,
        payload: Vec<u8>,
        expected_last: Option<u64>,
    ) -> Result<Checked, StoreError> {
        let mut headers = async_nats::HeaderMap::new();
        if let Some(seq) = expected_last {
            headers.insert(
                "Nats-Expected-Last-Subject-Sequence",
                seq.to_string().as_str(),
            );
        }
        let reply = self
            .client
            .request_with_headers(subject.to_owned(), headers, payload.into())
            .await
            .map_err(|e| transient("publish", e))?;
        let parsed: Reply<PubAck> =
            serde_json::from_slice(&reply.payload).map_err(|e| transient("publish reply", e))?;
        match parsed {
            Reply::Ok(ack) => Ok(Checked::Stored(ack.seq)),
            Reply::Err { error } if error.err_code == WRONG_LAST_SEQUENCE => Ok(Checked::Conflict),
            Reply::Err { error } if is_full(&error) => Ok(Checked::Full),
            Reply::Err { error } => Err(api_failure("publish", &error)),
        }
    }

    async fn exists(&self, stream: &str) -> Result<bool, StoreError> {
        let empty = json!({});
        let info = self.call::<Value>(format!("STREAM.INFO.{stream}"), &empty);
        Ok(info.await?.is_ok())
    }

    /// Asks JetStream for the account's state: an answer means the cluster has a meta leader
    /// and takes requests.
    pub(super) async fn account_info(&self) -> Result<(), StoreError> {
        match self.call::<Value>("INFO".to_owned(), &json!({})).await? {
            Ok(_) => Ok(()),
            Err(e) => Err(api_failure("account info", &e)),
        }
    }

    /// The core NATS client, for wake-up messages.
    pub(super) fn client(&self) -> async_nats::Client {
        self.client.clone()
    }
}

/// Whether a publish was refused because the stream reached its byte or message limit.
fn is_full(e: &ApiError) -> bool {
    let d = e.description.to_ascii_lowercase();
    d.contains("maximum bytes") || d.contains("maximum messages")
}
