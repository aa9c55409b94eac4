//! Known-answer vectors that freeze the invitation, handshake and message formats.
//!
//! `vectors/crypto_v3.json` (invitation version 2, wire version 2: untagged messages padded to
//! the wire size buckets) was generated from a seeded RNG. The first test regenerates every
//! value and compares it byte for byte; the others decode stored bytes without the encoder's
//! help: for it, for `vectors/crypto_v2.json` (the same invitation version, wire version 1:
//! clear type tags, plaintext buckets), whose messages may still wait on a relay and must keep
//! opening, and for `vectors/crypto_v1.json` (invitation version 1, without an expiry). After an
//! intended format change, regenerate with `HUSH_REGENERATE_VECTORS=1 cargo test -p hush-client
//! --test vectors` and review the diff.

use hush_client::crypto::limits::WIRE_BUCKETS;
use hush_client::crypto::{
    accept, respond, safety_number, wire_format, Identity, Invitation, InvitationSecrets, Session,
    WireFormat,
};
use hush_protocol::{RelayAddress, SendCapability, SenderId};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use serde_json::{json, Value};

const SEED: u64 = 0x6875_7368; // "hush"
const NOW: u64 = 1_700_000_000;
/// The invitation's signed expiry in the vectors: a week after `NOW`.
const EXPIRES_AT: u64 = NOW + 7 * 24 * 60 * 60;
const PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/crypto_v3.json");
const PATH_V2: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/crypto_v2.json");
const PATH_V1: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/crypto_v1.json");

/// (sender, plaintext) of the messages after the handshake, in order.
fn script() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("inviter", b"welcome".to_vec()),
        ("joiner", b"first reply after a DH step".to_vec()),
        ("joiner", vec![0x5a; 300]),
        ("inviter", Vec::new()),
    ]
}

fn generate() -> Value {
    let mut rng = ChaCha20Rng::seed_from_u64(SEED);
    let inviter = Identity::generate(&mut rng);
    let joiner = Identity::generate(&mut rng);
    let relay: RelayAddress = format!("hush://relay.example:4433#{}", "0f".repeat(32))
        .parse()
        .unwrap();
    let (invitation, secrets) = Invitation::create(
        &inviter,
        relay,
        SenderId::from_bytes([0xa1; 16]),
        SendCapability::from_bytes([0xc4; 32]),
        EXPIRES_AT,
        &mut rng,
    );
    let initial = b"joiner queue address and capability".to_vec();
    let (mut a, first) = accept(&joiner, &invitation, &initial, &mut rng).unwrap();
    let (mut b, _, _) = respond(&inviter, &secrets, &first, NOW).unwrap();
    let mut messages = Vec::new();
    for (from, pt) in script() {
        let (tx, rx) = if from == "inviter" {
            (&mut b, &mut a)
        } else {
            (&mut a, &mut b)
        };
        let wire = tx.encrypt(&pt, &mut rng).unwrap();
        let receiver_state = hex::encode(rx.to_bytes().as_slice());
        assert_eq!(rx.decrypt(&wire, NOW).unwrap(), pt);
        messages.push(json!({
            "from": from,
            "plaintext": hex::encode(&pt),
            "wire": hex::encode(&wire),
            "receiver_state": receiver_state,
        }));
    }
    let sn = safety_number(&inviter.public(), &joiner.public());
    json!({
        "description": "hush crypto v3 known answers (wire version 2): seeded ChaCha20Rng, see client/tests/vectors.rs",
        "seed": SEED,
        "now": NOW,
        "invitation_expires_at": EXPIRES_AT,
        "inviter_identity": hex::encode(inviter.to_bytes().as_slice()),
        "joiner_identity": hex::encode(joiner.to_bytes().as_slice()),
        "inviter_public": hex::encode(inviter.public().to_bytes()),
        "joiner_public": hex::encode(joiner.public().to_bytes()),
        "invitation": invitation.encode(),
        "invitation_secrets": hex::encode(secrets.to_bytes().as_slice()),
        "initial_plaintext": hex::encode(&initial),
        "first_message": hex::encode(&first),
        "messages": messages,
        "safety_number": sn.digits(),
        "safety_qr": hex::encode(sn.qr_payload()),
    })
}

fn stored() -> Value {
    stored_at(PATH)
}

fn stored_at(path: &str) -> Value {
    let text = std::fs::read_to_string(path).expect("vector file missing; see the module docs");
    serde_json::from_str(&text).unwrap()
}

fn bytes(v: &Value, key: &str) -> Vec<u8> {
    hex::decode(v[key].as_str().unwrap()).unwrap()
}

