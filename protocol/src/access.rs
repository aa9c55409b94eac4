//! Who may create on a relay, and what the relay allows: the [`CreateToken`] an operator can
//! require for creating queues and blobs, the [`HomeRelay`] address that carries it to the
//! relay's own users (`hush://TOKEN@HOST:PORT#FINGERPRINT`), and the [`RelayInfo`] a relay
//! announces in answer to `Hello`.
//!
//! The token travels only in the address a relay's operator hands to that relay's users. A
//! [`RelayAddress`] (what invitations, introductions and file offers carry to contacts) has no
//! room for it, and its parser refuses an address with a token
//! ([`AddressError::UnexpectedToken`]), so a token cannot reach a contact by way of an address.
//!
//! What it does not do: hash or compare tokens (the relay does, in constant time), or any I/O.

use std::fmt;
use std::str::FromStr;

use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::address::{AddressError, RelayAddress, RELAY_SCHEME};
use crate::limits::{MAX_TOKEN_LEN, MIN_TOKEN_LEN};

/// A secret that lets its holder create queues and blobs on a relay that requires one.
///
/// 16 to 128 characters from the URI "unreserved" set (`A-Z a-z 0-9 . _ ~ -`), so it needs no
/// escaping in an address and has exactly one spelling. No `Display` and a redacted `Debug`:
/// it is printed only where the user asks for it ([`HomeRelay::to_uri`]).
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct CreateToken(String);

impl CreateToken {
    /// The token's characters, for hashing or sending.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The token's bytes, for hashing or sending.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for CreateToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CreateToken(..)")
    }
}

/// Whether `c` may appear in a token: the URI unreserved characters.
fn token_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'~' | b'-')
}

impl FromStr for CreateToken {
    type Err = AddressError;

    /// Accepts exactly the canonical form: no trimming, no escapes.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CreateToken::from_bytes(s.as_bytes())
    }
}

impl CreateToken {
    /// A token from its bytes, as they arrive on the wire; the same rules as [`FromStr`].
    pub fn from_bytes(b: &[u8]) -> Result<Self, AddressError> {
        let len_ok = (MIN_TOKEN_LEN..=MAX_TOKEN_LEN).contains(&b.len());
        if !len_ok || !b.iter().all(|&c| token_char(c)) {
            return Err(AddressError::BadToken);
        }
        // Only ASCII passed the check above.
        String::from_utf8(b.to_vec())
            .map(CreateToken)
            .map_err(|_| AddressError::BadToken)
    }
}

/// The address of one's own relay as its operator hands it out: the relay, and the create
/// token if the relay requires one. Written `hush://TOKEN@HOST:PORT#FINGERPRINT`, or without
/// `TOKEN@` for an open relay.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct HomeRelay {
    /// Where the relay is and which certificate it presents: what contacts may be told.
    pub address: RelayAddress,
    /// The create token, if the address carried one.
    pub token: Option<CreateToken>,
}

impl HomeRelay {
    /// The whole address, token included: for showing to the user who asked for it, never for
    /// logs or for contacts.
    pub fn to_uri(&self) -> String {
        match &self.token {
            None => self.address.to_string(),
            Some(t) => {
                let plain = self.address.to_string();
                let rest = plain.strip_prefix(RELAY_SCHEME).unwrap_or(&plain);
                format!("{RELAY_SCHEME}{}@{rest}", t.as_str())
            }
        }
    }
}

impl From<RelayAddress> for HomeRelay {
    /// An open relay's address: no token.
    fn from(address: RelayAddress) -> Self {
        HomeRelay {
            address,
            token: None,
        }
    }
}

impl FromStr for HomeRelay {
    type Err = AddressError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let rest = s.strip_prefix(RELAY_SCHEME).ok_or(AddressError::Scheme)?;
        // The token ends at the first '@' before the fingerprint; a token has no '@' itself.
        let before_fp = rest.split_once('#').map_or(rest, |(a, _)| a);
        let Some((token, _)) = before_fp.split_once('@') else {
            let address = s.parse()?;
            return Ok(HomeRelay {
                address,
                token: None,
            });
        };
        let token: CreateToken = token.parse()?;
        let plain = format!("{RELAY_SCHEME}{}", &rest[token.as_str().len() + 1..]);
        let address = plain.parse()?;
        Ok(HomeRelay {
            address,
            token: Some(token),
        })
    }
}

/// What a relay tells a client in answer to `Hello`: its limits, and whether this connection
/// may create queues and blobs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RelayInfo {
    /// Longest envelope lifetime, in seconds; requested TTLs are capped at it.
    pub max_ttl_secs: u64,
    /// Largest envelope body accepted, in bytes.
    pub max_envelope_len: u32,
    /// Most envelopes pending in one queue.
    pub queue_max_messages: u32,
    /// Most body bytes pending in one queue.
    pub queue_max_bytes: u64,
    /// Largest blob accepted, in bytes.
    pub blob_max_bytes: u64,
    /// Longest blob lifetime, in seconds.
    pub blob_ttl_secs: u64,
    /// Whether this connection may create queues and blobs: the relay is open, or the
    /// connection presented a token it accepts.
    pub may_create: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    const FP: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    const TOKEN: &str = "s3cret-Token_0123.~";

    #[test]
    fn a_home_relay_round_trips_with_and_without_a_token() {
        for s in [
            format!("hush://{TOKEN}@relay.example:4433#{FP}"),
            format!("hush://{TOKEN}@[::1]:1#{FP}"),
            format!("hush://relay.example:4433#{FP}"),
        ] {
            let home: HomeRelay = s.parse().unwrap();
            assert_eq!(home.to_uri(), s);
            assert!(!home.address.to_string().contains(TOKEN));
        }
        let home: HomeRelay = format!("hush://{TOKEN}@h:1#{FP}").parse().unwrap();
        assert_eq!(home.token.as_ref().map(CreateToken::as_str), Some(TOKEN));
        assert_eq!(home.address.host, "h");
    }

    #[test]
    fn a_malformed_token_is_a_typed_error() {
        for bad in [
            "",
            "short",
            "has space in it ok",
            "percent%20encoded-x",
            "with/slash-0123456",
            "at@sign-0123456789",
            &"x".repeat(MAX_TOKEN_LEN + 1),
        ] {
            let s = format!("hush://{bad}@h:1#{FP}");
            assert_eq!(s.parse::<HomeRelay>(), Err(AddressError::BadToken), "{s}");
        }
        assert!(format!("hush://{}@h:1#{FP}", "x".repeat(MAX_TOKEN_LEN))
            .parse::<HomeRelay>()
            .is_ok());
        assert!(format!("hush://{}@h:1#{FP}", "x".repeat(MIN_TOKEN_LEN))
            .parse::<HomeRelay>()
            .is_ok());
    }

    #[test]
    fn a_contact_address_cannot_carry_a_token() {
        let s = format!("hush://{TOKEN}@h:1#{FP}");
        assert!(s.parse::<HomeRelay>().is_ok());
        assert_eq!(
            s.parse::<RelayAddress>(),
            Err(AddressError::UnexpectedToken)
        );
    }

    #[test]
    fn a_token_never_shows_in_debug_output() {
        let home: HomeRelay = format!("hush://{TOKEN}@h:1#{FP}").parse().unwrap();
        assert!(home.to_uri().contains(TOKEN));
        let shown = format!("{home:?}");
        assert!(!shown.contains(TOKEN), "{shown}");
        assert!(shown.contains("CreateToken(..)"));
    }
}
