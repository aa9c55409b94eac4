//! The proxy setting: `socks5://[user:pass@]host:port`.
//!
//! What it does: parses and prints the setting. The password is kept in memory that is wiped
//! on drop, and never printed: `Display` and `Debug` show `host:port` only.
//!
//! What it does not do: percent-decoding (a user name cannot contain `:`; a password may
//! contain `:` and `@`), or other schemes (`socks5h`, `socks4`, `http`).

use std::fmt;
use std::str::FromStr;

use zeroize::Zeroizing;

/// The longest user name or password RFC 1929 can carry.
const MAX_CREDENTIAL_LEN: usize = 255;

/// A SOCKS5 proxy to reach every relay through.
#[derive(Clone, PartialEq, Eq)]
pub struct Socks5Proxy {
    host: String,
    port: u16,
    credentials: Option<Credentials>,
}

/// A user name and password (RFC 1929).
#[derive(Clone, PartialEq, Eq)]
pub(super) struct Credentials {
    pub(super) user: Zeroizing<Vec<u8>>,
    pub(super) password: Zeroizing<Vec<u8>>,
}

/// Why a proxy URL did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyUrlError {
    /// It does not start with `socks5://`.
    #[error("a proxy URL starts with socks5:// (use socks5://[user:pass@]host:port)")]
    Scheme,
    /// The host or port is missing or invalid.
    #[error("the proxy URL needs a host and a port from 1 to 65535 (use socks5://[user:pass@]host:port)")]
    HostPort,
    /// The user name or password is empty or longer than 255 bytes.
    #[error("the proxy user name and password must each be 1 to 255 bytes, as user:pass@")]
    Credentials,
}

impl Socks5Proxy {
    /// The proxy at `host:port`, without authentication.
    pub fn new(host: &str, port: u16) -> Socks5Proxy {
        Socks5Proxy {
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
            port,
            credentials: None,
        }
    }

    /// The host, IPv6 literals without brackets.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether a user name and password are set.
    pub fn has_credentials(&self) -> bool {
        self.credentials.is_some()
    }

    pub(super) fn credentials(&self) -> Option<&Credentials> {
        self.credentials.as_ref()
    }

    /// `(host, port)`, as the resolver takes it.
    pub(super) fn host_port(&self) -> (&str, u16) {
        (&self.host, self.port)
    }
}

impl fmt::Display for Socks5Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Debug for Socks5Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Socks5Proxy")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("credentials", &self.credentials.is_some())
            .finish()
    }
}

impl FromStr for Socks5Proxy {
    type Err = ProxyUrlError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let rest = s
            .get(..9)
            .filter(|scheme| scheme.eq_ignore_ascii_case("socks5://"))
            .and_then(|_| s.get(9..))
            .ok_or(ProxyUrlError::Scheme)?;
        let (credentials, authority) = match rest.rsplit_once('@') {
            Some((userinfo, authority)) => (Some(parse_credentials(userinfo)?), authority),
            None => (None, rest),
        };
        let (host, port) = parse_host_port(authority).ok_or(ProxyUrlError::HostPort)?;
        Ok(Socks5Proxy {
            host,
            port,
            credentials,
        })
    }
}

fn parse_credentials(userinfo: &str) -> Result<Credentials, ProxyUrlError> {
    let (user, password) = userinfo.split_once(':').ok_or(ProxyUrlError::Credentials)?;
    let fits = |v: &str| (1..=MAX_CREDENTIAL_LEN).contains(&v.len());
    if !fits(user) || !fits(password) {
        return Err(ProxyUrlError::Credentials);
    }
    Ok(Credentials {
        user: Zeroizing::new(user.as_bytes().to_vec()),
        password: Zeroizing::new(password.as_bytes().to_vec()),
    })
}

fn parse_host_port(authority: &str) -> Option<(String, u16)> {
    let (host, port) = match authority.strip_prefix('[') {
        Some(bracketed) => {
            let (host, port) = bracketed.split_once("]:")?;
            host.parse::<std::net::Ipv6Addr>().ok()?;
            (host, port)
        }
        None => authority.rsplit_once(':')?,
    };
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '_'));
    let port: u16 = port.parse().ok().filter(|p| *p != 0)?;
    // An unbracketed host with a colon is an IPv6 literal missing its brackets.
    if !host_ok || (host.contains(':') && !authority.starts_with('[')) {
        return None;
    }
    Some((host.to_owned(), port))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_host_port_and_credentials() {
        let p: Socks5Proxy = "socks5://127.0.0.1:1080".parse().unwrap();
        assert_eq!(
            (p.host(), p.port(), p.has_credentials()),
            ("127.0.0.1", 1080, false)
        );
        let p: Socks5Proxy = "SOCKS5://alice:s3:cr@t@proxy.example:9".parse().unwrap();
        assert_eq!((p.host(), p.port()), ("proxy.example", 9));
        let c = p.credentials().unwrap();
        assert_eq!(
            (&c.user[..], &c.password[..]),
            (&b"alice"[..], &b"s3:cr@t"[..])
        );
        let p: Socks5Proxy = "socks5://[::1]:1080".parse().unwrap();
        assert_eq!(p.host(), "::1");
        assert_eq!(p.to_string(), "[::1]:1080");
    }

    #[test]
    fn never_prints_the_password() {
        let p: Socks5Proxy = "socks5://u:hunter2@h:1".parse().unwrap();
        assert_eq!(p.to_string(), "h:1");
        assert!(!format!("{p:?}").contains("hunter2"));
    }

    #[test]
    fn malformed_urls_are_typed_errors() {
        let cases = [
            ("127.0.0.1:1080", ProxyUrlError::Scheme),
            ("http://h:1", ProxyUrlError::Scheme),
            ("socks5h://h:1", ProxyUrlError::Scheme),
            ("socks5://h", ProxyUrlError::HostPort),
            ("socks5://h:0", ProxyUrlError::HostPort),
            ("socks5://h:65536", ProxyUrlError::HostPort),
            ("socks5://:1080", ProxyUrlError::HostPort),
            ("socks5://h:1/path", ProxyUrlError::HostPort),
            ("socks5://::1:1080", ProxyUrlError::HostPort),
            ("socks5://[nothex]:1", ProxyUrlError::HostPort),
            ("socks5://user@h:1", ProxyUrlError::Credentials),
            ("socks5://:pw@h:1", ProxyUrlError::Credentials),
            ("socks5://u:@h:1", ProxyUrlError::Credentials),
        ];
        for (url, want) in cases {
            assert_eq!(url.parse::<Socks5Proxy>(), Err(want), "{url}");
        }
        let long = format!("socks5://{}:pw@h:1", "u".repeat(256));
        assert_eq!(long.parse::<Socks5Proxy>(), Err(ProxyUrlError::Credentials));
    }
}
