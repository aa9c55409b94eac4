//! Why a pooled relay operation failed, in terms a user can act on.

use hush_protocol::{ErrorCode, RelayAddress};

use super::relay_client::RelayCallError;
use super::socks5::ProxyError;

/// Why an operation on a relay failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NetError {
    /// The relay could not be reached after every retry. Nothing was sent or deleted by the
    /// failed operation, and nothing stored locally was lost.
    #[error(
        "cannot reach the relay {relay}; nothing was lost. Check the network (or ask the relay's \
         operator) and try again"
    )]
    Unreachable {
        /// The relay.
        relay: RelayAddress,
    },
    /// The relay answered with an error code.
    #[error("the relay {relay} refused the request: {code}")]
    Refused {
        /// The relay.
        relay: RelayAddress,
        /// Its answer.
        code: ErrorCode,
    },
    /// The relay sent something this client does not understand.
    #[error("the relay {relay} sent an invalid answer; it may run an incompatible version")]
    Protocol {
        /// The relay.
        relay: RelayAddress,
    },
    /// The relay speaks no protocol version this client does.
    #[error("the relay {relay} speaks another protocol version than this client; update hush, or ask the relay's operator which version it runs")]
    Version {
        /// The relay.
        relay: RelayAddress,
    },
    /// The relay presented a certificate other than the pinned one(s): its operator rotated
    /// it and this client did not connect during the grace period to learn the new one, or
    /// someone is intercepting the connection. Not retried.
    #[error(
        "the relay {relay} presented a different certificate than the one this client trusts \
         for it. If its operator changed the relay's certificate, ask them for the relay's new \
         address; otherwise someone may be intercepting the connection"
    )]
    CertificateChanged {
        /// The relay, as this client knows it.
        relay: RelayAddress,
    },
    /// The SOCKS5 proxy could not carry the connection to the relay. Nothing was sent to the
    /// relay directly.
    #[error("{error}")]
    Proxy {
        /// The relay.
        relay: RelayAddress,
        /// What the proxy did.
        error: ProxyError,
    },
}

impl NetError {
    /// Classifies a connection-level error on `relay`.
    pub(crate) fn from_client(relay: &RelayAddress, e: RelayCallError) -> NetError {
        match e {
            RelayCallError::Relay(code) => NetError::Refused {
                relay: relay.clone(),
                code,
            },
            RelayCallError::Protocol => NetError::Protocol {
                relay: relay.clone(),
            },
            RelayCallError::Version => NetError::Version {
                relay: relay.clone(),
            },
            RelayCallError::Proxy(error) => NetError::Proxy {
                relay: relay.clone(),
                error,
            },
            RelayCallError::CertificateMismatch => NetError::CertificateChanged {
                relay: relay.clone(),
            },
            _ => NetError::Unreachable {
                relay: relay.clone(),
            },
        }
    }

    /// Whether retrying on a fresh connection may help.
    pub(crate) fn is_transient(e: &RelayCallError) -> bool {
        matches!(
            e,
            RelayCallError::Closed { .. }
                | RelayCallError::Connect(_)
                | RelayCallError::Refused
                | RelayCallError::Proxy(_)
        )
    }

    /// The relay's error code, if it refused.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            NetError::Refused { code, .. } => Some(*code),
            _ => None,
        }
    }
}
