//! Round trips and rejections for the payload, message-record and metadata encodings.

use hush_protocol::ids::{EnvelopeId, SendCapability, SenderId};
use proptest::prelude::*;

use super::limits::{MAX_SEEN_IDS, MAX_TEXT_LEN, MAX_TIMER_SECS};
use super::*;

const FP: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

fn text(body: &str) -> Payload {
    Payload::Text {
        id: MessageId([0xA5; 16]),
        sent_at: 1_700_000_000,
        timer: Some(3600),
        view_once: true,
        body: MessageBody::new(body),
    }
}

fn every_kind() -> Vec<Payload> {
    vec![
        text("héllo"),
        text(""),
        Payload::SetTimer {
            timer: None,
            set_at: 5,
        },
        Payload::SetTimer {
            timer: Some(MAX_TIMER_SECS),
            set_at: u64::MAX,
        },
        Payload::Unsend {
            id: MessageId([1; 16]),
        },
        Payload::Burn,
        Payload::Introduce {
            relay: format!("hush://relay.example:4433#{FP}").parse().unwrap(),
            sender_id: SenderId::from_bytes([2; 16]),
            send_cap: SendCapability::from_bytes([3; 32]),
        },
    ]
}

fn record() -> MessageRecord {
    MessageRecord {
        id: MessageId([7; 16]),
        direction: Direction::Sent,
        sent_at: 10,
        received_at: 10,
        timer: Some(60),
        view_once: false,
        envelope_id: Some(EnvelopeId::from_bytes([8; 16])),
        displayed_at: Some(11),
        body: Some(MessageBody::new("kept")),
        file: None,
        group: None,
    }
}

fn meta() -> ConversationMeta {
    use rand_chacha::rand_core::SeedableRng;
    let mut m = ConversationMeta::new(3600, &mut rand_chacha::ChaCha20Rng::seed_from_u64(3));
    m.timer = Some(30);
    m.timer_set_at = 99;
    m.remember(MessageId([1; 16]), 500, false);
    m.remember(MessageId([2; 16]), 600, true);
    m
}

#[test]
fn every_payload_kind_round_trips() {
    for p in every_kind() {
        let bytes = p.encode();
        assert_eq!(bytes[0], limits::ENCODING_VERSION);
        assert_eq!(bytes[1], p.tag());
        assert_eq!(Payload::decode(&bytes), Ok(p));
    }
}

#[test]
fn the_text_format_is_frozen() {
    let bytes = Payload::SetTimer {
        timer: Some(60),
        set_at: 2,
    }
    .encode();
    assert_eq!(
        bytes.as_slice(),
        [1, 2, 1, 0, 0, 0, 0, 0, 0, 0, 60, 0, 0, 0, 0, 0, 0, 0, 2]
    );
    let bytes = text("hi").encode();
    let mut want = vec![1, 1];
    want.extend([0xA5; 16]);
    want.extend(1_700_000_000u64.to_be_bytes());
    want.extend([1, 0, 0, 0, 0, 0, 0, 0x0E, 0x10, 1, 0, 0, 0, 2, b'h', b'i']);
    assert_eq!(*bytes, want);
}

#[test]
fn every_truncation_and_any_trailing_byte_is_rejected() {
    let mut encodings: Vec<Vec<u8>> = every_kind().iter().map(|p| p.encode().to_vec()).collect();
    encodings.push(record().encode());
    encodings.push(meta().encode());
    for (n, full) in encodings.iter().enumerate() {
        let decode = |b: &[u8]| match n {
            n if n < 7 => Payload::decode(b).map(|_| ()),
            7 => MessageRecord::decode(b).map(|_| ()),
            _ => ConversationMeta::decode(b).map(|_| ()),
        };
        assert_eq!(decode(full), Ok(()));
        for cut in 0..full.len() {
            assert_eq!(
                decode(&full[..cut]),
                Err(DecodeError::Truncated),
                "kind {n} cut {cut}"
            );
        }
        let mut long = full.clone();
        long.push(0);
        assert_eq!(decode(&long), Err(DecodeError::TrailingBytes));
    }
}

