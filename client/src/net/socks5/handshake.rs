//! The SOCKS5 control-connection handshake: method negotiation (RFC 1928 section 3), username
//! and password authentication (RFC 1929) when the setting has them, and UDP ASSOCIATE
//! (section 7), whose reply names the proxy's UDP relay address.
//!
//! What it does not do: CONNECT or BIND, GSSAPI authentication, or keep the connection open
//! (the caller owns the stream; the association lives as long as it does).

use std::net::SocketAddr;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::header::{self, Target, ATYP_DOMAIN, ATYP_IPV4, ATYP_IPV6};
use super::{ProxyError, Socks5Proxy};

const VERSION: u8 = 0x05;
const METHOD_NONE: u8 = 0x00;
const METHOD_USER_PASS: u8 = 0x02;
const METHOD_NO_ACCEPTABLE: u8 = 0xff;
const USER_PASS_VERSION: u8 = 0x01;
const CMD_UDP_ASSOCIATE: u8 = 0x03;
const REPLY_SUCCEEDED: u8 = 0x00;

/// What a SOCKS5 reply code means (RFC 1928 section 6).
pub(super) fn reply_text(reply: u8) -> &'static str {
    match reply {
        0x01 => "general SOCKS server failure",
        0x02 => "connection not allowed by ruleset",
        0x03 => "network unreachable",
        0x04 => "host unreachable",
        0x05 => "connection refused",
        0x06 => "TTL expired",
        0x07 => "command not supported",
        0x08 => "address type not supported",
        _ => "unassigned reply code",
    }
}

/// Negotiates a method, authenticates if asked to, and asks for a UDP association. Returns the
/// address the proxy relays datagrams on (possibly unspecified: then the proxy's own).
pub(super) async fn udp_associate<S>(
    stream: &mut S,
    proxy: &Socks5Proxy,
) -> Result<SocketAddr, ProxyError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let name = proxy.to_string();
    let io = |e: std::io::Error| ProxyError::Unreachable {
        proxy: name.clone(),
        reason: e.to_string(),
    };
    let bad = |what| ProxyError::Protocol {
        proxy: name.clone(),
        what,
    };
    let greeting: &[u8] = if proxy.credentials().is_some() {
        &[VERSION, 2, METHOD_NONE, METHOD_USER_PASS]
    } else {
        &[VERSION, 1, METHOD_NONE]
    };
    stream.write_all(greeting).await.map_err(io)?;
    let mut choice = [0u8; 2];
    read(stream, &mut choice, &name).await?;
    if choice[0] != VERSION {
        return Err(bad("not SOCKS version 5"));
    }
    match (choice[1], proxy.credentials()) {
        (METHOD_NONE, _) => {}
        (METHOD_USER_PASS, Some(creds)) => {
            let mut msg = vec![USER_PASS_VERSION];
            for field in [&creds.user, &creds.password] {
                msg.push(u8::try_from(field.len()).map_err(|_| bad("credential too long"))?);
                msg.extend_from_slice(field);
            }
            let msg = zeroize::Zeroizing::new(msg);
            stream.write_all(&msg).await.map_err(io)?;
            let mut status = [0u8; 2];
            read(stream, &mut status, &name).await?;
            if status[0] != USER_PASS_VERSION {
                return Err(bad("bad authentication reply version"));
            }
            if status[1] != 0 {
                return Err(ProxyError::AuthFailed { proxy: name });
            }
        }
        (METHOD_NO_ACCEPTABLE, _) => return Err(ProxyError::NoAcceptableMethod { proxy: name }),
        _ => return Err(bad("chose a method that was not offered")),
    }
    // DST.ADDR and DST.PORT are where we will send from; zeros mean "not known yet".
    let request = [VERSION, CMD_UDP_ASSOCIATE, 0, ATYP_IPV4, 0, 0, 0, 0, 0, 0];
    stream.write_all(&request).await.map_err(io)?;
    read_reply(stream, &name).await
}

/// Reads the reply to UDP ASSOCIATE: VER, REP, RSV, then BND.ADDR and BND.PORT.
async fn read_reply<S>(stream: &mut S, name: &str) -> Result<SocketAddr, ProxyError>
where
    S: AsyncRead + Unpin,
{
    let bad = |what| ProxyError::Protocol {
        proxy: name.to_owned(),
        what,
    };
    let mut head = [0u8; 4];
    read(stream, &mut head, name).await?;
    if head[0] != VERSION {
        return Err(bad("not SOCKS version 5"));
    }
    if head[1] != REPLY_SUCCEEDED {
        return Err(ProxyError::UdpRefused {
            proxy: name.to_owned(),
            reply: head[1],
        });
    }
    let rest_len = match head[3] {
        ATYP_IPV4 => 4 + 2,
        ATYP_IPV6 => 16 + 2,
        ATYP_DOMAIN => {
            let mut len = [0u8; 1];
            read(stream, &mut len, name).await?;
            usize::from(len[0]) + 2
        }
        _ => return Err(bad("unknown address type")),
    };
    let mut rest = vec![0u8; rest_len];
    read(stream, &mut rest, name).await?;
    let mut addr = vec![head[3]];
    if head[3] == ATYP_DOMAIN {
        addr.push(u8::try_from(rest_len - 2).map_err(|_| bad("address too long"))?);
    }
    addr.extend_from_slice(&rest);
    match header::decode_addr(&addr) {
        Ok((Target::Ip(relay), _)) if relay.port() != 0 => Ok(relay),
        Ok((Target::Ip(_), _)) => Err(bad("UDP relay port 0")),
        Ok((Target::Domain(..), _)) => Err(bad("UDP relay given as a host name")),
        Err(_) => Err(bad("malformed UDP relay address")),
    }
}

