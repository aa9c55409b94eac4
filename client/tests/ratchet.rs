//! The double ratchet through the public API: ordering, replays, tampering, bounds, expiry,
//! storage and padding.

mod common;

use common::{pair, NOW};
use hush_client::crypto::limits::{
    MAX_PLAINTEXT_LEN, MAX_SKIP, MAX_SKIPPED_TOTAL, MAX_WIRE_MESSAGE_LEN, PADDING_MARKER_LEN,
    RATCHET_OVERHEAD, SKIPPED_KEY_LIFETIME_SECS, WIRE_BUCKETS,
};
use hush_client::crypto::{DecryptError, EncryptError, Session, SessionDecodeError};

#[test]
fn out_of_order_across_ratchet_steps() {
    let mut p = pair(1);
    let a1 = p.a_to_b(b"a1");
    let a2 = p.a_to_b(b"a2");
    let a3 = p.a_to_b(b"a3");
    assert_eq!(p.b.decrypt(&a3, NOW).unwrap(), b"a3");
    let b1 = p.b_to_a(b"b1");
    assert_eq!(p.a.decrypt(&b1, NOW).unwrap(), b"b1");
    let a4 = p.a_to_b(b"a4"); // new DH ratchet key
    assert_eq!(p.b.decrypt(&a4, NOW).unwrap(), b"a4");
    assert_eq!(p.b.decrypt(&a1, NOW).unwrap(), b"a1");
    assert_eq!(p.b.decrypt(&a2, NOW).unwrap(), b"a2");
}

#[test]
fn replays_and_duplicates_are_rejected() {
    let mut p = pair(2);
    let m0 = p.a_to_b(b"zero");
    let m1 = p.a_to_b(b"one");
    assert_eq!(p.b.decrypt(&m1, NOW).unwrap(), b"one");
    assert_eq!(p.b.decrypt(&m1, NOW), Err(DecryptError::Duplicate));
    assert_eq!(p.b.decrypt(&m0, NOW).unwrap(), b"zero");
    assert_eq!(p.b.decrypt(&m0, NOW), Err(DecryptError::Duplicate));
    // After a full round trip the old chain's header key is gone entirely.
    let r = p.b_to_a(b"r");
    p.a.decrypt(&r, NOW).unwrap();
    let m2 = p.a_to_b(b"two");
    p.b.decrypt(&m2, NOW).unwrap();
    assert!(p.b.decrypt(&m0, NOW).is_err());
    assert!(p.b.decrypt(&m1, NOW).is_err());
}

#[test]
fn tampered_message_leaves_state_unchanged() {
    let mut p = pair(3);
    let m = p.a_to_b(b"the real one");
    let before = p.b.to_bytes();
    for i in 0..m.len() {
        let mut bad = m.clone();
        bad[i] ^= 0x01;
        assert!(p.b.decrypt(&bad, NOW).is_err(), "byte {i}");
        assert_eq!(p.b.to_bytes(), before, "state changed by byte {i}");
    }
    assert_eq!(p.b.decrypt(&m, NOW).unwrap(), b"the real one");
}

#[test]
fn tampered_dh_step_message_leaves_state_unchanged() {
    let mut p = pair(4);
    let skipped = p.a_to_b(b"skipped");
    let r = p.b_to_a(b"r");
    p.a.decrypt(&r, NOW).unwrap();
    let m = p.a_to_b(b"after step");
    let before = p.b.to_bytes();
    let mut bad = m.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0x80;
    assert_eq!(p.b.decrypt(&bad, NOW), Err(DecryptError::Failed));
    assert_eq!(p.b.to_bytes(), before);
    assert_eq!(p.b.decrypt(&m, NOW).unwrap(), b"after step");
    assert_eq!(p.b.decrypt(&skipped, NOW).unwrap(), b"skipped");
}

