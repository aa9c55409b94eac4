//! The PQ-hybrid X3DH handshake (the PQXDH pattern) that turns an invitation into a session.
//!
//! The joiner ([`accept`]) combines four X25519 agreements with an ML-KEM-768 shared secret:
//!
//! ```text
//! DH1 = DH(IK_joiner, PK_inviter)    DH2 = DH(EK_joiner, IK_inviter)
//! DH3 = DH(EK_joiner, PK_inviter)    DH4 = DH(IK_joiner, IK_inviter)
//! SK | HK_a | NHK_b = HKDF(salt = transcript, F || DH1 || DH2 || DH3 || DH4 || SS_kem,
//!                          info = label || joiner identity)
//! ```
//!
//! `PK` is the invitation's one-time prekey. Because every invitation is single use, that prekey
//! plays both X3DH prekey roles, and DH4 binds the two long-term identities directly. The
//! joiner's identity and an Ed25519 signature over the transcript travel sealed under a key
//! from DH3 and the KEM secret, so the relay never learns who joined. The first ratchet message
//! travels with them, so the joiner's first plaintext is already ratchet-protected.
//!
//! First message (current version): a ratchet message, padded so that the whole first message
//! fills a wire size bucket, followed by the handshake fields sealed under a key from the
//! invitation hash:
//!
//! ```text
//! ratchet message (0x03 | nonce | header | body) | XChaCha20-Poly1305(K_first, nonce,
//!     aad = ratchet message, EK (32) | KEM ciphertext (1088) | sealed identity (144)) (1280)
//! ```
//!
//! So a first message has the same clear byte and the same sizes as any ratchet message, and
//! everything after its first byte looks random to whoever lacks the invitation. Version 1 first
//! messages (`0x01 | 0x01 | EK | KEM ciphertext | sealed identity | ratchet message`, all in the
//! clear) are still answered. This module does not talk to relays or store invitation secrets.

use hush_protocol::codec::Reader;
use ml_kem::kem::{Decapsulate, Encapsulate};
use ml_kem::{Ciphertext, MlKem768};
use rand_core::{CryptoRng, RngCore};
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use super::identity::{Identity, PublicIdentity, PUBLIC_IDENTITY_LEN};
use super::invitation::{Invitation, InvitationSecrets};
use super::kdf::{dh, hkdf, label, open_once, open_x, seal_once, seal_x, sha256, split32, Key32};
use super::limits::{
    HANDSHAKE_OVERHEAD, MAX_PLAINTEXT_LEN, MAX_WIRE_MESSAGE_LEN, PADDING_MARKER_LEN,
    RATCHET_PREFIX_LEN, SEALED_HANDSHAKE_FIELDS_LEN, V1_HANDSHAKE_PREFIX_LEN,
};
use super::ratchet::{EncryptError, Session};
use super::wire::{wire_format, WireFormat};

/// Length of an ML-KEM-768 ciphertext.
const KEM_CT_LEN: usize = 1088;

/// Length of the sealed joiner identity: identity, signature, AEAD tag.
const SEALED_IDENTITY_LEN: usize = PUBLIC_IDENTITY_LEN + 64 + 16;

/// 32 bytes of 0xFF prepended to the key material, as in X3DH (domain separation from
/// signatures over the same curve).
const F: [u8; 32] = [0xff; 32];

/// Why a handshake failed. Toward the peer, every failure is the same "handshake failed".
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The first message is not a handshake message of a known version, or has a bad length.
    #[error("a first message from a new contact is malformed and was dropped; they may run an incompatible version of hush")]
    Malformed,
    /// The first message does not authenticate for this invitation (forged, altered, replayed
    /// against other secrets, or carrying a low-order key).
    #[error("the handshake failed; ask the contact for a new invitation")]
    Failed,
    /// The initial plaintext is longer than one message may carry.
    #[error("the first message is too long; shorten it")]
    PlaintextTooLong,
}

