//! Two JetStream stores (two relay nodes, each with its own queue cache) on one 3-node NATS
//! cluster started on loopback, writing the same queue in turns and at the same time: what one
//! node changed behind the other's warm cache (sends, acks, retracts, a capability replaced, a
//! quota filled and emptied) is never lost, duplicated, or refused on the stale cache.

use std::collections::VecDeque;

use hush_protocol::{EnvelopeId, RecipientId, SenderId};
use hush_server::store::jetstream::{JetStreamConfig, JetStreamStore};
use hush_server::store::{CapHash, NewEnvelope, QueueRecord, QueueStore, Quota, StoreError};
use hush_tests::nats::NatsCluster;

/// A small quota, so that the test fills it.
const QUOTA: Quota = Quota {
    max_messages: 4,
    max_bytes: 1 << 20,
};
const FAR: u64 = 1_000_000;
const RID: RecipientId = RecipientId([7; 16]);
const SID: SenderId = SenderId([8; 16]);

async fn node(cluster: &NatsCluster) -> JetStreamStore {
    let config = JetStreamConfig::new(cluster.urls());
    JetStreamStore::open(&config)
        .await
        .expect("open the JetStream store")
}

/// The queue as both nodes see it, and what the test expects it to hold.
struct Queue {
    nodes: [JetStreamStore; 2],
    cap: CapHash,
    model: VecDeque<EnvelopeId>,
    next_id: u8,
}

impl Queue {
    fn new_id(&mut self) -> EnvelopeId {
        self.next_id += 1;
        EnvelopeId::from_bytes([self.next_id; 16])
    }

    async fn send_via(&mut self, n: usize) -> Result<EnvelopeId, StoreError> {
        let id = self.new_id();
        let env = NewEnvelope {
            id,
            body: vec![self.next_id; 32],
            expires_at: FAR,
        };
        self.nodes[n]
            .send(SID, self.cap, env, None, QUOTA, 1)
            .await?;
        self.model.push_back(id);
        Ok(id)
    }

    async fn ack_via(&mut self, n: usize, id: EnvelopeId) -> bool {
        let removed = self.nodes[n].ack(RID, id, 1).await.expect("ack");
        self.model.retain(|m| *m != id);
        removed
    }

    async fn retract_via(&mut self, n: usize, id: EnvelopeId) -> bool {
        let removed = self.nodes[n].retract(SID, self.cap, id).await;
        self.model.retain(|m| *m != id);
        removed.expect("retract")
    }

    /// Both nodes list exactly the envelopes the model holds, in order, each once.
    async fn check(&self) {
        let want: Vec<EnvelopeId> = self.model.iter().copied().collect();
        for (n, node) in self.nodes.iter().enumerate() {
            let got: Vec<EnvelopeId> = node
                .pending(RID, 0, usize::MAX, 1)
                .await
                .expect("pending")
                .iter()
                .map(|e| e.id)
                .collect();
            assert_eq!(got, want, "node {n} lists what the queue holds");
        }
    }
}

async fn setup(cluster: &NatsCluster) -> Queue {
    let nodes = [node(cluster).await, node(cluster).await];
    let cap = [1; 32];
    let record = QueueRecord {
        recipient_id: RID,
        sender_id: SID,
        recipient_key: [3; 32],
        send_cap_hash: cap,
        last_active: 1,
    };
    nodes[0].create_queue(record).await.expect("create");
    Queue {
        nodes,
        cap,
        model: VecDeque::new(),
        next_id: 0,
    }
}

