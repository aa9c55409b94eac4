//! The ratchet message wire format: clear prefix, encrypted header, padded encrypted body.
//!
//! ```text
//! tag 0x02 | version 0x01 | bucket (u8)              clear prefix, 3 bytes
//! nonce (24) | header ciphertext (40) | tag (16)      XChaCha20-HMAC-SHA256 under the header key
//! body ciphertext (PADDING_BUCKETS[bucket] + 1) | tag (16) XChaCha20-Poly1305 under the message key
//! ```
//!
//! The body uses the header's random nonce under its own one-time message key. A message key
//! is never meant to be used twice, but if a sender's state were ever rolled back (restored
//! from an old copy), the fresh random nonce keeps two bodies under one key from sharing a
//! keystream.
//!
//! The header plaintext is the sender's ratchet public key, the previous chain length and the
//! message number; the relay sees none of them. The message is self-delimiting: its length
//! follows from the bucket byte, and any other length is refused. This module does not keep
//! state; [`super::Session`] decides which keys to try.

use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroizing;

use super::super::kdf::{open_header as open_hdr, open_x, seal_header, seal_x, Key32, HEADER_LEN};
use super::super::limits::{
    BODY_TAG_LEN, ENCRYPTED_HEADER_LEN, MAX_PLAINTEXT_LEN, PADDING_BUCKETS, PADDING_MARKER_LEN,
    RATCHET_PREFIX_LEN,
};
use super::super::wire::{TAG_RATCHET, WIRE_VERSION};

/// The first byte of the padding; zeros follow it up to the bucket size.
const PADDING_MARKER: u8 = 0x80;

/// A decrypted message header.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    /// The sender's current ratchet public key.
    pub(crate) dh: [u8; 32],
    /// Number of messages in the sender's previous sending chain.
    pub(crate) pn: u32,
    /// This message's number in its chain.
    pub(crate) n: u32,
}

/// A ratchet message split into its parts, with lengths already checked.
pub(crate) struct Parsed<'a> {
    prefix: &'a [u8],
    enc_header: &'a [u8],
    body: &'a [u8],
}

/// Splits a wire message, refusing a wrong tag, version, bucket or length.
pub(crate) fn parse(wire: &[u8]) -> Option<Parsed<'_>> {
    let (prefix, rest) = wire.split_at_checked(RATCHET_PREFIX_LEN)?;
    if prefix[0] != TAG_RATCHET || prefix[1] != WIRE_VERSION {
        return None;
    }
    let bucket = *PADDING_BUCKETS.get(usize::from(prefix[2]))?;
    if rest.len() != ENCRYPTED_HEADER_LEN + bucket + PADDING_MARKER_LEN + BODY_TAG_LEN {
        return None;
    }
    let (enc_header, body) = rest.split_at(ENCRYPTED_HEADER_LEN);
    Some(Parsed {
        prefix,
        enc_header,
        body,
    })
}

/// Tries to decrypt the header with one header key.
pub(crate) fn open_header(hk: &Key32, msg: &Parsed<'_>, ad: &[u8; 32]) -> Option<Header> {
    let (nonce, sealed) = msg.enc_header.split_at(24);
    let pt = open_hdr(hk, nonce, &[ad, msg.prefix], sealed)?;
    let mut dh = [0u8; 32];
    dh.copy_from_slice(&pt[..32]);
    let pn = u32::from_be_bytes([pt[32], pt[33], pt[34], pt[35]]);
    let n = u32::from_be_bytes([pt[36], pt[37], pt[38], pt[39]]);
    Some(Header { dh, pn, n })
}

/// Decrypts and unpads the body with its message key.
pub(crate) fn open(mk: &Key32, msg: &Parsed<'_>, ad: &[u8; 32]) -> Option<Zeroizing<Vec<u8>>> {
    let aad = [&ad[..], msg.prefix, msg.enc_header].concat();
    let nonce = &msg.enc_header[..24];
    let mut padded = open_x(mk, nonce, &aad, msg.body).ok()?;
    let end = padded.iter().rposition(|&b| b != 0)?;
    if padded[end] != PADDING_MARKER {
        return None;
    }
    padded.truncate(end);
    Some(padded)
}

