//! The double ratchet with header encryption (Signal Double Ratchet spec, section 4).
//!
//! What it does: a [`Session`] encrypts and decrypts messages of one conversation. Chains use
//! HKDF/HMAC-SHA256, bodies XChaCha20-Poly1305 under one-time message keys, headers
//! XChaCha20 with an HMAC-SHA256 tag under the header keys, so the relay sees neither ratchet
//! keys nor counters. Out-of-order messages are handled with
//! a bounded, expiring store of skipped keys; replays and duplicates are refused. A failed
//! decryption leaves the session exactly as it was: every change is staged and committed only
//! once the message authenticates.
//!
//! What it does not do: I/O, clocks or randomness of its own (`now` and the RNG are
//! arguments), or deduplication beyond the cryptography (the conversation layer stores ids).
//!
//! One deviation from the spec's pseudocode: `decrypt` takes no RNG, so after a DH ratchet step
//! on receipt the new sending key pair is generated lazily by the next `encrypt`. The key
//! schedule is identical, since the root key is not touched in between.

mod message;
mod skipped;
mod storage;

use std::fmt;

use rand_core::{CryptoRng, RngCore};
use subtle::ConstantTimeEq;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::identity::PublicIdentity;
use super::kdf::{dh, kdf_ck, kdf_rk, Key32};
use super::limits::{MAX_CHAIN_LEN, MAX_PLAINTEXT_LEN, MAX_SKIP};
use message::Header;
use skipped::{NewSkipped, SkippedKeys};

pub use storage::SessionDecodeError;

/// Why a message could not be encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncryptError {
    /// The plaintext is longer than [`MAX_PLAINTEXT_LEN`].
    #[error("the message is too long to send; split it or send it as an attachment")]
    PlaintextTooLong,
    /// This side cannot send yet (it has not received the peer's first message).
    #[error("the conversation is not ready to send yet; wait for the contact's first message")]
    NotReady,
    /// The sending chain has carried [`MAX_CHAIN_LEN`] messages without a reply.
    #[error("too many messages without a reply; wait for the contact to answer")]
    ChainExhausted,
}

/// Why a message could not be decrypted. Never tell a peer more than "decryption failed".
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecryptError {
    /// The bytes are not a ratchet message of a known version (unknown leading byte, or a
    /// length that is not a size bucket).
    #[error("a received message is malformed and was dropped; the sender may run an incompatible version of hush")]
    Malformed,
    /// The message does not authenticate under any key of this session.
    #[error("a received message could not be decrypted and was dropped; it was damaged, forged or not meant for this conversation")]
    Failed,
    /// The message was already decrypted (or its key expired): a replay or duplicate.
    #[error("a received message was a duplicate and was dropped")]
    Duplicate,
    /// The message claims to be more than [`MAX_SKIP`] messages ahead of its chain.
    #[error("a received message was dropped: too many messages before it are missing; ask the contact to resend")]
    TooFarAhead,
}

/// The ratchet's keys and counters. Small enough to copy for a staged update.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct State {
    dhs: StaticSecret,
    dhs_public: [u8; 32],
    dhr: Option<[u8; 32]>,
    rk: Key32,
    cks: Option<Key32>,
    ckr: Option<Key32>,
    hks: Option<Key32>,
    hkr: Option<Key32>,
    nhks: Key32,
    nhkr: Key32,
    ns: u64,
    nr: u64,
    pn: u64,
    /// A new sending key pair is due before the next send (set by a receiving DH step).
    send_ratchet_due: bool,
}

/// One end of a conversation's ratchet. Secret: zeroized on drop, never printed.
pub struct Session {
    peer: PublicIdentity,
    ad: [u8; 32],
    state: State,
    skipped: SkippedKeys,
}

