//! Key derivation, Diffie-Hellman and AEAD helpers, with every domain-separation label.
//!
//! What it does: the HKDF/HMAC-SHA256 chain functions of the double ratchet, a checked X25519
//! agreement that refuses non-contributory (low-order) points, thin (X)ChaCha20-Poly1305
//! wrappers, and the header AEAD (XChaCha20 with an HMAC-SHA256 tag). What it does not do:
//! hold state. Callers own every key and its lifetime.

use chacha20::cipher::{KeyIvInit, StreamCipher};
use chacha20::XChaCha20;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce, XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// Labels that separate every use of a hash or KDF. They are part of the protocol.
pub(crate) mod label {
    /// Prefix of the bytes an inviter signs.
    pub(crate) const INVITATION_SIGNATURE: &[u8] = b"hush/v1/invitation";
    /// Prefix of the handshake transcript hash.
    pub(crate) const TRANSCRIPT: &[u8] = b"hush/v1/pqxdh/transcript";
    /// HKDF info for the key that seals the joiner's identity.
    pub(crate) const IDENTITY_SEAL: &[u8] = b"hush/v1/pqxdh/identity-seal";
    /// Prefix of the bytes a joiner signs.
    pub(crate) const JOINER_SIGNATURE: &[u8] = b"hush/v1/pqxdh/joiner";
    /// HKDF info for the key, from the invitation hash, that seals a first message's
    /// handshake fields.
    pub(crate) const FIRST_MESSAGE_SEAL: &[u8] = b"hush/v1/pqxdh/first-message-seal";
    /// HKDF info for the handshake's shared secret.
    pub(crate) const HANDSHAKE: &[u8] = b"hush/v1/pqxdh/X25519_SHA-256_ML-KEM-768";
    /// Prefix of the associated data bound to every message of a session.
    pub(crate) const SESSION_AD: &[u8] = b"hush/v1/session-ad";
    /// HKDF info of the root-key step.
    pub(crate) const ROOT: &[u8] = b"hush/v1/ratchet/root";
    /// Prefix of the safety-number hash.
    pub(crate) const SAFETY_NUMBER: &[u8] = b"hush/v1/safety-number";
}

/// A 32-byte secret key (root, chain, header or message key). Not `Copy`: every copy is a value
/// of its own, zeroized when dropped. Reads as `[u8; 32]` through `Deref`.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct Key32([u8; 32]);

impl Key32 {
    /// Takes ownership of `bytes` (the caller's copy is moved, not kept).
    pub(crate) const fn from_bytes(bytes: [u8; 32]) -> Key32 {
        Key32(bytes)
    }

    /// Overwrites this key in place with a copy of `other`, leaving no copy elsewhere.
    pub(crate) fn copy_from(&mut self, other: &Key32) {
        self.0.copy_from_slice(&other.0);
    }
}

impl std::ops::Deref for Key32 {
    type Target = [u8; 32];

    fn deref(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for Key32 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key32(..)")
    }
}

/// Why a cryptographic primitive refused its input. Never shown to a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PrimitiveError;

/// X25519 agreement that rejects a non-canonical public key and a non-contributory result (a
/// low-order or zero point).
pub(crate) fn dh(secret: &StaticSecret, public: &[u8; 32]) -> Result<Key32, PrimitiveError> {
    if !is_canonical_x25519(public) {
        return Err(PrimitiveError);
    }
    let shared = secret.diffie_hellman(&PublicKey::from(*public));
    if !shared.was_contributory() {
        return Err(PrimitiveError);
    }
    Ok(Key32(shared.to_bytes()))
}

/// Whether `point` is the canonical encoding of a field element: bit 255 clear and the
/// little-endian value below p = 2^255 - 19 (that is, not in p..2^255 - 1).
pub(crate) fn is_canonical_x25519(point: &[u8; 32]) -> bool {
    if point[31] & 0x80 != 0 {
        return false;
    }
    let at_least_p =
        point[31] == 0x7f && point[1..31].iter().all(|&b| b == 0xff) && point[0] >= 0xed;
    !at_least_p
}

