//! The relay address: `hush://HOST:PORT#FINGERPRINT`.
//!
//! This form never carries a create token: the one that does, `hush://TOKEN@HOST:PORT#...`, is a
//! [`HomeRelay`](crate::access::HomeRelay) and is parsed in `access.rs`.
//!
//! The fingerprint is the lowercase hex SHA-256 of the relay's DER certificate. Clients pin it:
//! a relay whose certificate hashes to anything else is refused.

use std::fmt;
use std::str::FromStr;

use crate::limits::MAX_HOST_LEN;

/// The URI scheme prefix of relay addresses.
pub const RELAY_SCHEME: &str = "hush://";

/// Length in bytes of a certificate fingerprint (SHA-256).
pub const FINGERPRINT_LEN: usize = 32;

/// SHA-256 of a relay's DER-encoded certificate.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; FINGERPRINT_LEN]);

impl Fingerprint {
    /// Lowercase hex encoding, as it appears in relay addresses.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 hex digits, as in relay addresses.
    pub fn from_hex(s: &str) -> Result<Fingerprint, AddressError> {
        parse_fingerprint(s)
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({})", self.to_hex())
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// Where a relay is, and which certificate it must present.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct RelayAddress {
    /// Host name or IP address. IPv6 literals are stored without brackets.
    pub host: String,
    /// UDP port.
    pub port: u16,
    /// The pinned certificate fingerprint.
    pub fingerprint: Fingerprint,
}

/// Why a relay address did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddressError {
    /// The string does not start with `hush://`.
    #[error(
        "a relay address starts with hush:// (for example hush://relay.example:4433#<fingerprint>)"
    )]
    Scheme,
    /// The `#fingerprint` part is missing.
    #[error("the relay address has no #fingerprint; copy the whole address the relay printed")]
    MissingFingerprint,
    /// The fingerprint is not 64 hex digits.
    #[error("the relay fingerprint must be 64 hex digits")]
    BadFingerprint,
    /// The host is empty, too long or malformed.
    #[error("the relay address has an invalid host")]
    BadHost,
    /// The port is missing or not a number from 1 to 65535.
    #[error("the relay address needs a port from 1 to 65535 (host:port)")]
    BadPort,
    /// The create token (`hush://TOKEN@HOST:PORT#FINGERPRINT`) is malformed.
    #[error(
        "the create token in the relay address must be 16 to 128 characters of A-Z a-z 0-9 . _ ~ -; copy the whole address the relay's operator gave you"
    )]
    BadToken,
    /// A create token appeared where only a plain relay address belongs (one handed to or
    /// received from a contact).
    #[error("this relay address carries a create token, which belongs only in your own home's settings; give contacts hush://HOST:PORT#FINGERPRINT")]
    UnexpectedToken,
}

impl RelayAddress {
    /// `host:port`, with brackets around IPv6 literals, suitable for DNS resolution.
    pub fn host_port(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for RelayAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{RELAY_SCHEME}{}#{}", self.host_port(), self.fingerprint)
    }
}

impl FromStr for RelayAddress {
    type Err = AddressError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let rest = s
            .trim()
            .strip_prefix(RELAY_SCHEME)
            .ok_or(AddressError::Scheme)?;
        let (authority, fp) = rest
            .split_once('#')
            .ok_or(AddressError::MissingFingerprint)?;
        if authority.contains('@') {
            return Err(AddressError::UnexpectedToken);
        }
        let fingerprint = parse_fingerprint(fp)?;
        let (host, port) = split_host_port(authority)?;
        Ok(RelayAddress {
            host,
            port,
            fingerprint,
        })
    }
}

fn parse_fingerprint(s: &str) -> Result<Fingerprint, AddressError> {
    let mut out = [0u8; FINGERPRINT_LEN];
    if s.len() != FINGERPRINT_LEN * 2 {
        return Err(AddressError::BadFingerprint);
    }
    hex::decode_to_slice(s, &mut out).map_err(|_| AddressError::BadFingerprint)?;
    Ok(Fingerprint(out))
}

fn split_host_port(authority: &str) -> Result<(String, u16), AddressError> {
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or(AddressError::BadHost)?;
        let port = after.strip_prefix(':').ok_or(AddressError::BadPort)?;
        (host, port)
    } else {
        authority.rsplit_once(':').ok_or(AddressError::BadPort)?
    };
    let valid_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '_');
    if host.is_empty() || host.len() > MAX_HOST_LEN || !host.chars().all(valid_char) {
        return Err(AddressError::BadHost);
    }
    // A bare host containing ':' must have come in brackets.
    if host.contains(':') && !authority.starts_with('[') {
        return Err(AddressError::BadHost);
    }
    let port: u16 = port.parse().map_err(|_| AddressError::BadPort)?;
    if port == 0 {
        return Err(AddressError::BadPort);
    }
    Ok((host.to_owned(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FP: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    #[test]
    fn round_trips_names_and_ipv6() {
        for s in [
            format!("hush://relay.example:4433#{FP}"),
            format!("hush://127.0.0.1:1#{FP}"),
            format!("hush://[::1]:65535#{FP}"),
        ] {
            let a: RelayAddress = s.parse().unwrap();
            assert_eq!(a.to_string(), s);
        }
    }

    #[test]
    fn rejects_each_malformation() {
        let cases = [
            (format!("http://h:1#{FP}"), AddressError::Scheme),
            ("hush://h:1".to_owned(), AddressError::MissingFingerprint),
            ("hush://h:1#abc".to_owned(), AddressError::BadFingerprint),
            (format!("hush://h#{FP}"), AddressError::BadPort),
            (format!("hush://h:0#{FP}"), AddressError::BadPort),
            (format!("hush://h:70000#{FP}"), AddressError::BadPort),
            (format!("hush://:1#{FP}"), AddressError::BadHost),
            (format!("hush://a b:1#{FP}"), AddressError::BadHost),
            (format!("hush://::1:1#{FP}"), AddressError::BadHost),
        ];
        for (s, want) in cases {
            assert_eq!(s.parse::<RelayAddress>(), Err(want), "{s}");
        }
    }
}
