//! One-time signed invitations: the `hush://invite/...` token and its pending secrets.
//!
//! What it does: builds an [`Invitation`] (relay address, queue sender id, send capability,
//! the inviter's identity keys, a one-time X25519 prekey, an ML-KEM-768 encapsulation key and
//! the moment it expires, all signed by the identity key), encodes it as one copy-pasteable
//! token, and parses a token back, checking the signature with `verify_strict`.
//! [`InvitationSecrets`] holds the matching private keys (and the expiry) until the joiner's
//! first message arrives or the invitation expires.
//!
//! Versions: version 2 (written now) signs an expiry in unix seconds after the ML-KEM key.
//! Version 1 had none; it still parses, and [`Invitation::check_unexpired`] accepts it (it
//! carries no creation time to count from). Both hash and verify over the bytes of their own
//! version.
//!
//! What it does not do: read the clock (`now` comes in), talk to a relay, or remember that an
//! invitation was used; the caller deletes the secrets after the handshake or the expiry.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hush_protocol::codec::Reader;
use hush_protocol::{RelayAddress, SendCapability, SenderId};
use ml_kem::kem::{DecapsulationKey, EncapsulationKey};
use ml_kem::{EncodedSizeUser, KemCore, MlKem768, MlKem768Params};
use rand_core::{CryptoRng, RngCore};
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use super::identity::{is_contributory_point, Identity, PublicIdentity, PUBLIC_IDENTITY_LEN};
use super::kdf::{label, sha256};
use super::limits::{MAX_INVITATION_TOKEN_LEN, MAX_RELAY_ADDRESS_LEN};

/// The prefix of every invitation token.
pub const INVITATION_PREFIX: &str = "hush://invite/";

/// Version byte of the invitation encoding written now: version 1 plus a signed expiry.
const INVITATION_VERSION: u8 = 2;

/// Version byte of the first invitation encoding, without an expiry. Still parsed.
const INVITATION_VERSION_1: u8 = 1;

/// Length of an ML-KEM-768 encapsulation key.
pub(crate) const KEM_EK_LEN: usize = 1184;

/// Length of an ML-KEM-768 decapsulation key encoding.
const KEM_DK_LEN: usize = 2400;

/// Version byte of the stored invitation secrets: version 1 plus the invitation's expiry.
const SECRETS_VERSION: u8 = 2;

/// Version byte of the first stored invitation secrets, without an expiry. Still read.
const SECRETS_VERSION_1: u8 = 1;

/// Why an invitation token was refused. Each malformation has its own variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvitationError {
    /// The text does not start with `hush://invite/`.
    #[error("an invitation starts with hush://invite/; copy the whole invitation")]
    Prefix,
    /// The token is longer than any valid invitation.
    #[error("the invitation is too long; copy exactly the invitation text")]
    TooLong,
    /// The token is not valid base64url.
    #[error("the invitation contains invalid characters; copy it again")]
    Encoding,
    /// The token ends before all fields were read.
    #[error("the invitation is cut off; copy the whole invitation")]
    Truncated,
    /// Bytes follow the signature.
    #[error("the invitation has extra data at the end; copy exactly the invitation text")]
    TrailingBytes,
    /// The token was made by an incompatible version of hush.
    #[error("the invitation was made by an incompatible version of hush")]
    Version,
    /// The relay address inside is not valid.
    #[error("the invitation carries an invalid relay address")]
    RelayAddress,
    /// A public key inside is invalid, weak or of low order.
    #[error("the invitation carries an invalid key")]
    InvalidKey,
    /// The signature does not verify: the invitation was altered or forged.
    #[error("the invitation's signature is invalid; it was altered or forged")]
    BadSignature,
    /// The invitation's signed expiry has passed.
    #[error("this invitation expired on {}; ask for a new one", rfc3339(*at))]
    Expired {
        /// When it expired, in unix seconds.
        at: u64,
    },
}

