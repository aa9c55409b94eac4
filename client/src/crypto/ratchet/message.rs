//! The ratchet message wire format: version byte, encrypted header, padded encrypted body.
//!
//! ```text
//! version 0x03                                     clear prefix, 1 byte, the same for every kind
//! nonce (24) | header ciphertext (40) | tag (16)   XChaCha20-HMAC-SHA256 under the header key
//! body ciphertext (padding) | tag (16)             XChaCha20-Poly1305 under the message key
//! ```
//!
//! The plaintext is padded (an end marker, then zeros) so that the whole message fills a
//! bucket of [`WIRE_BUCKETS`]; a first message embeds a ratchet message padded so that the
//! first message as a whole fills one (`extra` bytes follow it). Nothing in the clear says
//! which bucket or which kind: the length alone shows the bucket.
//!
//! The body uses the header's random nonce under its own one-time message key. A message key
//! is never meant to be used twice, but if a sender's state were ever rolled back (restored
//! from an old copy), the fresh random nonce keeps two bodies under one key from sharing a
//! keystream.
//!
//! The header plaintext is the sender's ratchet public key, the previous chain length and the
//! message number; the relay sees none of them. Version 1 messages (`0x02 | 0x01 | bucket
//! index` in the clear, the plaintext padded to [`V1_PADDING_BUCKETS`]) are still parsed and
//! opened, never sealed. This module does not keep state; [`super::Session`] decides which keys
//! to try.

use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroizing;

use super::super::kdf::{open_header as open_hdr, open_x, seal_header, seal_x, Key32, HEADER_LEN};
#[cfg(doc)]
use super::super::limits::WIRE_BUCKETS;
use super::super::limits::{
    BODY_TAG_LEN, ENCRYPTED_HEADER_LEN, PADDING_MARKER_LEN, RATCHET_OVERHEAD, RATCHET_PREFIX_LEN,
    V1_PADDING_BUCKETS, V1_RATCHET_PREFIX_LEN,
};
use super::super::wire::{
    wire_bucket, wire_format, WireFormat, V1_TAG_RATCHET, V1_VERSION, WIRE_VERSION,
};

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

/// Splits a standalone wire message of either version, refusing an unknown lead byte, a
/// length that is not a bucket, or (version 1) a wrong bucket index.
pub(crate) fn parse(wire: &[u8]) -> Option<Parsed<'_>> {
    match wire_format(wire)? {
        WireFormat::Current => parse_embedded(wire),
        WireFormat::V1Ratchet => parse_v1(wire),
        _ => None,
    }
}

/// Splits a current ratchet message whose length the caller has checked (the one inside a
/// first message): any length that leaves room for the end marker.
pub(crate) fn parse_embedded(wire: &[u8]) -> Option<Parsed<'_>> {
    let (prefix, rest) = wire.split_at_checked(RATCHET_PREFIX_LEN)?;
    if prefix != [WIRE_VERSION] || wire.len() < RATCHET_OVERHEAD + PADDING_MARKER_LEN {
        return None;
    }
    let (enc_header, body) = rest.split_at(ENCRYPTED_HEADER_LEN);
    Some(Parsed {
        prefix,
        enc_header,
        body,
    })
}

/// Splits a version 1 ratchet message, refusing a wrong tag, version, bucket or length.
pub(crate) fn parse_v1(wire: &[u8]) -> Option<Parsed<'_>> {
    let (prefix, rest) = wire.split_at_checked(V1_RATCHET_PREFIX_LEN)?;
    if prefix[0] != V1_TAG_RATCHET || prefix[1] != V1_VERSION {
        return None;
    }
    let bucket = *V1_PADDING_BUCKETS.get(usize::from(prefix[2]))?;
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

