//! Every decoder refuses arbitrary bytes with an error and never panics: invitations, stored
//! identities, invitation secrets and sessions, handshake first messages and ratchet messages,
//! whether the bytes are random or a valid input with random damage.

mod common;

use common::{invitation, pair, rng, NOW};
use hush_client::crypto::{
    accept, respond, Identity, Invitation, InvitationSecrets, PublicIdentity, Session,
    INVITATION_PREFIX,
};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_bytes_are_refused(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
        let text = String::from_utf8_lossy(&bytes);
        prop_assert!(Invitation::parse(&text).is_err());
        let prefixed = format!("{INVITATION_PREFIX}{text}");
        prop_assert!(Invitation::parse(&prefixed).is_err());
        prop_assert!(Identity::from_bytes(&bytes).is_err() || bytes.len() == 65);
        prop_assert!(PublicIdentity::from_bytes(&bytes).is_err() || bytes.len() == 64);
        prop_assert!(InvitationSecrets::from_bytes(&bytes).is_err());
        prop_assert!(Session::from_bytes(&bytes).is_err());
    }

    #[test]
    fn damaged_messages_are_refused_without_state_change(
        seed in any::<u64>(),
        edits in prop::collection::vec((any::<usize>(), 1u8..=255), 1..4),
        cut in prop::option::of(any::<usize>()),
    ) {
        let mut p = pair(seed % 8);
        let wire = p.a_to_b(b"payload");
        let mut bad = wire.clone();
        for (i, x) in &edits {
            let i = i % bad.len();
            bad[i] ^= x;
        }
        if let Some(c) = cut {
            bad.truncate(c % bad.len());
        }
        prop_assume!(bad != wire, "edits cancelled out");
        let before = p.b.to_bytes();
        prop_assert!(p.b.decrypt(&bad, NOW).is_err());
        prop_assert!(p.b.to_bytes() == before);
        prop_assert_eq!(p.b.decrypt(&wire, NOW).unwrap(), b"payload".to_vec());
    }

    #[test]
    fn damaged_first_messages_are_refused(
        edits in prop::collection::vec((any::<usize>(), 1u8..=255), 1..4),
    ) {
        let mut rng = rng(7);
        let inviter = Identity::generate(&mut rng);
        let joiner = Identity::generate(&mut rng);
        let (inv, secrets) = invitation(&inviter, &mut rng);
        let (_, first) = accept(&joiner, &inv, b"queue", &mut rng).unwrap();
        let mut bad = first.clone();
        for (i, x) in &edits {
            let i = i % bad.len();
            bad[i] ^= x;
        }
        prop_assume!(bad != first, "edits cancelled out");
        prop_assert!(respond(&inviter, &secrets, &bad, NOW).is_err());
        prop_assert!(respond(&inviter, &secrets, &first, NOW).is_ok());
    }
}