#[test]
fn unknown_versions_and_tags_are_rejected() {
    let mut bytes = Payload::Burn.encode();
    bytes[0] = 2;
    assert_eq!(Payload::decode(&bytes), Err(DecodeError::UnknownVersion(2)));
    for tag in [0, 11, 0xFF] {
        assert_eq!(
            Payload::decode(&[1, tag]),
            Err(DecodeError::UnknownTag(tag))
        );
    }
    let mut rec = record().encode();
    rec[0] = 0;
    assert_eq!(
        MessageRecord::decode(&rec),
        Err(DecodeError::UnknownVersion(0))
    );
}

#[test]
fn group_payloads_round_trip_and_carry_only_messages() {
    use crate::group::GroupId;
    let group = GroupId([7; 32]);
    let in_group = |p: Payload| Payload::InGroup {
        group,
        head: [9; 32],
        payload: Box::new(p),
    };
    let changes = Payload::GroupChanges {
        group,
        name: "deal team".into(),
        changes: vec![vec![1, 2, 3], vec![4; 200]],
        names: vec![([5; MEMBER_LEN], "bob".into())],
        reply: true,
    };
    for p in [
        in_group(text("to the group")),
        in_group(Payload::Unsend {
            id: MessageId([1; 16]),
        }),
        changes.clone(),
        Payload::GroupIntroduce {
            group,
            forward: true,
            member: [6; MEMBER_LEN],
            name: "dave".into(),
            invitation: "hush://invite/abc".into(),
        },
    ] {
        let bytes = p.encode();
        assert_eq!(Payload::decode(&bytes), Ok(p));
        for cut in 0..bytes.len() {
            assert!(Payload::decode(&bytes[..cut]).is_err());
        }
    }
    // Only a text, a file or an unsend travels in a group payload; no nesting.
    for inner in [Payload::Burn, in_group(text("nested")), changes.clone()] {
        let tag = inner.tag();
        assert_eq!(
            Payload::decode(&in_group(inner).encode()),
            Err(DecodeError::UnknownTag(tag))
        );
    }
    // At most MAX_GROUP_CHANGES changes, each at most one change long.
    let too_many = Payload::GroupChanges {
        group,
        name: String::new(),
        changes: vec![vec![0]; super::limits::MAX_GROUP_CHANGES + 1],
        names: Vec::new(),
        reply: false,
    };
    assert!(matches!(
        Payload::decode(&too_many.encode()),
        Err(DecodeError::TooLong { .. })
    ));
    let too_long = Payload::GroupChanges {
        group,
        name: String::new(),
        changes: vec![vec![0; crate::group::MAX_CHANGE_LEN + 1]],
        names: Vec::new(),
        reply: false,
    };
    assert!(matches!(
        Payload::decode(&too_long.encode()),
        Err(DecodeError::TooLong { .. })
    ));
    // A record remembers its group; a section out of order or repeated is refused.
    let mut r = record();
    r.group = Some(group);
    let bytes = r.encode();
    assert_eq!(MessageRecord::decode(&bytes), Ok(r));
    let mut twice = bytes.clone();
    twice.push(3);
    twice.extend_from_slice(&[7; 32]);
    assert_eq!(
        MessageRecord::decode(&twice),
        Err(DecodeError::TrailingBytes)
    );
}

/// A text payload's bytes up to (not including) the body length.
fn text_head() -> Vec<u8> {
    let bytes = text("").encode();
    bytes[..bytes.len() - 4].to_vec()
}