#[test]
fn malformed_inputs_are_rejected() {
    let mut p = pair(5);
    let m = p.a_to_b(b"x");
    let cases: Vec<Vec<u8>> = vec![
        Vec::new(),
        vec![0x02],
        vec![0x02, 0x01],
        vec![0x03],
        m[..m.len() - 1].to_vec(),
        [m.as_slice(), &[0]].concat(),
        [&[0x04u8][..], &m[1..]].concat(),
        [&[0x02u8, 0x09][..], &m[2..]].concat(),
        [&[0x02u8, 0x01, 0x01][..], &m[3..]].concat(),
        [&[0x02u8, 0x01, 0xff][..], &m[3..]].concat(),
        vec![0u8; MAX_WIRE_MESSAGE_LEN + 1],
    ];
    for (i, bad) in cases.iter().enumerate() {
        assert_eq!(
            p.b.decrypt(bad, NOW),
            Err(DecryptError::Malformed),
            "case {i}"
        );
    }
    // A message of another session fails to authenticate.
    let mut other = pair(6);
    let foreign = other.a_to_b(b"x");
    assert_eq!(p.b.decrypt(&foreign, NOW), Err(DecryptError::Failed));
    assert_eq!(p.b.decrypt(&m, NOW).unwrap(), b"x");
}

#[test]
fn at_most_max_skip_ahead_per_chain() {
    let mut p = pair(7);
    let msgs: Vec<Vec<u8>> = (0..=MAX_SKIP + 1)
        .map(|i| p.a_to_b(&i.to_be_bytes()))
        .collect();
    let too_far = &msgs[(MAX_SKIP + 1) as usize];
    let before = p.b.to_bytes();
    assert_eq!(p.b.decrypt(too_far, NOW), Err(DecryptError::TooFarAhead));
    assert_eq!(p.b.to_bytes(), before);
    let edge = &msgs[MAX_SKIP as usize];
    assert_eq!(p.b.decrypt(edge, NOW).unwrap(), MAX_SKIP.to_be_bytes());
    assert_eq!(
        p.b.decrypt(too_far, NOW).unwrap(),
        (MAX_SKIP + 1).to_be_bytes()
    );
    assert_eq!(p.b.decrypt(&msgs[0], NOW).unwrap(), 0u64.to_be_bytes());
}

#[test]
fn skipped_keys_are_capped_in_total_dropping_the_oldest() {
    let mut p = pair(8);
    // Three chains of A, each skipping MAX_SKIP keys at B: 3,000 skipped in all.
    let mut firsts = Vec::new();
    for round in 0..3u64 {
        let chain: Vec<Vec<u8>> = (0..=MAX_SKIP)
            .map(|i| p.a_to_b(&[round as u8, (i % 251) as u8]))
            .collect();
        firsts.push(chain[0].clone());
        p.b.decrypt(&chain[MAX_SKIP as usize], NOW).unwrap();
        let r = p.b_to_a(b"r");
        p.a.decrypt(&r, NOW).unwrap();
    }
    // The oldest chain's keys were dropped; the newest are kept.
    assert!(p.b.decrypt(&firsts[0], NOW).is_err());
    assert_eq!(p.b.decrypt(&firsts[2], NOW).unwrap(), [2u8, 0]);
    assert_eq!(p.b.decrypt(&firsts[1], NOW).unwrap(), [1u8, 0]);
    assert!(MAX_SKIPPED_TOTAL < 3 * MAX_SKIP as usize);
}

#[test]
fn skipped_keys_expire() {
    let mut p = pair(9);
    let late = p.a_to_b(b"late");
    let on_time = p.a_to_b(b"on time");
    p.b.decrypt(&on_time, NOW).unwrap();
    let mut copy = Session::from_bytes(&p.b.to_bytes()).unwrap();
    assert_eq!(
        copy.decrypt(&late, NOW + SKIPPED_KEY_LIFETIME_SECS - 1)
            .unwrap(),
        b"late"
    );
    assert!(p.b.decrypt(&late, NOW + SKIPPED_KEY_LIFETIME_SECS).is_err());
}

