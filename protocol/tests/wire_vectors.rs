//! Known-answer vectors that freeze the wire format: `hush/1`, and `hush/2`, which adds
//! `request/ack_many` and `server/push_envelopes` and changes nothing else.
//!
//! `tests/vectors/wire.json` holds the exact bytes of one frame of every kind. A change to the
//! encoding fails this test; a deliberate change is a new protocol version (a new ALPN value)
//! and new vectors, written with `HUSH_WRITE_VECTORS=1 cargo test -p hush-protocol`.

use hush_protocol::auth::signing_input;
use hush_protocol::{
    BlobCapability, BlobId, EnvelopeId, ErrorCode, Push, PushedEnvelope, RecipientId, RelayInfo,
    Reply, Request, SendCapability, SenderId, ServerFrame,
};

const PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/wire.json");

fn cap(b: u8) -> SendCapability {
    SendCapability::from_bytes([b; 32])
}

fn requests() -> Vec<(&'static str, u32, Request)> {
    vec![
        (
            "create_queue",
            1,
            Request::CreateQueue {
                recipient_key: [0x11; 32],
                send_cap: cap(0x22),
                signature: [0x33; 64],
            },
        ),
        (
            "send",
            2,
            Request::Send {
                sender_id: SenderId([0x44; 16]),
                send_cap: cap(0x22),
                ttl_secs: 3600,
                new_send_cap: None,
                body: b"ct".to_vec(),
            },
        ),
        (
            "send_replacing_cap",
            3,
            Request::Send {
                sender_id: SenderId([0x44; 16]),
                send_cap: cap(0x22),
                ttl_secs: 0,
                new_send_cap: Some(cap(0x55)),
                body: vec![],
            },
        ),
        (
            "retract",
            4,
            Request::Retract {
                sender_id: SenderId([0x44; 16]),
                send_cap: cap(0x22),
                envelope_id: EnvelopeId([0x66; 16]),
            },
        ),
        (
            "subscribe",
            5,
            Request::Subscribe {
                recipient_id: RecipientId([0x77; 16]),
                signature: [0x33; 64],
            },
        ),
        (
            "ack",
            6,
            Request::Ack {
                recipient_id: RecipientId([0x77; 16]),
                envelope_id: EnvelopeId([0x66; 16]),
            },
        ),
        (
            "resecure",
            7,
            Request::Resecure {
                recipient_id: RecipientId([0x77; 16]),
                new_send_cap: cap(0x55),
                signature: [0x33; 64],
            },
        ),
        (
            "delete_queue",
            8,
            Request::DeleteQueue {
                recipient_id: RecipientId([0x77; 16]),
                signature: [0x33; 64],
            },
        ),
        ("ping", 9, Request::Ping),
        ("hello", 20, Request::Hello { token: None }),
        (
            "hello_token",
            21,
            Request::Hello {
                token: Some("0123456789abcdef-tok".parse().unwrap()),
            },
        ),
        (
            "ack_many",
            15,
            Request::AckMany {
                recipient_id: RecipientId([0x77; 16]),
                envelope_ids: vec![EnvelopeId([0x66; 16]), EnvelopeId([0x65; 16])],
            },
        ),
        (
            "blob_create",
            10,
            Request::BlobCreate {
                write_cap: BlobCapability::from_bytes([0x88; 32]),
                read_cap: BlobCapability::from_bytes([0x99; 32]),
                total_len: 200 * 1024 * 1024,
                ttl_secs: 172_800,
            },
        ),
        (
            "blob_write",
            11,
            Request::BlobWrite {
                blob_id: BlobId([0xBB; 16]),
                write_cap: BlobCapability::from_bytes([0x88; 32]),
                offset: 65_536,
                data: b"chunk".to_vec(),
            },
        ),
        (
            "blob_status",
            12,
            Request::BlobStatus {
                blob_id: BlobId([0xBB; 16]),
                cap: BlobCapability::from_bytes([0x99; 32]),
            },
        ),
        (
            "blob_read",
            13,
            Request::BlobRead {
                blob_id: BlobId([0xBB; 16]),
                read_cap: BlobCapability::from_bytes([0x99; 32]),
                offset: 131_072,
                len: 65_536,
            },
        ),
        (
            "blob_delete",
            14,
            Request::BlobDelete {
                blob_id: BlobId([0xBB; 16]),
                cap: BlobCapability::from_bytes([0x88; 32]),
            },
        ),
    ]
}