#[test]
fn oversize_and_malformed_fields_are_rejected() {
    // A length above the cap is refused before anything is read or allocated.
    for len in [MAX_TEXT_LEN as u32 + 1, u32::MAX] {
        let mut b = text_head();
        b.extend(len.to_be_bytes());
        let want = DecodeError::TooLong {
            len: len as usize,
            max: MAX_TEXT_LEN,
        };
        assert_eq!(Payload::decode(&b), Err(want));
    }
    // Exactly the cap is fine, and leaves room for padding and the ratchet in one envelope.
    let max = "z".repeat(MAX_TEXT_LEN);
    assert_eq!(text(&max).encode().len(), MAX_TEXT_LEN + 40);
    assert_eq!(Payload::decode(&text(&max).encode()), Ok(text(&max)));
    // Invalid UTF-8.
    let mut b = text_head();
    b.extend([0, 0, 0, 2, 0xC3, 0x28]);
    assert_eq!(Payload::decode(&b), Err(DecodeError::InvalidUtf8));
    // A boolean that is neither 0 nor 1 (view_once is the byte before the body length).
    let mut b = text("a").encode();
    let at = b.len() - 6;
    b[at] = 2;
    assert_eq!(Payload::decode(&b), Err(DecodeError::InvalidFlag));
    // Timers out of range.
    for t in [0, MAX_TIMER_SECS + 1] {
        let b = Payload::SetTimer {
            timer: Some(t),
            set_at: 0,
        }
        .encode();
        assert_eq!(Payload::decode(&b), Err(DecodeError::InvalidTimer));
    }
    // A relay address that does not parse.
    let mut b = vec![1, TAG_INTRODUCE, 0, 0, 0, 4];
    b.extend(b"nope");
    b.extend([0; 48]);
    assert_eq!(Payload::decode(&b), Err(DecodeError::InvalidRelayAddress));
}

#[test]
fn records_and_metadata_round_trip_and_reject_bad_values() {
    let mut stub = record();
    stub.direction = Direction::Received;
    stub.body = None;
    stub.envelope_id = None;
    stub.timer = None;
    for r in [record(), stub] {
        assert_eq!(MessageRecord::decode(&r.encode()), Ok(r));
    }
    assert_eq!(ConversationMeta::decode(&meta().encode()), Ok(meta()));
    let mut burned = meta();
    burned.status = Status::Burned;
    assert_eq!(ConversationMeta::decode(&burned.encode()), Ok(burned));

    let mut bad_dir = record().encode();
    bad_dir[17] = 2;
    assert_eq!(
        MessageRecord::decode(&bad_dir),
        Err(DecodeError::InvalidValue)
    );

    let good = ConversationMeta::new(3600, &mut rand::rngs::OsRng).encode();
    let mut bad_status = good.clone();
    bad_status[1] = 3;
    assert_eq!(
        ConversationMeta::decode(&bad_status),
        Err(DecodeError::InvalidValue)
    );
    let mut zero_ttl = good.clone();
    zero_ttl[2..10].copy_from_slice(&0u64.to_be_bytes());
    assert_eq!(
        ConversationMeta::decode(&zero_ttl),
        Err(DecodeError::InvalidValue)
    );

    // The count is checked against its cap and the bytes left before any entry is read.
    let count_at = good.len() - 4;
    let mut too_many = good.clone();
    too_many[count_at..].copy_from_slice(&(MAX_SEEN_IDS as u32 + 1).to_be_bytes());
    let want = DecodeError::TooMany {
        count: MAX_SEEN_IDS + 1,
        max: MAX_SEEN_IDS,
    };
    assert_eq!(ConversationMeta::decode(&too_many), Err(want));
    let mut short = good.clone();
    short[count_at..].copy_from_slice(&2u32.to_be_bytes());
    short.extend([0; 25]);
    assert_eq!(
        ConversationMeta::decode(&short),
        Err(DecodeError::Truncated)
    );
    // The same id twice.
    let mut dup = good[..count_at].to_vec();
    dup.extend(2u32.to_be_bytes());
    for _ in 0..2 {
        dup.extend([4; 16]);
        dup.extend(9u64.to_be_bytes());
        dup.push(0);
    }
    assert_eq!(
        ConversationMeta::decode(&dup),
        Err(DecodeError::InvalidValue)
    );
}

#[test]
fn debug_output_hides_text_and_capabilities() {
    let shown = format!("{:?}", text("top secret"));
    assert!(!shown.contains("top secret") && shown.contains("10 bytes"));
    let intro = format!("{:?}", every_kind().pop().unwrap());
    assert!(intro.contains("SendCapability(..)") && !intro.contains("[3, 3"));
}