#[test]
fn idle_sessions_drop_expired_keys_on_request() {
    let mut p = pair(14);
    let late = p.a_to_b(b"late");
    let on_time = p.a_to_b(b"on time");
    p.b.decrypt(&on_time, NOW).unwrap();
    let with_key = p.b.to_bytes().len();
    p.b.expire_skipped_keys(NOW + 1);
    assert_eq!(
        p.b.to_bytes().len(),
        with_key,
        "an unexpired key was dropped"
    );
    p.b.expire_skipped_keys(NOW + SKIPPED_KEY_LIFETIME_SECS);
    assert!(
        p.b.to_bytes().len() < with_key,
        "the expired key is still stored"
    );
    // Even with a clock that went backwards, the key is gone for good.
    assert!(p.b.decrypt(&late, NOW).is_err());
}

#[test]
fn storage_round_trip_mid_conversation() {
    let mut p = pair(10);
    let skipped = p.a_to_b(b"s");
    let m = p.a_to_b(b"m");
    p.b.decrypt(&m, NOW).unwrap();
    let bytes = p.b.to_bytes();
    let mut b = Session::from_bytes(&bytes).unwrap();
    assert_eq!(b.to_bytes(), bytes);
    assert_eq!(b.peer(), p.b.peer());
    assert_eq!(b.decrypt(&skipped, NOW).unwrap(), b"s");
    let reply = b.encrypt(b"r", &mut p.rng).unwrap();
    assert_eq!(p.a.decrypt(&reply, NOW).unwrap(), b"r");
}

#[test]
fn storage_rejects_malformed_bytes() {
    let p = pair(11);
    let bytes = p.b.to_bytes().to_vec();
    assert_eq!(
        Session::from_bytes(&[]).err(),
        Some(SessionDecodeError::Truncated)
    );
    assert_eq!(
        Session::from_bytes(&bytes[..bytes.len() - 1]).err(),
        Some(SessionDecodeError::Truncated)
    );
    assert_eq!(
        Session::from_bytes(&[&bytes[..], &[0]].concat()).err(),
        Some(SessionDecodeError::TrailingBytes)
    );
    let mut v = bytes.clone();
    v[0] = 7;
    assert_eq!(
        Session::from_bytes(&v).err(),
        Some(SessionDecodeError::Version)
    );
    let mut v = bytes.clone();
    v[1 + 64 + 32 + 32] = 2; // DHr presence flag
    assert_eq!(
        Session::from_bytes(&v).err(),
        Some(SessionDecodeError::Invalid)
    );
}

#[test]
fn padding_hides_the_length_within_a_bucket() {
    let mut p = pair(12);
    // The most the smallest bucket holds: the bucket less the message's fixed bytes and the
    // padding's end marker.
    let first = WIRE_BUCKETS[0] - RATCHET_OVERHEAD - PADDING_MARKER_LEN;
    let lens: Vec<usize> = [0, 1, 100, first]
        .iter()
        .map(|&n| p.a_to_b(&vec![7; n]).len())
        .collect();
    assert!(lens.windows(2).all(|w| w[0] == w[1]), "{lens:?}");
    assert!(p.a_to_b(&vec![7; first + 1]).len() > lens[0]);
    let max = p.a_to_b(&vec![1; MAX_PLAINTEXT_LEN]);
    assert!(max.len() <= MAX_WIRE_MESSAGE_LEN);
    assert_eq!(
        p.b.decrypt(&max, NOW).map(|v| v.len()),
        Ok(MAX_PLAINTEXT_LEN)
    );
    assert_eq!(
        p.a.encrypt(&vec![1; MAX_PLAINTEXT_LEN + 1], &mut p.rng),
        Err(EncryptError::PlaintextTooLong)
    );
}

#[test]
fn debug_output_shows_no_key_material() {
    let p = pair(13);
    let printed = format!("{:?}", p.b);
    assert!(printed.starts_with("Session"));
    let bytes = p.b.to_bytes();
    // version, peer, AD, DHs secret, DHr (flag + key) precede the root key.
    let rk_hex: String = bytes[162..170].iter().map(|b| format!("{b:02x}")).collect();
    assert!(!printed.contains(&rk_hex));
}