#[test]
fn regenerated_vectors_match_byte_for_byte() {
    let fresh = generate();
    if std::env::var_os("HUSH_REGENERATE_VECTORS").is_some() {
        let text = serde_json::to_string_pretty(&fresh).unwrap() + "\n";
        std::fs::write(PATH, text).unwrap();
    }
    let stored = stored();
    let (Value::Object(fresh), Value::Object(stored)) = (fresh, stored) else {
        panic!("vector file is not a JSON object");
    };
    assert_eq!(
        fresh.keys().collect::<Vec<_>>(),
        stored.keys().collect::<Vec<_>>()
    );
    for (key, value) in &fresh {
        assert_eq!(
            Some(value),
            stored.get(key),
            "field {key} changed: the wire format moved"
        );
    }
}

#[test]
fn stored_vectors_decode() {
    check_stored(&stored());
}

#[test]
fn stored_vectors_are_untagged_and_fill_buckets() {
    let v = stored();
    let mut wires = vec![bytes(&v, "first_message")];
    wires.extend(
        v["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| bytes(m, "wire")),
    );
    for wire in &wires {
        assert_eq!(wire_format(wire), Some(WireFormat::Current));
        assert!(WIRE_BUCKETS.contains(&wire.len()), "{}", wire.len());
    }
}

#[test]
fn wire_version_1_vectors_still_decode() {
    let v = stored_at(PATH_V2);
    assert_eq!(
        wire_format(&bytes(&v, "first_message")),
        Some(WireFormat::V1Handshake)
    );
    check_stored(&v);
}

#[test]
fn version_1_vectors_still_decode() {
    let v = stored_at(PATH_V1);
    let invitation = Invitation::parse(v["invitation"].as_str().unwrap()).unwrap();
    assert_eq!(invitation.expires_at(), None);
    check_stored(&v);
}

#[test]
fn version_2_vectors_carry_the_signed_expiry() {
    let v = stored();
    let at = v["invitation_expires_at"].as_u64().unwrap();
    let invitation = Invitation::parse(v["invitation"].as_str().unwrap()).unwrap();
    assert_eq!(invitation.expires_at(), Some(at));
    let secrets = InvitationSecrets::from_bytes(&bytes(&v, "invitation_secrets")).unwrap();
    assert_eq!(secrets.expires_at(), Some(at));
    assert!(invitation.check_unexpired(at - 1).is_ok());
    assert!(invitation.check_unexpired(at).is_err());
}

fn check_stored(v: &Value) {
    let v = v.clone();
    let now = v["now"].as_u64().unwrap();
    let inviter = Identity::from_bytes(&bytes(&v, "inviter_identity")).unwrap();
    let joiner = Identity::from_bytes(&bytes(&v, "joiner_identity")).unwrap();
    assert_eq!(
        inviter.public().to_bytes().to_vec(),
        bytes(&v, "inviter_public")
    );
    let invitation = Invitation::parse(v["invitation"].as_str().unwrap()).unwrap();
    assert_eq!(invitation.inviter(), &inviter.public());
    assert_eq!(invitation.sender_id(), SenderId::from_bytes([0xa1; 16]));
    let secrets = InvitationSecrets::from_bytes(&bytes(&v, "invitation_secrets")).unwrap();
    let (b, peer, initial) = respond(&inviter, &secrets, &bytes(&v, "first_message"), now).unwrap();
    assert_eq!(peer, joiner.public());
    assert_eq!(initial, bytes(&v, "initial_plaintext"));
    // Each message decrypts under the receiver's stored state (which freezes the session
    // storage format too).
    for m in v["messages"].as_array().unwrap() {
        let mut rx = Session::from_bytes(&bytes(m, "receiver_state")).unwrap();
        assert_eq!(
            rx.decrypt(&bytes(m, "wire"), now).unwrap(),
            bytes(m, "plaintext")
        );
    }
    // The inviter's session fresh from the handshake has the joiner as its peer.
    assert_eq!(b.peer(), &joiner.public());
    let sn = safety_number(&joiner.public(), &inviter.public());
    assert_eq!(sn.digits(), v["safety_number"].as_str().unwrap());
    // The stored payload is the one the inviter shows. QR payloads are shown and scanned live,
    // never stored or sent, so a file made with an older payload version only has its digits
    // checked.
    let shown = safety_number(&inviter.public(), &joiner.public()).qr_payload();
    let stored_qr = bytes(&v, "safety_qr");
    if stored_qr.first() == shown.first() {
        assert_eq!(shown, stored_qr);
    }
    assert!(sn.matches_qr(&shown));
}