/// Builds a complete wire message. The caller has checked the plaintext length.
pub(crate) fn seal(
    hk: &Key32,
    mk: &Key32,
    header: &Header,
    ad: &[u8; 32],
    plaintext: &[u8],
    rng: &mut (impl RngCore + CryptoRng),
) -> Vec<u8> {
    debug_assert!(plaintext.len() <= MAX_PLAINTEXT_LEN);
    let bucket_index = PADDING_BUCKETS
        .iter()
        .position(|&b| b >= plaintext.len())
        .unwrap_or(PADDING_BUCKETS.len() - 1);
    let padded_len = PADDING_BUCKETS[bucket_index] + PADDING_MARKER_LEN;
    // PADDING_BUCKETS has fewer than 256 entries (checked at compile time in limits).
    let prefix = [TAG_RATCHET, WIRE_VERSION, bucket_index as u8];

    let mut header_pt = Zeroizing::new([0u8; HEADER_LEN]);
    header_pt[..32].copy_from_slice(&header.dh);
    header_pt[32..36].copy_from_slice(&header.pn.to_be_bytes());
    header_pt[36..].copy_from_slice(&header.n.to_be_bytes());
    let mut nonce = [0u8; 24];
    rng.fill_bytes(&mut nonce);
    let header_ct = seal_header(hk, &nonce, &[ad, &prefix], &header_pt);

    let mut padded = Zeroizing::new(Vec::with_capacity(padded_len));
    padded.extend_from_slice(plaintext);
    padded.push(PADDING_MARKER);
    padded.resize(padded_len, 0);

    let mut out =
        Vec::with_capacity(RATCHET_PREFIX_LEN + ENCRYPTED_HEADER_LEN + padded_len + BODY_TAG_LEN);
    out.extend_from_slice(&prefix);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&header_ct);
    let body_aad = [&ad[..], &out[..]].concat();
    out.extend_from_slice(&seal_x(mk, &nonce, &body_aad, &padded));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(b: u8) -> Key32 {
        Key32::from_bytes([b; 32])
    }
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    fn header() -> Header {
        Header {
            dh: [9; 32],
            pn: 3,
            n: 7,
        }
    }

    #[test]
    fn every_length_pads_to_a_bucket_and_round_trips() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        for len in [0, 1, 255, 256, 257, 1024, 4097, MAX_PLAINTEXT_LEN] {
            let pt = vec![0u8; len];
            let wire = seal(&k(1), &k(2), &header(), &[3; 32], &pt, &mut rng);
            let bucket = PADDING_BUCKETS[usize::from(wire[2])];
            assert!(bucket >= len);
            assert!(wire[2] == 0 || PADDING_BUCKETS[usize::from(wire[2]) - 1] < len);
            let body = bucket + PADDING_MARKER_LEN + BODY_TAG_LEN;
            assert_eq!(wire.len(), RATCHET_PREFIX_LEN + ENCRYPTED_HEADER_LEN + body);
            let parsed = parse(&wire).unwrap();
            assert!(open_header(&k(1), &parsed, &[3; 32]) == Some(header()));
            assert_eq!(open(&k(2), &parsed, &[3; 32]).unwrap().as_slice(), &pt[..]);
        }
    }

    #[test]
    fn parse_refuses_wrong_tag_version_bucket_and_length() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let wire = seal(&k(1), &k(2), &header(), &[3; 32], b"hi", &mut rng);
        assert!(parse(&wire).is_some());
        for (i, v) in [(0, 0x01), (1, 0x02), (2, 0x01), (2, 0xff)] {
            let mut bad = wire.clone();
            bad[i] = v;
            assert!(parse(&bad).is_none(), "byte {i} = {v}");
        }
        assert!(parse(&wire[..wire.len() - 1]).is_none());
        assert!(parse(&[wire.as_slice(), &[0]].concat()).is_none());
        assert!(parse(&wire[..2]).is_none());
    }
}