/// A unix time as RFC 3339 in UTC, to the second.
fn rfc3339(unix: u64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix.min(i32::MAX as u64));
    humantime::format_rfc3339_seconds(t).to_string()
}

/// A signed one-time invitation. Public except for the send capability it carries.
#[derive(Clone)]
pub struct Invitation {
    /// The encoding version it was made with (the signature and hash cover that encoding).
    version: u8,
    /// When it expires (unix seconds); `None` for a version 1 invitation.
    expires_at: Option<u64>,
    relay: RelayAddress,
    sender_id: SenderId,
    send_cap: SendCapability,
    inviter: PublicIdentity,
    prekey: [u8; 32],
    kem_ek: Box<EncapsulationKey<MlKem768Params>>,
    signature: [u8; 64],
}

/// The private keys of a pending invitation. Secret: zeroized on drop, never printed.
pub struct InvitationSecrets {
    invitation_hash: [u8; 32],
    /// When the invitation expires (unix seconds); `None` for secrets stored before expiries.
    expires_at: Option<u64>,
    prekey: StaticSecret,
    kem_dk: Box<DecapsulationKey<MlKem768Params>>,
}

impl Invitation {
    /// Creates an invitation for a queue the inviter owns, expiring at `expires_at` (unix
    /// seconds, signed with the rest), and the secrets to answer it.
    pub fn create(
        identity: &Identity,
        relay: RelayAddress,
        sender_id: SenderId,
        send_cap: SendCapability,
        expires_at: u64,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> (Invitation, InvitationSecrets) {
        let prekey = StaticSecret::random_from_rng(&mut *rng);
        let (kem_dk, kem_ek) = MlKem768::generate(rng);
        let mut invitation = Invitation {
            version: INVITATION_VERSION,
            expires_at: Some(expires_at),
            relay,
            sender_id,
            send_cap,
            inviter: identity.public(),
            prekey: PublicKey::from(&prekey).to_bytes(),
            kem_ek: Box::new(kem_ek),
            signature: [0u8; 64],
        };
        let body = invitation.body();
        invitation.signature = identity.sign(&[label::INVITATION_SIGNATURE, &body].concat());
        let secrets = InvitationSecrets {
            invitation_hash: invitation.hash(),
            expires_at: Some(expires_at),
            prekey,
            kem_dk: Box::new(kem_dk),
        };
        (invitation, secrets)
    }

    /// The `hush://invite/<base64url>` token.
    pub fn encode(&self) -> String {
        format!(
            "{INVITATION_PREFIX}{}",
            URL_SAFE_NO_PAD.encode(self.signed_bytes())
        )
    }

    /// Parses and verifies a token made by [`Invitation::encode`]. Leading and trailing
    /// whitespace, and line breaks a terminal inserted inside the token, are ignored.
    pub fn parse(token: &str) -> Result<Invitation, InvitationError> {
        let token = token.trim();
        let rest = token
            .strip_prefix(INVITATION_PREFIX)
            .ok_or(InvitationError::Prefix)?;
        // Terminals wrap long lines: whitespace inside the token is not part of it.
        if rest.len() > 2 * MAX_INVITATION_TOKEN_LEN {
            return Err(InvitationError::TooLong);
        }
        let b64: String = rest.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        if b64.len() > MAX_INVITATION_TOKEN_LEN {
            return Err(InvitationError::TooLong);
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(b64)
            .map_err(|_| InvitationError::Encoding)?;
        Self::from_signed_bytes(&bytes)
    }

    fn from_signed_bytes(bytes: &[u8]) -> Result<Invitation, InvitationError> {
        use InvitationError::Truncated;
        let mut r = Reader::new(bytes);
        let version = r.u8().map_err(|_| Truncated)?;
        if version != INVITATION_VERSION && version != INVITATION_VERSION_1 {
            return Err(InvitationError::Version);
        }
        let relay_len = usize::from(r.u16().map_err(|_| Truncated)?);
        if relay_len > MAX_RELAY_ADDRESS_LEN {
            return Err(InvitationError::RelayAddress);
        }
        // The address must be in the one form its encoder writes (no spaces, lowercase hex):
        // the signed bytes, and the transcript hash, then have one spelling.
        let relay = std::str::from_utf8(r.take(relay_len).map_err(|_| Truncated)?)
            .ok()
            .and_then(|s| {
                s.parse::<RelayAddress>()
                    .ok()
                    .filter(|a| a.to_string() == s)
            })
            .ok_or(InvitationError::RelayAddress)?;
        let sender_id = SenderId::from_bytes(r.array().map_err(|_| Truncated)?);
        let send_cap = SendCapability::from_bytes(r.array().map_err(|_| Truncated)?);
        let inviter = r.take(PUBLIC_IDENTITY_LEN).map_err(|_| Truncated)?;
        let prekey: [u8; 32] = r.array().map_err(|_| Truncated)?;
        let kem_ek = r.take(KEM_EK_LEN).map_err(|_| Truncated)?;
        let expires_at = match version {
            INVITATION_VERSION_1 => None,
            _ => Some(r.u64().map_err(|_| Truncated)?),
        };
        let signature: [u8; 64] = r.array().map_err(|_| Truncated)?;
        if !r.is_empty() {
            return Err(InvitationError::TrailingBytes);
        }
        let inviter =
            PublicIdentity::from_bytes(inviter).map_err(|_| InvitationError::InvalidKey)?;
        if !is_contributory_point(&prekey) || !kem_ek_is_valid(kem_ek) {
            return Err(InvitationError::InvalidKey);
        }
        let kem_ek = ml_kem::Encoded::<EncapsulationKey<MlKem768Params>>::try_from(kem_ek)
            .map_err(|_| InvitationError::InvalidKey)?;
        let invitation = Invitation {
            version,
            expires_at,
            relay,
            sender_id,
            send_cap,
            inviter,
            prekey,
            kem_ek: Box::new(EncapsulationKey::from_bytes(&kem_ek)),
            signature,
        };
        // Verified over the bytes received, not over a re-encoding of what was parsed from them.
        let received_body = &bytes[..bytes.len() - signature.len()];
        let signed = [label::INVITATION_SIGNATURE, received_body].concat();
        if !inviter.verify(&signed, &signature) {
            return Err(InvitationError::BadSignature);
        }
        // Every field is canonical, so the re-encoding the transcript hashes is these bytes.
        if invitation.body() != received_body {
            return Err(InvitationError::Encoding);
        }
        Ok(invitation)
    }

    /// Everything the signature covers.
    fn body(&self) -> Vec<u8> {
        let relay = self.relay.to_string();
        let mut out = Vec::with_capacity(1500 + relay.len());
        out.push(self.version);
        // Relay addresses are at most ~340 bytes (253-byte host), below u16::MAX.
        out.extend_from_slice(&(relay.len() as u16).to_be_bytes());
        out.extend_from_slice(relay.as_bytes());
        out.extend_from_slice(self.sender_id.as_bytes());
        out.extend_from_slice(self.send_cap.as_bytes());
        out.extend_from_slice(&self.inviter.to_bytes());
        out.extend_from_slice(&self.prekey);
        out.extend_from_slice(&self.kem_ek.as_bytes());
        if let Some(at) = self.expires_at {
            out.extend_from_slice(&at.to_be_bytes());
        }
        out
    }

    /// The body followed by the signature: the bytes inside the token.
    pub(crate) fn signed_bytes(&self) -> Vec<u8> {
        let mut out = self.body();
        out.extend_from_slice(&self.signature);
        out
    }

    /// A hash that names this invitation in the handshake transcript.
    pub(crate) fn hash(&self) -> [u8; 32] {
        sha256(&[label::TRANSCRIPT, &self.signed_bytes()])
    }

    /// When the invitation expires (unix seconds), as signed; `None` for a version 1 invitation,
    /// which carries no expiry.
    pub fn expires_at(&self) -> Option<u64> {
        self.expires_at
    }

    /// Fails with [`InvitationError::Expired`] if the signed expiry is at or before `now`
    /// (unix seconds). A version 1 invitation has no expiry and no creation time: it passes.
    pub fn check_unexpired(&self, now: u64) -> Result<(), InvitationError> {
        match self.expires_at {
            Some(at) if at <= now => Err(InvitationError::Expired { at }),
            _ => Ok(()),
        }
    }

    /// The inviter's relay address, with its certificate fingerprint.
    pub fn relay(&self) -> &RelayAddress {
        &self.relay
    }

    /// The sender id of the inviter's queue.
    pub fn sender_id(&self) -> SenderId {
        self.sender_id
    }

    /// The capability that authorises the first send to the inviter's queue.
    pub fn send_capability(&self) -> &SendCapability {
        &self.send_cap
    }

    /// The inviter's public identity.
    pub fn inviter(&self) -> &PublicIdentity {
        &self.inviter
    }

    pub(crate) fn prekey(&self) -> &[u8; 32] {
        &self.prekey
    }

    pub(crate) fn kem_ek(&self) -> &EncapsulationKey<MlKem768Params> {
        &self.kem_ek
    }
}

impl fmt::Debug for Invitation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Invitation")
            .field("relay", &self.relay)
            .field("sender_id", &self.sender_id)
            .field("inviter", &self.inviter)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// FIPS 203 encapsulation-key check: every 12-bit coefficient is below q = 3329.
fn kem_ek_is_valid(ek: &[u8]) -> bool {
    const Q: u16 = 3329;
    let polys = &ek[..ek.len().saturating_sub(32)];
    polys.chunks_exact(3).all(|c| {
        let a = u16::from(c[0]) | (u16::from(c[1] & 0x0f) << 8);
        let b = u16::from(c[1] >> 4) | (u16::from(c[2]) << 4);
        a < Q && b < Q
    })
}

impl InvitationSecrets {
    /// The secret storage encoding, so a pending invitation survives restarts.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(1 + 32 + 9 + 32 + KEM_DK_LEN));
        match self.expires_at {
            Some(at) => {
                out.push(SECRETS_VERSION);
                out.extend_from_slice(&self.invitation_hash);
                out.extend_from_slice(&at.to_be_bytes());
            }
            None => {
                out.push(SECRETS_VERSION_1);
                out.extend_from_slice(&self.invitation_hash);
            }
        }
        out.extend_from_slice(self.prekey.as_bytes());
        let dk = Zeroizing::new(self.kem_dk.as_bytes().to_vec());
        out.extend_from_slice(&dk);
        out
    }

    /// Restores secrets stored with [`InvitationSecrets::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, InvitationError> {
        let mut r = Reader::new(bytes);
        let version = r.u8().map_err(|_| InvitationError::Truncated)?;
        if version != SECRETS_VERSION && version != SECRETS_VERSION_1 {
            return Err(InvitationError::Version);
        }
        let invitation_hash = r.array::<32>().map_err(|_| InvitationError::Truncated)?;
        let expires_at = match version {
            SECRETS_VERSION_1 => None,
            _ => Some(r.u64().map_err(|_| InvitationError::Truncated)?),
        };
        let prekey = Zeroizing::new(r.array::<32>().map_err(|_| InvitationError::Truncated)?);
        let dk = r.take(KEM_DK_LEN).map_err(|_| InvitationError::Truncated)?;
        if !r.is_empty() {
            return Err(InvitationError::TrailingBytes);
        }
        let dk = ml_kem::Encoded::<DecapsulationKey<MlKem768Params>>::try_from(dk)
            .map_err(|_| InvitationError::Truncated)?;
        Ok(Self {
            invitation_hash,
            expires_at,
            prekey: StaticSecret::from(*prekey),
            kem_dk: Box::new(DecapsulationKey::from_bytes(&dk)),
        })
    }