/// Builds a current ratchet message, padded so that it and the `extra` bytes the caller puts
/// after it fill the smallest bucket that holds them. `None` if no bucket does.
pub(crate) fn seal(
    hk: &Key32,
    mk: &Key32,
    header: &Header,
    ad: &[u8; 32],
    plaintext: &[u8],
    extra: usize,
    rng: &mut (impl RngCore + CryptoRng),
) -> Option<Vec<u8>> {
    let unpadded = RATCHET_OVERHEAD + plaintext.len() + PADDING_MARKER_LEN + extra;
    let padded_len = wire_bucket(unpadded)? - extra - RATCHET_OVERHEAD;
    let prefix = [WIRE_VERSION];

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

    let mut out = Vec::with_capacity(RATCHET_OVERHEAD + padded_len + extra);
    out.extend_from_slice(&prefix);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&header_ct);
    let body_aad = [&ad[..], &out[..]].concat();
    out.extend_from_slice(&seal_x(mk, &nonce, &body_aad, &padded));
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::super::super::limits::{MAX_PLAINTEXT_LEN, WIRE_BUCKETS};
    use super::*;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    fn k(b: u8) -> Key32 {
        Key32::from_bytes([b; 32])
    }

    fn header() -> Header {
        Header {
            dh: [9; 32],
            pn: 3,
            n: 7,
        }
    }

    /// A version 1 message, as version 1 code sealed it.
    fn seal_v1(hk: &Key32, mk: &Key32, ad: &[u8; 32], pt: &[u8]) -> Vec<u8> {
        let bucket = V1_PADDING_BUCKETS
            .iter()
            .position(|&b| b >= pt.len())
            .unwrap();
        let prefix = [V1_TAG_RATCHET, V1_VERSION, bucket as u8];
        let h = header();
        let mut header_pt = [0u8; HEADER_LEN];
        header_pt[..32].copy_from_slice(&h.dh);
        header_pt[32..36].copy_from_slice(&h.pn.to_be_bytes());
        header_pt[36..].copy_from_slice(&h.n.to_be_bytes());
        let nonce = [5u8; 24];
        let mut out = prefix.to_vec();
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&seal_header(hk, &nonce, &[ad, &prefix], &header_pt));
        let mut padded = pt.to_vec();
        padded.push(PADDING_MARKER);
        padded.resize(V1_PADDING_BUCKETS[bucket] + 1, 0);
        let aad = [&ad[..], &out[..]].concat();
        out.extend_from_slice(&seal_x(mk, &nonce, &aad, &padded));
        out
    }

    #[test]
    fn every_length_pads_to_a_bucket_and_round_trips() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        for len in [0, 1, 255, 1950, 1951, 4096, 16287, 16288, MAX_PLAINTEXT_LEN] {
            let pt = vec![0u8; len];
            let wire = seal(&k(1), &k(2), &header(), &[3; 32], &pt, 0, &mut rng).unwrap();
            let need = len + RATCHET_OVERHEAD + PADDING_MARKER_LEN;
            let bucket = *WIRE_BUCKETS.iter().find(|&&b| b >= need).unwrap();
            assert_eq!(wire.len(), bucket, "plaintext of {len}");
            assert_eq!(wire[0], WIRE_VERSION);
            let parsed = parse(&wire).unwrap();
            assert!(open_header(&k(1), &parsed, &[3; 32]) == Some(header()));
            assert_eq!(open(&k(2), &parsed, &[3; 32]).unwrap().as_slice(), &pt[..]);
        }
    }

    #[test]
    fn extra_bytes_are_left_for_the_caller_within_the_bucket() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let wire = seal(&k(1), &k(2), &header(), &[3; 32], b"hi", 1280, &mut rng).unwrap();
        assert_eq!(wire.len() + 1280, WIRE_BUCKETS[0]);
        assert!(parse(&wire).is_none(), "not a bucket on its own");
        let parsed = parse_embedded(&wire).unwrap();
        assert_eq!(open(&k(2), &parsed, &[3; 32]).unwrap().as_slice(), b"hi");
        let too_long = vec![0u8; MAX_PLAINTEXT_LEN + 4096];
        assert!(seal(&k(1), &k(2), &header(), &[3; 32], &too_long, 0, &mut rng).is_none());
    }

    #[test]
    fn parse_refuses_wrong_tag_version_bucket_and_length() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let wire = seal(&k(1), &k(2), &header(), &[3; 32], b"hi", 0, &mut rng).unwrap();
        assert!(parse(&wire).is_some());
        for v in [0x00, 0x01, 0x02, 0x04, 0xff] {
            let mut bad = wire.clone();
            bad[0] = v;
            assert!(parse(&bad).is_none(), "lead {v}");
        }
        assert!(parse(&wire[..wire.len() - 1]).is_none());
        assert!(parse(&[wire.as_slice(), &[0]].concat()).is_none());
        assert!(parse(&wire[..2]).is_none());
        assert!(parse_embedded(&wire[..RATCHET_OVERHEAD]).is_none());
    }

    #[test]
    fn version_1_messages_still_open_and_are_checked_as_before() {
        let wire = seal_v1(&k(1), &k(2), &[3; 32], b"old");
        let parsed = parse(&wire).unwrap();
        assert!(open_header(&k(1), &parsed, &[3; 32]) == Some(header()));
        assert_eq!(open(&k(2), &parsed, &[3; 32]).unwrap().as_slice(), b"old");
        for (i, v) in [(0, 0x01), (1, 0x02), (2, 0x01), (2, 0xff)] {
            let mut bad = wire.clone();
            bad[i] = v;
            assert!(parse(&bad).is_none(), "byte {i} = {v}");
        }
        assert!(parse(&wire[..wire.len() - 1]).is_none());
    }
}