/// The joiner's side: answers an invitation. Returns the session and the first wire message,
/// which carries `initial_plaintext` (the joiner's own queue address and capability).
pub fn accept(
    identity: &Identity,
    invitation: &Invitation,
    initial_plaintext: &[u8],
    rng: &mut (impl RngCore + CryptoRng),
) -> Result<(Session, Vec<u8>), HandshakeError> {
    if initial_plaintext.len() > MAX_PLAINTEXT_LEN {
        return Err(HandshakeError::PlaintextTooLong);
    }
    let ek = StaticSecret::random_from_rng(&mut *rng);
    let ek_public = PublicKey::from(&ek).to_bytes();
    let (ct, ss) = invitation
        .kem_ek()
        .encapsulate(rng)
        .map_err(|_| HandshakeError::Failed)?;
    let ss = Zeroizing::new(<[u8; 32]>::from(ss));
    let th = transcript(&invitation.hash(), &ek_public, ct.as_slice());

    let inviter = invitation.inviter();
    let joiner = identity.public().to_bytes();
    let dh3 = dh(&ek, invitation.prekey()).map_err(|_| HandshakeError::Failed)?;
    let signature = identity.sign(&[label::JOINER_SIGNATURE, &th, &joiner].concat());
    let seal_key = seal_key(&th, &dh3, &ss);
    let sealed = seal_once(&seal_key, &th, &[&joiner[..], &signature].concat());

    let dh1 = dh(identity.agreement(), invitation.prekey()).map_err(|_| HandshakeError::Failed)?;
    let dh2 = dh(&ek, inviter.agreement_key()).map_err(|_| HandshakeError::Failed)?;
    let dh4 =
        dh(identity.agreement(), inviter.agreement_key()).map_err(|_| HandshakeError::Failed)?;
    let keys = derive(&th, [&dh1, &dh2, &dh3, &dh4], &ss, &joiner);
    let ad = session_ad(inviter, &identity.public(), &th);
    let mut session = Session::init_sender(
        *inviter,
        ad,
        &keys.sk,
        invitation.prekey(),
        keys.hka,
        keys.nhkb,
        rng,
    )
    .ok_or(HandshakeError::Failed)?;
    let ratchet = session
        .encrypt_padded(initial_plaintext, SEALED_HANDSHAKE_FIELDS_LEN, rng)
        .map_err(|e| match e {
            EncryptError::PlaintextTooLong => HandshakeError::PlaintextTooLong,
            _ => HandshakeError::Failed,
        })?;
    let fields = [&ek_public[..], ct.as_slice(), &sealed].concat();
    let wire = seal_fields(&invitation.hash(), ratchet, &fields)?;
    Ok((session, wire))
}

/// The inviter's side: processes the joiner's first message (current or version 1). Returns
/// the session, the joiner's public identity and the initial plaintext. The secrets are only
/// borrowed, so a forged first message does not consume the invitation; delete them once this
/// succeeds.
pub fn respond(
    identity: &Identity,
    secrets: &InvitationSecrets,
    first_message: &[u8],
    now: u64,
) -> Result<(Session, PublicIdentity, Vec<u8>), HandshakeError> {
    let parts = match wire_format(first_message) {
        Some(WireFormat::Current) => open_fields(secrets.invitation_hash(), first_message)?,
        Some(WireFormat::V1Handshake) => split_v1(first_message)?,
        _ => return Err(HandshakeError::Malformed),
    };
    let mut r = Reader::new(&parts.fields);
    let ek_public: [u8; 32] = r.array().map_err(|_| HandshakeError::Malformed)?;
    let ct = r.take(KEM_CT_LEN).map_err(|_| HandshakeError::Malformed)?;
    let sealed = r
        .take(SEALED_IDENTITY_LEN)
        .map_err(|_| HandshakeError::Malformed)?;

    let th = transcript(secrets.invitation_hash(), &ek_public, ct);
    let ct = Ciphertext::<MlKem768>::try_from(ct).map_err(|_| HandshakeError::Malformed)?;
    let ss = secrets
        .kem_dk()
        .decapsulate(&ct)
        .map_err(|_| HandshakeError::Failed)?;
    let ss = Zeroizing::new(<[u8; 32]>::from(ss));
    let dh3 = dh(secrets.prekey(), &ek_public).map_err(|_| HandshakeError::Failed)?;
    let opened =
        open_once(&seal_key(&th, &dh3, &ss), &th, sealed).map_err(|_| HandshakeError::Failed)?;
    let (joiner_bytes, signature) = opened.split_at(PUBLIC_IDENTITY_LEN);
    let joiner = PublicIdentity::from_bytes(joiner_bytes).map_err(|_| HandshakeError::Failed)?;
    let signature: [u8; 64] = signature.try_into().map_err(|_| HandshakeError::Failed)?;
    let joiner_bytes = joiner.to_bytes();
    if !joiner.verify(
        &[label::JOINER_SIGNATURE, &th, &joiner_bytes].concat(),
        &signature,
    ) {
        return Err(HandshakeError::Failed);
    }

    let dh1 = dh(secrets.prekey(), joiner.agreement_key()).map_err(|_| HandshakeError::Failed)?;
    let dh2 = dh(identity.agreement(), &ek_public).map_err(|_| HandshakeError::Failed)?;
    let dh4 =
        dh(identity.agreement(), joiner.agreement_key()).map_err(|_| HandshakeError::Failed)?;
    let keys = derive(&th, [&dh1, &dh2, &dh3, &dh4], &ss, &joiner_bytes);
    let ad = session_ad(&identity.public(), &joiner, &th);
    let mut session = Session::init_receiver(
        joiner,
        ad,
        &keys.sk,
        secrets.prekey().clone(),
        keys.hka,
        keys.nhkb,
    );
    let plaintext = session
        .decrypt_embedded(parts.ratchet, parts.v1, now)
        .map_err(|_| HandshakeError::Failed)?;
    Ok((session, joiner, plaintext))
}

