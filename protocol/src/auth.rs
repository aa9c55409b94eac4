//! Protocol version and channel-bound authentication of recipient operations.
//!
//! The protocol version is the TLS ALPN value [`ALPN`]; a client and relay that do not share it
//! fail the handshake. A recipient operation carries an Ed25519 signature over
//! [`signing_input`]: a domain label, 32 bytes exported from the connection's TLS session
//! (RFC 5705 / RFC 8446 exporter with [`EXPORTER_LABEL`]), the request id and the encoded
//! operation. The exporter value differs on every connection, so a captured signature is
//! useless anywhere else.
//!
//! What it does not do: sign or verify (the client and relay do, with ed25519-dalek's
//! `verify_strict`), or read the exporter value (that needs the TLS session).

/// The ALPN protocol id, which is also the protocol version.
pub const ALPN: &[u8] = b"hush/1";

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
}
