//! An independent implementation of hush's message formats, written from `docs/crypto.md`, for
//! building messages that hush itself never sends: a ratchet header carrying a low-order key or
//! the counter 2^32 - 1, or a first message with a low-order ephemeral key. An attacker who
//! holds one side's keys (a malicious contact) can build exactly these.
//!
//! Each forgery is checked first with honest inputs: the same code with a valid key or counter
//! must produce a message hush accepts, so that a refusal afterwards is the check under test and
//! not a mistake in this module.
#![allow(dead_code)]

use chacha20::cipher::{KeyIvInit, StreamCipher};
use chacha20::XChaCha20;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, XChaCha20Poly1305};
use ed25519_dalek::{Signer, SigningKey};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use hush_client::crypto::limits::{SEALED_HANDSHAKE_FIELDS_LEN, WIRE_BUCKETS};
use hush_client::crypto::Identity;
use ml_kem::kem::{Encapsulate, EncapsulationKey};
use ml_kem::{EncodedSizeUser, MlKem768Params};
use rand_chacha::rand_core::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};
use x25519_dalek::{PublicKey, StaticSecret};

const ROOT: &[u8] = b"hush/v1/ratchet/root";
const TRANSCRIPT: &[u8] = b"hush/v1/pqxdh/transcript";
const IDENTITY_SEAL: &[u8] = b"hush/v1/pqxdh/identity-seal";
const JOINER_SIGNATURE: &[u8] = b"hush/v1/pqxdh/joiner";
const HANDSHAKE: &[u8] = b"hush/v1/pqxdh/X25519_SHA-256_ML-KEM-768";
const SESSION_AD: &[u8] = b"hush/v1/session-ad";
const FIRST_MESSAGE_SEAL: &[u8] = b"hush/v1/pqxdh/first-message-seal";
pub(crate) const INVITATION_SIGNATURE: &[u8] = b"hush/v1/invitation";

pub(crate) type Key = [u8; 32];

/// The fields of a session's storage encoding (`Session::to_bytes`).
#[derive(Clone)]
pub(crate) struct Fields {
    pub(crate) ad: Key,
    pub(crate) dhs: Key,
    pub(crate) dhr: Option<Key>,
    pub(crate) rk: Key,
    pub(crate) cks: Option<Key>,
    pub(crate) ckr: Option<Key>,
    pub(crate) hks: Option<Key>,
    pub(crate) hkr: Option<Key>,
    pub(crate) nhks: Key,
    pub(crate) nhkr: Key,
    pub(crate) ns: u64,
    pub(crate) nr: u64,
    pub(crate) pn: u64,
    /// Where `ns`, `nr` and `pn` start in the encoding.
    pub(crate) counters_at: usize,
}

pub(crate) fn fields(bytes: &[u8]) -> Fields {
    let mut at = 1 + 64;
    let key = |at: &mut usize| {
        let k: Key = bytes[*at..*at + 32].try_into().unwrap();
        *at += 32;
        k
    };
    let ad = key(&mut at);
    let dhs = key(&mut at);
    let opt = |at: &mut usize| {
        let present = bytes[*at] == 1;
        *at += 1;
        present.then(|| {
            let k: Key = bytes[*at..*at + 32].try_into().unwrap();
            *at += 32;
            k
        })
    };
    let dhr = opt(&mut at);
    let rk: Key = bytes[at..at + 32].try_into().unwrap();
    at += 32;
    let (cks, ckr, hks, hkr) = (opt(&mut at), opt(&mut at), opt(&mut at), opt(&mut at));
    let nhks: Key = bytes[at..at + 32].try_into().unwrap();
    let nhkr: Key = bytes[at + 32..at + 64].try_into().unwrap();
    at += 64;
    let u64_at = |i: usize| u64::from_be_bytes(bytes[i..i + 8].try_into().unwrap());
    Fields {
        ad,
        dhs,
        dhr,
        rk,
        cks,
        ckr,
        hks,
        hkr,
        nhks,
        nhkr,
        ns: u64_at(at),
        nr: u64_at(at + 8),
        pn: u64_at(at + 16),
        counters_at: at,
    }
}

/// The encoding with `ns`, `nr` and `pn` replaced.
pub(crate) fn with_counters(bytes: &[u8], ns: u64, nr: u64, pn: u64) -> Vec<u8> {
    let at = fields(bytes).counters_at;
    let mut out = bytes.to_vec();
    for (i, v) in [ns, nr, pn].into_iter().enumerate() {
        out[at + 8 * i..at + 8 * i + 8].copy_from_slice(&v.to_be_bytes());
    }
    out
}

pub(crate) fn public(secret: &Key) -> Key {
    PublicKey::from(&StaticSecret::from(*secret)).to_bytes()
}

