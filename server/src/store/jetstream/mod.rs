//! [`JetStreamStore`]: queues on a NATS JetStream cluster, shared by stateless relay nodes.
//!
//! Two streams, replicated over the cluster (R3 by default), hold everything:
//!
//! - `<prefix>_queues`, subjects `<prefix>.q.<queue hash>`: each queue's envelopes and send
//!   capability, in send order (`queue.rs`). No maximum age: expiry is the relay's sweep,
//!   because a capability message must outlive any envelope.
//! - `<prefix>_records`, one message per subject: `<prefix>.r.<queue hash>` the queue record
//!   (sender id and recipient key, sealed), `<prefix>.s.<sender hash>` the sender index
//!   (recipient id, sealed), `<prefix>.a.<queue hash>` the last-activity time.
//!
//! Every write is a publish that JetStream acknowledges once a quorum of replicas holds it, so
//! a call returns only when its effect survives the loss of a minority of NATS nodes. Writes
//! that must be atomic with a check are conditional publishes on the subject's expected last
//! sequence: creating a record or index fails if the subject has one; a send, a removal of the
//! capability's carrier and a re-secure fail if anything else was written to the queue since
//! it was read, and are then tried again on a fresh read. No relay node holds a lock across
//! nodes, so any node serves any queue. Deletions erase (the server overwrites the message
//! bytes).
//!
//! Each node caches each queue's message list (`cache.rs`): a send or an ack works on the
//! cached list and its conditional publish says whether the list was current; a queue is read
//! again, past its cached last sequence, only when a write fails or before a refusal.
//!
//! What NATS sees is in `codec.rs`: hashes for ids, sealed values keyed by the ids.
//!
//! What this module does not do: keep blobs (`crate::blob::jetstream` does, with
//! `--blob-store jetstream`, on a stream of its own), or
//! count its contents for metrics ([`QueueStore::stats`] is `None`: counting would read every
//! message).

pub(crate) mod api;
mod cache;
mod codec;
mod local;
mod notify;
mod queue;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hush_protocol::{EnvelopeId, RecipientId, SenderId};
use serde_json::json;
use tokio::sync::mpsc;

use api::{Api, Get, Published};
use cache::{Entry, Held, Source};
use codec::{Kind, RawQueueMsg};
use queue::{Outcome, View};

use super::{
    cap_matches, CapHash, NewEnvelope, QueueRecord, QueueStore, Quota, StoreError, StoredEnvelope,
    SweepStats, Wakeup,
};

/// How many times an operation reads the queue again after a concurrent write won.
const MAX_TRIES: usize = 64;
/// How long opening the store waits for the cluster to take JetStream requests.
const READY_WITHIN: Duration = Duration::from_secs(60);

/// How to reach the NATS cluster, and what to call things in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JetStreamConfig {
    /// Server URLs (`nats://host:4222`); the client learns the rest of the cluster from them.
    pub urls: Vec<String>,
    /// A NATS credentials file (JWT and NKey seed), if the cluster requires one.
    pub creds_file: Option<PathBuf>,
    /// A PEM file of CA certificates; when set, the connection requires TLS.
    pub ca_file: Option<PathBuf>,
    /// How many copies of each stream the cluster keeps (1, 3 or 5; 3 for production).
    pub replicas: usize,
    /// Prefix of the stream names and subjects, so that several deployments can share one
    /// cluster: letters, digits, `-` and `_`.
    pub prefix: String,
}

impl JetStreamConfig {
    /// A configuration for these URLs with the defaults: R3, prefix `hush`.
    pub fn new(urls: Vec<String>) -> JetStreamConfig {
        JetStreamConfig {
            urls,
            creds_file: None,
            ca_file: None,
            replicas: 3,
            prefix: "hush".to_owned(),
        }
    }
}

