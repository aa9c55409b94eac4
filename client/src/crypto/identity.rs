//! Long-term identity keys: an Ed25519 signing key and an X25519 agreement key.
//!
//! What it does: generates an identity, serialises it for storage (secret bytes, zeroized) and
//! exposes its public half, [`PublicIdentity`], which peers see in invitations and handshakes.
//! What it does not do: store anything, or decide whether a peer's identity is trusted; the
//! safety number ([`crate::crypto::safety_number`]) is for that.

use std::fmt;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use hush_protocol::codec::Reader;
use rand_core::{CryptoRng, RngCore};
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use super::kdf::is_canonical_x25519;

/// Version byte of the stored identity encoding.
const IDENTITY_VERSION: u8 = 1;

/// Length of a stored identity: version, Ed25519 seed, X25519 secret.
pub const IDENTITY_LEN: usize = 1 + 32 + 32;

/// Length of an encoded public identity: Ed25519 public key, X25519 public key.
pub const PUBLIC_IDENTITY_LEN: usize = 32 + 32;

/// Why stored or received identity bytes were refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// The bytes have the wrong length.
    #[error("identity bytes have the wrong length; the stored identity is damaged")]
    Length,
    /// The stored encoding has an unknown version.
    #[error("identity was stored by an incompatible version of hush")]
    Version,
    /// A public key is not a valid, strong key (a weak Ed25519 key or a low-order X25519 point).
    #[error("identity contains an invalid public key")]
    InvalidKey,
}

/// This installation's long-term identity. Secret: zeroized on drop, never printed.
#[derive(Clone)]
pub struct Identity {
    signing: SigningKey,
    agreement: StaticSecret,
}

impl Identity {
    /// Generates a fresh identity.
    pub fn generate(rng: &mut (impl RngCore + CryptoRng)) -> Self {
        let signing = SigningKey::generate(rng);
        let agreement = StaticSecret::random_from_rng(rng);
        Self { signing, agreement }
    }

    /// The secret storage encoding (`IDENTITY_LEN` bytes). Keep it encrypted at rest.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(IDENTITY_LEN));
        out.push(IDENTITY_VERSION);
        out.extend_from_slice(self.signing.as_bytes());
        out.extend_from_slice(self.agreement.as_bytes());
        out
    }

    /// Restores an identity from [`Identity::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, IdentityError> {
        if bytes.len() != IDENTITY_LEN {
            return Err(IdentityError::Length);
        }
        let mut r = Reader::new(bytes);
        if r.u8().ok() != Some(IDENTITY_VERSION) {
            return Err(IdentityError::Version);
        }
        let seed = Zeroizing::new(r.array::<32>().map_err(|_| IdentityError::Length)?);
        let agreement = Zeroizing::new(r.array::<32>().map_err(|_| IdentityError::Length)?);
        Ok(Self {
            signing: SigningKey::from_bytes(&seed),
            agreement: StaticSecret::from(*agreement),
        })
    }

    /// The public half, which peers see.
    pub fn public(&self) -> PublicIdentity {
        PublicIdentity {
            signing: self.signing.verifying_key(),
            agreement: PublicKey::from(&self.agreement).to_bytes(),
        }
    }

    pub(crate) fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.signing.sign(message).to_bytes()
    }

    pub(crate) fn agreement(&self) -> &StaticSecret {
        &self.agreement
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("public", &self.public())
            .finish_non_exhaustive()
    }
}

/// A peer's (or our own) public identity: Ed25519 and X25519 public keys.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicIdentity {
    signing: VerifyingKey,
    agreement: [u8; 32],
}

impl PublicIdentity {
    /// The 64-byte encoding: Ed25519 public key then X25519 public key.
    pub fn to_bytes(&self) -> [u8; PUBLIC_IDENTITY_LEN] {
        let mut out = [0u8; PUBLIC_IDENTITY_LEN];
        out[..32].copy_from_slice(self.signing.as_bytes());
        out[32..].copy_from_slice(&self.agreement);
        out
    }

    /// Parses [`PublicIdentity::to_bytes`], refusing weak, low-order or non-canonical keys (one
    /// key has one encoding, so one pair of identities has one safety number).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, IdentityError> {
        let bytes: &[u8; PUBLIC_IDENTITY_LEN] =
            bytes.try_into().map_err(|_| IdentityError::Length)?;
        let mut ed = [0u8; 32];
        ed.copy_from_slice(&bytes[..32]);
        let mut x = [0u8; 32];
        x.copy_from_slice(&bytes[32..]);
        let signing = VerifyingKey::from_bytes(&ed).map_err(|_| IdentityError::InvalidKey)?;
        // Re-encoding the decoded point gives the one canonical encoding of the key.
        let canonical_ed = VerifyingKey::from(signing.to_edwards()).to_bytes() == ed;
        if !canonical_ed || signing.is_weak() || !is_contributory_point(&x) {
            return Err(IdentityError::InvalidKey);
        }
        Ok(Self {
            signing,
            agreement: x,
        })
    }

    /// The X25519 public key.
    pub fn agreement_key(&self) -> &[u8; 32] {
        &self.agreement
    }

    /// The Ed25519 public key.
    pub fn signing_key(&self) -> &[u8; 32] {
        self.signing.as_bytes()
    }

    /// Verifies a signature with `verify_strict` (no malleable or small-order encodings).
    pub(crate) fn verify(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        let sig = Signature::from_bytes(signature);
        self.signing.verify_strict(message, &sig).is_ok()
    }
}

