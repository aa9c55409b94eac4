//! Round-trip and rejection tests for the `message` module.

use crate::codec::DecodeError;
use crate::error::ErrorCode;
use crate::frame::FrameDecoder;
use crate::ids::{EnvelopeId, RecipientId, SendCapability, SenderId};
use crate::limits::MAX_FRAME_LEN;
use crate::limits::{MAX_ACK_BATCH, MAX_PUSH_BATCH};
use crate::message::{Push, PushedEnvelope, Reply, Request, ServerFrame};

fn all_requests() -> Vec<Request> {
    let cap = || SendCapability::from_bytes([3; 32]);
    vec![
        Request::CreateQueue {
            recipient_key: [1; 32],
            send_cap: cap(),
            signature: [2; 64],
        },
        Request::Send {
            sender_id: SenderId([4; 16]),
            send_cap: cap(),
            ttl_secs: 60,
            new_send_cap: Some(SendCapability::from_bytes([5; 32])),
            body: b"ciphertext".to_vec(),
        },
        Request::Send {
            sender_id: SenderId([4; 16]),
            send_cap: cap(),
            ttl_secs: 0,
            new_send_cap: None,
            body: vec![],
        },
        Request::Retract {
            sender_id: SenderId([4; 16]),
            send_cap: cap(),
            envelope_id: EnvelopeId([6; 16]),
        },
        Request::Subscribe {
            recipient_id: RecipientId([7; 16]),
            signature: [8; 64],
        },
        Request::Ack {
            recipient_id: RecipientId([7; 16]),
            envelope_id: EnvelopeId([6; 16]),
        },
        Request::AckMany {
            recipient_id: RecipientId([7; 16]),
            envelope_ids: vec![EnvelopeId([6; 16]), EnvelopeId([5; 16])],
        },
        Request::Resecure {
            recipient_id: RecipientId([7; 16]),
            new_send_cap: cap(),
            signature: [9; 64],
        },
        Request::DeleteQueue {
            recipient_id: RecipientId([7; 16]),
            signature: [9; 64],
        },
        Request::Ping,
        Request::Hello { token: None },
        Request::Hello {
            token: Some("a-create-token-0123".parse().unwrap()),
        },
        Request::NextCert,
    ]
}

fn frames(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut dec = FrameDecoder::default();
    dec.feed(bytes);
    let mut out = Vec::new();
    while let Some(f) = dec.pop().unwrap() {
        out.push(f.to_vec());
    }
    out
}

#[test]
fn every_request_round_trips_and_rejects_every_truncation() {
    for (i, req) in all_requests().into_iter().enumerate() {
        let mut wire = Vec::new();
        req.encode_frame(i as u32, &mut wire);
        let body = frames(&wire).remove(0);
        let (id, back) = Request::decode_frame(&body).unwrap();
        assert_eq!(id, i as u32);
        let mut again = Vec::new();
        back.encode_frame(i as u32, &mut again);
        assert_eq!(again, wire, "{}", req.kind());
        for cut in 0..body.len() {
            assert!(Request::decode_frame(&body[..cut]).is_err(), "{cut}");
        }
        let mut long = body.clone();
        long.push(0);
        assert_eq!(
            Request::decode_frame(&long).unwrap_err().1,
            DecodeError::TrailingBytes
        );
        if let Some(sig) = req.signature() {
            assert!(body.ends_with(sig));
            assert_eq!(&body[4..body.len() - 64], &req.signed_part()[..]);
        }
    }
}

#[test]
fn unknown_tags_and_oversize_bodies_are_typed_errors() {
    assert_eq!(
        Request::decode_frame(&[0, 0, 0, 9, 0xEE]).unwrap_err(),
        (Some(9), DecodeError::UnknownTag(0xEE))
    );
    let mut body = vec![0, 0, 0, 1, 0x02];
    body.extend([0; 16 + 32 + 4 + 1]);
    body.extend(((MAX_FRAME_LEN + 1) as u32).to_be_bytes());
    assert!(matches!(
        Request::decode_frame(&body).unwrap_err().1,
        DecodeError::TooLong { .. }
    ));
    assert_eq!(
        ServerFrame::decode(&[0x02, 0, 0, 0, 1, 0, 99]),
        Err(DecodeError::InvalidValue)
    );
}