/// Why the store could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JetStreamError {
    /// A setting is unusable.
    #[error("invalid jetstream setting: {0}")]
    Config(String),
    /// No server in the list could be reached, or it refused the credentials.
    #[error("cannot connect to NATS at {urls}: {detail}")]
    Connect {
        /// The URLs tried.
        urls: String,
        /// What failed.
        detail: String,
    },
    /// The cluster did not take JetStream requests, or refused to create the streams.
    #[error("NATS JetStream is not ready: {0}")]
    NotReady(StoreError),
}

/// Subjects and stream names under one prefix.
#[derive(Clone, Debug)]
struct Names {
    prefix: String,
    queues: String,
    records: String,
}

impl Names {
    fn new(prefix: &str) -> Names {
        Names {
            prefix: prefix.to_owned(),
            queues: format!("{prefix}_queues"),
            records: format!("{prefix}_records"),
        }
    }

    fn subject(&self, kind: char, hash: &str) -> String {
        format!("{}.{kind}.{hash}", self.prefix)
    }

    fn queue(&self, hash: &str) -> String {
        self.subject('q', hash)
    }

    fn record(&self, hash: &str) -> String {
        self.subject('r', hash)
    }

    fn sender(&self, hash: &str) -> String {
        self.subject('s', hash)
    }

    fn activity(&self, hash: &str) -> String {
        self.subject('a', hash)
    }

    fn wake(&self, hash: &str) -> String {
        self.subject('w', hash)
    }
}

/// The queue store on NATS JetStream. Clones share one connection.
#[derive(Clone)]
pub struct JetStreamStore {
    inner: Arc<Inner>,
}

struct Inner {
    api: Api,
    names: Names,
    local: local::Local,
    cache: cache::Cache,
    watchers: notify::Watchers,
    _listener: notify::Listener,
}

impl std::fmt::Debug for JetStreamStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JetStreamStore")
            .field("prefix", &self.inner.names.prefix)
            .finish_non_exhaustive()
    }
}

fn check_config(config: &JetStreamConfig) -> Result<(), JetStreamError> {
    let bad = |what: &str| Err(JetStreamError::Config(what.to_owned()));
    if config.urls.is_empty() {
        return bad("--nats needs at least one server URL");
    }
    if config.prefix.is_empty()
        || !config
            .prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return bad("the NATS prefix may hold only letters, digits, '-' and '_'");
    }
    if !matches!(config.replicas, 1..=5) {
        return bad("NATS replicas must be between 1 and 5");
    }
    Ok(())
}

async fn connect(
    config: &JetStreamConfig,
    reconnected: mpsc::UnboundedSender<()>,
) -> Result<async_nats::Client, JetStreamError> {
    connect_client(config, "hush-relay", Some(reconnected)).await
}

/// Connects to the cluster `config` names, with its credentials and CA if set, naming the
/// connection `name`; `reconnected` hears of every (re)connection.
pub(crate) async fn connect_client(
    config: &JetStreamConfig,
    name: &str,
    reconnected: Option<mpsc::UnboundedSender<()>>,
) -> Result<async_nats::Client, JetStreamError> {
    let urls = config.urls.join(",");
    let fail = |detail: String| JetStreamError::Connect {
        urls: urls.clone(),
        detail,
    };
    let mut options = async_nats::ConnectOptions::new().name(name);
    if let Some(reconnected) = reconnected {
        options = options.event_callback(move |event| {
            let reconnected = reconnected.clone();
            async move {
                if matches!(event, async_nats::Event::Connected) {
                    let _ = reconnected.send(());
                }
            }
        });
    }
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
    options
        .connect(addrs)
        .await
        .map_err(|e| fail(e.to_string()))
}