/// `KDF_RK`: one root-key step. Returns (new root key, chain key, next header key).
pub(crate) fn kdf_rk(root: &Key32, dh_out: &Key32) -> (Key32, Key32, Key32) {
    let mut okm = Zeroizing::new([0u8; 96]);
    // 96 bytes is far below HKDF-SHA256's 8160-byte limit, so expand cannot fail.
    let _ = Hkdf::<Sha256>::new(Some(&root[..]), &dh_out[..]).expand(label::ROOT, okm.as_mut());
    (
        split32(okm.as_ref(), 0),
        split32(okm.as_ref(), 1),
        split32(okm.as_ref(), 2),
    )
}

/// `KDF_CK`: one chain step. Returns (message key, next chain key).
pub(crate) fn kdf_ck(chain: &Key32) -> (Key32, Key32) {
    // HMAC accepts keys of any length, so this cannot fail.
    let Ok(keyed) = <Hmac<Sha256> as Mac>::new_from_slice(&chain[..]) else {
        return (Key32([0u8; 32]), Key32([0u8; 32]));
    };
    let mut mk = keyed.clone();
    mk.update(&[0x01]);
    let mut ck = keyed;
    ck.update(&[0x02]);
    let mut out = (Key32([0u8; 32]), Key32([0u8; 32]));
    out.0 .0.copy_from_slice(&mk.finalize().into_bytes());
    out.1 .0.copy_from_slice(&ck.finalize().into_bytes());
    out
}

/// HKDF-SHA256 with the given salt, input keying material and info, into `N` bytes.
pub(crate) fn hkdf<const N: usize>(salt: &[u8], ikm: &[u8], info: &[&[u8]]) -> Zeroizing<[u8; N]> {
    let mut okm = Zeroizing::new([0u8; N]);
    let info: Vec<u8> = info.concat();
    // Callers ask for at most 96 bytes, far below the 8160-byte limit.
    let _ = Hkdf::<Sha256>::new(Some(salt), ikm).expand(&info, okm.as_mut());
    okm
}

/// SHA-256 over the concatenation of `parts`.
pub(crate) fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

pub(crate) fn split32(okm: &[u8], i: usize) -> Key32 {
    let mut out = Key32([0u8; 32]);
    out.0.copy_from_slice(&okm[i * 32..(i + 1) * 32]);
    out
}