#[test]
fn server_frames_round_trip() {
    let all = vec![
        ServerFrame::Response {
            request_id: 1,
            result: Ok(Reply::Created {
                recipient_id: RecipientId([1; 16]),
                sender_id: SenderId([2; 16]),
            }),
        },
        ServerFrame::Response {
            request_id: 2,
            result: Ok(Reply::Sent {
                envelope_id: EnvelopeId([3; 16]),
            }),
        },
        ServerFrame::Response {
            request_id: 3,
            result: Ok(Reply::Retracted { was_pending: true }),
        },
        ServerFrame::Response {
            request_id: 4,
            result: Ok(Reply::Done),
        },
        ServerFrame::Response {
            request_id: 5,
            result: Ok(Reply::Pong),
        },
        ServerFrame::Response {
            request_id: 6,
            result: Err(ErrorCode::QueueFull),
        },
        ServerFrame::Response {
            request_id: 7,
            result: Ok(Reply::Welcome(crate::RelayInfo {
                max_ttl_secs: 86_400,
                max_envelope_len: 65_536,
                queue_max_messages: 10,
                queue_max_bytes: 1 << 20,
                blob_max_bytes: 1 << 30,
                blob_ttl_secs: 3_600,
                may_create: false,
            })),
        },
        ServerFrame::Response {
            request_id: 8,
            result: Err(ErrorCode::Forbidden),
        },
        ServerFrame::Response {
            request_id: 9,
            result: Ok(Reply::NextCert(None)),
        },
        ServerFrame::Response {
            request_id: 10,
            result: Ok(Reply::NextCert(Some(crate::CertRotation {
                fingerprint: crate::Fingerprint([0xab; 32]),
                switch_at: 1_800_000_000,
            }))),
        },
        ServerFrame::Push(Push::Envelope {
            recipient_id: RecipientId([1; 16]),
            envelope_id: EnvelopeId([3; 16]),
            expires_at: 1_700_000_000,
            body: vec![9; 100],
        }),
        ServerFrame::Push(Push::Envelopes {
            recipient_id: RecipientId([1; 16]),
            envelopes: vec![
                PushedEnvelope {
                    envelope_id: EnvelopeId([3; 16]),
                    expires_at: 1_700_000_000,
                    body: vec![9; 100],
                },
                PushedEnvelope {
                    envelope_id: EnvelopeId([4; 16]),
                    expires_at: 1_700_000_001,
                    body: vec![],
                },
            ],
        }),
        ServerFrame::Push(Push::QueueGone {
            recipient_id: RecipientId([1; 16]),
        }),
        ServerFrame::Push(Push::Drained {
            recipient_id: RecipientId([2; 16]),
        }),
    ];
    let mut wire = Vec::new();
    for f in &all {
        f.encode_frame(&mut wire);
    }
    let back: Vec<_> = frames(&wire)
        .iter()
        .map(|b| ServerFrame::decode(b).unwrap())
        .collect();
    assert_eq!(back, all);
    for body in frames(&wire) {
        for cut in 0..body.len() {
            assert!(ServerFrame::decode(&body[..cut]).is_err());
        }
    }
}

/// An `AckMany` body (request id 1) listing `count` ids, with `ids` ids actually present.
fn ack_many_body(count: u16, ids: usize) -> Vec<u8> {
    let mut body = vec![0, 0, 0, 1, 0x10];
    body.extend([7; 16]);
    body.extend(count.to_be_bytes());
    body.extend(std::iter::repeat_n(6u8, 16 * ids));
    body
}

