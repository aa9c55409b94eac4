//! A relay whose disk fails: every write is refused with a typed `Storage` error and nothing is
//! acknowledged, the relay stays up and keeps reading, and once writes succeed again the same
//! clients carry on with nothing acknowledged lost.
//!
//! The failing disk is a [`QueueStore`] wrapper that delegates to a real store and, while its
//! switch is on, fails every mutating call with [`StoreError::Backend`] before touching the
//! store, as an I/O error or a full disk would. It wraps the in-memory store and the sled store.
//!
//! A real full filesystem (sled on a tiny tmpfs) needs a mount, which needs privileges a test
//! must not assume; it is not covered here.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use ed25519_dalek::{Signer, SigningKey};
use hush_client::net::{client_config, ClientError};
use hush_protocol::auth::{signing_input, EXPORTER_LABEL};
use hush_protocol::{
    EnvelopeId, ErrorCode, FrameDecoder, Push, RecipientId, Reply, Request, SenderId, ServerFrame,
};
use hush_server::store::memory::MemoryStore;
use hush_server::store::sled_store::SledStore;
use hush_server::store::{
    CapHash, NewEnvelope, QueueRecord, QueueStore, Quota, StoreError, StoredEnvelope, SweepStats,
    Wakeup,
};
use hush_server::ManualClock;
use hush_tests::{cap, drained, envelope, key, TestRelay, DEADLINE, START_SECS};

/// Envelopes waiting before the disk fails: 8 MiB, far more than the relay's outgoing queue and
/// the QUIC windows hold, so most are read from the store while it is failing.
const BACKLOG: u32 = 128;
/// Size of each backlog envelope.
const BACKLOG_BODY: usize = 64 * 1024;

/// A store whose writes fail while its switch is on. Clones share the store and the switch.
struct FaultyStore<S> {
    inner: Arc<S>,
    failing: Arc<AtomicBool>,
    /// Reads (`pending`) that ran while writes were failing.
    reads_while_failing: Arc<AtomicU64>,
}

impl<S> Clone for FaultyStore<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            failing: self.failing.clone(),
            reads_while_failing: self.reads_while_failing.clone(),
        }
    }
}

impl<S: QueueStore> FaultyStore<S> {
    fn new(inner: S) -> Self {
        Self {
            inner: Arc::new(inner),
            failing: Arc::default(),
            reads_while_failing: Arc::default(),
        }
    }

    fn set_failing(&self, on: bool) {
        self.failing.store(on, Ordering::SeqCst);
    }

    fn check(&self) -> Result<(), StoreError> {
        if self.failing.load(Ordering::SeqCst) {
            Err(StoreError::Backend(
                "injected: no space left on device".into(),
            ))
        } else {
            Ok(())
        }
    }
}

impl<S: QueueStore> QueueStore for FaultyStore<S> {
    async fn create_queue(&self, queue: QueueRecord) -> Result<(), StoreError> {
        self.check()?;
        self.inner.create_queue(queue).await
    }

    async fn queue(&self, recipient: RecipientId) -> Result<Option<QueueRecord>, StoreError> {
        self.inner.queue(recipient).await
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
        self.check()?;
        self.inner
            .send(sender, cap_hash, envelope, new_cap_hash, quota, now)
            .await
    }

    async fn retract(
        &self,
        sender: SenderId,
        cap_hash: CapHash,
        envelope: EnvelopeId,
    ) -> Result<bool, StoreError> {
        self.check()?;
        self.inner.retract(sender, cap_hash, envelope).await
    }

    async fn pending(
        &self,
        recipient: RecipientId,
        from_seq: u64,
        limit: usize,
        now: u64,
    ) -> Result<Vec<StoredEnvelope>, StoreError> {
        if self.failing.load(Ordering::SeqCst) {
            self.reads_while_failing.fetch_add(1, Ordering::SeqCst);
        }
        self.inner.pending(recipient, from_seq, limit, now).await
    }

    async fn ack(
        &self,
        recipient: RecipientId,
        envelope: EnvelopeId,
        now: u64,
    ) -> Result<bool, StoreError> {
        self.check()?;
        self.inner.ack(recipient, envelope, now).await
    }