/// X25519 without any check: what an implementation that forgot the low-order check computes.
pub(crate) fn raw_dh(secret: &Key, public: &Key) -> Key {
    StaticSecret::from(*secret)
        .diffie_hellman(&PublicKey::from(*public))
        .to_bytes()
}

fn hkdf<const N: usize>(salt: &[u8], ikm: &[u8], info: &[u8]) -> [u8; N] {
    let mut okm = [0u8; N];
    Hkdf::<Sha256>::new(Some(salt), ikm)
        .expand(info, &mut okm)
        .unwrap();
    okm
}

fn split(okm: &[u8]) -> (Key, Key, Key) {
    let k = |i: usize| okm[32 * i..32 * i + 32].try_into().unwrap();
    (k(0), k(1), k(2))
}

/// `KDF_RK`: (root key, chain key, next header key).
pub(crate) fn kdf_rk(rk: &Key, dh_out: &Key) -> (Key, Key, Key) {
    split(&hkdf::<96>(rk, dh_out, ROOT))
}

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap();
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// `KDF_CK`: (message key, next chain key).
pub(crate) fn kdf_ck(ck: &Key) -> (Key, Key) {
    (hmac(ck, &[&[0x01]]), hmac(ck, &[&[0x02]]))
}

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// A ratchet message with the given header, sealed under header key `hk` and message key
/// `mk`, with session associated data `ad`, filling a wire size bucket.
#[allow(clippy::too_many_arguments)]
pub(crate) fn ratchet_message(
    hk: &Key,
    mk: &Key,
    ad: &Key,
    dh: &Key,
    pn: u32,
    n: u32,
    plaintext: &[u8],
    rng: &mut (impl RngCore + CryptoRng),
) -> Vec<u8> {
    ratchet_message_padded(hk, mk, ad, dh, pn, n, plaintext, 0, rng)
}

/// As [`ratchet_message`], padded so that it and `extra` more bytes fill a bucket.
#[allow(clippy::too_many_arguments)]
fn ratchet_message_padded(
    hk: &Key,
    mk: &Key,
    ad: &Key,
    dh: &Key,
    pn: u32,
    n: u32,
    plaintext: &[u8],
    extra: usize,
    rng: &mut (impl RngCore + CryptoRng),
) -> Vec<u8> {
    // version (1) | nonce (24) | header (40) | tag (16) | body | tag (16)
    let overhead = 1 + 24 + 40 + 16 + 16;
    let total = WIRE_BUCKETS
        .iter()
        .copied()
        .find(|&b| b >= overhead + plaintext.len() + 1 + extra)
        .unwrap();
    let prefix = [0x03];
    let mut nonce = [0u8; 24];
    rng.fill_bytes(&mut nonce);
    let mut buf = [0u8; 64 + 40];
    buf[64..96].copy_from_slice(dh);
    buf[96..100].copy_from_slice(&pn.to_be_bytes());
    buf[100..].copy_from_slice(&n.to_be_bytes());
    XChaCha20::new(hk.into(), (&nonce).into()).apply_keystream(&mut buf);
    let tag = hmac(&buf[..32], &[ad, &prefix, &nonce, &buf[64..]]);
    let mut out = prefix.to_vec();
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&buf[64..]);
    out.extend_from_slice(&tag[..16]);
    let mut padded = plaintext.to_vec();
    padded.push(0x80);
    padded.resize(total - extra - overhead, 0);
    let body = xseal(mk, &nonce, &[&ad[..], &out].concat(), &padded);
    out.extend_from_slice(&body);
    out
}

/// XChaCha20-Poly1305 encryption.
fn xseal(key: &Key, nonce: &[u8; 24], aad: &[u8], msg: &[u8]) -> Vec<u8> {
    XChaCha20Poly1305::new(key.into())
        .encrypt(nonce.into(), Payload { msg, aad })
        .unwrap()
}

/// The next message on the sender's current chain (as `Session::encrypt` would make it), but
/// with header counter `n`.
pub(crate) fn next_on_chain(
    sender: &Fields,
    n: u32,
    plaintext: &[u8],
    rng: &mut (impl RngCore + CryptoRng),
) -> Vec<u8> {
    let (mk, _) = kdf_ck(&sender.cks.unwrap());
    ratchet_message(
        &sender.hks.unwrap(),
        &mk,
        &sender.ad,
        &public(&sender.dhs),
        sender.pn as u32,
        n,
        plaintext,
        rng,
    )
}