#[test]
fn ack_many_needs_one_to_max_ids() {
    let most = u16::try_from(MAX_ACK_BATCH).unwrap();
    let (_, ok) = Request::decode_frame(&ack_many_body(most, MAX_ACK_BATCH)).unwrap();
    assert!(
        matches!(ok, Request::AckMany { envelope_ids, .. } if envelope_ids.len() == MAX_ACK_BATCH)
    );
    assert_eq!(
        Request::decode_frame(&ack_many_body(0, 0)).unwrap_err(),
        (Some(1), DecodeError::InvalidValue)
    );
    assert_eq!(
        Request::decode_frame(&ack_many_body(most + 1, MAX_ACK_BATCH + 1)).unwrap_err(),
        (
            Some(1),
            DecodeError::TooLong {
                len: MAX_ACK_BATCH + 1,
                max: MAX_ACK_BATCH
            }
        )
    );
    // A count larger than the ids that follow is a truncation, found before any allocation
    // beyond the count's cap.
    assert_eq!(
        Request::decode_frame(&ack_many_body(3, 2)).unwrap_err(),
        (Some(1), DecodeError::Truncated)
    );
}

#[test]
fn envelope_batches_need_one_to_max_envelopes_and_unbatch_in_order() {
    let mut head = vec![0x03, 0x04];
    head.extend([1; 16]);
    let with_count = |count: u16| {
        let mut b = head.clone();
        b.extend(count.to_be_bytes());
        b
    };
    assert_eq!(
        ServerFrame::decode(&with_count(0)),
        Err(DecodeError::InvalidValue)
    );
    let over = u16::try_from(MAX_PUSH_BATCH + 1).unwrap();
    assert!(matches!(
        ServerFrame::decode(&with_count(over)),
        Err(DecodeError::TooLong { .. })
    ));
    assert_eq!(
        ServerFrame::decode(&with_count(1)),
        Err(DecodeError::Truncated)
    );
    let rid = RecipientId([1; 16]);
    let batch = Push::Envelopes {
        recipient_id: rid,
        envelopes: (0..3u8)
            .map(|i| PushedEnvelope {
                envelope_id: EnvelopeId([i; 16]),
                expires_at: u64::from(i),
                body: vec![i; usize::from(i)],
            })
            .collect(),
    };
    let singles: Vec<Push> = (0..3u8)
        .map(|i| Push::Envelope {
            recipient_id: rid,
            envelope_id: EnvelopeId([i; 16]),
            expires_at: u64::from(i),
            body: vec![i; usize::from(i)],
        })
        .collect();
    assert_eq!(batch.unbatch(), singles);
    let gone = Push::QueueGone { recipient_id: rid };
    assert_eq!(gone.clone().unbatch(), vec![gone]);
}

proptest::proptest! {
    #[test]
    fn decoders_never_panic_on_arbitrary_bytes(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
        let _ = Request::decode_frame(&bytes);
        let _ = ServerFrame::decode(&bytes);
        let mut dec = FrameDecoder::new(256);
        for chunk in bytes.chunks(7) {
            dec.feed(chunk);
            while let Ok(Some(body)) = dec.pop() {
                let _ = Request::decode_frame(body);
            }
        }
    }

    #[test]
    fn send_requests_round_trip(
        id in proptest::prelude::any::<u32>(),
        ttl in proptest::prelude::any::<u32>(),
        body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2000),
        replace in proptest::prelude::any::<bool>(),
    ) {
        let req = Request::Send {
            sender_id: SenderId([1; 16]),
            send_cap: SendCapability::from_bytes([2; 32]),
            ttl_secs: ttl,
            new_send_cap: replace.then(|| SendCapability::from_bytes([3; 32])),
            body: body.clone(),
        };
        let mut wire = Vec::new();
        req.encode_frame(id, &mut wire);
        let mut dec = FrameDecoder::default();
        dec.feed(&wire);
        let frame = dec.pop().unwrap().unwrap().to_vec();
        let (got_id, back) = Request::decode_frame(&frame).unwrap();
        proptest::prop_assert_eq!(got_id, id);
        match back {
            Request::Send { ttl_secs, new_send_cap, body: got, .. } => {
                proptest::prop_assert_eq!(ttl_secs, ttl);
                proptest::prop_assert_eq!(new_send_cap.is_some(), replace);
                proptest::prop_assert_eq!(got, body);
            }
            other => proptest::prop_assert!(false, "decoded {:?}", other.kind()),
        }
    }
}