    async fn set_send_cap(
        &self,
        recipient: RecipientId,
        new_cap_hash: CapHash,
    ) -> Result<(), StoreError> {
        self.check()?;
        self.inner.set_send_cap(recipient, new_cap_hash).await
    }

    async fn touch(&self, recipient: RecipientId, now: u64) -> Result<(), StoreError> {
        self.check()?;
        self.inner.touch(recipient, now).await
    }

    async fn delete_queue(&self, recipient: RecipientId) -> Result<bool, StoreError> {
        self.check()?;
        self.inner.delete_queue(recipient).await
    }

    async fn sweep(&self, now: u64, idle_after: u64) -> Result<SweepStats, StoreError> {
        self.check()?;
        self.inner.sweep(now, idle_after).await
    }

    fn watch(&self, recipient: RecipientId) -> Wakeup {
        self.inner.watch(recipient)
    }

    async fn flush(&self) -> Result<(), StoreError> {
        self.check()?;
        self.inner.flush().await
    }
}

const STORAGE: ClientError = ClientError::Relay(ErrorCode::Storage);

fn numbered(n: u32) -> Vec<u8> {
    let mut b = vec![0x5a; BACKLOG_BODY];
    b[..4].copy_from_slice(&n.to_be_bytes());
    b
}

/// A connection that subscribes to `rid`, reads until the subscribe is answered, and then
/// reads nothing until the test says so.
struct StalledReader {
    _endpoint: quinn::Endpoint,
    conn: quinn::Connection,
    _send: quinn::SendStream,
    recv: quinn::RecvStream,
    decoder: FrameDecoder,
    /// Bodies received so far, in order.
    bodies: Vec<Vec<u8>>,
}

impl StalledReader {
    async fn subscribe<S: QueueStore>(
        relay: &TestRelay<S>,
        k: &SigningKey,
        rid: RecipientId,
    ) -> Self {
        let addr = relay.handle.address();
        let endpoint = quinn::Endpoint::client(([127, 0, 0, 1], 0).into()).unwrap();
        let conn = endpoint
            .connect_with(
                client_config(addr.fingerprint).unwrap(),
                relay.handle.local_addr(),
                &addr.host,
            )
            .unwrap()
            .await
            .unwrap();
        let mut exporter = [0u8; 32];
        conn.export_keying_material(&mut exporter, EXPORTER_LABEL, b"")
            .unwrap();
        let (mut send, recv) = conn.open_bi().await.unwrap();
        let mut req = Request::Subscribe {
            recipient_id: rid,
            signature: [0; 64],
        };
        let sig = k.sign(&signing_input(&exporter, 1, &req.signed_part()));
        if let Some(s) = req.signature_mut() {
            *s = sig.to_bytes();
        }
        let mut frame = Vec::new();
        req.encode_frame(1, &mut frame);
        send.write_all(&frame).await.unwrap();
        let mut reader = Self {
            _endpoint: endpoint,
            conn,
            _send: send,
            recv,
            decoder: FrameDecoder::default(),
            bodies: Vec::new(),
        };
        let answer = reader.read_until_answer().await;
        assert_eq!(answer, Ok(Reply::Done), "subscribe answered");
        reader
    }

    /// Reads frames until the answer to request 1, keeping the pushed bodies.
    async fn read_until_answer(&mut self) -> Result<Reply, ErrorCode> {
        loop {
            while let Some(body) = self.decoder.pop().expect("framing") {
                match ServerFrame::decode(body).expect("frame") {
                    ServerFrame::Response {
                        request_id: 1,
                        result,
                    } => return result,
                    ServerFrame::Push(Push::Envelope { body, .. }) => self.bodies.push(body),
                    _ => {}
                }
            }
            self.read_chunk().await;
        }
    }

    /// Reads until `n` bodies have arrived in all.
    async fn read_bodies(&mut self, n: usize) {
        while self.bodies.len() < n {
            while let Some(body) = self.decoder.pop().expect("framing") {
                if let ServerFrame::Push(Push::Envelope { body, .. }) =
                    ServerFrame::decode(body).expect("frame")
                {
                    self.bodies.push(body);
                }
            }
            if self.bodies.len() < n {
                self.read_chunk().await;
            }
        }
    }

