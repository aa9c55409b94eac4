//! Forward secrecy and post-compromise security, shown with stolen session snapshots.

mod common;

use common::{pair, NOW};
use hush_client::crypto::Session;

#[test]
fn snapshot_after_message_n_cannot_decrypt_earlier_messages() {
    let mut p = pair(1);
    let mut sent = Vec::new();
    // Several chains in both directions, so keys from earlier DH steps are covered too.
    for round in 0..3u8 {
        for i in 0..4u8 {
            let m = p.a_to_b(&[round, i]);
            assert_eq!(p.b.decrypt(&m, NOW).unwrap(), [round, i]);
            sent.push(m);
        }
        let r = p.b_to_a(&[round]);
        p.a.decrypt(&r, NOW).unwrap();
    }
    let snapshot = p.b.to_bytes();
    for (i, m) in sent.iter().enumerate() {
        let mut stolen = Session::from_bytes(&snapshot).unwrap();
        assert!(
            stolen.decrypt(m, NOW).is_err(),
            "message {i} decrypted from a later snapshot"
        );
    }
}

#[test]
fn stolen_state_stops_working_after_one_dh_round_trip() {
    let mut p = pair(2);
    let warmup = p.a_to_b(b"warm-up");
    p.b.decrypt(&warmup, NOW).unwrap();
    // The attacker copies A's whole state, and from now on sees every message.
    let mut eve = Session::from_bytes(&p.a.to_bytes()).unwrap();

    // Before healing, the stolen state reads B's messages: the compromise is real.
    let b1 = p.b_to_a(b"before healing");
    assert_eq!(eve.decrypt(&b1, NOW).unwrap(), b"before healing");
    assert_eq!(p.a.decrypt(&b1, NOW).unwrap(), b"before healing");

    // One DH round trip: A sends under a fresh ratchet key, B answers under another.
    let a1 = p.a_to_b(b"fresh key");
    assert_eq!(p.b.decrypt(&a1, NOW).unwrap(), b"fresh key");
    for i in 0..3u8 {
        let b2 = p.b_to_a(&[b'x', i]);
        assert!(
            eve.decrypt(&b2, NOW).is_err(),
            "healed message {i} read by the stolen state"
        );
        assert_eq!(p.a.decrypt(&b2, NOW).unwrap(), [b'x', i]);
    }
    // The stolen state cannot impersonate A either: its messages on A's old chain are refused
    // once B has moved on past that chain.
    let b3 = p.b_to_a(b"more");
    p.a.decrypt(&b3, NOW).unwrap();
    let a2 = p.a_to_b(b"a2");
    p.b.decrypt(&a2, NOW).unwrap();
    let mut rng = common::rng(99);
    let forged = eve.encrypt(b"from eve", &mut rng).unwrap();
    assert!(p.b.decrypt(&forged, NOW).is_err());
}