fn server_frames() -> Vec<(&'static str, ServerFrame)> {
    let resp = |id, r| ServerFrame::Response {
        request_id: id,
        result: r,
    };
    vec![
        (
            "created",
            resp(
                1,
                Ok(Reply::Created {
                    recipient_id: RecipientId([0x77; 16]),
                    sender_id: SenderId([0x44; 16]),
                }),
            ),
        ),
        (
            "sent",
            resp(
                2,
                Ok(Reply::Sent {
                    envelope_id: EnvelopeId([0x66; 16]),
                }),
            ),
        ),
        (
            "retracted",
            resp(4, Ok(Reply::Retracted { was_pending: true })),
        ),
        ("done", resp(5, Ok(Reply::Done))),
        ("pong", resp(9, Ok(Reply::Pong))),
        ("error_queue_full", resp(2, Err(ErrorCode::QueueFull))),
        (
            "blob_created",
            resp(
                10,
                Ok(Reply::BlobCreated {
                    blob_id: BlobId([0xBB; 16]),
                    expires_at: 1_800_172_800,
                }),
            ),
        ),
        (
            "blob_written",
            resp(11, Ok(Reply::BlobWritten { committed: 131_072 })),
        ),
        (
            "blob_status",
            resp(
                12,
                Ok(Reply::BlobStatus {
                    total_len: 200 * 1024 * 1024,
                    committed: 131_072,
                    expires_at: 1_800_172_800,
                }),
            ),
        ),
        (
            "blob_data",
            resp(
                13,
                Ok(Reply::BlobData {
                    data: b"chunk".to_vec(),
                }),
            ),
        ),
        ("error_no_blob", resp(14, Err(ErrorCode::NoBlob))),
        (
            "welcome",
            resp(
                20,
                Ok(Reply::Welcome(RelayInfo {
                    max_ttl_secs: 604_800,
                    max_envelope_len: 65_536,
                    queue_max_messages: 10_000,
                    queue_max_bytes: 64 << 20,
                    blob_max_bytes: 1 << 30,
                    blob_ttl_secs: 172_800,
                    may_create: true,
                })),
            ),
        ),
        (
            "error_token_required",
            resp(22, Err(ErrorCode::TokenRequired)),
        ),
        ("error_forbidden", resp(21, Err(ErrorCode::Forbidden))),
        (
            "push_envelope",
            ServerFrame::Push(Push::Envelope {
                recipient_id: RecipientId([0x77; 16]),
                envelope_id: EnvelopeId([0x66; 16]),
                expires_at: 1_800_003_600,
                body: b"ct".to_vec(),
            }),
        ),
        (
            "push_envelopes",
            ServerFrame::Push(Push::Envelopes {
                recipient_id: RecipientId([0x77; 16]),
                envelopes: vec![
                    PushedEnvelope {
                        envelope_id: EnvelopeId([0x66; 16]),
                        expires_at: 1_800_003_600,
                        body: b"ct".to_vec(),
                    },
                    PushedEnvelope {
                        envelope_id: EnvelopeId([0x65; 16]),
                        expires_at: 1_800_003_601,
                        body: b"c2".to_vec(),
                    },
                ],
            }),
        ),
        (
            "push_queue_gone",
            ServerFrame::Push(Push::QueueGone {
                recipient_id: RecipientId([0x77; 16]),
            }),
        ),
    ]
}

fn current() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (name, id, req) in requests() {
        let mut wire = Vec::new();
        req.encode_frame(id, &mut wire);
        out.push((format!("request/{name}"), hex::encode(wire)));
    }
    for (name, frame) in server_frames() {
        let mut wire = Vec::new();
        frame.encode_frame(&mut wire);
        out.push((format!("server/{name}"), hex::encode(wire)));
    }
    let subscribe = &requests()[4].2;
    let input = signing_input(&[0xAB; 32], 5, &subscribe.signed_part());
    out.push(("signing_input/subscribe".to_owned(), hex::encode(input)));
    out
}

#[test]
fn encodings_match_the_frozen_vectors() {
    let now = current();
    if std::env::var_os("HUSH_WRITE_VECTORS").is_some() {
        let map: serde_json::Map<String, serde_json::Value> = now
            .iter()
            .map(|(k, v)| (k.clone(), v.clone().into()))
            .collect();
        std::fs::write(PATH, serde_json::to_string_pretty(&map).unwrap() + "\n").unwrap();
    }
    let text = std::fs::read_to_string(PATH).expect("vectors file");
    let frozen: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(frozen.len(), now.len(), "vector set changed");
    for (name, hex) in now {
        assert_eq!(frozen[&name].as_str(), Some(hex.as_str()), "{name}");
    }
}

#[test]
fn hand_checked_vectors() {
    // Ping, request id 9: length 5, id 9, tag 0x08.
    let mut wire = Vec::new();
    Request::Ping.encode_frame(9, &mut wire);
    assert_eq!(wire, [0, 0, 0, 5, 0, 0, 0, 9, 0x08]);
    // Error QueueFull (4) for request 2: length 7, frame tag 0x02, id 2, code 4.
    let mut wire = Vec::new();
    ServerFrame::Response {
        request_id: 2,
        result: Err(ErrorCode::QueueFull),
    }
    .encode_frame(&mut wire);
    assert_eq!(wire, [0, 0, 0, 7, 0x02, 0, 0, 0, 2, 0, 4]);
}