async fn create_streams(api: &Api, names: &Names, replicas: usize) -> Result<(), StoreError> {
    let common = |name: &str, subjects: Vec<String>, per_subject: i64| {
        json!({
            "name": name,
            "subjects": subjects,
            "retention": "limits",
            "storage": "file",
            "num_replicas": replicas,
            "discard": "old",
            "max_consumers": -1,
            "max_msgs": -1,
            "max_bytes": -1,
            "max_age": 0,
            "max_msg_size": -1,
            "max_msgs_per_subject": per_subject,
            "duplicate_window": api::DUPLICATE_WINDOW.as_nanos() as u64,
            "allow_direct": false,
            "deny_delete": false,
            "deny_purge": false,
        })
    };
    let p = &names.prefix;
    api.ensure_stream(common(&names.queues, vec![format!("{p}.q.*")], -1))
        .await?;
    let record_subjects = vec![format!("{p}.r.*"), format!("{p}.s.*"), format!("{p}.a.*")];
    api.ensure_stream(common(&names.records, record_subjects, 1))
        .await
}

/// Polls until JetStream answers and the streams exist, or [`READY_WITHIN`] passes.
async fn wait_ready(api: &Api, names: &Names, replicas: usize) -> Result<(), JetStreamError> {
    let deadline = tokio::time::Instant::now() + READY_WITHIN;
    let mut pause = Duration::from_millis(20);
    loop {
        let attempt = async {
            api.account_info().await?;
            create_streams(api, names, replicas).await
        };
        match attempt.await {
            Ok(()) => return Ok(()),
            Err(e) if tokio::time::Instant::now() >= deadline => {
                return Err(JetStreamError::NotReady(e))
            }
            Err(e) => tracing::debug!(error = %e, "waiting for NATS JetStream"),
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(1));
    }
}

impl JetStreamStore {
    /// Connects to the cluster, waits (up to a minute) until JetStream takes requests, and
    /// creates the streams if they do not exist yet.
    pub async fn open(config: &JetStreamConfig) -> Result<JetStreamStore, JetStreamError> {
        check_config(config)?;
        let (tx, rx) = mpsc::unbounded_channel();
        let client = connect(config, tx).await?;
        let api = Api::new(client.clone());
        let names = Names::new(&config.prefix);
        wait_ready(&api, &names, config.replicas).await?;
        let watchers = notify::Watchers::default();
        let cache = cache::Cache::default();
        let listener = notify::Listener::start(&client, &names.prefix, watchers.clone(), rx)
            .await
            .map_err(|e| JetStreamError::Connect {
                urls: config.urls.join(","),
                detail: format!("cannot subscribe to wake-ups: {e}"),
            })?;
        Ok(JetStreamStore {
            inner: Arc::new(Inner {
                api,
                names,
                local: local::Local::default(),
                cache,
                watchers,
                _listener: listener,
            }),
        })
    }

    fn api(&self) -> &Api {
        &self.inner.api
    }

    fn names(&self) -> &Names {
        &self.inner.names
    }

    /// Reads the queue with this hash, from stream sequence `from` on.
    async fn view(&self, hash: &str, from: u64) -> Result<View, StoreError> {
        let n = self.names();
        View::load(self.api(), &n.queues, &n.queue(hash), from).await
    }

    /// Records `now` as the queue's last activity, unless this node's last write for the queue
    /// was the same time (several sends and acks in one second write it once).
    async fn put_activity_once(
        &self,
        q: &mut Held,
        hash: &str,
        now: u64,
    ) -> Result<(), StoreError> {
        if !q.activity_is(now) {
            self.put_activity(hash, now).await?;
            q.set_activity(now);
        }
        Ok(())
    }

    /// Records `now` as the queue's last activity. Retried like an envelope's publish while
    /// the records stream elects a leader (the id makes a retry a no-op), so that a send whose
    /// envelope is stored is not answered with an error for want of its activity time.
    async fn put_activity(&self, hash: &str, now: u64) -> Result<(), StoreError> {
        let subject = self.names().activity(hash);
        let payload = codec::encode_activity(now);
        let msg_id = format!("a.{hash}.{now}");
        self.api()
            .publish(&subject, payload, None, Some(&msg_id))
            .await?;
        Ok(())
    }

