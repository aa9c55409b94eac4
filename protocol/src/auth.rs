//! Protocol version and channel-bound authentication of recipient operations.
//!
//! The protocol version is the TLS ALPN value: [`ALPN`] (`hush/2`) for current peers, which also
//! offer [`ALPN_V1`] (`hush/1`) to older ones ([`WireVersion`]); a client and relay that share
//! neither fail the handshake. A recipient operation carries an Ed25519 signature over
//! [`signing_input`]: a domain label, 32 bytes exported from the connection's TLS session
//! (RFC 5705 / RFC 8446 exporter with [`EXPORTER_LABEL`]), the request id and the encoded
//! operation. The exporter value differs on every connection, so a captured signature is
//! useless anywhere else.
//!
//! What it does not do: sign or verify (the client and relay do, with ed25519-dalek's
//! `verify_strict`), or read the exporter value (that needs the TLS session).

/// The ALPN protocol id of the current protocol version, `hush/2`: `hush/1` plus batched acks
/// (`Request::AckMany`) and batched pushes (`Push::Envelopes`).
pub const ALPN: &[u8] = b"hush/2";

/// The ALPN protocol id of the first version, `hush/1`, still offered by current clients and
/// served by current relays.
pub const ALPN_V1: &[u8] = b"hush/1";

/// Every ALPN value this side speaks, most preferred first: what clients offer and relays
/// accept.
pub const ALPNS: [&[u8]; 2] = [ALPN, ALPN_V1];

/// The protocol version a connection negotiated (its ALPN value).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WireVersion {
    /// `hush/1`: one ack per request, one envelope per push.
    V1,
    /// `hush/2`: also `AckMany` requests and `Envelopes` pushes.
    V2,
}

impl WireVersion {
    /// The version an ALPN value names, if it is one of ours.
    pub fn from_alpn(alpn: &[u8]) -> Option<WireVersion> {
        match alpn {
            ALPN => Some(WireVersion::V2),
            ALPN_V1 => Some(WireVersion::V1),
            _ => None,
        }
    }

    /// The ALPN value of this version.
    pub fn alpn(self) -> &'static [u8] {
        match self {
            WireVersion::V1 => ALPN_V1,
            WireVersion::V2 => ALPN,
        }
    }

    /// Whether the connection may carry `AckMany` requests and `Envelopes` pushes.
    pub fn batches(self) -> bool {
        self >= WireVersion::V2
    }
}

/// The TLS exporter label for the channel binding.
pub const EXPORTER_LABEL: &[u8] = b"EXPORTER-hush-recipient-auth-v1";

/// Length in bytes of the exported channel binding.
pub const EXPORTER_LEN: usize = 32;

/// Domain separation label at the start of every signed message.
pub const SIGNING_DOMAIN: &[u8] = b"hush/1 recipient operation\0";

/// Length of an Ed25519 public key.
pub const PUBLIC_KEY_LEN: usize = 32;

/// Length of an Ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;

/// The bytes a recipient signs: `SIGNING_DOMAIN || exporter || request_id (u32 BE) || op`,
/// where `op` is [`crate::Request::signed_part`].
pub fn signing_input(exporter: &[u8; EXPORTER_LEN], request_id: u32, op: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(SIGNING_DOMAIN.len() + EXPORTER_LEN + 4 + op.len());
    out.extend_from_slice(SIGNING_DOMAIN);
    out.extend_from_slice(exporter);
    out.extend_from_slice(&request_id.to_be_bytes());
    out.extend_from_slice(op);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binding_changes_the_input() {
        let a = signing_input(&[1; 32], 7, b"op");
        assert_ne!(a, signing_input(&[2; 32], 7, b"op"));
        assert_ne!(a, signing_input(&[1; 32], 8, b"op"));
        assert!(a.starts_with(SIGNING_DOMAIN));
        assert!(a.ends_with(&[0, 0, 0, 7, b'o', b'p']));
    }

    #[test]
    fn versions_name_their_alpn() {
        for v in [WireVersion::V1, WireVersion::V2] {
            assert_eq!(WireVersion::from_alpn(v.alpn()), Some(v));
        }
        assert_eq!(WireVersion::from_alpn(b"hush/3"), None);
        assert!(WireVersion::V2.batches() && !WireVersion::V1.batches());
        assert_eq!(ALPNS[0], ALPN);
    }
}