impl fmt::Debug for PublicIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hex: String = self.signing.as_bytes()[..4]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        write!(f, "PublicIdentity({hex}..)")
    }
}

/// Whether an X25519 public key is canonically encoded and yields a contributory agreement
/// (is not of low order).
///
/// Canonical: bit 255 clear and the value below 2^255 - 19. X25519 ignores bit 255 and reduces
/// the value, so without this check one key has several encodings (and several safety numbers).
/// Contributory: multiplying with a fixed clamped scalar gives all-zero exactly when the point
/// lies in the small subgroup.
pub(crate) fn is_contributory_point(point: &[u8; 32]) -> bool {
    if !is_canonical_x25519(point) {
        return false;
    }
    let probe = StaticSecret::from([0x42u8; 32]);
    probe
        .diffie_hellman(&PublicKey::from(*point))
        .was_contributory()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    #[test]
    fn storage_round_trip_keeps_the_public_half() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let id = Identity::generate(&mut rng);
        let back = Identity::from_bytes(&id.to_bytes()).unwrap();
        assert_eq!(back.public(), id.public());
        let public = PublicIdentity::from_bytes(&id.public().to_bytes()).unwrap();
        assert_eq!(public, id.public());
    }

    #[test]
    fn non_canonical_encodings_of_a_valid_identity_are_refused() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let good = Identity::generate(&mut rng).public().to_bytes();
        assert!(PublicIdentity::from_bytes(&good).is_ok());
        // X25519 ignores bit 255: the same key with it set is a second encoding.
        let mut high_bit = good;
        high_bit[63] |= 0x80;
        assert_eq!(
            PublicIdentity::from_bytes(&high_bit).err(),
            Some(IdentityError::InvalidKey)
        );
        // p + 9 encodes the base point (u = 9) a second time.
        let mut reduced = good;
        let mut p_plus_9 = [0xffu8; 32];
        p_plus_9[0] = 0xed + 9;
        p_plus_9[31] = 0x7f;
        reduced[32..].copy_from_slice(&p_plus_9);
        assert_eq!(
            PublicIdentity::from_bytes(&reduced).err(),
            Some(IdentityError::InvalidKey)
        );
        assert!(is_canonical_x25519(&[9u8; 32]));
        assert!(!is_canonical_x25519(&p_plus_9));
        let mut exactly_p = p_plus_9;
        exactly_p[0] = 0xed;
        assert!(!is_canonical_x25519(&exactly_p));
        exactly_p[0] = 0xec;
        assert!(is_canonical_x25519(&exactly_p));
    }

    #[test]
    fn a_non_canonical_ed25519_encoding_is_refused() {
        let mut rng = ChaCha20Rng::seed_from_u64(4);
        let good = Identity::generate(&mut rng).public().to_bytes();
        // y + p for a small y encodes the same point as y; find one the decoder accepts.
        let accepted: Vec<[u8; 32]> = (0u8..19)
            .map(|y| {
                let mut e = [0xffu8; 32];
                e[0] = 0xed + y;
                e[31] = 0x7f;
                e
            })
            .filter(|e| VerifyingKey::from_bytes(e).is_ok_and(|k| !k.is_weak()))
            .collect();
        assert!(!accepted.is_empty(), "no non-canonical encoding decodes");
        for ed in accepted {
            let mut bytes = good;
            bytes[..32].copy_from_slice(&ed);
            assert_eq!(
                PublicIdentity::from_bytes(&bytes).err(),
                Some(IdentityError::InvalidKey)
            );
        }
    }

    #[test]
    fn rejects_bad_lengths_versions_and_keys() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let id = Identity::generate(&mut rng);
        let mut stored = id.to_bytes().to_vec();
        assert_eq!(
            Identity::from_bytes(&stored[1..]).err(),
            Some(IdentityError::Length)
        );
        stored[0] = 9;
        assert_eq!(
            Identity::from_bytes(&stored).err(),
            Some(IdentityError::Version)
        );
        let mut public = id.public().to_bytes();
        public[32..].copy_from_slice(&[0u8; 32]);
        assert_eq!(
            PublicIdentity::from_bytes(&public),
            Err(IdentityError::InvalidKey)
        );
        assert_eq!(
            PublicIdentity::from_bytes(&public[1..]),
            Err(IdentityError::Length)
        );
    }

    #[test]
    fn debug_prints_no_secret() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let id = Identity::generate(&mut rng);
        let printed = format!("{id:?}");
        let secret = id.to_bytes();
        let seed_hex: String = secret[1..5].iter().map(|b| format!("{b:02x}")).collect();
        assert!(!printed.contains(&seed_hex));
        assert!(printed.starts_with("Identity"));
    }
}
