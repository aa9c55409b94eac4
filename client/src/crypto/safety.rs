//! Safety numbers: what two contacts compare to detect a man in the middle.
//!
//! Each identity gets a 30-digit fingerprint: 5,200 iterations of SHA-512 over a label, the
//! identity's 64-byte public encoding and the previous digest (as Signal's numeric
//! fingerprints do, to make grinding for a look-alike expensive). The first 30 bytes become six
//! 5-digit groups (each 5-byte chunk as a big-endian integer modulo 100,000). The safety number
//! is both fingerprints, lower one first, so it is the same on both sides and changes when
//! either key changes. The QR payload is ordered instead: the shower's fingerprint first, then
//! the scanner's (as Signal orders them), so a code matches only when scanned from the other
//! side, and scanning one's own code does not. This module does not remember which contacts
//! were verified.

use sha2::{Digest, Sha512};
use subtle::ConstantTimeEq;

use super::identity::PublicIdentity;
use super::kdf::label;

/// Iterations of SHA-512 per fingerprint.
const ITERATIONS: usize = 5_200;

/// Version byte of the QR payload (2: ordered local, remote; 1 was sorted and is no longer
/// made or accepted).
const QR_VERSION: u8 = 2;

/// Length of the QR payload: version and two 32-byte fingerprints.
pub const QR_PAYLOAD_LEN: usize = 1 + 32 + 32;

/// The safety number of a pair of identities, as one side sees it. Two views are equal when
/// their digits are (the digits are the same on both sides; the QR payloads are not).
#[derive(Clone)]
pub struct SafetyNumber {
    digits: String,
    /// The QR payload this side shows: version, local fingerprint, remote fingerprint.
    shown: Vec<u8>,
    /// The payload the other side shows, which a scan from here must match.
    expected: Vec<u8>,
}

impl PartialEq for SafetyNumber {
    fn eq(&self, other: &Self) -> bool {
        self.digits == other.digits
    }
}

impl Eq for SafetyNumber {}

/// The QR payload shown by the side whose fingerprint is `first`.
fn qr(first: &[u8; 64], second: &[u8; 64]) -> Vec<u8> {
    let mut qr = Vec::with_capacity(QR_PAYLOAD_LEN);
    qr.push(QR_VERSION);
    qr.extend_from_slice(&first[..32]);
    qr.extend_from_slice(&second[..32]);
    qr
}

/// Computes the safety number of our identity `local` and a contact's `remote`. The digits do
/// not depend on the order; the QR payload shown does.
pub fn safety_number(local: &PublicIdentity, remote: &PublicIdentity) -> SafetyNumber {
    let (fl, fr) = (fingerprint(local), fingerprint(remote));
    let (dl, dr) = (digits(&fl), digits(&fr));
    let digits = if dl <= dr {
        format!("{dl}{dr}")
    } else {
        format!("{dr}{dl}")
    };
    SafetyNumber {
        digits,
        shown: qr(&fl, &fr),
        expected: qr(&fr, &fl),
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

    /// The bytes to render as a QR code: version, our fingerprint, the contact's.
    pub fn qr_payload(&self) -> Vec<u8> {
        self.shown.clone()
    }

    /// Whether a QR payload scanned from the contact's screen matches, compared in constant
    /// time. Our own payload does not match: it is ordered the other way round.
    pub fn matches_qr(&self, scanned: &[u8]) -> bool {
        self.expected.len() == scanned.len() && bool::from(self.expected.ct_eq(scanned))
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