    async fn read_chunk(&mut self) {
        let chunk = tokio::time::timeout(DEADLINE, self.recv.read_chunk(64 * 1024, true))
            .await
            .expect("a frame before the deadline")
            .expect("stream open")
            .expect("stream not finished");
        self.decoder.feed(&chunk.bytes);
    }
}

/// The whole scenario, on any store.
async fn a_failing_disk_refuses_writes_and_recovers<S: QueueStore>(inner: S) {
    let store = FaultyStore::new(inner);
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let clock = ManualClock::at_secs(START_SECS);
    let relay = TestRelay::start_on(store.clone(), dir, clock, |_| {});
    let (owner, sender, other) = (
        relay.client().await,
        relay.client().await,
        relay.client().await,
    );
    let (k, c) = (key(), cap());
    let (rid, sid) = owner.create_queue(&k, &c).await.unwrap();
    let (other_rid, other_sid) = owner.create_queue(&k, &c).await.unwrap();
    for n in 0..BACKLOG {
        sender.send(sid, &c, 600, None, numbered(n)).await.unwrap();
    }
    let retractable = sender
        .send(other_sid, &c, 600, None, b"retract me".to_vec())
        .await
        .unwrap();
    owner.subscribe(&k, other_rid).await.unwrap();
    assert_eq!(drained(&owner, other_rid).await, vec![retractable]);
    let mut stalled = StalledReader::subscribe(&relay, &k, rid).await;
    let stalled_before = stalled.bodies.len();

    store.set_failing(true);
    // Every write is refused with a typed error, and nothing is acknowledged.
    assert_eq!(
        sender.send(sid, &c, 600, None, b"lost".to_vec()).await,
        Err(STORAGE)
    );
    assert_eq!(owner.create_queue(&k, &c).await, Err(STORAGE));
    assert_eq!(owner.ack(other_rid, retractable).await, Err(STORAGE));
    assert_eq!(
        sender.retract(other_sid, &c, retractable).await,
        Err(STORAGE)
    );
    assert_eq!(owner.resecure(&k, other_rid, &cap()).await, Err(STORAGE));
    assert_eq!(owner.delete_queue(&k, other_rid).await, Err(STORAGE));
    // A new subscription marks the queue active, which is a write: refused too.
    assert_eq!(other.subscribe(&k, other_rid).await, Err(STORAGE));
    // The relay is up, and the stalled subscription is fed from the store while it fails.
    assert_eq!(other.call(Request::Ping).await, Ok(Reply::Pong));
    stalled.read_bodies(BACKLOG as usize).await;
    assert!(
        store.reads_while_failing.load(Ordering::SeqCst) > 0,
        "the backlog ({stalled_before} pushed before the failure) was read while failing"
    );
    for (n, body) in (0..BACKLOG).zip(&stalled.bodies) {
        assert_eq!(body, &numbered(n), "backlog in order");
    }
    assert_eq!(stalled.bodies.len(), BACKLOG as usize);
    stalled.conn.close(0u32.into(), b"");

    store.set_failing(false);
    // The same clients carry on: the ack and the send that failed now succeed.
    owner.ack(other_rid, retractable).await.unwrap();
    let after = sender
        .send(sid, &c, 600, None, b"after".to_vec())
        .await
        .unwrap();
    other.subscribe(&k, rid).await.unwrap();
    for n in 0..BACKLOG {
        assert_eq!(envelope(&other).await.1, numbered(n));
    }
    // The send refused during the failure was never stored: the next envelope is the new one.
    assert_eq!(envelope(&other).await, (after, b"after".to_vec()));
    // The acked envelope stays acked for a fresh subscription.
    let fresh = relay.client().await;
    fresh.subscribe(&k, other_rid).await.unwrap();
    assert!(drained(&fresh, other_rid).await.is_empty());
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_disk_under_the_memory_store() {
    a_failing_disk_refuses_writes_and_recovers(MemoryStore::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_disk_under_the_sled_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_sled(&dir.path().join("queues"));
    a_failing_disk_refuses_writes_and_recovers(store).await;
}

fn open_sled(path: &Path) -> SledStore {
    SledStore::open(path).expect("open sled store")
}