/// Reads exactly `buf.len()` bytes; an early end is a protocol error, not an I/O one.
async fn read<S>(stream: &mut S, buf: &mut [u8], name: &str) -> Result<(), ProxyError>
where
    S: AsyncRead + Unpin,
{
    match stream.read_exact(buf).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(ProxyError::Protocol {
            proxy: name.to_owned(),
            what: "closed the connection in the middle of the handshake",
        }),
        Err(e) => Err(ProxyError::Unreachable {
            proxy: name.to_owned(),
            reason: e.to_string(),
        }),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    /// Runs the handshake against a scripted proxy that answers `replies` (all at once) and
    /// returns the result and what the client wrote.
    async fn against(url: &str, replies: &[u8]) -> (Result<SocketAddr, ProxyError>, Vec<u8>) {
        let proxy: Socks5Proxy = url.parse().unwrap();
        let (mut client, mut server) = tokio::io::duplex(4096);
        server.write_all(replies).await.unwrap();
        server.shutdown().await.unwrap();
        let result = udp_associate(&mut client, &proxy).await;
        drop(client);
        let mut written = Vec::new();
        server.read_to_end(&mut written).await.unwrap();
        (result, written)
    }

    const OK_V4: [u8; 10] = [5, 0, 0, ATYP_IPV4, 127, 0, 0, 1, 0x1f, 0x90];

    #[tokio::test]
    async fn no_auth_udp_associate_returns_the_relay_address() {
        let replies = [&[5, 0][..], &OK_V4].concat();
        let (result, written) = against("socks5://127.0.0.1:1080", &replies).await;
        assert_eq!(result.unwrap(), "127.0.0.1:8080".parse().unwrap());
        assert_eq!(written, [5, 1, 0, 5, 3, 0, 1, 0, 0, 0, 0, 0, 0]);
    }

    #[tokio::test]
    async fn username_and_password_follow_rfc_1929() {
        let v6 = [
            5, 0, 0, ATYP_IPV6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 9,
        ];
        let replies = [&[5, 2, 1, 0][..], &v6].concat();
        let (result, written) = against("socks5://ab:xyz@h:1", &replies).await;
        assert_eq!(result.unwrap(), "[::1]:9".parse().unwrap());
        assert_eq!(&written[..4], &[5, 2, 0, 2]);
        assert_eq!(&written[4..12], &[1, 2, b'a', b'b', 3, b'x', b'y', b'z']);
    }

    #[tokio::test]
    async fn refusals_are_typed() {
        let (r, _) = against("socks5://h:1", &[5, 0, 5, 7, 0, 1, 0, 0, 0, 0, 0, 0]).await;
        let err = r.unwrap_err();
        assert_eq!(
            err,
            ProxyError::UdpRefused {
                proxy: "h:1".into(),
                reply: 7
            }
        );
        let text = err.to_string();
        assert!(
            text.contains("h:1 refused UDP ASSOCIATE (command not supported)"),
            "{text}"
        );
        assert!(text.contains("Tor and `ssh -D` do not carry UDP"), "{text}");
        let (r, _) = against("socks5://h:1", &[5, 0xff]).await;
        assert!(matches!(r, Err(ProxyError::NoAcceptableMethod { .. })));
        let (r, _) = against("socks5://u:p@h:1", &[5, 2, 1, 1]).await;
        assert!(matches!(r, Err(ProxyError::AuthFailed { .. })));
    }

    #[tokio::test]
    async fn malformed_replies_are_protocol_errors() {
        let cases: [&[u8]; 8] = [
            &[4, 0],                                 // SOCKS4 answering
            &[5, 2],                                 // a method we did not offer
            &[5],                                    // cut short
            &[5, 0, 4, 0, 0, 1],                     // reply of another version
            &[5, 0, 5, 0, 0, 9, 1, 2, 3, 4, 0, 1],   // unknown address type
            &[5, 0, 5, 0, 0, 1, 127, 0, 0, 1, 0, 0], // port 0
            &[5, 0, 5, 0, 0, 3, 1, b'h', 0, 1],      // a host name
            &[5, 0, 5, 0, 0, 1, 127, 0],             // address cut short
        ];
        for reply in cases {
            let (r, _) = against("socks5://h:1", reply).await;
            match r {
                Err(ProxyError::Protocol { proxy, .. }) => assert_eq!(proxy, "h:1"),
                other => panic!("{reply:?}: {other:?}"),
            }
        }
        let (r, _) = against("socks5://u:p@h:1", &[5, 2, 2, 0]).await;
        assert!(matches!(r, Err(ProxyError::Protocol { .. })), "{r:?}");
    }
}