/// A first message split into its handshake fields (EK, KEM ciphertext, sealed identity) and
/// its ratchet message.
struct FirstMessageParts<'a> {
    fields: Zeroizing<Vec<u8>>,
    ratchet: &'a [u8],
    /// Whether this is a version 1 first message (its ratchet message is version 1 too).
    v1: bool,
}

/// The key that seals a first message's handshake fields: only those who hold the invitation
/// (the inviter, and whoever it was given to) can derive it.
fn first_message_key(invitation_hash: &[u8; 32]) -> Key32 {
    split32(
        &hkdf::<32>(&[], invitation_hash, &[label::FIRST_MESSAGE_SEAL])[..],
        0,
    )
}

/// The nonce of a current ratchet message: its bytes after the version byte.
fn ratchet_nonce(ratchet: &[u8]) -> Option<&[u8; 24]> {
    ratchet
        .get(RATCHET_PREFIX_LEN..RATCHET_PREFIX_LEN + 24)?
        .try_into()
        .ok()
}

/// Appends the sealed handshake `fields` to `ratchet`, the first message's ratchet message.
/// The seal reuses the ratchet message's random nonce under its own key, and authenticates
/// the ratchet message as associated data.
fn seal_fields(
    invitation_hash: &[u8; 32],
    mut ratchet: Vec<u8>,
    fields: &[u8],
) -> Result<Vec<u8>, HandshakeError> {
    let nonce = *ratchet_nonce(&ratchet).ok_or(HandshakeError::Failed)?;
    let sealed = seal_x(
        &first_message_key(invitation_hash),
        &nonce,
        &ratchet,
        fields,
    );
    ratchet.extend_from_slice(&sealed);
    Ok(ratchet)
}

/// Opens the handshake fields of a current first message (whose format and length the caller
/// checked). Anything the invitation's key does not open (a ratchet message, or a forgery)
/// fails here, before any costly step.
fn open_fields<'a>(
    invitation_hash: &[u8; 32],
    wire: &'a [u8],
) -> Result<FirstMessageParts<'a>, HandshakeError> {
    if wire.len() < HANDSHAKE_OVERHEAD + PADDING_MARKER_LEN {
        return Err(HandshakeError::Malformed);
    }
    let (ratchet, sealed) = wire.split_at(wire.len() - SEALED_HANDSHAKE_FIELDS_LEN);
    let nonce = ratchet_nonce(ratchet).ok_or(HandshakeError::Malformed)?;
    let fields = open_x(&first_message_key(invitation_hash), nonce, ratchet, sealed)
        .map_err(|_| HandshakeError::Failed)?;
    Ok(FirstMessageParts {
        fields,
        ratchet,
        v1: false,
    })
}

/// Splits a version 1 first message, whose fields are in the clear after its tag and version.
fn split_v1(wire: &[u8]) -> Result<FirstMessageParts<'_>, HandshakeError> {
    if wire.len() < V1_HANDSHAKE_PREFIX_LEN || wire.len() > MAX_WIRE_MESSAGE_LEN {
        return Err(HandshakeError::Malformed);
    }
    let (prefix, ratchet) = wire.split_at(V1_HANDSHAKE_PREFIX_LEN);
    Ok(FirstMessageParts {
        fields: Zeroizing::new(prefix[2..].to_vec()),
        ratchet,
        v1: true,
    })
}

/// The handshake's output keys (each zeroized when dropped).
struct HandshakeKeys {
    sk: Key32,
    hka: Key32,
    nhkb: Key32,
}

fn transcript(invitation_hash: &[u8; 32], ek_public: &[u8; 32], kem_ct: &[u8]) -> [u8; 32] {
    sha256(&[label::TRANSCRIPT, invitation_hash, ek_public, kem_ct])
}

fn seal_key(th: &[u8; 32], dh3: &Key32, ss: &[u8; 32]) -> Key32 {
    let ikm = Zeroizing::new([&F[..], &dh3[..], &ss[..]].concat());
    split32(&hkdf::<32>(th, &ikm, &[label::IDENTITY_SEAL])[..], 0)
}

fn derive(th: &[u8; 32], dhs: [&Key32; 4], ss: &[u8; 32], joiner: &[u8]) -> HandshakeKeys {
    let ikm = Zeroizing::new(
        [
            &F[..],
            &dhs[0][..],
            &dhs[1][..],
            &dhs[2][..],
            &dhs[3][..],
            &ss[..],
        ]
        .concat(),
    );
    let okm = hkdf::<96>(th, &ikm, &[label::HANDSHAKE, joiner]);
    HandshakeKeys {
        sk: split32(okm.as_ref(), 0),
        hka: split32(okm.as_ref(), 1),
        nhkb: split32(okm.as_ref(), 2),
    }
}

fn session_ad(inviter: &PublicIdentity, joiner: &PublicIdentity, th: &[u8; 32]) -> [u8; 32] {
    sha256(&[
        label::SESSION_AD,
        &inviter.to_bytes(),
        &joiner.to_bytes(),
        th,
    ])
}