    /// When the invitation expires (unix seconds); `None` for secrets stored before
    /// invitations carried an expiry.
    pub fn expires_at(&self) -> Option<u64> {
        self.expires_at
    }

    /// The same secrets with expiry `at`: for secrets stored before invitations carried one.
    pub fn with_expiry(mut self, at: u64) -> Self {
        self.expires_at = Some(at);
        self
    }

    pub(crate) fn invitation_hash(&self) -> &[u8; 32] {
        &self.invitation_hash
    }

    pub(crate) fn prekey(&self) -> &StaticSecret {
        &self.prekey
    }

    pub(crate) fn kem_dk(&self) -> &DecapsulationKey<MlKem768Params> {
        &self.kem_dk
    }
}

impl fmt::Debug for InvitationSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InvitationSecrets").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    const EXP: u64 = 1_700_000_000;

    fn relay() -> RelayAddress {
        format!("hush://relay.example:4433#{}", "ab".repeat(32))
            .parse()
            .unwrap()
    }

    #[test]
    fn an_invitation_carries_a_relay_address_with_several_hosts() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let id = Identity::generate(&mut rng);
        let nodes: RelayAddress = format!(
            "hush://n1.example:4433,[2001:db8::2]:4433,10.0.0.3:4434#{}",
            "ab".repeat(32)
        )
        .parse()
        .unwrap();
        let cap = SendCapability::from_bytes([1; 32]);
        let sid = SenderId::from_bytes([2; 16]);
        let (inv, _) = Invitation::create(&id, nodes.clone(), sid, cap, EXP, &mut rng);
        let parsed = Invitation::parse(&inv.encode()).unwrap();
        assert_eq!(parsed.relay(), &nodes);
        assert_eq!(parsed.relay().hosts().len(), 3);
    }

    #[test]
    fn low_order_prekey_is_refused_even_when_signed() {
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        let id = Identity::generate(&mut rng);
        let cap = SendCapability::from_bytes([1; 32]);
        let (mut inv, _) = Invitation::create(
            &id,
            relay(),
            SenderId::from_bytes([2; 16]),
            cap,
            EXP,
            &mut rng,
        );
        inv.prekey = [0u8; 32];
        inv.signature = id.sign(&[label::INVITATION_SIGNATURE, &inv.body()].concat());
        assert_eq!(
            Invitation::parse(&inv.encode()).err(),
            Some(InvitationError::InvalidKey)
        );
    }

    #[test]
    fn a_token_with_the_fingerprint_in_upper_case_is_refused() {
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let id = Identity::generate(&mut rng);
        let cap = SendCapability::from_bytes([1; 32]);
        let (inv, _) = Invitation::create(
            &id,
            relay(),
            SenderId::from_bytes([2; 16]),
            cap,
            EXP,
            &mut rng,
        );
        assert!(Invitation::parse(&inv.encode()).is_ok());
        // The same invitation with its relay fingerprint spelled in upper case: the address
        // parses to the same value, and a re-encoding would verify.
        let mut bytes = inv.signed_bytes();
        let at = 3 + "hush://relay.example:4433#".len();
        bytes[at..at + 64].make_ascii_uppercase();
        let token = format!("{INVITATION_PREFIX}{}", URL_SAFE_NO_PAD.encode(&bytes));
        assert_eq!(
            Invitation::parse(&token).err(),
            Some(InvitationError::RelayAddress)
        );
    }

    #[test]
    fn kem_key_with_out_of_range_coefficient_is_refused() {
        let mut rng = ChaCha20Rng::seed_from_u64(6);
        let id = Identity::generate(&mut rng);
        let cap = SendCapability::from_bytes([1; 32]);
        let (inv, _) = Invitation::create(
            &id,
            relay(),
            SenderId::from_bytes([2; 16]),
            cap,
            EXP,
            &mut rng,
        );
        let mut bytes = inv.signed_bytes();
        let ek_start = bytes.len() - 64 - KEM_EK_LEN;
        bytes[ek_start] = 0xff;
        bytes[ek_start + 1] |= 0x0f;
        assert_eq!(
            Invitation::from_signed_bytes(&bytes).err(),
            Some(InvitationError::InvalidKey)
        );
    }

    #[test]
    fn secrets_round_trip() {
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let id = Identity::generate(&mut rng);
        let cap = SendCapability::from_bytes([1; 32]);
        let (inv, secrets) = Invitation::create(
            &id,
            relay(),
            SenderId::from_bytes([2; 16]),
            cap,
            EXP,
            &mut rng,
        );
        let back = InvitationSecrets::from_bytes(&secrets.to_bytes()).unwrap();
        assert_eq!(back.invitation_hash(), &inv.hash());
        assert_eq!(back.to_bytes(), secrets.to_bytes());
        assert_eq!(format!("{back:?}"), "InvitationSecrets { .. }");
    }

    /// A version 1 invitation, as made before invitations carried an expiry.
    fn v1(id: &Identity, rng: &mut ChaCha20Rng) -> Invitation {
        let cap = SendCapability::from_bytes([1; 32]);
        let (mut inv, _) =
            Invitation::create(id, relay(), SenderId::from_bytes([2; 16]), cap, EXP, rng);
        inv.version = INVITATION_VERSION_1;
        inv.expires_at = None;
        inv.signature = id.sign(&[label::INVITATION_SIGNATURE, &inv.body()].concat());
        inv
    }

    #[test]
    fn the_expiry_is_signed_and_checked_against_now() {
        let mut rng = ChaCha20Rng::seed_from_u64(8);
        let id = Identity::generate(&mut rng);
        let cap = SendCapability::from_bytes([1; 32]);
        let (inv, secrets) = Invitation::create(
            &id,
            relay(),
            SenderId::from_bytes([2; 16]),
            cap,
            EXP,
            &mut rng,
        );
        let back = Invitation::parse(&inv.encode()).unwrap();
        assert_eq!(back.expires_at(), Some(EXP));
        assert_eq!(secrets.expires_at(), Some(EXP));
        assert_eq!(back.check_unexpired(EXP - 1), Ok(()));
        let err = back.check_unexpired(EXP).unwrap_err();
        assert_eq!(err, InvitationError::Expired { at: EXP });
        assert_eq!(
            err.to_string(),
            "this invitation expired on 2023-11-14T22:13:20Z; ask for a new one"
        );
        // Moving the expiry breaks the signature.
        let mut bytes = inv.signed_bytes();
        let at = bytes.len() - 64 - 8;
        bytes[at + 7] ^= 1;
        assert_eq!(
            Invitation::from_signed_bytes(&bytes).err(),
            Some(InvitationError::BadSignature)
        );
    }

    #[test]
    fn a_version_1_invitation_and_its_secrets_still_work() {
        let mut rng = ChaCha20Rng::seed_from_u64(9);
        let id = Identity::generate(&mut rng);
        let inv = v1(&id, &mut rng);
        assert_eq!(inv.signed_bytes()[0], INVITATION_VERSION_1);
        let back = Invitation::parse(&inv.encode()).unwrap();
        assert_eq!(back.expires_at(), None);
        assert_eq!(back.check_unexpired(u64::MAX), Ok(()));
        assert_eq!(back.hash(), inv.hash());
        // Secrets stored before the expiry existed read back without one, and can be given one.
        let (_, secrets) = Invitation::create(
            &id,
            relay(),
            SenderId::from_bytes([2; 16]),
            SendCapability::from_bytes([1; 32]),
            EXP,
            &mut rng,
        );
        let mut old = secrets.to_bytes().to_vec();
        old[0] = SECRETS_VERSION_1;
        old.drain(33..41);
        let read = InvitationSecrets::from_bytes(&old).unwrap();
        assert_eq!(read.expires_at(), None);
        assert_eq!(&read.to_bytes()[..], &old[..]);
        let dated = read.with_expiry(EXP + 5);
        assert_eq!(dated.expires_at(), Some(EXP + 5));
        assert_eq!(
            InvitationSecrets::from_bytes(&dated.to_bytes())
                .unwrap()
                .expires_at(),
            Some(EXP + 5)
        );
    }
}