    /// The queue a sender id names, if any.
    async fn queue_of_sender(&self, sid: &SenderId) -> Result<Option<RecipientId>, StoreError> {
        if let Some(rid) = self.inner.local.sender(sid) {
            return Ok(Some(rid));
        }
        let subject = self.names().sender(&codec::sender_hash(sid));
        let Some(m) = self
            .api()
            .get(&self.names().records, Get::Last(&subject))
            .await?
        else {
            return Ok(None);
        };
        let rid = codec::decode_sender(sid, &subject, &m.data)?;
        self.inner.local.remember_sender(*sid, rid);
        Ok(Some(rid))
    }

    /// Tells every node's watchers of this queue that it changed.
    async fn wake(&self, hash: &str) {
        self.inner.watchers.wake_hash(hash);
        let subject = self.names().wake(hash);
        if let Err(e) = self
            .api()
            .client()
            .publish(subject, Vec::new().into())
            .await
        {
            tracing::warn!(error = %e, "cannot publish a wake-up to the other relay nodes");
        }
    }

    /// Removes a queue by its hash: record and sender index first (so no new send finds it),
    /// then its messages and activity. Returns whether this call removed the record. Safe to
    /// run on several nodes at once.
    async fn delete_by_hash(&self, hash: &str) -> Result<bool, StoreError> {
        let (api, n) = (self.api(), self.names());
        let record = api.get(&n.records, Get::Last(&n.record(hash))).await?;
        let mut removed = false;
        if let Some(rec) = record {
            let sender = n.sender(&codec::record_sender_hash(&rec.data)?);
            if let Some(s) = api.get(&n.records, Get::Last(&sender)).await? {
                api.erase(&n.records, s.seq).await?;
            }
            removed = api.erase(&n.records, rec.seq).await?;
        }
        for m in self.view(hash, 0).await?.msgs {
            api.erase(&n.queues, m.seq).await?;
        }
        if let Some(a) = api.get(&n.records, Get::Last(&n.activity(hash))).await? {
            api.erase(&n.records, a.seq).await?;
        }
        self.inner.cache.forget(hash);
        self.wake(hash).await;
        Ok(removed)
    }

    /// Publishes a new record and sender index; `Exists` if either subject is taken.
    async fn create(&self, q: &QueueRecord, hash: &str) -> Result<(), StoreError> {
        let (api, n) = (self.api(), self.names());
        let key = codec::queue_key(&q.recipient_id);
        let rec_subject = n.record(hash);
        let rec = codec::encode_record(&key, &rec_subject, &q.sender_id, &q.recipient_key);
        let Published::Stored(rec_seq) = api.publish(&rec_subject, rec, Some(0), None).await?
        else {
            return Err(StoreError::Exists);
        };
        self.put_activity(hash, q.last_active).await?;
        let sender_subject = n.sender(&codec::sender_hash(&q.sender_id));
        let index = codec::encode_sender(&q.sender_id, &sender_subject, &q.recipient_id);
        if api.publish(&sender_subject, index, Some(0), None).await? == Published::Conflict {
            api.erase(&n.records, rec_seq).await?;
            if let Some(a) = api.get(&n.records, Get::Last(&n.activity(hash))).await? {
                api.erase(&n.records, a.seq).await?;
            }
            return Err(StoreError::Exists);
        }
        Ok(())
    }

    /// This node's turn at the queue with this hash, and its cached message list.
    async fn held(&self, hash: &str) -> Held {
        self.inner.cache.lock(hash, &self.names().queue(hash)).await
    }

    /// Where the queue messages opened with `key` are read from.
    fn source<'a>(&'a self, key: &'a chacha20poly1305::Key) -> Source<'a> {
        Source {
            api: self.api(),
            stream: &self.inner.names.queues,
            key,
        }
    }