proptest! {
    #[test]
    fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = Payload::decode(&bytes);
        let _ = MessageRecord::decode(&bytes);
        let _ = ConversationMeta::decode(&bytes);
    }

    #[test]
    fn any_text_round_trips(
        id in any::<[u8; 16]>(),
        sent_at in any::<u64>(),
        timer in proptest::option::of(1..=MAX_TIMER_SECS),
        view_once in any::<bool>(),
        body in ".{0,200}",
    ) {
        let p = Payload::Text { id: MessageId(id), sent_at, timer, view_once, body: MessageBody::new(body) };
        prop_assert_eq!(Payload::decode(&p.encode()), Ok(p));
    }

    #[test]
    fn mutated_encodings_never_panic(index in any::<prop::sample::Index>(), byte in any::<u8>()) {
        for p in every_kind() {
            let mut b = p.encode();
            let i = index.index(b.len());
            b[i] = byte;
            let _ = Payload::decode(&b);
        }
    }
}

/// A version 1 metadata record, as written before the seen key: raw ids in the seen set.
fn v1_meta(ids: &[([u8; 16], u64, bool)]) -> Vec<u8> {
    let mut w = hush_protocol::codec::Writer::with_capacity(64);
    w.u8(limits::ENCODING_VERSION);
    w.u8(0);
    w.u64(3600);
    w.opt_u64(Some(30));
    w.u64(99);
    w.u32(ids.len() as u32);
    for (id, until, unsent) in ids {
        w.raw(id);
        w.u64(*until);
        w.bool(*unsent);
    }
    w.finish()
}

fn holds(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn the_seen_set_holds_keyed_tags_never_ids() {
    let id = MessageId([0x5A; 16]);
    let mut m = ConversationMeta::new(3600, &mut rand::rngs::OsRng);
    m.remember(id, 500, true);
    let bytes = m.encode();
    assert_eq!(bytes[0], META_VERSION);
    assert!(!holds(&bytes, id.as_bytes()), "the raw id is not stored");
    let back = ConversationMeta::decode(&bytes).unwrap();
    assert_eq!(back.seen_entry(&id).map(|e| e.unsent), Some(true));
    assert_eq!(back, m);
    // Another conversation's key gives another tag for the same id.
    let other = ConversationMeta::new(3600, &mut rand::rngs::OsRng);
    assert_ne!(other.seen_key.tag(&id), m.seen_key.tag(&id));
    assert!(format!("{:?}", m.seen_key).starts_with("SeenKey"));
}

#[test]
fn a_version_1_meta_with_raw_ids_loads_and_is_rewritten_without_them() {
    let (a, b) = ([0x11; 16], [0x22; 16]);
    let old = v1_meta(&[(a, 500, false), (b, 600, true)]);
    let m = ConversationMeta::decode(&old).unwrap();
    assert_eq!((m.timer, m.timer_set_at, m.relay_ttl), (Some(30), 99, 3600));
    assert_eq!(m.seen_entry(&MessageId(a)).map(|e| e.until), Some(500));
    assert_eq!(m.seen_entry(&MessageId(b)).map(|e| e.unsent), Some(true));
    assert!(m.seen_entry(&MessageId([0x33; 16])).is_none());
    let new = m.encode();
    assert!(!holds(&new, &a) && !holds(&new, &b));
    assert_eq!(ConversationMeta::decode(&new).unwrap(), m);
    // A damaged old record is still an error, not a panic.
    assert_eq!(
        ConversationMeta::decode(&old[..old.len() - 1]),
        Err(DecodeError::Truncated)
    );
}

#[test]
fn the_encoded_text_is_zeroizing_and_its_buffer_never_grows() {
    // `encode` returns `Zeroizing`, and a buffer that grew would have left a freed copy of the
    // text behind: the largest text fits the buffer it started with.
    let max = "x".repeat(MAX_TEXT_LEN);
    let encoded: zeroize::Zeroizing<Vec<u8>> = text(&max).encode();
    assert_eq!(encoded.capacity(), hush_protocol::limits::MAX_ENVELOPE_LEN);
    assert!(encoded.len() <= encoded.capacity());
}
