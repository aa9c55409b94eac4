//! Protocol versions between clients and relays. The version is the ALPN value (`hush/2`, and
//! `hush/1` which current relays still serve and current clients still offer); a client and a
//! relay that share none fail the handshake, and the client says so in those words (not as an
//! unreachable relay). Within `hush/1`, `Hello` is an addition both sides may lack: a client
//! from before it works against a current relay, and a current client against a relay from
//! before it (`relay_limits.rs` covers that direction with whole clients). `hush/2` adds
//! batched acks and batched pushes; the raw connections here read the frames themselves, to
//! see what each version puts on the wire.

use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::{Signer, SigningKey};
use hush_client::net::{client_config_with_alpn, RelayCallError, RelayClient};
use hush_client::store::KeySource;
use hush_client::{Client, ClientError};
use hush_protocol::auth::{signing_input, WireVersion, ALPN, ALPN_V1, EXPORTER_LABEL};
use hush_protocol::{
    EnvelopeId, ErrorCode, FrameDecoder, Push, RecipientId, RelayAddress, Reply, Request,
    ServerFrame,
};
use hush_server::tls;
use hush_tests::clients::options;
use hush_tests::{cap, envelope, key, TestRelay};

#[tokio::test]
async fn a_client_of_another_version_is_told_so_and_the_relay_serves_on() {
    let relay = TestRelay::start(|_| {});
    let addr = relay.address();
    let sock = relay.handle.local_addr();
    for alpn in [&b"hush/0"[..], b"hush/3"] {
        let other = client_config_with_alpn(addr.fingerprint, alpn).unwrap();
        let err = RelayClient::connect_with(sock, &addr.host, other)
            .await
            .unwrap_err();
        assert_eq!(err, RelayCallError::Version);
        assert!(err.to_string().contains("protocol version"), "{err}");
    }
    let ok = relay.client().await;
    assert_eq!(ok.call(Request::Ping).await, Ok(Reply::Pong));
}

/// A relay that speaks only `hush/3`, with a certificate of its own; its address pins it.
async fn newer_relay(dir: &std::path::Path) -> (RelayAddress, tokio::task::JoinHandle<()>) {
    let identity = tls::load_or_generate(dir, &["localhost".to_owned()]).unwrap();
    let fingerprint = identity.fingerprint;
    let mut crypto = tls::server_crypto(identity).unwrap();
    crypto.alpn_protocols = vec![b"hush/3".to_vec()];
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(crypto).unwrap();
    let server = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    let endpoint = quinn::Endpoint::server(server, "127.0.0.1:0".parse().unwrap()).unwrap();
    let port = endpoint.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        while let Some(incoming) = endpoint.accept().await {
            // The handshake fails for want of a shared version; nothing more to serve.
            let _ = incoming.await;
        }
    });
    let address = RelayAddress::new("127.0.0.1", port, fingerprint);
    (address, task)
}

