//! Safety numbers: what two contacts compare to detect a man in the middle.
//!
//! Each identity gets a 30-digit fingerprint: 5,200 iterations of SHA-512 over a label, the
//! identity's 64-byte public encoding and the previous digest (as Signal's numeric
//! fingerprints do, to make grinding for a look-alike expensive). The first 30 bytes become six
//! 5-digit groups (each 5-byte chunk as a big-endian integer modulo 100,000). The safety number
//! is both fingerprints, lower one first, so it is the same on both sides and changes when
//! either key changes. This module does not remember which contacts were verified.

use sha2::{Digest, Sha512};
use subtle::ConstantTimeEq;

use super::identity::PublicIdentity;
use super::kdf::label;

/// Iterations of SHA-512 per fingerprint.
const ITERATIONS: usize = 5_200;

/// Version byte of the QR payload.
const QR_VERSION: u8 = 1;

/// Length of the QR payload: version and two 32-byte fingerprints.
pub const QR_PAYLOAD_LEN: usize = 1 + 32 + 32;

/// The safety number of a pair of identities.
#[derive(Clone, PartialEq, Eq)]
pub struct SafetyNumber {
    digits: String,
    qr: Vec<u8>,
}

/// Computes the safety number of two identities; the argument order does not matter.
pub fn safety_number(a: &PublicIdentity, b: &PublicIdentity) -> SafetyNumber {
    let (fa, fb) = (fingerprint(a), fingerprint(b));
    let (da, db) = (digits(&fa), digits(&fb));
    let ((first_d, first_f), (second_d, second_f)) = if da <= db {
        ((da, fa), (db, fb))
    } else {
        ((db, fb), (da, fa))
    };
    let mut qr = Vec::with_capacity(QR_PAYLOAD_LEN);
    qr.push(QR_VERSION);
    qr.extend_from_slice(&first_f[..32]);
    qr.extend_from_slice(&second_f[..32]);
    SafetyNumber {
        digits: format!("{first_d}{second_d}"),
        qr,
    }
}

impl SafetyNumber {
    /// The 60 digits in twelve groups of five, separated by spaces.
    pub fn digits(&self) -> String {
        let groups: Vec<&str> = (0..self.digits.len())
            .step_by(5)
            .filter_map(|i| self.digits.get(i..i + 5))
            .collect();
        groups.join(" ")
    }

    /// The bytes to render as a QR code (version, then both fingerprints).
    pub fn qr_payload(&self) -> Vec<u8> {
        self.qr.clone()
    }

    /// Whether a scanned QR payload matches, compared in constant time.
    pub fn matches_qr(&self, scanned: &[u8]) -> bool {
        self.qr.len() == scanned.len() && bool::from(self.qr.ct_eq(scanned))
    }
}

impl std::fmt::Debug for SafetyNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SafetyNumber({})", self.digits())
    }
}

fn fingerprint(id: &PublicIdentity) -> [u8; 64] {
    let key = id.to_bytes();
    let mut digest: [u8; 64] = Sha512::new()
        .chain_update(label::SAFETY_NUMBER)
        .chain_update(key)
        .finalize()
        .into();
    for _ in 1..ITERATIONS {
        digest = Sha512::new()
            .chain_update(digest)
            .chain_update(key)
            .finalize()
            .into();
    }
    digest
}

fn digits(fp: &[u8; 64]) -> String {
    fp[..30]
        .chunks_exact(5)
        .map(|c| {
            let v = c.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
            format!("{:05}", v % 100_000)
        })
        .collect()
}
