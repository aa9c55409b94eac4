//! The storage encoding of a [`Session`]: every key, counter and skipped key, versioned.
//!
//! ```text
//! version (1) | peer identity (64) | session AD (32) | DHs secret (32)
//! DHr (opt) | RK (32) | CKs (opt) | CKr (opt) | HKs (opt) | HKr (opt) | NHKs (32) | NHKr (32)
//! Ns (u64) | Nr (u64) | PN (u64) | send ratchet due (u8)
//! skipped: next seq (u64) | chains (u16) | per chain: HK (32) | keys (u16) |
//!          per key: N (u64) | MK (32) | expires at (u64) | seq (u64)
//! ```
//! `opt` is a presence byte (0 or 1) followed by 32 bytes when present. Integers are big-endian.
//! The bytes are secret: they come back zeroized, and the caller encrypts them at rest. This
//! module does not store anything itself.

use hush_protocol::codec::Reader;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use super::super::identity::PublicIdentity;
use super::super::kdf::Key32;
use super::super::limits::MAX_CHAIN_LEN;
use super::skipped::SkippedKeys;
use super::{Session, State};

/// Version byte of the session storage encoding.
const SESSION_VERSION: u8 = 1;

/// Why stored session bytes were refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionDecodeError {
    /// The bytes end before every field was read.
    #[error("the stored conversation state is cut off")]
    Truncated,
    /// Bytes follow the last field.
    #[error("the stored conversation state has extra data at the end")]
    TrailingBytes,
    /// The encoding has an unknown version.
    #[error("the conversation state was stored by an incompatible version of hush")]
    Version,
    /// A field holds an impossible value (a bad flag, counter or key).
    #[error("the stored conversation state is damaged")]
    Invalid,
}

impl Session {
    /// The secret storage encoding. Keep it encrypted at rest.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let s = &self.state;
        let mut out = Zeroizing::new(Vec::with_capacity(512 + 90 * self.skipped.len()));
        out.push(SESSION_VERSION);
        out.extend_from_slice(&self.peer.to_bytes());
        out.extend_from_slice(&self.ad);
        out.extend_from_slice(s.dhs.as_bytes());
        put_opt(&mut out, s.dhr.as_ref());
        out.extend_from_slice(&s.rk[..]);
        for k in [&s.cks, &s.ckr, &s.hks, &s.hkr] {
            put_opt(&mut out, k.as_deref());
        }
        out.extend_from_slice(&s.nhks[..]);
        out.extend_from_slice(&s.nhkr[..]);
        for n in [s.ns, s.nr, s.pn] {
            out.extend_from_slice(&n.to_be_bytes());
        }
        out.push(u8::from(s.send_ratchet_due));
        self.skipped.encode(&mut out);
        out
    }

    /// Restores a session from [`Session::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SessionDecodeError> {
        use SessionDecodeError::{Invalid, Truncated};
        let mut r = Reader::new(bytes);
        if r.u8().map_err(|_| Truncated)? != SESSION_VERSION {
            return Err(SessionDecodeError::Version);
        }
        let peer =
            PublicIdentity::from_bytes(r.take(64).map_err(|_| Truncated)?).map_err(|_| Invalid)?;
        let ad = r.array::<32>().map_err(|_| Truncated)?;
        let dhs = StaticSecret::from(*Zeroizing::new(r.array::<32>().map_err(|_| Truncated)?));
        let dhr = get_opt(&mut r)?;
        let rk = Key32::from_bytes(r.array::<32>().map_err(|_| Truncated)?);
        let cks = get_opt(&mut r)?.map(Key32::from_bytes);
        let ckr = get_opt(&mut r)?.map(Key32::from_bytes);
        let hks = get_opt(&mut r)?.map(Key32::from_bytes);
        let hkr = get_opt(&mut r)?.map(Key32::from_bytes);
        let nhks = Key32::from_bytes(r.array::<32>().map_err(|_| Truncated)?);
        let nhkr = Key32::from_bytes(r.array::<32>().map_err(|_| Truncated)?);
        let ns = r.u64().map_err(|_| Truncated)?;
        let nr = r.u64().map_err(|_| Truncated)?;
        let pn = r.u64().map_err(|_| Truncated)?;
        if ns > MAX_CHAIN_LEN || pn > MAX_CHAIN_LEN || nr > MAX_CHAIN_LEN + 1 {
            return Err(Invalid);
        }
        let send_ratchet_due = match r.u8().map_err(|_| Truncated)? {
            0 => false,
            1 => true,
            _ => return Err(Invalid),
        };
        let skipped = SkippedKeys::decode(&mut r).map_err(|_| Truncated)?;
        if !r.is_empty() {
            return Err(SessionDecodeError::TrailingBytes);
        }
        let state = State {
            dhs_public: PublicKey::from(&dhs).to_bytes(),
            dhs,
            dhr,
            rk,
            cks,
            ckr,
            hks,
            hkr,
            nhks,
            nhkr,
            ns,
            nr,
            pn,
            send_ratchet_due,
        };
        Ok(Self {
            peer,
            ad,
            state,
            skipped,
        })
    }
}

fn put_opt(out: &mut Vec<u8>, key: Option<&[u8; 32]>) {
    match key {
        Some(k) => {
            out.push(1);
            out.extend_from_slice(&k[..]);
        }
        None => out.push(0),
    }
}

fn get_opt(r: &mut Reader<'_>) -> Result<Option<[u8; 32]>, SessionDecodeError> {
    match r.u8().map_err(|_| SessionDecodeError::Truncated)? {
        0 => Ok(None),
        1 => Ok(Some(r.array().map_err(|_| SessionDecodeError::Truncated)?)),
        _ => Err(SessionDecodeError::Invalid),
    }
}
