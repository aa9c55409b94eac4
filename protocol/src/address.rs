//! The relay address: `hush://HOST:PORT#FINGERPRINT`, or with several hosts of one relay,
//! `hush://HOST1:PORT1,HOST2:PORT2#FINGERPRINT`.
//!
//! This form never carries a create token: the one that does, `hush://TOKEN@HOST:PORT#...`, is a
//! [`HomeRelay`](crate::access::HomeRelay) and is parsed in `access.rs`.
//!
//! The fingerprint is the lowercase hex SHA-256 of the relay's DER certificate. Clients pin it:
//! a relay whose certificate hashes to anything else is refused. Several hosts name the nodes
//! of one relay, which share its certificate (and so its fingerprint) and its queues; clients
//! try them in the order given. An address prints in one canonical form: hosts in their given
//! order, IPv6 literals in brackets, separated by commas without spaces. A single-host address
//! prints exactly as before.
//!
//! What it does not do: resolve host names, or decide which host to try (the client's pool
//! does).

use std::fmt;
use std::str::FromStr;

use crate::limits::{MAX_ADDRESS_LEN, MAX_HOST_LEN, MAX_RELAY_HOSTS};

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

/// One host of a relay: a name or IP address, and a UDP port.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct RelayHost {
    /// Host name or IP address. IPv6 literals are stored without brackets.
    pub host: String,
    /// UDP port.
    pub port: u16,
}

impl RelayHost {
    /// `host:port`, with brackets around IPv6 literals, suitable for DNS resolution.
    pub fn host_port(&self) -> String {
        host_port(&self.host, self.port)
    }
}

impl fmt::Display for RelayHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.host_port())
    }
}

/// Where a relay is, and which certificate it must present.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct RelayAddress {
    /// The first host: name or IP address. IPv6 literals are stored without brackets.
    pub host: String,
    /// The first host's UDP port.
    pub port: u16,
    /// Further hosts of the same relay (same certificate, same queues), tried in this order
    /// after the first; empty for a single-host address.
    pub more_hosts: Vec<RelayHost>,
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
    /// More hosts than [`MAX_RELAY_HOSTS`], or the same host twice, or an address longer than
    /// [`MAX_ADDRESS_LEN`].
    #[error("a relay address lists at most 8 different hosts (hush://h1:4433,h2:4433#<fingerprint>) and is at most 512 characters long")]
    BadHostList,
}

fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

impl RelayAddress {
    /// A single-host address.
    pub fn new(host: impl Into<String>, port: u16, fingerprint: Fingerprint) -> RelayAddress {
        RelayAddress {
            host: host.into(),
            port,
            more_hosts: Vec::new(),
            fingerprint,
        }
    }

    /// The first host's `host:port`, with brackets around IPv6 literals, suitable for DNS
    /// resolution.
    pub fn host_port(&self) -> String {
        host_port(&self.host, self.port)
    }

    /// Every host, in the order clients try them: the first, then [`RelayAddress::more_hosts`].
    pub fn hosts(&self) -> Vec<RelayHost> {
        let first = RelayHost {
            host: self.host.clone(),
            port: self.port,
        };
        std::iter::once(first)
            .chain(self.more_hosts.iter().cloned())
            .collect()
    }

    /// The same relay (same certificate) at `hosts`, in that order; `None` if `hosts` is empty.
    pub fn with_hosts(&self, hosts: Vec<RelayHost>) -> Option<RelayAddress> {
        let mut it = hosts.into_iter();
        let first = it.next()?;
        Some(RelayAddress {
            host: first.host,
            port: first.port,
            more_hosts: it.collect(),
            fingerprint: self.fingerprint,
        })
    }
}

impl fmt::Display for RelayAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(RELAY_SCHEME)?;
        f.write_str(&self.host_port())?;
        for h in &self.more_hosts {
            write!(f, ",{h}")?;
        }
        write!(f, "#{}", self.fingerprint)
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
        if s.trim().len() > MAX_ADDRESS_LEN {
            return Err(AddressError::BadHostList);
        }
        let hosts = parse_hosts(authority)?;
        let mut it = hosts.into_iter();
        let first = it.next().ok_or(AddressError::BadHost)?;
        Ok(RelayAddress {
            host: first.host,
            port: first.port,
            more_hosts: it.collect(),
            fingerprint,
        })
    }
}

/// `HOST:PORT[,HOST:PORT...]`: at most [`MAX_RELAY_HOSTS`], all different.
fn parse_hosts(authority: &str) -> Result<Vec<RelayHost>, AddressError> {
    let mut hosts: Vec<RelayHost> = Vec::new();
    for part in authority.split(',') {
        let (host, port) = split_host_port(part)?;
        let h = RelayHost { host, port };
        if hosts.len() == MAX_RELAY_HOSTS || hosts.contains(&h) {
            return Err(AddressError::BadHostList);
        }
        hosts.push(h);
    }
    Ok(hosts)
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
            assert!(a.more_hosts.is_empty());
            assert_eq!(a.to_string(), s);
        }
    }

    #[test]
    fn several_hosts_round_trip_in_order_in_one_canonical_form() {
        let s = format!("hush://h1.example:4433,[2001:db8::1]:4434,10.0.0.3:4435#{FP}");
        let a: RelayAddress = s.parse().unwrap();
        let hosts: Vec<String> = a.hosts().iter().map(RelayHost::host_port).collect();
        assert_eq!(
            hosts,
            ["h1.example:4433", "[2001:db8::1]:4434", "10.0.0.3:4435"]
        );
        assert_eq!(a.more_hosts[0].host, "2001:db8::1");
        assert_eq!(a.to_string(), s);
        // Surrounding white space is not part of the canonical form.
        let spaced: RelayAddress = format!("  {s}\n").parse().unwrap();
        assert_eq!(spaced, a);
        assert_eq!(a.with_hosts(a.hosts()), Some(a.clone()));
        let single = a.with_hosts(vec![a.more_hosts[1].clone()]).unwrap();
        assert_eq!(single.to_string(), format!("hush://10.0.0.3:4435#{FP}"));
        assert_eq!(a.with_hosts(Vec::new()), None);
        assert_eq!(
            RelayAddress::new("h", 1, a.fingerprint).to_string(),
            format!("hush://h:1#{FP}")
        );
    }

    #[test]
    fn rejects_each_malformation() {
        let nine = (1..=9)
            .map(|i| format!("h{i}:1"))
            .collect::<Vec<_>>()
            .join(",");
        let [a, b, c] = ["a", "b", "c"].map(|x| x.repeat(200));
        let long = format!("hush://{a}:1,{b}:1,{c}:1#{FP}");
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
            (format!("hush://h:1,#{FP}"), AddressError::BadPort),
            (format!("hush://h:1, g:2#{FP}"), AddressError::BadHost),
            (format!("hush://h:1,[::1]#{FP}"), AddressError::BadPort),
            (format!("hush://h:1,h:1#{FP}"), AddressError::BadHostList),
            (format!("hush://{nine}#{FP}"), AddressError::BadHostList),
            (long, AddressError::BadHostList),
        ];
        for (s, want) in cases {
            assert_eq!(s.parse::<RelayAddress>(), Err(want), "{s}");
        }
    }
}
