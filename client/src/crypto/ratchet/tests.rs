//! Unit tests that need the ratchet's internals: counters near 2^32, and what the relay sees.

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

use super::{EncryptError, Session};
use crate::crypto::limits::MAX_CHAIN_LEN;
use crate::crypto::{accept, respond, Identity, Invitation};

const NOW: u64 = 1_700_000_000;

fn pair(seed: u64) -> (Session, Session, ChaCha20Rng, Vec<u8>) {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let inviter = Identity::generate(&mut rng);
    let joiner = Identity::generate(&mut rng);
    let relay = format!("hush://r.example:1#{}", "00".repeat(32))
        .parse()
        .unwrap();
    let (inv, secrets) = Invitation::create(
        &inviter,
        relay,
        hush_protocol::SenderId::from_bytes([1; 16]),
        hush_protocol::SendCapability::from_bytes([2; 32]),
        u64::MAX,
        &mut rng,
    );
    let (a, first) = accept(&joiner, &inv, b"hi", &mut rng).unwrap();
    let (b, _, _) = respond(&inviter, &secrets, &first, NOW).unwrap();
    (a, b, rng, first)
}

#[test]
fn counters_near_2_pow_32_do_not_overflow() {
    let (mut a, mut b, mut rng, _) = pair(1);
    // The joiner's chain is A's first chain; B has received message 0 of it.
    a.state_mut().ns = MAX_CHAIN_LEN - 2;
    b.state_mut().nr = MAX_CHAIN_LEN - 2;
    let m1 = a.encrypt(b"n = 2^32 - 3", &mut rng).unwrap();
    let m2 = a.encrypt(b"n = 2^32 - 2", &mut rng).unwrap();
    assert_eq!(
        a.encrypt(b"one too many", &mut rng),
        Err(EncryptError::ChainExhausted)
    );
    assert_eq!(b.decrypt(&m2, NOW).unwrap(), b"n = 2^32 - 2");
    assert_eq!(b.decrypt(&m1, NOW).unwrap(), b"n = 2^32 - 3");
    // A reply starts new chains; the previous-chain length u32::MAX fits the header.
    let r = b.encrypt(b"reply", &mut rng).unwrap();
    assert_eq!(a.decrypt(&r, NOW).unwrap(), b"reply");
    let m3 = a.encrypt(b"new chain", &mut rng).unwrap();
    assert_eq!(b.decrypt(&m3, NOW).unwrap(), b"new chain");
    assert_eq!(b.state_mut().nr, 1);
}

#[test]
fn receiving_counter_at_the_top_does_not_overflow() {
    let (mut a, mut b, mut rng, _) = pair(2);
    a.state_mut().ns = MAX_CHAIN_LEN - 1;
    b.state_mut().nr = MAX_CHAIN_LEN - 1;
    let last = a.encrypt(b"last", &mut rng).unwrap();
    assert_eq!(b.decrypt(&last, NOW).unwrap(), b"last");
    assert_eq!(b.state_mut().nr, MAX_CHAIN_LEN);
    assert!(b.decrypt(&last, NOW).is_err());
    let restored = Session::from_bytes(&b.to_bytes()).unwrap();
    assert_eq!(restored.state.nr, MAX_CHAIN_LEN);
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn relay_visible_bytes_contain_no_ratchet_key_or_counter() {
    let (mut a, mut b, mut rng, first) = pair(3);
    // The first ratchet key travels inside the handshake message, encrypted.
    assert!(!contains(&first, &a.sending_ratchet_key()));
    // Distinctive counters, so that a clear copy would be found.
    let counter: u32 = 0x5a3c_9e17;
    a.state_mut().ns = u64::from(counter);
    b.state_mut().nr = u64::from(counter);
    for round in 0..3 {
        let key = a.sending_ratchet_key();
        let n = a.state_mut().ns as u32;
        let wire = a.encrypt(b"same plaintext", &mut rng).unwrap();
        assert!(!contains(&wire, &key), "round {round}: ratchet key visible");
        assert!(
            !contains(&wire, &n.to_be_bytes()),
            "round {round}: counter visible"
        );
        assert!(
            !contains(&wire, &n.to_le_bytes()),
            "round {round}: counter visible"
        );
        assert!(!contains(&wire, b"same plaintext"));
        assert_eq!(b.decrypt(&wire, NOW).unwrap(), b"same plaintext");
        // A DH step on both sides, so the next round uses fresh keys.
        let r = b.encrypt(b"r", &mut rng).unwrap();
        assert!(!contains(&r, &b.sending_ratchet_key()));
        a.decrypt(&r, NOW).unwrap();
    }
}

#[test]
fn identical_messages_look_unrelated() {
    let (mut a, _, mut rng, _) = pair(4);
    let m1 = a.encrypt(b"same", &mut rng).unwrap();
    let m2 = a.encrypt(b"same", &mut rng).unwrap();
    assert_eq!(m1.len(), m2.len());
    // Only the clear prefix (the version byte) repeats.
    let clear = crate::crypto::limits::RATCHET_PREFIX_LEN;
    assert_eq!(m1[..clear], m2[..clear]);
    let equal = m1[clear..]
        .iter()
        .zip(&m2[clear..])
        .filter(|(x, y)| x == y)
        .count();
    // Unrelated random bytes agree in about 1/256 of positions.
    assert!(equal < m1.len() / 32, "{equal} equal bytes");
}

#[test]
fn every_secret_type_zeroizes_on_drop() {
    fn zeroizes_on_drop<T: zeroize::ZeroizeOnDrop>() {}
    zeroizes_on_drop::<super::State>();
    zeroizes_on_drop::<super::skipped::SkippedKey>();
    zeroizes_on_drop::<super::skipped::SkippedChain>();
    // The dependency key types inside Identity and InvitationSecrets.
    zeroizes_on_drop::<ed25519_dalek::SigningKey>();
    // x25519-dalek zeroizes its secrets in a `Drop` impl (`zeroize(drop)`) without the marker.
    fn zeroizes<T: zeroize::Zeroize>() {}
    zeroizes::<x25519_dalek::StaticSecret>();
    assert!(std::mem::needs_drop::<x25519_dalek::StaticSecret>());
    zeroizes_on_drop::<ml_kem::kem::DecapsulationKey<ml_kem::MlKem768Params>>();
    zeroizes_on_drop::<hush_protocol::SendCapability>();
}
