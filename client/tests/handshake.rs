//! The PQ-hybrid X3DH handshake through the public API: success, identity hiding, and the
//! rejection of every malformed or forged first message.

mod common;

use common::{invitation, rng, NOW};
use hush_client::crypto::{
    accept, respond, safety_number, wire_format, HandshakeError, Identity, Invitation,
    InvitationSecrets, WireFormat,
};

struct Setup {
    inviter: Identity,
    joiner: Identity,
    secrets: InvitationSecrets,
    first: Vec<u8>,
}

fn setup(seed: u64) -> Setup {
    let mut rng = rng(seed);
    let inviter = Identity::generate(&mut rng);
    let joiner = Identity::generate(&mut rng);
    let (inv, secrets) = invitation(&inviter, &mut rng);
    let (_, first) = accept(&joiner, &inv, b"my queue", &mut rng).unwrap();
    Setup {
        inviter,
        joiner,
        secrets,
        first,
    }
}

#[test]
fn both_sides_agree_and_learn_each_other() {
    let mut rng = rng(1);
    let inviter = Identity::generate(&mut rng);
    let joiner = Identity::generate(&mut rng);
    let (inv, secrets) = invitation(&inviter, &mut rng);
    let inv = Invitation::parse(&inv.encode()).unwrap();
    let (mut a, first) = accept(&joiner, &inv, b"my queue", &mut rng).unwrap();
    assert_eq!(wire_format(&first), Some(WireFormat::Current));
    // Secrets survive a restart.
    let secrets = InvitationSecrets::from_bytes(&secrets.to_bytes()).unwrap();
    let (mut b, peer, pt) = respond(&inviter, &secrets, &first, NOW).unwrap();
    assert_eq!(pt, b"my queue");
    assert_eq!(peer, joiner.public());
    assert_eq!(b.peer(), &joiner.public());
    assert_eq!(a.peer(), &inviter.public());
    assert_eq!(
        safety_number(a.peer(), &joiner.public()),
        safety_number(&inviter.public(), b.peer())
    );
    let reply = b.encrypt(b"welcome", &mut rng).unwrap();
    assert_eq!(wire_format(&reply), Some(WireFormat::Current));
    assert_eq!(a.decrypt(&reply, NOW).unwrap(), b"welcome");
    let next = a.encrypt(b"thanks", &mut rng).unwrap();
    assert_eq!(b.decrypt(&next, NOW).unwrap(), b"thanks");
}

#[test]
fn first_message_hides_the_joiner_identity() {
    let s = setup(2);
    let public = s.joiner.public();
    for key in [public.signing_key(), public.agreement_key()] {
        assert!(
            !s.first.windows(32).any(|w| w == key),
            "identity key visible to the relay"
        );
    }
}

#[test]
fn every_flipped_byte_is_rejected_and_the_secrets_still_work() {
    let s = setup(3);
    // Every byte of the fixed fields, and a sample of the embedded ratchet message.
    let positions = (0..1400).chain((1400..s.first.len()).step_by(37));
    for i in positions {
        let mut bad = s.first.clone();
        bad[i] ^= 0x40;
        let err = respond(&s.inviter, &s.secrets, &bad, NOW).err();
        assert!(
            matches!(
                err,
                Some(HandshakeError::Failed | HandshakeError::Malformed)
            ),
            "byte {i}: {err:?}"
        );
    }
    assert!(respond(&s.inviter, &s.secrets, &s.first, NOW).is_ok());
}

#[test]
fn truncated_extended_and_mistagged_messages_are_malformed_or_fail() {
    let s = setup(4);
    let cases: Vec<Vec<u8>> = vec![
        Vec::new(),
        s.first[..100].to_vec(),
        s.first[..s.first.len() - 1].to_vec(),
        [s.first.as_slice(), &[0]].concat(),
        [&[0x02u8, 0x01][..], &s.first[2..]].concat(),
        [&[0x01u8, 0x02][..], &s.first[2..]].concat(),
    ];
    for (i, bad) in cases.iter().enumerate() {
        let err = respond(&s.inviter, &s.secrets, bad, NOW).err();
        assert!(
            matches!(
                err,
                Some(HandshakeError::Failed | HandshakeError::Malformed)
            ),
            "case {i}: {err:?}"
        );
    }
    assert_eq!(
        respond(&s.inviter, &s.secrets, &[], NOW).err(),
        Some(HandshakeError::Malformed)
    );
}

#[test]
fn a_first_message_for_another_invitation_fails() {
    let s = setup(5);
    let mut rng = rng(55);
    let (_, other_secrets) = invitation(&s.inviter, &mut rng);
    assert_eq!(
        respond(&s.inviter, &other_secrets, &s.first, NOW).err(),
        Some(HandshakeError::Failed)
    );
    // And the wrong inviter identity with the right secrets fails too (DH2 and DH4 differ).
    let stranger = Identity::generate(&mut rng);
    assert_eq!(
        respond(&stranger, &s.secrets, &s.first, NOW).err(),
        Some(HandshakeError::Failed)
    );
}

#[test]
fn low_order_ephemeral_key_is_rejected() {
    let s = setup(6);
    for point in [[0u8; 32], {
        let mut p = [0u8; 32];
        p[0] = 1;
        p
    }] {
        let mut bad = s.first.clone();
        bad[2..34].copy_from_slice(&point);
        assert_eq!(
            respond(&s.inviter, &s.secrets, &bad, NOW).err(),
            Some(HandshakeError::Failed)
        );
    }
}

#[test]
fn oversized_initial_plaintext_is_refused() {
    let mut rng = rng(7);
    let inviter = Identity::generate(&mut rng);
    let (inv, _) = invitation(&inviter, &mut rng);
    let big = vec![0u8; hush_client::crypto::limits::MAX_PLAINTEXT_LEN + 1];
    assert_eq!(
        accept(&inviter, &inv, &big, &mut rng).err(),
        Some(HandshakeError::PlaintextTooLong)
    );
}