/// Encrypts under a one-time key with a fixed zero nonce (the handshake's identity seal).
pub(crate) fn seal_once(key: &Key32, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let cipher = ChaCha20Poly1305::new(Key::from_slice(&key[..]));
    // Encryption only fails for inputs beyond 2^38 bytes; inputs here are tiny.
    cipher
        .encrypt(
            &Nonce::default(),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .unwrap_or_default()
}

/// Decrypts what [`seal_once`] produced.
pub(crate) fn open_once(
    key: &Key32,
    aad: &[u8],
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>, PrimitiveError> {
    let cipher = ChaCha20Poly1305::new(Key::from_slice(&key[..]));
    cipher
        .decrypt(
            &Nonce::default(),
            Payload {
                msg: ciphertext,
                aad,
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| PrimitiveError)
}

/// Length of a header plaintext: ratchet key, previous chain length, message number.
pub(crate) const HEADER_LEN: usize = 40;

/// Length of the header tag (HMAC-SHA256 truncated to 128 bits).
pub(crate) const HEADER_TAG_LEN: usize = 16;

/// Header AEAD, "XChaCha20-HMAC-SHA256": encrypt-then-MAC in the shape of RFC 8439.
///
/// The first 32 bytes of the XChaCha20 keystream (block 0) are a one-time MAC key; block 1 on
/// encrypts the header; the tag is HMAC-SHA256(one-time key, aad || nonce || ciphertext)
/// truncated to 16 bytes. Headers are tried against several keys on every receipt, and this
/// costs a fraction of a Poly1305 setup.
pub(crate) fn seal_header(
    hk: &Key32,
    nonce: &[u8; 24],
    aad: &[&[u8]],
    header: &[u8; HEADER_LEN],
) -> [u8; HEADER_LEN + HEADER_TAG_LEN] {
    let mut buf = Zeroizing::new([0u8; 64 + HEADER_LEN]);
    buf[64..].copy_from_slice(header);
    XChaCha20::new((&**hk).into(), nonce.into()).apply_keystream(buf.as_mut());
    let mut out = [0u8; HEADER_LEN + HEADER_TAG_LEN];
    out[..HEADER_LEN].copy_from_slice(&buf[64..]);
    let tag = header_tag(&buf[..32], aad, nonce, &buf[64..]);
    out[HEADER_LEN..].copy_from_slice(&tag[..HEADER_TAG_LEN]);
    out
}

/// Opens what [`seal_header`] produced; `None` if the tag does not verify under this key.
pub(crate) fn open_header(
    hk: &Key32,
    nonce: &[u8],
    aad: &[&[u8]],
    sealed: &[u8],
) -> Option<Zeroizing<[u8; HEADER_LEN]>> {
    let nonce: &[u8; 24] = nonce.try_into().ok()?;
    if sealed.len() != HEADER_LEN + HEADER_TAG_LEN {
        return None;
    }
    let (ct, tag) = sealed.split_at(HEADER_LEN);
    let mut buf = Zeroizing::new([0u8; 64 + HEADER_LEN]);
    buf[64..].copy_from_slice(ct);
    let mut cipher = XChaCha20::new((&**hk).into(), nonce.into());
    cipher.apply_keystream(&mut buf[..64]);
    let expected = header_tag(&buf[..32], aad, nonce, ct);
    if !bool::from(expected[..HEADER_TAG_LEN].ct_eq(tag)) {
        return None;
    }
    cipher.apply_keystream(&mut buf[64..]);
    let mut header = Zeroizing::new([0u8; HEADER_LEN]);
    header.copy_from_slice(&buf[64..]);
    Some(header)
}

fn header_tag(mac_key: &[u8], aad: &[&[u8]], nonce: &[u8; 24], ct: &[u8]) -> Zeroizing<[u8; 32]> {
    // HMAC accepts keys of any length, so this cannot fail.
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(mac_key) else {
        return Zeroizing::new([0u8; 32]);
    };
    for part in aad {
        mac.update(part);
    }
    mac.update(nonce);
    mac.update(ct);
    Zeroizing::new(mac.finalize().into_bytes().into())
}

/// XChaCha20-Poly1305 encryption with a 24-byte nonce (message bodies).
pub(crate) fn seal_x(key: &Key32, nonce: &[u8; 24], aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let cipher = XChaCha20Poly1305::new(Key::from_slice(&key[..]));
    cipher
        .encrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .unwrap_or_default()
}

/// XChaCha20-Poly1305 decryption with a 24-byte nonce (message bodies).
pub(crate) fn open_x(
    key: &Key32,
    nonce: &[u8],
    aad: &[u8],
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>, PrimitiveError> {
    if nonce.len() != 24 {
        return Err(PrimitiveError);
    }
    let cipher = XChaCha20Poly1305::new(Key::from_slice(&key[..]));
    cipher
        .decrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: ciphertext,
                aad,
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| PrimitiveError)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_zeroizes_on_drop_and_never_prints() {
        fn zeroized_on_drop<T: ZeroizeOnDrop>() {}
        zeroized_on_drop::<Key32>();
        let mut key = Key32::from_bytes([0x5a; 32]);
        assert_eq!(format!("{key:?}"), "Key32(..)");
        key.zeroize();
        assert_eq!(*key, [0u8; 32]);
    }

    #[test]
    fn chain_step_separates_message_and_chain_keys() {
        let (mk, ck) = kdf_ck(&Key32::from_bytes([7; 32]));
        assert_ne!(*mk, *ck);
        let (mk2, _) = kdf_ck(&ck);
        assert_ne!(*mk, *mk2);
    }

    #[test]
    fn dh_rejects_non_canonical_public_keys() {
        let secret = StaticSecret::from([7u8; 32]);
        let good = PublicKey::from(&StaticSecret::from([5u8; 32])).to_bytes();
        assert!(dh(&secret, &good).is_ok());
        let mut high_bit = good;
        high_bit[31] |= 0x80;
        assert_eq!(dh(&secret, &high_bit).err(), Some(PrimitiveError));
    }

    #[test]
    fn dh_rejects_low_order_points() {
        let secret = StaticSecret::from([9u8; 32]);
        // The identity point and a point of order 8 (RFC 7748 / cr.yp.to list).
        let zero = [0u8; 32];
        let mut order8 = [0u8; 32];
        order8[..4].copy_from_slice(&[0xe0, 0xeb, 0x7a, 0x7c]);
        order8[4..].copy_from_slice(&hex_tail());
        assert!(dh(&secret, &zero).is_err());
        assert!(dh(&secret, &order8).is_err());
        let good = PublicKey::from(&StaticSecret::from([5u8; 32])).to_bytes();
        assert!(dh(&secret, &good).is_ok());
    }

    fn hex_tail() -> [u8; 28] {
        [
            0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4, 0x6a, 0xda, 0x09,
            0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49, 0xb8, 0x00,
        ]
    }

    #[test]
    fn aead_round_trip_and_tamper() {
        let key = Key32::from_bytes([3u8; 32]);
        let ct = seal_once(&key, b"ad", b"hello");
        let opened = open_once(&key, b"ad", &ct).unwrap();
        assert_eq!(opened.as_slice(), b"hello");
        assert!(open_once(&key, b"ax", &ct).is_err());
        let mut bad = ct.clone();
        bad[0] ^= 1;
        assert!(open_once(&key, b"ad", &bad).is_err());
        let nonce = [7u8; 24];
        let ct = seal_x(&key, &nonce, b"ad", b"hello");
        assert!(open_x(&key, &nonce, b"ad", &ct).is_ok());
        assert!(open_x(&key, &[8u8; 24], b"ad", &ct).is_err());
        assert!(open_x(&key, &nonce[..23], b"ad", &ct).is_err());
    }

    #[test]
    fn header_aead_round_trip_and_tamper() {
        let (hk, nonce, header) = (Key32::from_bytes([4u8; 32]), [5u8; 24], [6u8; HEADER_LEN]);
        let sealed = seal_header(&hk, &nonce, &[b"ad", b"p"], &header);
        assert!(
            !sealed.windows(8).any(|w| w == [6u8; 8]),
            "header in the clear"
        );
        let opened = open_header(&hk, &nonce, &[b"ad", b"p"], &sealed).unwrap();
        assert_eq!(*opened, header);
        assert!(open_header(
            &Key32::from_bytes([9u8; 32]),
            &nonce,
            &[b"ad", b"p"],
            &sealed
        )
        .is_none());
        assert!(open_header(&hk, &[0u8; 24], &[b"ad", b"p"], &sealed).is_none());
        assert!(open_header(&hk, &nonce, &[b"ad", b"q"], &sealed).is_none());
        assert!(open_header(&hk, &nonce, &[b"ad", b"p"], &sealed[1..]).is_none());
        for i in 0..sealed.len() {
            let mut bad = sealed;
            bad[i] ^= 0x10;
            assert!(
                open_header(&hk, &nonce, &[b"ad", b"p"], &bad).is_none(),
                "byte {i}"
            );
        }
    }
}
