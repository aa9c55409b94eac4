//! The file message's encodings: payload and record round trips, truncation, the sanitised
//! name, the checked layout, and the write capability that never leaves the sender's record.

use hush_protocol::ids::{BlobCapability, BlobId};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

use super::codec::DecodeError;
use super::file::FileRef;
use super::message::{Direction, MessageRecord};
use super::payload::{MessageId, Payload};
use super::{Conversation, Effect};
use crate::files::{FileKey, NoncePrefix, Padding, PLAIN_CHUNK};

const FP: &str = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";

fn file(name: &str) -> FileRef {
    FileRef {
        relay: format!("hush://relay.example:4433#{FP}").parse().unwrap(),
        blob_id: BlobId::from_bytes([4; 16]),
        read_cap: BlobCapability::from_bytes([5; 32]),
        key: FileKey::from_bytes([6; 32]),
        nonce_prefix: NoncePrefix([7; 19]),
        digest: [8; 32],
        size: 1_000_000,
        chunk: PLAIN_CHUNK as u32,
        name: name.into(),
        expires_at: 1_900_000_000,
        write_cap: None,
        padding: Padding::None,
    }
}

fn payload(f: FileRef) -> Payload {
    Payload::File {
        id: MessageId([1; 16]),
        sent_at: 10,
        timer: Some(60),
        view_once: true,
        file: Box::new(f),
    }
}

#[test]
fn a_file_payload_round_trips_and_every_truncation_fails() {
    let p = payload(file("report.pdf"));
    let bytes = p.encode();
    assert_eq!(Payload::decode(&bytes).unwrap(), p);
    assert_eq!(p.message_id(), Some(MessageId([1; 16])));
    for cut in 0..bytes.len() {
        assert_eq!(Payload::decode(&bytes[..cut]), Err(DecodeError::Truncated));
    }
    let mut long = bytes.clone();
    long.push(0);
    assert_eq!(Payload::decode(&long), Err(DecodeError::TrailingBytes));
}

#[test]
fn a_received_name_is_sanitised_and_a_bad_layout_is_refused() {
    let decoded = Payload::decode(&payload(file("../../.ssh/id")).encode()).unwrap();
    let Payload::File { file, .. } = decoded else {
        panic!("not a file");
    };
    assert_eq!(file.name, "_.._.ssh_id");
    for chunk in [0, PLAIN_CHUNK as u32 + 1] {
        let mut bad = file.as_ref().clone();
        bad.chunk = chunk;
        assert_eq!(
            Payload::decode(&payload(bad).encode()),
            Err(DecodeError::InvalidValue)
        );
    }
    let mut huge = file.as_ref().clone();
    huge.chunk = 1;
    huge.size = u64::MAX;
    assert_eq!(
        Payload::decode(&payload(huge).encode()),
        Err(DecodeError::InvalidValue)
    );
}

#[test]
fn the_write_capability_stays_in_the_senders_record() {
    let mut conv = Conversation::new(3600, &mut rand::rngs::OsRng).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let mut mine = file("a.bin");
    mine.write_cap = Some(BlobCapability::from_bytes([9; 32]));
    let (id, effects) = conv
        .compose_file_with_timer(mine.clone(), None, false, 100, &mut rng)
        .unwrap();
    let sent = effects
        .iter()
        .find_map(|e| match e {
            Effect::SendPayload(p) => Some(p.clone()),
            _ => None,
        })
        .unwrap();
    let Payload::File { file: out, .. } = &sent else {
        panic!("not a file payload");
    };
    assert!(out.write_cap.is_none());
    assert!(!sent.encode().windows(32).any(|w| w == [9u8; 32].as_slice()));
    // The record keeps it, and its encoding round trips.
    let record = conv.message(&id).unwrap().clone();
    assert_eq!(record.file.as_deref(), Some(&mine));
    assert_eq!(MessageRecord::decode(&record.encode()).unwrap(), record);
    // The recipient drops any write capability a payload might smuggle in.
    let mut theirs = Conversation::new(3600, &mut rand::rngs::OsRng).unwrap();
    let mut smuggled = file("b.bin");
    smuggled.write_cap = Some(BlobCapability::from_bytes([9; 32]));
    theirs.receive(payload(smuggled), 100).unwrap();
    let got = theirs.message(&MessageId([1; 16])).unwrap();
    assert_eq!(got.direction, Direction::Received);
    assert!(got.file.as_ref().unwrap().write_cap.is_none());
}

#[test]
fn a_view_once_file_survives_display_and_goes_when_saved() {
    let mut conv = Conversation::new(3600, &mut rand::rngs::OsRng).unwrap();
    conv.receive(payload(file("x")), 100).unwrap();
    let id = MessageId([1; 16]);
    let shown = conv.display(id, 101).unwrap();
    assert_eq!(shown.body, None);
    assert!(conv.received_file(id, 101).is_ok());
    assert_eq!(
        conv.file_saved(id, 102).unwrap(),
        vec![Effect::DeleteMessage(id)]
    );
    assert!(conv.received_file(id, 102).is_err());
}

#[test]
fn the_padding_of_a_blob_travels_in_the_kind_tag_and_the_record_flag() {
    let mut padded = file("p.bin");
    padded.padding = Padding::Padme;
    let p = payload(padded.clone());
    let bytes = p.encode();
    assert_eq!(bytes[1], super::payload::TAG_FILE_PADDED);
    assert_eq!(Payload::decode(&bytes).unwrap(), p);
    assert_eq!(payload(file("p.bin")).encode()[1], super::payload::TAG_FILE);
    // The same fields under the two tags: only the padding differs.
    let mut unpadded = bytes.to_vec();
    unpadded[1] = super::payload::TAG_FILE;
    let Payload::File { file: back, .. } = Payload::decode(&unpadded).unwrap() else {
        panic!("not a file");
    };
    assert_eq!(back.padding, Padding::None);
    assert_eq!(
        back.layout().unwrap().blob_len(),
        back.layout().unwrap().cipher_len()
    );
    assert!(padded.layout().unwrap().blob_len() > back.layout().unwrap().cipher_len());
    // The sender's record keeps it.
    let mut conv = Conversation::new(3600, &mut rand::rngs::OsRng).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let (id, _) = conv
        .compose_file_with_timer(padded.clone(), None, false, 100, &mut rng)
        .unwrap();
    let record = conv.message(&id).unwrap().clone();
    let back = MessageRecord::decode(&record.encode()).unwrap();
    assert_eq!(back.file.unwrap().padding, Padding::Padme);
}
