//! Invitation tokens through the public API: round trip and each malformation's own error.

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use common::{invitation, relay, rng};
use hush_client::crypto::{Identity, Invitation, InvitationError, INVITATION_PREFIX};
use hush_protocol::SenderId;

fn token_bytes(seed: u64) -> (Identity, Vec<u8>) {
    let mut rng = rng(seed);
    let id = Identity::generate(&mut rng);
    let (inv, _) = invitation(&id, &mut rng);
    let token = inv.encode();
    let b64 = token.strip_prefix(INVITATION_PREFIX).unwrap();
    (id, URL_SAFE_NO_PAD.decode(b64).unwrap())
}

fn token(bytes: &[u8]) -> String {
    format!("{INVITATION_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
}

#[test]
fn round_trip_keeps_every_field() {
    let mut rng = rng(1);
    let id = Identity::generate(&mut rng);
    let (inv, _) = invitation(&id, &mut rng);
    let text = inv.encode();
    assert!(text.starts_with("hush://invite/"));
    assert!(text.chars().all(|c| c.is_ascii_graphic()), "copy-pasteable");
    let parsed = Invitation::parse(&format!("  {text}\n")).unwrap();
    assert_eq!(parsed.relay(), &relay());
    assert_eq!(parsed.sender_id(), SenderId::from_bytes([0x11; 16]));
    assert_eq!(parsed.send_capability().as_bytes(), &[0x22; 32]);
    assert_eq!(parsed.inviter(), &id.public());
    assert_eq!(parsed.encode(), text);
    // A token wrapped by a terminal still parses.
    let wrapped: String = text
        .chars()
        .enumerate()
        .flat_map(|(i, c)| {
            (i > 14 && i % 80 == 0)
                .then_some('\n')
                .into_iter()
                .chain([c])
        })
        .collect();
    assert!(wrapped.contains('\n'));
    assert_eq!(Invitation::parse(&wrapped).unwrap().encode(), text);
    let printed = format!("{parsed:?}");
    assert!(
        !printed.contains("2222"),
        "Debug must not print the send capability"
    );
}

#[test]
fn each_malformation_has_its_own_error() {
    let (_, bytes) = token_bytes(2);
    let good = token(&bytes);
    assert!(Invitation::parse(&good).is_ok());

    assert_eq!(
        Invitation::parse(&good.replace("hush://invite/", "hush://invit/")).err(),
        Some(InvitationError::Prefix)
    );
    assert_eq!(Invitation::parse("").err(), Some(InvitationError::Prefix));
    let long = format!("{INVITATION_PREFIX}{}", "A".repeat(5000));
    assert_eq!(
        Invitation::parse(&long).err(),
        Some(InvitationError::TooLong)
    );
    assert_eq!(
        Invitation::parse(&format!("{good}*")).err(),
        Some(InvitationError::Encoding)
    );
    assert_eq!(
        Invitation::parse(&format!("{good}=")).err(),
        Some(InvitationError::Encoding)
    );

    for cut in [0, 1, 10, bytes.len() / 2, bytes.len() - 1] {
        assert_eq!(
            Invitation::parse(&token(&bytes[..cut])).err(),
            Some(InvitationError::Truncated),
            "cut {cut}"
        );
    }
    let trailing = [bytes.as_slice(), &[0]].concat();
    assert_eq!(
        Invitation::parse(&token(&trailing)).err(),
        Some(InvitationError::TrailingBytes)
    );

    // Versions 1 and 2 are known; 3 is not.
    let mut v = bytes.clone();
    v[0] = 3;
    assert_eq!(
        Invitation::parse(&token(&v)).err(),
        Some(InvitationError::Version)
    );

    // Relay address length beyond the cap, and a relay address that does not parse.
    let mut v = bytes.clone();
    v[1..3].copy_from_slice(&0xffffu16.to_be_bytes());
    assert_eq!(
        Invitation::parse(&token(&v)).err(),
        Some(InvitationError::RelayAddress)
    );
    let mut v = bytes.clone();
    v[3..10].copy_from_slice(b"http://");
    assert_eq!(
        Invitation::parse(&token(&v)).err(),
        Some(InvitationError::RelayAddress)
    );
}

#[test]
fn any_altered_field_breaks_the_signature() {
    let (_, bytes) = token_bytes(3);
    let relay_len = usize::from(u16::from_be_bytes([bytes[1], bytes[2]]));
    let start = 3 + relay_len;
    // sender id, send capability, the X25519 identity key, the prekey, the ML-KEM key, the signature.
    let positions = [
        start,
        start + 16,
        start + 48 + 40,
        start + 48 + 64 + 5,
        start + 48 + 96 + 1183,
        bytes.len() - 1,
    ];
    for i in positions {
        let mut v = bytes.clone();
        v[i] ^= 0x01;
        let err = Invitation::parse(&token(&v)).err();
        assert!(
            matches!(
                err,
                Some(InvitationError::BadSignature | InvitationError::InvalidKey)
            ),
            "byte {i}: {err:?}"
        );
    }
    // Replacing the inviter with another identity (valid key, wrong signer) is a bad signature.
    let mut rng = rng(33);
    let other = Identity::generate(&mut rng).public().to_bytes();
    let mut v = bytes.clone();
    v[start + 48..start + 48 + 64].copy_from_slice(&other);
    assert_eq!(
        Invitation::parse(&token(&v)).err(),
        Some(InvitationError::BadSignature)
    );
    // Flipping a bit of the port keeps a valid address but breaks the signature.
    let port_digit = 3 + "hush://relay.example:443".len();
    let mut v = bytes.clone();
    v[port_digit] = b'4';
    assert_eq!(
        Invitation::parse(&token(&v)).err(),
        Some(InvitationError::BadSignature)
    );
}

#[test]
fn an_invalid_identity_key_is_refused() {
    let (_, bytes) = token_bytes(4);
    let relay_len = usize::from(u16::from_be_bytes([bytes[1], bytes[2]]));
    let x_key = 3 + relay_len + 48 + 32;
    let mut v = bytes.clone();
    v[x_key..x_key + 32].copy_from_slice(&[0; 32]);
    assert_eq!(
        Invitation::parse(&token(&v)).err(),
        Some(InvitationError::InvalidKey)
    );
}
