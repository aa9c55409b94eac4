//! Cryptographic edge cases through the public API, with messages built by an independent
//! implementation of the formats (`forge`) where hush itself would never send them: low-order
//! X25519 points in invitations, first messages and ratchet headers; malleated and
//! non-canonical Ed25519 signatures and small-order signing keys; the counter 2^32 - 1; the skip
//! cap reached through a previous-chain length; and the total cap on skipped keys over many DH
//! steps.

mod common;
mod forge;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use common::{invitation, pair, rng, NOW};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use hush_client::crypto::limits::{MAX_CHAIN_LEN, MAX_SKIP, MAX_SKIPPED_TOTAL};
use hush_client::crypto::{
    respond, DecryptError, EncryptError, HandshakeError, Identity, Invitation, InvitationError,
    Session, INVITATION_PREFIX,
};
use sha2::{Digest, Sha512};

fn unhex(s: &str) -> [u8; 32] {
    hex::decode(s).unwrap().try_into().unwrap()
}

/// Every X25519 input of small order: the canonical u-coordinates of the curve's and its
/// twist's small-order points (0, 1, p - 1 and the two of order 8; RFC 7748 section 7,
/// cr.yp.to/ecdh.html), the non-canonical p and p + 1, and each with the ignored top bit set.
fn low_order_x25519() -> Vec<[u8; 32]> {
    let canonical = [
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0100000000000000000000000000000000000000000000000000000000000000",
        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
        "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    ];
    let mut points: Vec<[u8; 32]> = canonical.iter().map(|h| unhex(h)).collect();
    let high: Vec<[u8; 32]> = points
        .iter()
        .map(|p| {
            let mut q = *p;
            q[31] |= 0x80;
            q
        })
        .collect();
    points.extend(high);
    // Each really is of low order: its agreement with any secret is all zeros.
    for p in &points {
        assert_eq!(
            forge::raw_dh(&[0x77; 32], p),
            [0u8; 32],
            "{}",
            hex::encode(p)
        );
    }
    points
}

/// The eight points of small order on the Ed25519 curve, in their canonical encodings.
fn small_order_ed25519() -> Vec<[u8; 32]> {
    let points: Vec<[u8; 32]> = [
        "0100000000000000000000000000000000000000000000000000000000000000",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000080",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
    ]
    .iter()
    .map(|h| unhex(h))
    .collect();
    for p in &points {
        assert!(VerifyingKey::from_bytes(p).unwrap().is_weak());
    }
    points
}

fn token(bytes: &[u8]) -> String {
    format!("{INVITATION_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// The signed bytes of a fresh invitation, and the inviter's Ed25519 key.
fn invitation_bytes(seed: u64) -> (Vec<u8>, SigningKey) {
    let mut rng = rng(seed);
    let inviter = Identity::generate(&mut rng);
    let (inv, _) = invitation(&inviter, &mut rng);
    let encoded = inv.encode();
    let bytes = URL_SAFE_NO_PAD
        .decode(encoded.strip_prefix(INVITATION_PREFIX).unwrap())
        .unwrap();
    let seed: [u8; 32] = inviter.to_bytes()[1..33].try_into().unwrap();
    (bytes, SigningKey::from_bytes(&seed))
}

/// Offset of the inviter's public identity (Ed25519 key, then X25519 key) in the bytes.
fn inviter_at(bytes: &[u8]) -> usize {
    3 + usize::from(u16::from_be_bytes([bytes[1], bytes[2]])) + 16 + 32
}

/// Replaces the signature with `key`'s signature over the body.
fn resign(bytes: &mut [u8], key: &SigningKey) {
    let body = bytes.len() - 64;
    let sig = key.sign(&[forge::INVITATION_SIGNATURE, &bytes[..body]].concat());
    bytes[body..].copy_from_slice(&sig.to_bytes());
}

#[test]
fn low_order_points_in_a_validly_signed_invitation_are_refused() {
    let (bytes, key) = invitation_bytes(1);
    let mut control = bytes.clone();
    resign(&mut control, &key);
    assert!(
        Invitation::parse(&token(&control)).is_ok(),
        "re-signing works"
    );
    let at = inviter_at(&bytes);
    for point in low_order_x25519() {
        // As the one-time prekey, and as the inviter's X25519 identity key.
        for field in [at + 64, at + 32] {
            let mut bad = bytes.clone();
            bad[field..field + 32].copy_from_slice(&point);
            resign(&mut bad, &key);
            assert_eq!(
                Invitation::parse(&token(&bad)).err(),
                Some(InvitationError::InvalidKey),
                "{} at {field}",
                hex::encode(point)
            );
        }
    }
}

#[test]
fn a_first_message_with_a_low_order_ephemeral_key_is_refused() {
    let mut rng = rng(2);
    let inviter = Identity::generate(&mut rng);
    let joiner = Identity::generate(&mut rng);
    let (inv, secrets) = invitation(&inviter, &mut rng);
    let signed = URL_SAFE_NO_PAD
        .decode(inv.encode().strip_prefix(INVITATION_PREFIX).unwrap())
        .unwrap();
    let parts = forge::invitation_parts(&signed);
    let inviter_x: [u8; 32] = parts.inviter[32..].try_into().unwrap();

    // Control: an honest ephemeral key through the same code is accepted.
    let ek = [0x42u8; 32];
    let (dh2, dh3) = (
        forge::raw_dh(&ek, &inviter_x),
        forge::raw_dh(&ek, &parts.prekey),
    );
    let good = forge::first_message(
        &joiner,
        &parts,
        &forge::public(&ek),
        &dh2,
        &dh3,
        b"hi",
        &mut rng,
    );
    let (_, who, pt) = respond(&inviter, &secrets, &good, NOW).unwrap();
    assert_eq!((who, pt.as_slice()), (joiner.public(), &b"hi"[..]));

    // A low-order key makes both agreements all zeros, which the forger knows in advance.
    for point in low_order_x25519() {
        let zero = [0u8; 32];
        let bad = forge::first_message(&joiner, &parts, &point, &zero, &zero, b"hi", &mut rng);
        assert_eq!(
            respond(&inviter, &secrets, &bad, NOW).err(),
            Some(HandshakeError::Failed),
            "{}",
            hex::encode(point)
        );
    }
}

#[test]
fn a_low_order_ratchet_key_in_an_authentic_header_is_refused() {
    let mut p = pair(3);
    let mut rng = rng(33);
    let a = forge::fields(&p.a.to_bytes());
    let b_bytes = p.b.to_bytes();
    let b = forge::fields(&b_bytes);
    assert_eq!(a.dhr, Some(forge::public(&b.dhs)));

    // Control: a new chain under a real key, built by the forger, decrypts.
    let fresh = [0x24u8; 32];
    let shared = forge::raw_dh(&fresh, &a.dhr.unwrap());
    let good = forge::new_chain(&a, &forge::public(&fresh), &shared, b"control", &mut rng);
    let mut copy = Session::from_bytes(&b_bytes).unwrap();
    assert_eq!(copy.decrypt(&good, NOW).unwrap(), b"control");

    for point in low_order_x25519() {
        // What a receiver that skipped the check would compute: all zeros.
        let shared = forge::raw_dh(&b.dhs, &point);
        let bad = forge::new_chain(&a, &point, &shared, b"forged", &mut rng);
        assert_eq!(
            p.b.decrypt(&bad, NOW),
            Err(DecryptError::Failed),
            "{}",
            hex::encode(point)
        );
        assert_eq!(p.b.to_bytes(), b_bytes, "state changed");
    }
    let real = p.a_to_b(b"real");
    assert_eq!(p.b.decrypt(&real, NOW).unwrap(), b"real");
}

/// Builds a signature (R, S) from the raw parts.
fn signature(r: &[u8; 32], s: &[u8; 32]) -> Signature {
    Signature::from_bytes(&[&r[..], s].concat().try_into().unwrap())
}

/// The group order L, little-endian.
const L: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

/// Little-endian 256-bit addition (no overflow for the values used here).
fn add(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut carry = 0u16;
    for i in 0..32 {
        let v = u16::from(a[i]) + u16::from(b[i]) + carry;
        out[i] = v as u8;
        carry = v >> 8;
    }
    assert_eq!(carry, 0);
    out
}

fn ge(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().rev().cmp(b.iter().rev()) != std::cmp::Ordering::Less
}

fn sub(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut borrow = 0i16;
    for i in 0..32 {
        let v = i16::from(a[i]) - i16::from(b[i]) - borrow;
        out[i] = v.rem_euclid(256) as u8;
        borrow = i16::from(v < 0);
    }
    out
}

/// `(x + y) mod L` for x, y < L.
fn add_mod_l(x: &[u8; 32], y: &[u8; 32]) -> [u8; 32] {
    let s = add(x, y);
    if ge(&s, &L) {
        sub(&s, &L)
    } else {
        s
    }
}

/// The little-endian number in `bytes` (any length) times `y`, mod L (double and add).
fn mul_mod_l(bytes: &[u8], y: &[u8; 32]) -> [u8; 32] {
    let mut acc = [0u8; 32];
    for byte in bytes.iter().rev() {
        for bit in (0..8).rev() {
            acc = add_mod_l(&acc, &acc);
            if byte >> bit & 1 == 1 {
                acc = add_mod_l(&acc, y);
            }
        }
    }
    acc
}

/// A signature with R = `r` (any encoding of the identity point) that satisfies the
/// cofactorless equation [S]B = R + [k]A for `key`: S = k * a, since R adds nothing.
fn identity_r_signature(key: &SigningKey, r: &[u8; 32], msg: &[u8]) -> Signature {
    let h = Sha512::digest(key.to_bytes());
    let mut a = [0u8; 32];
    a.copy_from_slice(&h[..32]);
    a[0] &= 248;
    a[31] &= 127;
    a[31] |= 64;
    let k = Sha512::new()
        .chain_update(r)
        .chain_update(key.verifying_key().as_bytes())
        .chain_update(msg)
        .finalize();
    let mut one = [0u8; 32];
    one[0] = 1;
    let k = mul_mod_l(k.as_slice(), &one);
    signature(r, &mul_mod_l(&a, &k))
}

#[test]
fn malleated_and_non_canonical_signatures_on_invitations_are_refused() {
    // An invitation whose S leaves room for S + L below 2^253, so that even a verifier that
    // only checks the top three bits would take it.
    let (bytes, key) = (0..64)
        .map(invitation_bytes)
        .find(|(b, _)| b[b.len() - 1] < 0x0f)
        .unwrap();
    assert!(Invitation::parse(&token(&bytes)).is_ok());
    let body = bytes.len() - 64;
    let signed = [forge::INVITATION_SIGNATURE, &bytes[..body]].concat();
    let r: [u8; 32] = bytes[body..body + 32].try_into().unwrap();
    let s: [u8; 32] = bytes[body + 32..].try_into().unwrap();

    let s_plus_l = add(&s, &L);
    assert!(s_plus_l[31] & 0xe0 == 0);
    // R = the identity point, canonically encoded: a valid equation, but R has small order.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let small_r = identity_r_signature(&key, &identity, &signed);
    assert!(
        key.verifying_key().verify(&signed, &small_r).is_ok(),
        "the lax check takes it"
    );
    // The same point as y = p + 1, a non-canonical encoding.
    let noncanonical = unhex("eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f");
    let cases = [
        ("S + L", signature(&r, &s_plus_l)),
        ("small-order R", small_r),
        (
            "non-canonical R",
            identity_r_signature(&key, &noncanonical, &signed),
        ),
        ("R with the sign bit flipped", {
            let mut r2 = r;
            r2[31] ^= 0x80;
            signature(&r2, &s)
        }),
    ];
    for (what, sig) in cases {
        let mut bad = bytes.clone();
        bad[body..].copy_from_slice(&sig.to_bytes());
        assert_eq!(
            Invitation::parse(&token(&bad)).err(),
            Some(InvitationError::BadSignature),
            "{what}"
        );
    }
}

#[test]
fn small_order_signing_keys_are_refused_even_with_a_universal_signature() {
    let (bytes, _) = invitation_bytes(5);
    let at = inviter_at(&bytes);
    let body = bytes.len() - 64;
    let mut identity = [0u8; 32];
    identity[0] = 1;
    for point in small_order_ed25519() {
        let mut bad = bytes.clone();
        bad[at..at + 32].copy_from_slice(&point);
        // R = identity, S = 0 satisfies the cofactorless equation whenever [k]A is the
        // identity; for A = identity itself, that is every message.
        bad[body..].copy_from_slice(&signature(&identity, &[0u8; 32]).to_bytes());
        if point == identity {
            let signed = [forge::INVITATION_SIGNATURE, &bad[..body]].concat();
            let a = VerifyingKey::from_bytes(&point).unwrap();
            assert!(a.verify(&signed, &signature(&identity, &[0u8; 32])).is_ok());
        }
        assert_eq!(
            Invitation::parse(&token(&bad)).err(),
            Some(InvitationError::InvalidKey),
            "{}",
            hex::encode(point)
        );
    }
}

#[test]
fn the_counter_2_pow_32_minus_1_is_received_without_overflow_and_never_sent() {
    let mut p = pair(6);
    let mut rng = rng(66);
    let a_bytes = p.a.to_bytes();
    let a = forge::fields(&a_bytes);
    let b = forge::fields(&p.b.to_bytes());
    assert_eq!((a.ns, b.nr, a.cks, a.hks), (1, 1, b.ckr, b.hkr));

    // Control: the forger's next message with the honest counter decrypts.
    let mut copy = Session::from_bytes(&p.b.to_bytes()).unwrap();
    let control = forge::next_on_chain(&a, 1, b"control", &mut rng);
    assert_eq!(copy.decrypt(&control, NOW).unwrap(), b"control");

    // The receiver's chain relabelled to position 2^32 - 1, and a peer that sends that
    // counter (hush itself stops one earlier).
    let top = u64::from(u32::MAX);
    let relabelled = forge::with_counters(&p.b.to_bytes(), b.ns, top, b.pn);
    let mut bob = Session::from_bytes(&relabelled).unwrap();
    let last = forge::next_on_chain(&a, u32::MAX, b"n = 2^32 - 1", &mut rng);
    assert_eq!(bob.decrypt(&last, NOW).unwrap(), b"n = 2^32 - 1");
    assert_eq!(forge::fields(&bob.to_bytes()).nr, top + 1);
    let mut bob = Session::from_bytes(&bob.to_bytes()).expect("stored after the top");
    assert_eq!(bob.decrypt(&last, NOW), Err(DecryptError::Duplicate));
    let beyond = forge::next_on_chain(&a, u32::MAX - 1, b"below", &mut rng);
    assert!(bob.decrypt(&beyond, NOW).is_err());

    // The session goes on: a reply, and the sender's next chain.
    let reply = bob.encrypt(b"reply", &mut rng).unwrap();
    assert_eq!(p.a.decrypt(&reply, NOW).unwrap(), b"reply");
    let next = p.a_to_b(b"next chain");
    assert_eq!(bob.decrypt(&next, NOW).unwrap(), b"next chain");

    // The sending side at the wrap: a typed error and no change, never a wrapped counter.
    let full = forge::with_counters(&a_bytes, MAX_CHAIN_LEN, a.nr, a.pn);
    let mut alice = Session::from_bytes(&full).unwrap();
    assert_eq!(
        alice.encrypt(b"x", &mut rng),
        Err(EncryptError::ChainExhausted)
    );
    assert_eq!(alice.to_bytes().as_slice(), full.as_slice());
    let past = forge::with_counters(&a_bytes, MAX_CHAIN_LEN + 1, a.nr, a.pn);
    assert!(Session::from_bytes(&past).is_err());
}

/// Bob has message 0; Alice sends `lost` more that never arrive, then, after Bob's reply,
/// starts a new chain whose header says the previous one had `lost + 1` messages.
fn gap_before_a_dh_step(seed: u64, lost: u64) -> (common::Pair, Vec<Vec<u8>>, Vec<u8>) {
    let mut p = pair(seed);
    let old: Vec<Vec<u8>> = (1..=lost).map(|i| p.a_to_b(&i.to_be_bytes())).collect();
    let r = p.b_to_a(b"reply");
    p.a.decrypt(&r, NOW).unwrap();
    let new = p.a_to_b(b"new chain");
    (p, old, new)
}

fn skipped_keys(s: &Session) -> usize {
    let debug = format!("{s:?}");
    let rest = debug.split("skipped_keys: ").nth(1).unwrap();
    rest.split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn the_skip_cap_applies_to_the_previous_chain_length_at_a_dh_step() {
    // Exactly MAX_SKIP missing: accepted, and every missing message still decrypts later.
    let (mut p, old, new) = gap_before_a_dh_step(7, MAX_SKIP);
    assert_eq!(p.b.decrypt(&new, NOW).unwrap(), b"new chain");
    assert_eq!(skipped_keys(&p.b), MAX_SKIP as usize);
    assert_eq!(p.b.decrypt(&old[0], NOW).unwrap(), 1u64.to_be_bytes());
    let last = old.last().unwrap();
    assert_eq!(p.b.decrypt(last, NOW).unwrap(), MAX_SKIP.to_be_bytes());

    // One more: refused with a typed error, and nothing changes.
    let (mut p, old, new) = gap_before_a_dh_step(8, MAX_SKIP + 1);
    let before = p.b.to_bytes();
    assert_eq!(p.b.decrypt(&new, NOW), Err(DecryptError::TooFarAhead));
    assert_eq!(p.b.to_bytes(), before);
    // Once the last message of the old chain arrives (exactly MAX_SKIP ahead), the new chain
    // is within reach again.
    let last = old.last().unwrap();
    assert_eq!(
        p.b.decrypt(last, NOW).unwrap(),
        (MAX_SKIP + 1).to_be_bytes()
    );
    assert_eq!(p.b.decrypt(&new, NOW).unwrap(), b"new chain");
    assert_eq!(p.b.decrypt(&old[0], NOW).unwrap(), 1u64.to_be_bytes());
}

#[test]
fn skipped_keys_stay_under_the_total_cap_over_many_dh_steps_dropping_the_oldest() {
    const CHAINS: usize = 8;
    const GAP: usize = 300;
    let mut p = pair(9);
    let mut chains: Vec<Vec<Vec<u8>>> = Vec::new();
    for c in 0..CHAINS {
        let msgs: Vec<Vec<u8>> = (0..=GAP)
            .map(|i| p.a_to_b(&[c as u8, (i >> 8) as u8, i as u8]))
            .collect();
        // Only the last one arrives: GAP keys are skipped on this chain.
        p.b.decrypt(&msgs[GAP], NOW).unwrap();
        assert_eq!(skipped_keys(&p.b), ((c + 1) * GAP).min(MAX_SKIPPED_TOTAL));
        let stored = Session::from_bytes(&p.b.to_bytes()).unwrap();
        assert_eq!(skipped_keys(&stored), skipped_keys(&p.b));
        chains.push(msgs);
        let r = p.b_to_a(b"r");
        p.a.decrypt(&r, NOW).unwrap();
    }
    // 2,400 were skipped; the 400 oldest are gone: all of chain 0, the first 100 of chain 1.
    let dropped = CHAINS * GAP - MAX_SKIPPED_TOTAL;
    for (c, msgs) in chains.iter().enumerate() {
        for (i, m) in msgs.iter().enumerate().take(GAP) {
            let result = p.b.decrypt(m, NOW);
            if c * GAP + i < dropped {
                assert!(result.is_err(), "chain {c} message {i} should be dropped");
            } else {
                assert_eq!(result.unwrap(), [c as u8, (i >> 8) as u8, i as u8]);
            }
        }
    }
    assert_eq!(skipped_keys(&p.b), 0);
}