    /// Writes a capability message: at creation (`conditional` false: the subject is new), and
    /// when the recipient re-secures (on the cached last sequence).
    async fn publish_cap(
        &self,
        q: &mut Held,
        key: &chacha20poly1305::Key,
        cap: &CapHash,
        conditional: bool,
    ) -> Result<Outcome<()>, StoreError> {
        let subject = q.subject().to_owned();
        let msg = RawQueueMsg {
            seq: 0,
            kind: Kind::Cap,
            expires_at: u64::MAX,
            sealed_cap: codec::seal_cap(key, &subject, cap),
            sealed_envelope: Vec::new(),
        };
        let expected = conditional.then(|| q.last_seq());
        match self
            .api()
            .publish(&subject, msg.encode(), expected, None)
            .await?
        {
            Published::Conflict => Ok(Outcome::Retry),
            Published::Stored(seq) if conditional => {
                q.appended(Entry::written(seq, &msg, None, 0));
                q.erase_caps_before(&self.source(key), seq).await;
                Ok(Outcome::Done(()))
            }
            Published::Stored(_) => {
                q.reset();
                Ok(Outcome::Done(()))
            }
        }
    }
}

/// One send, tried on the cached message list until it is stored or refused.
struct SendAttempt<'a> {
    hash: &'a str,
    key: &'a chacha20poly1305::Key,
    cap_hash: &'a CapHash,
    envelope: &'a NewEnvelope,
    new_cap_hash: Option<&'a CapHash>,
    quota: Quota,
}

/// How one try of a send ended.
enum Sent {
    /// Stored and recorded in the cache.
    Done,
    /// The cached last sequence was not the subject's: something was written since.
    Conflict,
    /// Refused on what the cache holds, which may be stale.
    Refused(StoreError),
}

impl JetStreamStore {
    /// Checks the capability and quota on the cached list and publishes conditionally on its
    /// last sequence.
    async fn try_send(
        &self,
        q: &mut Held,
        a: &SendAttempt<'_>,
        now: u64,
    ) -> Result<Sent, StoreError> {
        let Some(current) = q.current_cap(a.key)? else {
            return Ok(Sent::Refused(StoreError::Auth));
        };
        if !cap_matches(&current, a.cap_hash) {
            return Ok(Sent::Refused(StoreError::Auth));
        }
        let (count, bytes) = q.usage();
        let len = a.envelope.body.len() as u64;
        if count >= u64::from(a.quota.max_messages) || bytes.saturating_add(len) > a.quota.max_bytes
        {
            return Ok(Sent::Refused(StoreError::QueueFull));
        }
        let subject = q.subject().to_owned();
        let msg = RawQueueMsg {
            seq: 0,
            kind: match a.new_cap_hash {
                Some(_) => Kind::EnvelopeWithCap,
                None => Kind::Envelope,
            },
            expires_at: a.envelope.expires_at,
            sealed_cap: a
                .new_cap_hash
                .map(|c| codec::seal_cap(a.key, &subject, c))
                .unwrap_or_default(),
            sealed_envelope: codec::seal_envelope(
                a.key,
                &subject,
                &a.envelope.id,
                &a.envelope.body,
            ),
        };
        // Scoped to the queue: JetStream's duplicate window spans the whole stream.
        let msg_id = format!("{}.{}", a.hash, a.envelope.id.to_hex());
        let publish = self
            .api()
            .publish_once(&subject, msg.encode(), Some(q.last_seq()), &msg_id);
        let skip_activity = q.activity_is(now);
        let activity = async {
            match skip_activity {
                true => Ok(()),
                false => self.put_activity(a.hash, now).await,
            }
        };
        let (published, activity) = tokio::join!(publish, activity);
        activity?;
        q.set_activity(now);
        let seq = match published? {
            (Published::Conflict, _) => return Ok(Sent::Conflict),
            (Published::Stored(_), true) => {
                // The same envelope was stored before, at a place the cache may not hold.
                q.reset();
                return Ok(Sent::Done);
            }
            (Published::Stored(seq), false) => seq,
        };
        q.appended(Entry::written(seq, &msg, Some(a.envelope.id), len));
        if a.new_cap_hash.is_some() {
            q.erase_caps_before(&self.source(a.key), seq).await;
        }
        Ok(Sent::Done)
    }

