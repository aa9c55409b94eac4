//! QUIC through a SOCKS5 proxy, so that a relay sees the proxy's address instead of ours.
//!
//! QUIC runs over UDP, so the only standard way through SOCKS5 is the UDP ASSOCIATE command
//! (RFC 1928 section 7): a TCP control connection to the proxy, then every datagram wrapped in
//! a small header and sent to the UDP relay port the proxy named. [`Socks5Proxy`] is the
//! setting (`socks5://[user:pass@]host:port`); [`proxied_endpoint`] opens an association and
//! returns a quinn endpoint whose only socket talks to the proxy, plus a [`ProxyLink`] that
//! says when the association ends (the TCP control connection closed).
//!
//! What it does not do: fall back to a direct connection (every failure is a [`ProxyError`]
//! naming the proxy), resolve the relay's name through the proxy (the system resolver looks it
//! up, as without a proxy), support proxies that only carry TCP (Tor's SOCKS port, `ssh -D`:
//! they refuse UDP ASSOCIATE), or reassemble fragmented datagrams (they are dropped).

mod handshake;
mod header;
mod socket;
mod url;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::watch;

pub use url::{ProxyUrlError, Socks5Proxy};

/// Why a connection through the SOCKS5 proxy failed. Nothing was sent to the relay directly.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// The proxy could not be reached (connection refused, no route, name not found).
    #[error(
        "cannot reach the SOCKS5 proxy {proxy} ({reason}); hush did not connect directly. \
         Start the proxy, or change --proxy / HUSH_PROXY, and try again"
    )]
    Unreachable {
        /// The proxy, as `host:port`.
        proxy: String,
        /// What the system said.
        reason: String,
    },
    /// The proxy accepts none of the authentication methods offered.
    #[error(
        "the SOCKS5 proxy {proxy} accepts neither no authentication nor the username and \
         password we can offer; add user:pass@ to the proxy URL or check the proxy's settings"
    )]
    NoAcceptableMethod {
        /// The proxy.
        proxy: String,
    },
    /// The proxy refused the username and password.
    #[error("the SOCKS5 proxy {proxy} refused the username and password; check them")]
    AuthFailed {
        /// The proxy.
        proxy: String,
    },
    /// The proxy refused the UDP ASSOCIATE command, so it cannot carry QUIC.
    #[error(
        "the SOCKS5 proxy {proxy} refused UDP ASSOCIATE ({}) (Tor and `ssh -D` do not carry \
         UDP); use a proxy that supports UDP, or a VPN",
        handshake::reply_text(*reply)
    )]
    UdpRefused {
        /// The proxy.
        proxy: String,
        /// Its reply code (RFC 1928 section 6).
        reply: u8,
    },
    /// The proxy's answer does not follow SOCKS5.
    #[error("the SOCKS5 proxy {proxy} sent an invalid reply ({what}); is it a SOCKS5 proxy?")]
    Protocol {
        /// The proxy.
        proxy: String,
        /// What was wrong.
        what: &'static str,
    },
    /// The proxy ended the UDP association (its control connection closed).
    #[error(
        "the SOCKS5 proxy {proxy} ended the connection; hush did not fall back to a direct \
         connection. Check the proxy and try again"
    )]
    Closed {
        /// The proxy.
        proxy: String,
    },
}

impl ProxyError {
    /// Whether trying again cannot help without changing the proxy or its settings.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            ProxyError::NoAcceptableMethod { .. }
                | ProxyError::AuthFailed { .. }
                | ProxyError::UdpRefused { .. }
                | ProxyError::Protocol { .. }
        )
    }
}

/// Tells whether a UDP association is still alive.
#[derive(Debug, Clone)]
pub(crate) struct ProxyLink {
    proxy: String,
    closed: watch::Receiver<bool>,
}

impl ProxyLink {
    /// Whether the association has ended.
    pub(crate) fn is_closed(&self) -> bool {
        *self.closed.borrow() || self.closed.has_changed().is_err()
    }

    /// Waits until the association ends.
    pub(crate) async fn closed(&self) {
        let mut rx = self.closed.clone();
        // An error means the watcher is gone, which happens only once the socket is.
        let _ = rx.wait_for(|closed| *closed).await;
    }

    /// The error a call on a connection through an ended association reports.
    pub(crate) fn error(&self) -> ProxyError {
        ProxyError::Closed {
            proxy: self.proxy.clone(),
        }
    }
}

/// Opens a UDP association with `proxy` and returns a client endpoint whose datagrams all go
/// through it, and the link that says when the association ends.
pub(crate) async fn proxied_endpoint(
    proxy: &Socks5Proxy,
) -> Result<(quinn::Endpoint, ProxyLink), ProxyError> {
    let name = proxy.to_string();
    let unreachable = |e: std::io::Error| ProxyError::Unreachable {
        proxy: name.clone(),
        reason: e.to_string(),
    };
    let mut control = TcpStream::connect(proxy.host_port())
        .await
        .map_err(unreachable)?;
    let peer = control.peer_addr().map_err(unreachable)?;
    let relay = handshake::udp_associate(&mut control, proxy).await?;
    // A proxy that answers 0.0.0.0 (or ::) means "the address you reached me at".
    let relay = if relay.ip().is_unspecified() {
        SocketAddr::new(peer.ip(), relay.port())
    } else {
        relay
    };
    let local: SocketAddr = if relay.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        ([0u16; 8], 0).into()
    };
    let udp = UdpSocket::bind(local).await.map_err(unreachable)?;
    // Connected: only datagrams from the proxy's relay port are received at all.
    udp.connect(relay).await.map_err(unreachable)?;
    let (socket, closed) = socket::Socks5Socket::new(udp, control);
    let endpoint = quinn::Endpoint::new_with_abstract_socket(
        quinn::EndpointConfig::default(),
        None,
        Arc::new(socket),
        Arc::new(quinn::TokioRuntime),
    )
    .map_err(unreachable)?;
    Ok((
        endpoint,
        ProxyLink {
            proxy: name,
            closed,
        },
    ))
}