/// The first message of a new sending chain announcing ratchet key `dh`, whose agreement with
/// the receiver's ratchet key came out as `shared`.
pub(crate) fn new_chain(
    sender: &Fields,
    dh: &Key,
    shared: &Key,
    plaintext: &[u8],
    rng: &mut (impl RngCore + CryptoRng),
) -> Vec<u8> {
    let (_, ck, _) = kdf_rk(&sender.rk, shared);
    let (mk, _) = kdf_ck(&ck);
    ratchet_message(
        &sender.nhks,
        &mk,
        &sender.ad,
        dh,
        sender.ns as u32,
        0,
        plaintext,
        rng,
    )
}

/// What a joiner needs from an invitation token's bytes.
pub(crate) struct InvitationParts {
    /// The signed bytes (body and signature).
    pub(crate) signed: Vec<u8>,
    pub(crate) inviter: [u8; 64],
    pub(crate) prekey: Key,
    pub(crate) kem_ek: Vec<u8>,
}

/// Splits the bytes of an invitation token (see docs/crypto.md for the layout).
pub(crate) fn invitation_parts(signed: &[u8]) -> InvitationParts {
    let relay_len = usize::from(u16::from_be_bytes([signed[1], signed[2]]));
    let at = 3 + relay_len + 16 + 32;
    InvitationParts {
        signed: signed.to_vec(),
        inviter: signed[at..at + 64].try_into().unwrap(),
        prekey: signed[at + 64..at + 96].try_into().unwrap(),
        kem_ek: signed[at + 96..at + 96 + 1184].to_vec(),
    }
}

/// A joiner's first message with ephemeral key `ek_public`, whose agreements with the
/// inviter's prekey and identity key came out as `dh3` and `dh2`. Everything else is honest.
pub(crate) fn first_message(
    joiner: &Identity,
    inv: &InvitationParts,
    ek_public: &Key,
    dh2: &Key,
    dh3: &Key,
    plaintext: &[u8],
    rng: &mut (impl RngCore + CryptoRng),
) -> Vec<u8> {
    let secret = joiner.to_bytes();
    let seed: Key = secret[1..33].try_into().unwrap();
    let agreement: Key = secret[33..65].try_into().unwrap();
    let joiner_pub = joiner.public().to_bytes();
    let inviter_x: Key = inv.inviter[32..].try_into().unwrap();

    let encoded =
        ml_kem::Encoded::<EncapsulationKey<MlKem768Params>>::try_from(&inv.kem_ek[..]).unwrap();
    let (ct, ss) = EncapsulationKey::<MlKem768Params>::from_bytes(&encoded)
        .encapsulate(rng)
        .unwrap();
    let ss = <[u8; 32]>::from(ss);
    let inv_hash = sha256(&[TRANSCRIPT, &inv.signed]);
    let th = sha256(&[TRANSCRIPT, &inv_hash, ek_public, ct.as_slice()]);

    let signature = SigningKey::from_bytes(&seed)
        .sign(&[JOINER_SIGNATURE, &th, &joiner_pub].concat())
        .to_bytes();
    let seal_key: Key = hkdf(&th, &[&[0xff; 32][..], dh3, &ss].concat(), IDENTITY_SEAL);
    let sealed = ChaCha20Poly1305::new((&seal_key).into())
        .encrypt(
            &Default::default(),
            Payload {
                msg: &[&joiner_pub[..], &signature].concat(),
                aad: &th,
            },
        )
        .unwrap();

    let dh1 = raw_dh(&agreement, &inv.prekey);
    let dh4 = raw_dh(&agreement, &inviter_x);
    let ikm = [&[0xff; 32][..], &dh1, dh2, dh3, &dh4, &ss].concat();
    let (sk, hka, _nhkb) = split(&hkdf::<96>(&th, &ikm, &[HANDSHAKE, &joiner_pub].concat()));
    let ad = sha256(&[SESSION_AD, &inv.inviter, &joiner_pub, &th]);

    // The joiner's first sending chain, as `RatchetInitAliceHE`.
    let mut ratchet_secret = [0u8; 32];
    rng.fill_bytes(&mut ratchet_secret);
    let (_, cks, _) = kdf_rk(&sk, &raw_dh(&ratchet_secret, &inv.prekey));
    let (mk, _) = kdf_ck(&cks);
    let mut wire = ratchet_message_padded(
        &hka,
        &mk,
        &ad,
        &public(&ratchet_secret),
        0,
        0,
        plaintext,
        SEALED_HANDSHAKE_FIELDS_LEN,
        rng,
    );

    // The handshake fields, sealed under a key from the invitation hash with the ratchet
    // message's nonce, the ratchet message as associated data.
    let first_key: Key = hkdf(&[], &inv_hash, FIRST_MESSAGE_SEAL);
    let nonce: [u8; 24] = wire[1..25].try_into().unwrap();
    let fields = [&ek_public[..], ct.as_slice(), &sealed].concat();
    let sealed_fields = xseal(&first_key, &nonce, &wire, &fields);
    wire.extend_from_slice(&sealed_fields);
    wire
}
