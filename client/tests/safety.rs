//! Safety numbers: symmetric, 60 digits, and sensitive to either key.

mod common;

use common::rng;
use hush_client::crypto::{safety_number, Identity, QR_PAYLOAD_LEN};

#[test]
fn same_on_both_sides_and_well_formed() {
    let mut rng = rng(1);
    let a = Identity::generate(&mut rng).public();
    let b = Identity::generate(&mut rng).public();
    let ab = safety_number(&a, &b);
    let ba = safety_number(&b, &a);
    assert_eq!(ab, ba);
    assert_eq!(ab.digits(), ba.digits());
    // Each side shows its own fingerprint first.
    assert_ne!(ab.qr_payload(), ba.qr_payload());
    let digits = ab.digits();
    let groups: Vec<&str> = digits.split(' ').collect();
    assert_eq!(groups.len(), 12);
    assert!(groups
        .iter()
        .all(|g| g.len() == 5 && g.bytes().all(|c| c.is_ascii_digit())));
    assert_eq!(ab.qr_payload().len(), QR_PAYLOAD_LEN);
    assert!(ab.matches_qr(&ba.qr_payload()));
    assert!(ba.matches_qr(&ab.qr_payload()));
}

#[test]
fn scanning_ones_own_code_does_not_match() {
    let mut rng = rng(3);
    let a = Identity::generate(&mut rng).public();
    let b = Identity::generate(&mut rng).public();
    let ab = safety_number(&a, &b);
    assert!(!ab.matches_qr(&ab.qr_payload()));
    assert_eq!(ab.qr_payload()[0], 2, "QR payload version");
}

#[test]
fn changes_when_either_key_changes() {
    let mut rng = rng(2);
    let a = Identity::generate(&mut rng).public();
    let b = Identity::generate(&mut rng).public();
    let a2 = Identity::generate(&mut rng).public();
    let b2 = Identity::generate(&mut rng).public();
    let base = safety_number(&a, &b);
    for other in [safety_number(&a2, &b), safety_number(&a, &b2)] {
        assert_ne!(other.digits(), base.digits());
        assert!(!base.matches_qr(&other.qr_payload()));
    }
    assert!(!base.matches_qr(&base.qr_payload()[1..]));
}
