//! The JetStream calls the blob backend makes, over the JetStream JSON API on its own NATS
//! connection: read one message, erase one, publish one conditionally, and create or update the
//! blob stream.
//!
//! Reads go to the stream leader (`STREAM.MSG.GET`, not the direct-get API that a lagging
//! replica may answer), so a read sees every write acknowledged before it. A publish is
//! answered once a quorum of the stream's replicas holds it; a conditional publish names the
//! subject's expected last sequence. Deletions erase: the server overwrites the message bytes.
//! Every failure to reach NATS, or a NATS answer that is not a refusal, becomes
//! [`BlobError::Backend`], which the client receives as the retryable `Storage` code.
//!
//! What it does not do: know what the messages mean (`record.rs`, `mod.rs`).

use std::time::Duration;

use base64::Engine;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::blob::BlobError;
use crate::store::jetstream::JetStreamConfig;

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
/// How long one request to NATS may take before it fails (and the client retries).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

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
struct Success {
    #[serde(default)]
    success: bool,
}

#[derive(Deserialize)]
struct PubAck {
    seq: u64,
}

/// One message read back: stream sequence, subject and payload.
#[derive(Debug)]
pub(super) struct Msg {
    /// The stream sequence.
    pub(super) seq: u64,
    /// The subject it was published to.
    pub(super) subject: String,
    /// Its payload.
    pub(super) data: Vec<u8>,
}

/// Which message a read asks for.
pub(super) enum Get<'a> {
    /// The last message on a subject.
    Last(&'a str),
    /// The first message at or after a sequence whose subject matches a filter (wildcards
    /// allowed).
    Next { from: u64, filter: &'a str },
}

/// The outcome of a publish.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Published {
    /// Stored on a quorum at this stream sequence.
    Stored(u64),
    /// The subject's last sequence was not the one expected: nothing was stored.
    Conflict,
    /// The stream is full (its byte limit, which discards new messages): nothing was stored.
    Full,
}

/// A NATS connection with the blob backend's request helpers.
#[derive(Clone)]
pub(super) struct Nats {
    client: async_nats::Client,
}

/// A failure to talk to NATS: retryable.
fn backend(what: &str, e: impl std::fmt::Display) -> BlobError {
    BlobError::Backend(format!("jetstream {what}: {e}"))
}

fn api_failure(what: &str, e: &ApiError) -> BlobError {
    BlobError::Backend(format!(
        "jetstream {what}: {} (code {})",
        e.description, e.err_code
    ))
}

/// Connects to the cluster `config` names, with its credentials and CA if set.
pub(super) async fn connect(config: &JetStreamConfig) -> Result<Nats, BlobError> {
    let fail = |detail: String| {
        BlobError::Backend(format!(
            "cannot connect to NATS at {}: {detail}",
            config.urls.join(",")
        ))
    };
    let mut options = async_nats::ConnectOptions::new()
        .name("hush-relay-blobs")
        .request_timeout(Some(REQUEST_TIMEOUT));
    if let Some(path) = &config.creds_file {
        options = options
            .credentials_file(path)
            .await
            .map_err(|e| fail(format!("credentials file {}: {e}", path.display())))?;
    }
    if let Some(path) = &config.ca_file {
        options = options
            .add_root_certificates(path.clone())
            .require_tls(true);
    }
    let addrs = config
        .urls
        .iter()
        .map(|u| u.parse::<async_nats::ServerAddr>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail(format!("bad URL: {e}")))?;
    let client = options
        .connect(addrs)
        .await
        .map_err(|e| fail(e.to_string()))?;
    Ok(Nats { client })
}

impl Nats {
    /// One JetStream API request: the reply, or the API's error.
    async fn call<T: DeserializeOwned>(
        &self,
        api: String,
        body: &Value,
    ) -> Result<Result<T, ApiError>, BlobError> {
        let subject = format!("$JS.API.{api}");
        let reply = self
            .client
            .request(subject, body.to_string().into())
            .await
            .map_err(|e| backend("request", e))?;
        let parsed: Reply<T> =
            serde_json::from_slice(&reply.payload).map_err(|e| backend("reply", e))?;
        Ok(match parsed {
            Reply::Ok(v) => Ok(v),
            Reply::Err { error } => Err(error),
        })
    }

    /// Reads one message, or `None` if there is none.
    pub(super) async fn get(&self, stream: &str, which: Get<'_>) -> Result<Option<Msg>, BlobError> {
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
                        .map_err(|e| backend("message decode", e))?,
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
    pub(super) async fn erase(&self, stream: &str, seq: u64) -> Result<bool, BlobError> {
        let body = json!({ "seq": seq, "no_erase": false });
        let reply = self.call::<Success>(format!("STREAM.MSG.DELETE.{stream}"), &body);
        match reply.await? {
            Ok(s) => Ok(s.success),
            Err(e) if [DELETE_FAILED, NO_MESSAGE, NO_SEQUENCE].contains(&e.err_code) => Ok(false),
            Err(e) => Err(api_failure("delete", &e)),
        }
    }

    /// Publishes `payload` and waits for the quorum acknowledgement. With `expected_last`, the
    /// message is stored only if the subject's last stream sequence is that one (0: no message
    /// on the subject yet).
    pub(super) async fn publish(
        &self,
        subject: &str,
        payload: Vec<u8>,
        expected_last: Option<u64>,
    ) -> Result<Published, BlobError> {
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
            .map_err(|e| backend("publish", e))?;
        let parsed: Reply<PubAck> =
            serde_json::from_slice(&reply.payload).map_err(|e| backend("publish reply", e))?;
        match parsed {
            Reply::Ok(ack) => Ok(Published::Stored(ack.seq)),
            Reply::Err { error } if error.err_code == WRONG_LAST_SEQUENCE => {
                Ok(Published::Conflict)
            }
            Reply::Err { error } if is_full(&error) => Ok(Published::Full),
            Reply::Err { error } => Err(api_failure("publish", &error)),
        }
    }

    /// Bytes the stream holds now.
    pub(super) async fn stream_bytes(&self, stream: &str) -> Result<u64, BlobError> {
        let empty = json!({});
        let info = self.call::<Value>(format!("STREAM.INFO.{stream}"), &empty);
        match info.await? {
            Ok(v) => Ok(v["state"]["bytes"].as_u64().unwrap_or(0)),
            Err(e) => Err(api_failure("stream info", &e)),
        }
    }

    /// Creates the stream `config` describes, or updates the stream of that name if its age,
    /// byte or message size limit differ (an operator changed the blob TTL or budget).
    pub(super) async fn ensure_stream(&self, config: Value) -> Result<(), BlobError> {
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
        let limits = ["max_age", "max_bytes", "max_msg_size"];
        if limits.iter().all(|k| current[k] == config[k]) {
            return Ok(());
        }
        let updated = self.call::<Value>(format!("STREAM.UPDATE.{name}"), &config);
        match updated.await? {
            Ok(_) => Ok(()),
            Err(e) => Err(api_failure("stream update", &e)),
        }
    }

    async fn exists(&self, stream: &str) -> Result<bool, BlobError> {
        let empty = json!({});
        let info = self.call::<Value>(format!("STREAM.INFO.{stream}"), &empty);
        Ok(info.await?.is_ok())
    }
}

/// Whether a publish was refused because the stream reached its byte or message limit.
fn is_full(e: &ApiError) -> bool {
    let d = e.description.to_ascii_lowercase();
    d.contains("maximum bytes") || d.contains("maximum messages")
}