    /// Removes the envelope with this id from the queue. For an ack (`acked_at`: the time),
    /// which needs no capability, then records the queue's activity if it exists; for a retract
    /// (`None`), only after `authorise` accepts the queue's capability, read fresh. Returns
    /// whether it was pending and whether the queue exists.
    async fn remove_envelope(
        &self,
        rid: &RecipientId,
        id: &EnvelopeId,
        acked_at: Option<u64>,
        authorise: impl Fn(Option<CapHash>) -> Result<(), StoreError>,
    ) -> Result<(bool, bool), StoreError> {
        let hash = codec::queue_hash(rid);
        let key = codec::queue_key(rid);
        let src = self.source(&key);
        let mut q = self.held(&hash).await;
        // `fresh`: read past the cached last sequence during this call.
        let mut fresh = q.ensure_loaded(&src).await?;
        if acked_at.is_none() && !fresh {
            q.sync(&src).await?;
            fresh = true;
        }
        let (removed, exists) = self.remove_in(&mut q, &src, id, fresh, authorise).await?;
        if let (Some(now), true) = (acked_at, exists) {
            self.put_activity_once(&mut q, &hash, now).await?;
        }
        Ok((removed, exists))
    }

    /// The loop of [`JetStreamStore::remove_envelope`] on the locked entry.
    async fn remove_in(
        &self,
        q: &mut Held,
        src: &Source<'_>,
        id: &EnvelopeId,
        mut fresh: bool,
        authorise: impl Fn(Option<CapHash>) -> Result<(), StoreError>,
    ) -> Result<(bool, bool), StoreError> {
        for _ in 0..MAX_TRIES {
            let cap = q.current_cap(src.key)?;
            let seq = match authorise(cap).map(|()| q.find(id)) {
                Ok(Some(seq)) => seq,
                Ok(None) if fresh => return Ok((false, cap.is_some())),
                Err(e) if fresh => return Err(e),
                _ => {
                    q.sync(src).await?;
                    fresh = true;
                    continue;
                }
            };
            match q.remove(src, seq).await? {
                Outcome::Done(true) => return Ok((true, true)),
                Outcome::Done(false) if fresh => return Ok((false, true)),
                Outcome::Done(false) | Outcome::Retry => {
                    q.sync(src).await?;
                    fresh = true;
                }
            }
        }
        Err(contended())
    }

    /// Removes the expired envelopes of one queue. Returns how many this call removed.
    async fn expire_queue(&self, hash: &str, now: u64) -> Result<u64, StoreError> {
        let mut removed = 0;
        for _ in 0..MAX_TRIES {
            let view = self.view(hash, 0).await?;
            let expired: Vec<u64> = view
                .msgs
                .iter()
                .filter(|m| m.kind.has_envelope() && m.expires_at <= now)
                .map(|m| m.seq)
                .collect();
            let mut retry = false;
            for seq in expired {
                match view.remove(self.api(), &self.names().queues, seq).await? {
                    Outcome::Done(true) => removed += 1,
                    Outcome::Done(false) => {}
                    Outcome::Retry => {
                        retry = true;
                        break;
                    }
                }
            }
            if !retry {
                self.inner.cache.forget(hash);
                return Ok(removed);
            }
        }
        Err(contended())
    }

    /// The hashes of queues whose last activity is before `cutoff`.
    async fn idle_queues(&self, cutoff: u64) -> Result<Vec<String>, StoreError> {
        let (api, n) = (self.api(), self.names());
        let filter = n.activity("*");
        let mut idle = Vec::new();
        let mut from = 0;
        while let Some(m) = api
            .get(
                &n.records,
                Get::Next {
                    from,
                    filter: &filter,
                },
            )
            .await?
        {
            from = m.seq + 1;
            if codec::decode_activity(&m.data)? < cutoff {
                idle.extend(m.subject.rsplit('.').next().map(str::to_owned));
            }
        }
        Ok(idle)
    }

