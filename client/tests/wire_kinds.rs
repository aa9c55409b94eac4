//! A relay cannot tell a new contact's first message from a chat message by what it sees in the
//! clear: both have the same size for the same text, and no bit position carries the kind.
//!
//! Each test builds many messages of both kinds from seeded RNGs, as the relay would collect
//! them, and looks for what sets the kinds apart.

mod common;

use common::{invitation, rng, NOW};
use hush_client::conversation::Payload;
use hush_client::crypto::limits::{HANDSHAKE_OVERHEAD, PADDING_MARKER_LEN, WIRE_BUCKETS};
use hush_client::crypto::{accept, respond, Identity, Invitation};
use hush_protocol::limits::MAX_HOST_LEN;
use hush_protocol::{RelayAddress, SendCapability, SenderId};

/// `n` first messages and `n` chat messages (the joiner's next message), all carrying `text`.
fn samples(n: usize, text: &[u8]) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let mut rng = rng(0x5157);
    let inviter = Identity::generate(&mut rng);
    let (inv, secrets) = invitation(&inviter, &mut rng);
    let inv = Invitation::parse(&inv.encode()).unwrap();
    let (mut firsts, mut chats) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let joiner = Identity::generate(&mut rng);
        let (mut session, first) = accept(&joiner, &inv, text, &mut rng).unwrap();
        // Each is a real first message: the inviter completes it.
        assert_eq!(respond(&inviter, &secrets, &first, NOW).unwrap().2, text);
        chats.push(session.encrypt(text, &mut rng).unwrap());
        firsts.push(first);
    }
    (firsts, chats)
}

/// The bits set in every sample, and the bits clear in every sample, over `len` bytes.
fn constant_bits(samples: &[Vec<u8>], len: usize) -> (Vec<u8>, Vec<u8>) {
    let mut ones = vec![0xffu8; len];
    let mut zeros = vec![0xffu8; len];
    for s in samples {
        for i in 0..len {
            ones[i] &= s[i];
            zeros[i] &= !s[i];
        }
    }
    (ones, zeros)
}

#[test]
fn a_first_message_and_a_chat_message_with_the_same_text_have_the_same_length() {
    // The longest text a first message carries in the smallest bucket.
    let most = WIRE_BUCKETS[0] - HANDSHAKE_OVERHEAD - PADDING_MARKER_LEN;
    for text in [&b""[..], b"hi", &[0x61; 300], &vec![0x62; most]] {
        let (firsts, chats) = samples(2, text);
        for (f, c) in firsts.iter().zip(&chats) {
            assert_eq!(f.len(), c.len(), "text of {} bytes", text.len());
        }
    }
}

#[test]
fn no_clear_bit_position_tells_a_first_message_from_a_chat_message() {
    const N: usize = 48;
    let (firsts, chats) = samples(N, b"same short text");
    let len = firsts.iter().chain(&chats).map(Vec::len).min().unwrap();
    let (f_ones, f_zeros) = constant_bits(&firsts, len);
    let (c_ones, c_zeros) = constant_bits(&chats, len);
    // A bit constant across all N messages of one kind is, for random bytes, a 2^-47 event. So
    // a bit constant in one kind and not constant with the same value in the other is the
    // kind showing through. Bits constant in both, with the same value, are shared framing.
    let mut telling = Vec::new();
    for i in 0..len {
        let differ = (f_ones[i] ^ c_ones[i]) | (f_zeros[i] ^ c_zeros[i]);
        if differ != 0 {
            telling.push((i, differ));
        }
    }
    assert!(
        telling.is_empty(),
        "byte positions (and bit masks) that tell the kinds apart: {:?}",
        &telling[..telling.len().min(8)]
    );
    // The search finds a kind marker when there is one: mark the first byte of each kind.
    let marked = |v: &[Vec<u8>], m: u8| -> Vec<Vec<u8>> {
        v.iter().map(|s| [&[m][..], &s[1..]].concat()).collect()
    };
    let (mf, _) = constant_bits(&marked(&firsts, 0x01), len);
    let (mc, _) = constant_bits(&marked(&chats, 0x02), len);
    assert_ne!(mf[0], mc[0]);
}

#[test]
fn a_first_message_introducing_a_queue_on_the_longest_relay_address_fills_the_smallest_bucket() {
    let address = format!(
        "hush://{}:65535#{}",
        "h".repeat(MAX_HOST_LEN),
        "ab".repeat(32)
    );
    let relay: RelayAddress = address.parse().unwrap();
    let intro = Payload::Introduce {
        relay,
        sender_id: SenderId::from_bytes([7; 16]),
        send_cap: SendCapability::from_bytes([8; 32]),
    }
    .encode();
    let (firsts, chats) = samples(1, &intro);
    assert_eq!(firsts[0].len(), WIRE_BUCKETS[0]);
    assert_eq!(chats[0].len(), WIRE_BUCKETS[0]);
}
