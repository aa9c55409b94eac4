//! Helpers shared by the crypto integration tests: seeded RNGs, a relay address and a pair of
//! sessions that completed the handshake.
#![allow(dead_code)]

use hush_client::crypto::{accept, respond, Identity, Invitation, Session};
use hush_protocol::{RelayAddress, SendCapability, SenderId};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

/// A fixed "now" in unix seconds.
pub(crate) const NOW: u64 = 1_700_000_000;

pub(crate) fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

pub(crate) fn relay() -> RelayAddress {
    format!("hush://relay.example:4433#{}", "5a".repeat(32))
        .parse()
        .unwrap()
}

pub(crate) fn invitation(
    identity: &Identity,
    rng: &mut ChaCha20Rng,
) -> (Invitation, hush_client::crypto::InvitationSecrets) {
    Invitation::create(
        identity,
        relay(),
        SenderId::from_bytes([0x11; 16]),
        SendCapability::from_bytes([0x22; 32]),
        u64::MAX,
        rng,
    )
}

/// Two sessions after a completed handshake: `a` is the joiner, `b` the inviter.
pub(crate) struct Pair {
    pub(crate) a: Session,
    pub(crate) b: Session,
    pub(crate) rng: ChaCha20Rng,
}

pub(crate) fn pair(seed: u64) -> Pair {
    let mut rng = rng(seed);
    let inviter = Identity::generate(&mut rng);
    let joiner = Identity::generate(&mut rng);
    let (inv, secrets) = invitation(&inviter, &mut rng);
    let inv = Invitation::parse(&inv.encode()).unwrap();
    let (a, first) = accept(&joiner, &inv, b"hello", &mut rng).unwrap();
    let (b, _, pt) = respond(&inviter, &secrets, &first, NOW).unwrap();
    assert_eq!(pt, b"hello");
    Pair { a, b, rng }
}

impl Pair {
    pub(crate) fn a_to_b(&mut self, msg: &[u8]) -> Vec<u8> {
        self.a.encrypt(msg, &mut self.rng).unwrap()
    }

    pub(crate) fn b_to_a(&mut self, msg: &[u8]) -> Vec<u8> {
        self.b.encrypt(msg, &mut self.rng).unwrap()
    }
}