    /// The hashes of queues holding an envelope that expired by `now`.
    async fn queues_with_expired(&self, now: u64) -> Result<Vec<String>, StoreError> {
        let (api, n) = (self.api(), self.names());
        let filter = n.queue("*");
        let mut hashes = std::collections::BTreeSet::new();
        let mut from = 0;
        while let Some(m) = api
            .get(
                &n.queues,
                Get::Next {
                    from,
                    filter: &filter,
                },
            )
            .await?
        {
            from = m.seq + 1;
            let msg = RawQueueMsg::decode(m.seq, &m.data)?;
            if msg.kind.has_envelope() && msg.expires_at <= now {
                hashes.extend(m.subject.rsplit('.').next().map(str::to_owned));
            }
        }
        Ok(hashes.into_iter().collect())
    }
}

fn contended() -> StoreError {
    StoreError::transient("jetstream store: too many concurrent writes to one queue")
}

impl QueueStore for JetStreamStore {
    async fn create_queue(&self, queue: QueueRecord) -> Result<(), StoreError> {
        let hash = codec::queue_hash(&queue.recipient_id);
        self.create(&queue, &hash).await?;
        let key = codec::queue_key(&queue.recipient_id);
        let mut q = self.held(&hash).await;
        match self
            .publish_cap(&mut q, &key, &queue.send_cap_hash, false)
            .await?
        {
            Outcome::Done(()) => Ok(()),
            Outcome::Retry => Err(contended()),
        }
    }

    async fn queue(&self, recipient: RecipientId) -> Result<Option<QueueRecord>, StoreError> {
        let (api, n) = (self.api(), self.names());
        let hash = codec::queue_hash(&recipient);
        let subject = n.record(&hash);
        let Some(rec) = api.get(&n.records, Get::Last(&subject)).await? else {
            return Ok(None);
        };
        let key = codec::queue_key(&recipient);
        let (sender_id, recipient_key) = codec::decode_record(&key, &subject, &rec.data)?;
        let cap = {
            let mut q = self.held(&hash).await;
            let src = self.source(&key);
            if !q.ensure_loaded(&src).await? {
                q.sync(&src).await?;
            }
            q.current_cap(&key)?
        };
        let Some(send_cap_hash) = cap else {
            return Ok(None);
        };
        let activity = api.get(&n.records, Get::Last(&n.activity(&hash))).await?;
        let last_active = match activity {
            Some(a) => codec::decode_activity(&a.data)?,
            None => 0,
        };
        Ok(Some(QueueRecord {
            recipient_id: recipient,
            sender_id,
            recipient_key,
            send_cap_hash,
            last_active,
        }))
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
        let rid = self
            .queue_of_sender(&sender)
            .await?
            .ok_or(StoreError::Auth)?;
        let hash = codec::queue_hash(&rid);
        let key = codec::queue_key(&rid);
        let attempt = SendAttempt {
            hash: &hash,
            key: &key,
            cap_hash: &cap_hash,
            envelope: &envelope,
            new_cap_hash: new_cap_hash.as_ref(),
            quota,
        };
        let src = self.source(&key);
        let mut q = self.held(&hash).await;
        // `synced`: read past the cached last sequence during this call; `full`: read in full.
        let mut full = q.ensure_loaded(&src).await?;
        let mut synced = full;
        for _ in 0..MAX_TRIES {
            match self.try_send(&mut q, &attempt, now).await? {
                Sent::Done => {
                    drop(q);
                    self.wake(&hash).await;
                    return Ok(rid);
                }
                // Entries another node erased count for nothing once read in full.
                Sent::Refused(StoreError::QueueFull) if !full => {
                    q.reset();
                    q.ensure_loaded(&src).await?;
                    (full, synced) = (true, true);
                }
                Sent::Refused(e) if synced => return Err(e),
                Sent::Conflict | Sent::Refused(_) => {
                    full |= q.sync(&src).await?;
                    synced = true;
                }
            }
        }
        Err(contended())
    }