/// Sends, acks and retracts through alternating nodes, with both caches warm.
async fn interleave(q: &mut Queue) {
    for round in 0..3 {
        let a = round % 2;
        let b = 1 - a;
        // Fill the quota, one send through each node in turn.
        for i in 0..4 {
            q.send_via((a + i) % 2)
                .await
                .expect("send within the quota");
        }
        q.check().await;
        // Both nodes refuse the fifth, having read the other's sends.
        for n in [a, b] {
            assert!(matches!(q.send_via(n).await, Err(StoreError::QueueFull)));
        }
        // The other node acks and retracts what this one knows of.
        let first = q.model[0];
        assert!(q.ack_via(b, first).await);
        let second = q.model[0];
        assert!(q.retract_via(b, second).await);
        // Already gone: neither node removes them again.
        assert!(!q.ack_via(a, first).await);
        assert!(!q.retract_via(a, second).await);
        // Node `a` still had them cached; the quota has room for two again, through `a`.
        q.send_via(a)
            .await
            .expect("send after the other node's ack");
        q.send_via(a)
            .await
            .expect("send after the other node's retract");
        q.check().await;
        // Empty the queue through `a`, then fill it through `b`, whose cache holds them all.
        for id in q.model.clone() {
            assert!(q.ack_via(a, id).await);
        }
        q.check().await;
        for _ in 0..4 {
            q.send_via(b)
                .await
                .expect("send into the queue emptied elsewhere");
        }
        for id in q.model.clone() {
            assert!(q.ack_via(b, id).await);
        }
        q.check().await;
    }
}

/// A capability replaced through one node is the one the other node checks.
async fn replace_cap(q: &mut Queue) {
    let old = q.cap;
    q.nodes[1]
        .set_send_cap(RID, [2; 32])
        .await
        .expect("re-secure");
    // Node 0's cache still holds the old capability: the new one is taken, the old refused.
    q.cap = [2; 32];
    q.send_via(0).await.expect("send with the new capability");
    let refused = q.nodes[0].send(
        SID,
        old,
        NewEnvelope {
            id: EnvelopeId::from_bytes([200; 16]),
            body: vec![1],
            expires_at: FAR,
        },
        None,
        QUOTA,
        1,
    );
    assert!(matches!(refused.await, Err(StoreError::Auth)));
    // A first send through node 0 replaces it again; node 1 follows.
    let id = q.new_id();
    let env = NewEnvelope {
        id,
        body: vec![9],
        expires_at: FAR,
    };
    let replace = q.nodes[0].send(SID, q.cap, env, Some([3; 32]), QUOTA, 1);
    replace.await.expect("send replacing the capability");
    q.model.push_back(id);
    let stale = q.nodes[1].retract(SID, q.cap, id);
    assert!(matches!(stale.await, Err(StoreError::Auth)));
    q.cap = [3; 32];
    q.send_via(1)
        .await
        .expect("send with the replaced capability");
    q.check().await;
    for id in q.model.clone() {
        assert!(q.ack_via(0, id).await);
    }
    q.check().await;
}

/// Both nodes send at the same time: every send is stored once, none is refused while the
/// quota has room.
async fn concurrent(q: &mut Queue) {
    for _ in 0..6 {
        let (x, y) = (q.new_id(), q.new_id());
        let env = |id: EnvelopeId| NewEnvelope {
            id,
            body: vec![5; 16],
            expires_at: FAR,
        };
        let (r0, r1) = tokio::join!(
            q.nodes[0].send(SID, q.cap, env(x), None, QUOTA, 1),
            q.nodes[1].send(SID, q.cap, env(y), None, QUOTA, 1),
        );
        r0.expect("concurrent send through node 0");
        r1.expect("concurrent send through node 1");
        let pending = q.nodes[0].pending(RID, 0, usize::MAX, 1).await.unwrap();
        let mut got: Vec<EnvelopeId> = pending.iter().map(|e| e.id).collect();
        got.sort_by_key(|e| e.0);
        assert_eq!(got, vec![x, y], "each concurrent send stored once");
        let (a0, a1) = tokio::join!(q.nodes[1].ack(RID, x, 1), q.nodes[0].ack(RID, y, 1));
        assert!(a0.unwrap() && a1.unwrap());
    }
    q.model.clear();
    q.check().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_with_warm_caches_lose_duplicate_and_wrongly_refuse_nothing() {
    let cluster = NatsCluster::start(3);
    let mut q = setup(&cluster).await;
    // Warm both caches.
    q.check().await;
    for n in [0, 1] {
        assert!(q.nodes[n].queue(RID).await.unwrap().is_some());
    }
    interleave(&mut q).await;
    replace_cap(&mut q).await;
    concurrent(&mut q).await;
    drop(cluster);
}
