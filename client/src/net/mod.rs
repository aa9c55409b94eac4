//! The client library's relay connections: QUIC with TLS 1.3, each pinned to the certificate
//! fingerprint in its `hush://` address.
//!
//! What it does: [`RelayClient`] is one connection to one relay speaking `hush/2` or `hush/1`
//! (whichever the relay chose; typed calls
//! for every request and a stream of pushes). [`RelayPool`] keeps connections per relay and
//! per [`Lane`] (our own queues, each contact's queue, file transfers; [`TransportMode`] says
//! which of them share a connection), reconnects with exponential back-off and jitter
//! ([`RetryPolicy`]), merges the pushes of every connection that carries subscriptions into one
//! stream of [`PoolEvent`]s, and reports a relay that stays out of reach as
//! [`NetError::Unreachable`], naming it. With a [`Socks5Proxy`] every connection goes through
//! that proxy (QUIC over SOCKS5 UDP ASSOCIATE) and never directly; a proxy that fails is
//! [`NetError::Proxy`], naming it. A pooled [`Connection`] says `Hello` once, before its first
//! create, presenting the create token the client holds for that relay
//! ([`RelayPool::set_create_token`]) and learning the relay's limits.
//!
//! Each connection pins the certificates in the pool's [`PinBook`]: the fingerprint in the
//! relay's address, and during a certificate rotation the next one the relay announced over a
//! pinned connection (`NextCert`, asked on every new connection and again every
//! [`NEXT_CERT_RECHECK`] on the connection for our own queues). A relay whose certificate
//! matches no pin is [`NetError::CertificateChanged`], naming it.
//!
//! What it does not do: encrypt or decrypt (envelopes are opaque bytes here), remember which
//! queues exist (the `Client` does), or trust any certificate other than the pinned ones.

/// Awaits a relay call and takes the one kind of reply it expects, as `pattern => value`; any
/// other reply is [`RelayCallError::Protocol`].
macro_rules! expect_reply {
    ($call:expr, $pattern:pat => $value:expr) => {
        match $call.await? {
            $pattern => Ok($value),
            _ => Err($crate::net::RelayCallError::Protocol),
        }
    };
}

mod acks;
mod backoff;
mod blob_calls;
mod error;
mod hello;
mod hosts;
mod pin;
mod pins;
mod pool;
mod relay_client;
mod socks5;
mod transport;

pub use backoff::{
    Backoff, RetryPolicy, DEFAULT_ATTEMPTS, DEFAULT_BASE_DELAY, DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_DELAY,
};
pub use blob_calls::BlobStatus;
pub use error::NetError;
pub use hush_protocol::RelayAddress;
pub use pin::PinnedCertVerifier;
pub use pins::{PinBook, PinBookError, Pins};
pub use pool::{Connection, PoolEvent, RelayPool, NEXT_CERT_RECHECK};
pub use relay_client::{client_config, client_config_with_alpn, RelayCallError, RelayClient};
pub use socks5::{ProxyError, ProxyUrlError, Socks5Proxy};
pub use transport::{Lane, TransportMode, TransportModeError, CONTACT_IDLE};