impl Session {
    /// The side that sends first (the joiner): `RatchetInitAliceHE`.
    pub(crate) fn init_sender(
        peer: PublicIdentity,
        ad: [u8; 32],
        sk: &Key32,
        peer_ratchet: &[u8; 32],
        shared_hka: Key32,
        shared_nhkb: Key32,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Option<Self> {
        let dhs = StaticSecret::random_from_rng(rng);
        let shared = dh(&dhs, peer_ratchet).ok()?;
        let (rk, cks, nhks) = kdf_rk(sk, &shared);
        let state = State {
            dhs_public: PublicKey::from(&dhs).to_bytes(),
            dhs,
            dhr: Some(*peer_ratchet),
            rk,
            cks: Some(cks),
            ckr: None,
            hks: Some(shared_hka),
            hkr: None,
            nhks,
            nhkr: shared_nhkb,
            ns: 0,
            nr: 0,
            pn: 0,
            send_ratchet_due: false,
        };
        Some(Self {
            peer,
            ad,
            state,
            skipped: SkippedKeys::default(),
        })
    }

    /// The side that receives first (the inviter): `RatchetInitBobHE`.
    pub(crate) fn init_receiver(
        peer: PublicIdentity,
        ad: [u8; 32],
        sk: &Key32,
        own_ratchet: StaticSecret,
        shared_hka: Key32,
        shared_nhkb: Key32,
    ) -> Self {
        let state = State {
            dhs_public: PublicKey::from(&own_ratchet).to_bytes(),
            dhs: own_ratchet,
            dhr: None,
            rk: sk.clone(),
            cks: None,
            ckr: None,
            hks: None,
            hkr: None,
            nhks: shared_nhkb,
            nhkr: shared_hka,
            ns: 0,
            nr: 0,
            pn: 0,
            send_ratchet_due: false,
        };
        Self {
            peer,
            ad,
            state,
            skipped: SkippedKeys::default(),
        }
    }

    /// The peer's public identity.
    pub fn peer(&self) -> &PublicIdentity {
        &self.peer
    }

    /// Encrypts one message, padded to a wire size bucket. The state advances only if a
    /// message is returned.
    pub fn encrypt(
        &mut self,
        plaintext: &[u8],
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<Vec<u8>, EncryptError> {
        self.encrypt_padded(plaintext, 0, rng)
    }

    /// Encrypts one message, padded so that it and the `extra` bytes the caller appends fill a
    /// wire size bucket (a first message appends its handshake fields).
    pub(crate) fn encrypt_padded(
        &mut self,
        plaintext: &[u8],
        extra: usize,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<Vec<u8>, EncryptError> {
        if plaintext.len() > MAX_PLAINTEXT_LEN {
            return Err(EncryptError::PlaintextTooLong);
        }
        let mut next = self.state.clone();
        if next.send_ratchet_due {
            let dhr = next.dhr.ok_or(EncryptError::NotReady)?;
            let dhs = StaticSecret::random_from_rng(&mut *rng);
            // dhr was checked to be contributory when it was received.
            let shared = dh(&dhs, &dhr).map_err(|_| EncryptError::NotReady)?;
            let (rk, cks, nhks) = kdf_rk(&next.rk, &shared);
            next.pn = next.ns;
            next.ns = 0;
            next.hks = Some(next.nhks.clone());
            next.dhs_public = PublicKey::from(&dhs).to_bytes();
            next.dhs = dhs;
            next.rk = rk;
            next.cks = Some(cks);
            next.nhks = nhks;
            next.send_ratchet_due = false;
        }
        let (Some(cks), Some(hks)) = (next.cks.clone(), next.hks.clone()) else {
            return Err(EncryptError::NotReady);
        };
        if next.ns >= MAX_CHAIN_LEN {
            return Err(EncryptError::ChainExhausted);
        }
        let (mk, ck) = kdf_ck(&cks);
        let mk = Zeroizing::new(mk);
        let header = Header {
            dh: next.dhs_public,
            // pn and ns never exceed MAX_CHAIN_LEN = u32::MAX.
            pn: next.pn as u32,
            n: next.ns as u32,
        };
        let wire = message::seal(&hks, &mk, &header, &self.ad, plaintext, extra, rng)
            .ok_or(EncryptError::PlaintextTooLong)?;
        next.cks = Some(ck);
        next.ns += 1;
        self.state = next;
        Ok(wire)
    }

    /// Decrypts one message (of the current version or version 1). On any error the session
    /// is left unchanged.
    pub fn decrypt(&mut self, wire: &[u8], now: u64) -> Result<Vec<u8>, DecryptError> {
        let msg = message::parse(wire).ok_or(DecryptError::Malformed)?;
        self.decrypt_parsed(&msg, now)
    }

    /// Decrypts the ratchet message inside a first message, whose enclosing message the caller
    /// has checked: a current one padded to leave room for the handshake fields, or
    /// (`v1`) a version 1 ratchet message.
    pub(crate) fn decrypt_embedded(
        &mut self,
        part: &[u8],
        v1: bool,
        now: u64,
    ) -> Result<Vec<u8>, DecryptError> {
        let msg = if v1 {
            message::parse_v1(part)
        } else {
            message::parse_embedded(part)
        };
        self.decrypt_parsed(&msg.ok_or(DecryptError::Malformed)?, now)
    }

    /// Decrypts a parsed message; see [`Session::decrypt`].
    fn decrypt_parsed(
        &mut self,
        msg: &message::Parsed<'_>,
        now: u64,
    ) -> Result<Vec<u8>, DecryptError> {
        if let Some(pt) = self.try_skipped(msg, now)? {
            return Ok(pt);
        }
        let mut next = self.state.clone();
        let mut new_skipped = Vec::new();
        let (header, dh_step) = match next
            .hkr
            .as_ref()
            .and_then(|hk| message::open_header(hk, msg, &self.ad))
        {
            Some(h) => (h, false),
            None => {
                let h =
                    message::open_header(&next.nhkr, msg, &self.ad).ok_or(DecryptError::Failed)?;
                (h, true)
            }
        };
        if dh_step {
            skip_to(&mut next, u64::from(header.pn), &mut new_skipped)?;
            receive_dh_step(&mut next, &header.dh)?;
        } else if u64::from(header.n) < next.nr {
            return Err(DecryptError::Duplicate);
        }
        skip_to(&mut next, u64::from(header.n), &mut new_skipped)?;
        let ckr = next.ckr.clone().ok_or(DecryptError::Failed)?;
        let (mk, ck) = kdf_ck(&ckr);
        let mk = Zeroizing::new(mk);
        let mut plaintext = message::open(&mk, msg, &self.ad).ok_or(DecryptError::Failed)?;
        next.ckr = Some(ck);
        next.nr += 1;
        // Authenticated: commit.
        self.state = next;
        self.skipped.commit(new_skipped, now);
        // The caller owns the plaintext from here on.
        Ok(std::mem::take(&mut *plaintext))
    }

    /// Drops skipped message keys whose lifetime has passed. `decrypt` does this too; call it
    /// from a timer so that an idle conversation does not keep expired keys in storage.
    pub fn expire_skipped_keys(&mut self, now: u64) {
        self.skipped.expire(now);
    }

    /// Tries the header keys of chains with stored skipped keys.
    fn try_skipped(
        &mut self,
        msg: &message::Parsed<'_>,
        now: u64,
    ) -> Result<Option<Vec<u8>>, DecryptError> {
        let places: Vec<usize> = self.skipped.chains().map(|(i, _)| i).collect();
        for i in places {
            let Some(chain) = self.skipped.chain(i) else {
                continue;
            };
            let Some(header) = message::open_header(&chain.hk, msg, &self.ad) else {
                continue;
            };
            let n = u64::from(header.n);
            let Some(mk) = self.skipped.get(i, n, now) else {
                let current = self
                    .state
                    .hkr
                    .as_ref()
                    .is_some_and(|hk| bool::from(hk.ct_eq(&chain.hk[..])));
                return if current {
                    Ok(None)
                } else {
                    Err(DecryptError::Duplicate)
                };
            };
            let mut plaintext = message::open(mk, msg, &self.ad).ok_or(DecryptError::Failed)?;
            self.skipped.remove(i, n);
            self.skipped.expire(now);
            return Ok(Some(std::mem::take(&mut *plaintext)));
        }
        Ok(None)
    }

    #[cfg(test)]
    pub(crate) fn state_mut(&mut self) -> &mut State {
        &mut self.state
    }

    #[cfg(test)]
    pub(crate) fn sending_ratchet_key(&self) -> [u8; 32] {
        self.state.dhs_public
    }
}

/// Derives and stages the keys of the current receiving chain up to message `until`.
fn skip_to(next: &mut State, until: u64, out: &mut Vec<NewSkipped>) -> Result<(), DecryptError> {
    let (Some(mut ck), Some(hk)) = (next.ckr.clone(), next.hkr.clone()) else {
        return Ok(());
    };
    if until <= next.nr {
        return Ok(());
    }
    if until - next.nr > MAX_SKIP {
        return Err(DecryptError::TooFarAhead);
    }
    for n in next.nr..until {
        let (mk, ck_next) = kdf_ck(&ck);
        out.push(NewSkipped {
            hk: hk.clone(),
            n,
            mk,
        });
        ck = ck_next;
    }
    next.ckr = Some(ck);
    next.nr = until;
    Ok(())
}

/// The receiving half of a DH ratchet step; the sending half runs on the next encrypt.
fn receive_dh_step(next: &mut State, their: &[u8; 32]) -> Result<(), DecryptError> {
    let shared = dh(&next.dhs, their).map_err(|_| DecryptError::Failed)?;
    let (rk, ckr, nhkr) = kdf_rk(&next.rk, &shared);
    next.hkr = Some(next.nhkr.clone());
    next.dhr = Some(*their);
    next.rk = rk;
    next.ckr = Some(ckr);
    next.nhkr = nhkr;
    next.nr = 0;
    next.send_ratchet_due = true;
    Ok(())
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("peer", &self.peer)
            .field("skipped_keys", &self.skipped.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