#[tokio::test]
async fn a_relay_of_a_newer_version_is_a_clear_error_for_this_client() {
    let dir = tempfile::tempdir().unwrap();
    let (address, task) = newer_relay(dir.path()).await;
    assert_eq!(
        RelayClient::connect(&address).await.unwrap_err(),
        RelayCallError::Version
    );
    let home = tempfile::tempdir().unwrap();
    let client = Client::init_with(
        home.path(),
        "x",
        address.clone(),
        KeySource::KeyFile,
        options(),
    )
    .await
    .unwrap();
    let err = client.invite("y").await.unwrap_err();
    assert!(matches!(err, ClientError::RelayVersion { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains(&address.to_string()) && text.contains("version"),
        "{text}"
    );
    client.close().await;
    task.abort();
}

#[tokio::test]
async fn a_client_from_before_hello_uses_every_queue_request_as_before() {
    let relay = TestRelay::start(|_| {});
    // Neither connection ever says Hello.
    let (owner, sender) = (relay.client().await, relay.client().await);
    let (k, c) = (key(), cap());
    let (rid, sid) = owner.create_queue(&k, &c).await.unwrap();
    owner.subscribe(&k, rid).await.unwrap();
    assert!(matches!(
        hush_tests::any_push(&owner).await,
        Push::Drained { .. }
    ));
    sender
        .send(sid, &c, 0, None, b"old".to_vec())
        .await
        .unwrap();
    let (eid, body) = envelope(&owner).await;
    assert_eq!(body, b"old");
    owner.ack(rid, eid).await.unwrap();
    owner.delete_queue(&k, rid).await.unwrap();
    // Every answer an older client can get is a code it knows (1 to 15).
    let err = sender.send(sid, &c, 0, None, b"gone".to_vec()).await;
    assert_eq!(err, Err(RelayCallError::Relay(ErrorCode::Auth)));
}

/// How long a raw connection waits for the relay's next frame before the test fails.
const FRAME_DEADLINE: Duration = Duration::from_secs(10);

/// A connection that offers exactly one ALPN value and reads the relay's frames one by one.
struct RawWire {
    _endpoint: quinn::Endpoint,
    conn: quinn::Connection,
    send: quinn::SendStream,
    recv: quinn::RecvStream,
    decoder: FrameDecoder,
    exporter: [u8; 32],
    next_id: u32,
}

impl RawWire {
    async fn open(relay: &TestRelay, alpn: &[u8]) -> RawWire {
        let addr = relay.address();
        let endpoint = quinn::Endpoint::client(([127, 0, 0, 1], 0).into()).unwrap();
        let config = client_config_with_alpn(addr.fingerprint, alpn).unwrap();
        let sock = relay.handle.local_addr();
        let conn = endpoint
            .connect_with(config, sock, &addr.host)
            .unwrap()
            .await
            .unwrap();
        let mut exporter = [0u8; 32];
        conn.export_keying_material(&mut exporter, EXPORTER_LABEL, b"")
            .unwrap();
        let (send, recv) = conn.open_bi().await.unwrap();
        RawWire {
            _endpoint: endpoint,
            conn,
            send,
            recv,
            decoder: FrameDecoder::default(),
            exporter,
            next_id: 1,
        }
    }

    /// Writes `req` (signed with `key` if given) and returns its request id.
    async fn request(&mut self, mut req: Request, key: Option<&SigningKey>) -> u32 {
        let id = self.next_id;
        self.next_id += 1;
        if let Some(key) = key {
            let sig = key.sign(&signing_input(&self.exporter, id, &req.signed_part()));
            *req.signature_mut().unwrap() = sig.to_bytes();
        }
        let mut frame = Vec::new();
        req.encode_frame(id, &mut frame);
        self.send.write_all(&frame).await.unwrap();
        id
    }

    /// The relay's next frame.
    async fn frame(&mut self) -> ServerFrame {
        loop {
            if let Some(body) = self.decoder.pop().unwrap() {
                return ServerFrame::decode(body).unwrap();
            }
            let chunk = tokio::time::timeout(FRAME_DEADLINE, self.recv.read_chunk(65_536, true))
                .await
                .expect("a frame before the deadline")
                .unwrap()
                .expect("the relay's stream is open");
            self.decoder.feed(&chunk.bytes);
        }
    }

    /// Sends `req` and returns the answer to it (no push may come in between).
    async fn call(&mut self, req: Request, key: Option<&SigningKey>) -> Result<Reply, ErrorCode> {
        let id = self.request(req, key).await;
        match self.frame().await {
            ServerFrame::Response { request_id, result } if request_id == id => result,
            other => panic!("expected the answer to {id}, got {other:?}"),
        }
    }

    /// Every push up to and including `Drained`, as the frames they came in.
    async fn pushes_until_drained(&mut self) -> Vec<Push> {
        let mut out = Vec::new();
        loop {
            match self.frame().await {
                ServerFrame::Push(p @ Push::Drained { .. }) => {
                    out.push(p);
                    return out;
                }
                ServerFrame::Push(p) => out.push(p),
                other => panic!("expected a push, got {other:?}"),
            }
        }
    }
}

/// A queue on `wire` with three envelopes from another client waiting before it subscribes;
/// returns the queue, its key and the pushes the subscription brought, frame by frame.
async fn backlog_of_three(
    relay: &TestRelay,
    wire: &mut RawWire,
) -> (RecipientId, SigningKey, Vec<Push>) {
    let (k, c) = (key(), cap());
    let create = Request::CreateQueue {
        recipient_key: k.verifying_key().to_bytes(),
        send_cap: c.clone(),
        signature: [0; 64],
    };
    let Ok(Reply::Created {
        recipient_id,
        sender_id,
    }) = wire.call(create, Some(&k)).await
    else {
        panic!("queue not created");
    };
    let sender = relay.client().await;
    for body in [&b"one"[..], b"two", b"three"] {
        sender
            .send(sender_id, &c, 0, None, body.to_vec())
            .await
            .unwrap();
    }
    let subscribe = Request::Subscribe {
        recipient_id,
        signature: [0; 64],
    };
    assert_eq!(wire.call(subscribe, Some(&k)).await, Ok(Reply::Done));
    (recipient_id, k, wire.pushes_until_drained().await)
}

/// The envelope ids and bodies a list of pushes carries, batches opened.
fn carried(pushes: &[Push]) -> Vec<(EnvelopeId, Vec<u8>)> {
    let opened = pushes.iter().cloned().flat_map(Push::unbatch);
    opened
        .filter_map(|p| match p {
            Push::Envelope {
                envelope_id, body, ..
            } => Some((envelope_id, body)),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_current_client_and_relay_choose_hush_2_and_a_hush_1_client_is_still_served() {
    let relay = TestRelay::start(|_| {});
    assert_eq!(relay.client().await.version(), WireVersion::V2);
    let addr = relay.address();
    let sock = relay.handle.local_addr();
    for (alpn, version) in [(ALPN, WireVersion::V2), (ALPN_V1, WireVersion::V1)] {
        let config = client_config_with_alpn(addr.fingerprint, alpn).unwrap();
        let (owner, sender) = (
            RelayClient::connect_with(sock, &addr.host, config)
                .await
                .unwrap(),
            relay.client().await,
        );
        assert_eq!(owner.version(), version);
        let (k, c) = (key(), cap());
        let (rid, sid) = owner.create_queue(&k, &c).await.unwrap();
        owner.subscribe(&k, rid).await.unwrap();
        assert!(matches!(
            hush_tests::any_push(&owner).await,
            Push::Drained { .. }
        ));
        for body in [&b"a"[..], b"b", b"c"] {
            sender.send(sid, &c, 0, None, body.to_vec()).await.unwrap();
        }
        // The same pushes and the same acks in both versions, batched on the wire or not.
        let mut eids = Vec::new();
        for want in [&b"a"[..], b"b", b"c"] {
            let (eid, body) = envelope(&owner).await;
            assert_eq!(body, want);
            eids.push(eid);
        }
        let acks = tokio::join!(
            owner.ack(rid, eids[0]),
            owner.ack(rid, eids[1]),
            owner.ack(rid, eids[2])
        );
        assert_eq!(acks, (Ok(()), Ok(()), Ok(())));
        owner.delete_queue(&k, rid).await.unwrap();
    }
}

#[tokio::test]
async fn hush_2_pushes_a_backlog_in_one_frame_and_acks_it_in_one_request() {
    let relay = TestRelay::start(|_| {});
    let mut wire = RawWire::open(&relay, ALPN).await;
    let (rid, k, pushes) = backlog_of_three(&relay, &mut wire).await;
    // One batch, then Drained.
    assert_eq!(pushes.len(), 2, "{pushes:?}");
    assert!(matches!(&pushes[0], Push::Envelopes { envelopes, .. } if envelopes.len() == 3));
    let got = carried(&pushes);
    let bodies: Vec<&[u8]> = got.iter().map(|(_, b)| b.as_slice()).collect();
    assert_eq!(bodies, [&b"one"[..], b"two", b"three"]);
    let ack_many = Request::AckMany {
        recipient_id: rid,
        envelope_ids: got.iter().map(|(e, _)| *e).collect(),
    };
    assert_eq!(wire.call(ack_many, None).await, Ok(Reply::Done));
    // Acked for good: a later subscription finds nothing waiting.
    wire.conn.close(0u32.into(), b"");
    let mut again = RawWire::open(&relay, ALPN).await;
    let not_mine = Request::AckMany {
        recipient_id: rid,
        envelope_ids: vec![got[0].0],
    };
    assert_eq!(
        again.call(not_mine, None).await,
        Err(ErrorCode::NotSubscribed)
    );
    let subscribe = Request::Subscribe {
        recipient_id: rid,
        signature: [0; 64],
    };
    assert_eq!(again.call(subscribe, Some(&k)).await, Ok(Reply::Done));
    let left = again.pushes_until_drained().await;
    assert!(
        matches!(left.as_slice(), [Push::Drained { .. }]),
        "{left:?}"
    );
}

#[tokio::test]
async fn hush_1_gets_one_frame_per_envelope_and_ack_many_is_malformed_as_on_an_old_relay() {
    let relay = TestRelay::start(|_| {});
    let mut wire = RawWire::open(&relay, ALPN_V1).await;
    let (rid, _, pushes) = backlog_of_three(&relay, &mut wire).await;
    assert_eq!(pushes.len(), 4, "{pushes:?}");
    assert!(pushes[..3]
        .iter()
        .all(|p| matches!(p, Push::Envelope { .. })));
    let got = carried(&pushes);
    let ack_many = Request::AckMany {
        recipient_id: rid,
        envelope_ids: got.iter().map(|(e, _)| *e).collect(),
    };
    assert_eq!(wire.call(ack_many, None).await, Err(ErrorCode::Malformed));
    // The connection goes on, and its acks are one envelope each.
    assert_eq!(wire.call(Request::Ping, None).await, Ok(Reply::Pong));
    for (envelope_id, _) in got {
        let ack = Request::Ack {
            recipient_id: rid,
            envelope_id,
        };
        assert_eq!(wire.call(ack, None).await, Ok(Reply::Done));
    }
}
