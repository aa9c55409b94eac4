//! A client that stops reading its stream stalls only its own pushes: senders to its queue are
//! still answered, and other recipients still receive.

use ed25519_dalek::Signer;
use hush_protocol::auth::{signing_input, EXPORTER_LABEL};
use hush_protocol::Request;
use hush_server::client::client_config;
use hush_tests::{cap, envelope, key, TestRelay};

#[tokio::test]
async fn a_reader_that_stops_reading_stalls_only_itself() {
    let relay = TestRelay::start(|_| {});
    let (owner, sender) = (relay.client().await, relay.client().await);
    let (k, c) = (key(), cap());
    let (stalled_rid, stalled_sid) = owner.create_queue(&k, &c).await.unwrap();
    let (live_rid, live_sid) = owner.create_queue(&k, &c).await.unwrap();

    // A raw connection subscribes to the first queue and then never reads again.
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
    let (mut send, _recv_never_read) = conn.open_bi().await.unwrap();
    let mut req = Request::Subscribe {
        recipient_id: stalled_rid,
        signature: [0; 64],
    };
    let sig = k.sign(&signing_input(&exporter, 1, &req.signed_part()));
    if let Some(s) = req.signature_mut() {
        *s = sig.to_bytes();
    }
    let mut frame = Vec::new();
    req.encode_frame(1, &mut frame);
    send.write_all(&frame).await.unwrap();

    // 8 MiB for the stalled reader: more than its QUIC windows and the relay's outgoing queue.
    for i in 0..128u32 {
        let mut body = vec![0; 64 * 1024];
        body[..4].copy_from_slice(&i.to_be_bytes());
        sender.send(stalled_sid, &c, 600, None, body).await.unwrap();
    }
    // Everyone else is still served.
    owner.subscribe(&k, live_rid).await.unwrap();
    sender
        .send(live_sid, &c, 600, None, b"live".to_vec())
        .await
        .unwrap();
    assert_eq!(envelope(&owner).await.1, b"live");

    // Nothing was lost: a fresh subscription receives the whole backlog in order.
    drop(send);
    conn.close(0u32.into(), b"");
    let fresh = relay.client().await;
    fresh.subscribe(&k, stalled_rid).await.unwrap();
    for i in 0..128u32 {
        assert_eq!(envelope(&fresh).await.1[..4], i.to_be_bytes());
    }
    relay.stop().await;
}