    async fn retract(
        &self,
        sender: SenderId,
        cap_hash: CapHash,
        envelope: EnvelopeId,
    ) -> Result<bool, StoreError> {
        let rid = self
            .queue_of_sender(&sender)
            .await?
            .ok_or(StoreError::Auth)?;
        let authorise = |cap: Option<CapHash>| match cap {
            Some(c) if cap_matches(&c, &cap_hash) => Ok(()),
            _ => Err(StoreError::Auth),
        };
        Ok(self
            .remove_envelope(&rid, &envelope, None, authorise)
            .await?
            .0)
    }

    async fn pending(
        &self,
        recipient: RecipientId,
        from_seq: u64,
        limit: usize,
        now: u64,
    ) -> Result<Vec<StoredEnvelope>, StoreError> {
        let (api, n) = (self.api(), self.names());
        let subject = n.queue(&codec::queue_hash(&recipient));
        // Reads only as far as the first `limit` unexpired envelopes.
        let mut live = 0;
        let enough = |m: &RawQueueMsg| {
            live += usize::from(m.kind.has_envelope() && m.expires_at > now);
            live >= limit
        };
        let view = View::load_until(api, &n.queues, &subject, from_seq, enough).await?;
        view.pending(&codec::queue_key(&recipient), limit, now)
    }

    async fn ack(
        &self,
        recipient: RecipientId,
        envelope: EnvelopeId,
        now: u64,
    ) -> Result<bool, StoreError> {
        let (removed, _) = self
            .remove_envelope(&recipient, &envelope, Some(now), |_| Ok(()))
            .await?;
        Ok(removed)
    }

    async fn set_send_cap(
        &self,
        recipient: RecipientId,
        new_cap_hash: CapHash,
    ) -> Result<(), StoreError> {
        let hash = codec::queue_hash(&recipient);
        let key = codec::queue_key(&recipient);
        let src = self.source(&key);
        let mut q = self.held(&hash).await;
        let mut fresh = q.ensure_loaded(&src).await?;
        for _ in 0..MAX_TRIES {
            if q.cap_carrier().is_some() {
                let published = self.publish_cap(&mut q, &key, &new_cap_hash, true);
                if let Outcome::Done(()) = published.await? {
                    return Ok(());
                }
            } else if fresh {
                return Err(StoreError::Auth);
            }
            q.sync(&src).await?;
            fresh = true;
        }
        Err(contended())
    }

    async fn touch(&self, recipient: RecipientId, now: u64) -> Result<(), StoreError> {
        let (api, n) = (self.api(), self.names());
        let hash = codec::queue_hash(&recipient);
        if api
            .get(&n.records, Get::Last(&n.record(&hash)))
            .await?
            .is_some()
        {
            let mut q = self.held(&hash).await;
            self.put_activity(&hash, now).await?;
            q.set_activity(now);
        }
        Ok(())
    }

    async fn delete_queue(&self, recipient: RecipientId) -> Result<bool, StoreError> {
        self.delete_by_hash(&codec::queue_hash(&recipient)).await
    }

    async fn sweep(&self, now: u64, idle_after: u64) -> Result<SweepStats, StoreError> {
        let mut stats = SweepStats::default();
        for hash in self.idle_queues(now.saturating_sub(idle_after)).await? {
            if self.delete_by_hash(&hash).await? {
                stats.idle_queues += 1;
            }
        }
        for hash in self.queues_with_expired(now).await? {
            stats.expired_envelopes += self.expire_queue(&hash, now).await?;
        }
        Ok(stats)
    }

    fn watch(&self, recipient: RecipientId) -> Wakeup {
        let hash = codec::queue_hash(&recipient);
        self.inner.watchers.watch(hash, recipient)
    }

    async fn flush(&self) -> Result<(), StoreError> {
        // Every write was acknowledged by a quorum before its call returned.
        Ok(())
    }

    async fn probe(&self) -> Result<(), StoreError> {
        self.api().account_info().await
    }
}
