//! The SOCKS5 address format (RFC 1928 section 5) and the UDP request header that wraps every
//! datagram sent through a UDP association (section 7).
//!
//! What it does: encodes a datagram's destination in front of its payload, and decodes the
//! header of a datagram the proxy relays back (its source and where the payload starts). It
//! also reads the address in the proxy's reply to UDP ASSOCIATE.
//!
//! What it does not do: reassemble fragments. A datagram with FRAG != 0 is reported as
//! [`HeaderError::Fragmented`] and the caller drops it; QUIC packets are never fragmented by
//! their sender.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

/// Address type: IPv4.
pub(super) const ATYP_IPV4: u8 = 0x01;
/// Address type: a domain name, one length byte first.
pub(super) const ATYP_DOMAIN: u8 = 0x03;
/// Address type: IPv6.
pub(super) const ATYP_IPV6: u8 = 0x04;

/// Where a SOCKS5 address points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Target {
    /// An IP address and port.
    Ip(SocketAddr),
    /// A host name (as the proxy sent it, not resolved) and port.
    Domain(Vec<u8>, u16),
}

/// Why a SOCKS5 address or UDP header did not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(super) enum HeaderError {
    /// Fewer bytes than the header announces.
    #[error("truncated SOCKS5 address")]
    Short,
    /// The datagram is one fragment of a larger one (FRAG != 0); fragments are not supported.
    #[error("fragmented SOCKS5 datagram")]
    Fragmented,
    /// The address type is none of IPv4, IPv6 or domain.
    #[error("unknown SOCKS5 address type")]
    AddressType,
}

/// Appends the address `addr` (ATYP, address, port) to `out`. An IPv4-mapped IPv6 address is
/// written as the IPv4 address it maps.
pub(super) fn encode_addr(addr: SocketAddr, out: &mut Vec<u8>) {
    match addr.ip().to_canonical() {
        std::net::IpAddr::V4(ip) => {
            out.push(ATYP_IPV4);
            out.extend_from_slice(&ip.octets());
        }
        std::net::IpAddr::V6(ip) => {
            out.push(ATYP_IPV6);
            out.extend_from_slice(&ip.octets());
        }
    }
    out.extend_from_slice(&addr.port().to_be_bytes());
}

/// Decodes an address (ATYP, address, port) at the start of `buf`; returns it and its length.
pub(super) fn decode_addr(buf: &[u8]) -> Result<(Target, usize), HeaderError> {
    let (&atyp, rest) = buf.split_first().ok_or(HeaderError::Short)?;
    let (target, used) = match atyp {
        ATYP_IPV4 => {
            let ip: [u8; 4] = take(rest, 0, 4)?;
            let port = port_at(rest, 4)?;
            (Target::Ip((Ipv4Addr::from(ip), port).into()), 4 + 2)
        }
        ATYP_IPV6 => {
            let ip: [u8; 16] = take(rest, 0, 16)?;
            let port = port_at(rest, 16)?;
            (Target::Ip((Ipv6Addr::from(ip), port).into()), 16 + 2)
        }
        ATYP_DOMAIN => {
            let len = usize::from(*rest.first().ok_or(HeaderError::Short)?);
            let name = rest.get(1..1 + len).ok_or(HeaderError::Short)?.to_vec();
            let port = port_at(rest, 1 + len)?;
            (Target::Domain(name, port), 1 + len + 2)
        }
        _ => return Err(HeaderError::AddressType),
    };
    Ok((target, 1 + used))
}

/// Appends the UDP request header for a datagram to `dst` (RSV 0, FRAG 0, the address).
pub(super) fn encode_udp_header(dst: SocketAddr, out: &mut Vec<u8>) {
    out.extend_from_slice(&[0, 0, 0]);
    encode_addr(dst, out);
}

/// Decodes the UDP request header of a relayed datagram: the datagram's source, and where its
/// payload starts. The reserved bytes are not checked (some proxies leave them unset).
pub(super) fn decode_udp_header(datagram: &[u8]) -> Result<(Target, usize), HeaderError> {
    let frag = *datagram.get(2).ok_or(HeaderError::Short)?;
    if frag != 0 {
        return Err(HeaderError::Fragmented);
    }
    let (target, used) = decode_addr(datagram.get(3..).ok_or(HeaderError::Short)?)?;
    Ok((target, 3 + used))
}

fn take<const N: usize>(buf: &[u8], at: usize, len: usize) -> Result<[u8; N], HeaderError> {
    buf.get(at..at + len)
        .and_then(|b| b.try_into().ok())
        .ok_or(HeaderError::Short)
}

fn port_at(buf: &[u8], at: usize) -> Result<u16, HeaderError> {
    take::<2>(buf, at, 2).map(u16::from_be_bytes)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn round_trip(addr: SocketAddr) -> Vec<u8> {
        let mut out = Vec::new();
        encode_udp_header(addr, &mut out);
        let header_len = out.len();
        out.extend_from_slice(b"payload");
        let (target, start) = decode_udp_header(&out).unwrap();
        assert_eq!(start, header_len);
        assert_eq!(&out[start..], b"payload");
        assert_eq!(target, Target::Ip(addr));
        out
    }

    #[test]
    fn ipv4_header_is_ten_bytes_in_rfc_order() {
        let out = round_trip("192.0.2.7:4433".parse().unwrap());
        assert_eq!(&out[..10], &[0, 0, 0, 1, 192, 0, 2, 7, 0x11, 0x51]);
    }

    #[test]
    fn ipv6_header_is_twenty_two_bytes() {
        let out = round_trip("[2001:db8::1]:443".parse().unwrap());
        assert_eq!(out[3], ATYP_IPV6);
        assert_eq!(
            &out[4..20],
            &"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets()
        );
        assert_eq!(&out[20..22], &443u16.to_be_bytes());
    }

    #[test]
    fn ipv4_mapped_destination_is_sent_as_ipv4() {
        let mut out = Vec::new();
        encode_udp_header("[::ffff:127.0.0.1]:9".parse().unwrap(), &mut out);
        assert_eq!(out, [0, 0, 0, 1, 127, 0, 0, 1, 0, 9]);
    }

    #[test]
    fn domain_source_decodes_unresolved() {
        let mut d = vec![0, 0, 0, ATYP_DOMAIN, 11];
        d.extend_from_slice(b"example.org");
        d.extend_from_slice(&[0x01, 0xbb]);
        d.extend_from_slice(b"x");
        let (target, start) = decode_udp_header(&d).unwrap();
        assert_eq!(target, Target::Domain(b"example.org".to_vec(), 443));
        assert_eq!(&d[start..], b"x");
    }

    #[test]
    fn fragments_are_refused() {
        let d = [0, 0, 1, ATYP_IPV4, 127, 0, 0, 1, 0, 9, 42];
        assert_eq!(decode_udp_header(&d), Err(HeaderError::Fragmented));
    }

    #[test]
    fn truncated_and_unknown_headers_are_errors() {
        let mut full = Vec::new();
        encode_udp_header("[2001:db8::1]:443".parse().unwrap(), &mut full);
        for len in 0..full.len() {
            assert_eq!(
                decode_udp_header(&full[..len]),
                Err(HeaderError::Short),
                "{len}"
            );
        }
        let domain = [0, 0, 0, ATYP_DOMAIN, 200, b'a', b'b'];
        assert_eq!(decode_udp_header(&domain), Err(HeaderError::Short));
        let unknown = [0, 0, 0, 0x02, 1, 2, 3, 4, 0, 1];
        assert_eq!(decode_udp_header(&unknown), Err(HeaderError::AddressType));
    }

    #[test]
    fn longest_header_decodes() {
        // RSV, FRAG, ATYP, a 255-byte host name with its length, port.
        const MAX_HEADER_LEN: usize = 3 + 1 + 1 + 255 + 2;
        let mut d = vec![0, 0, 0, ATYP_DOMAIN, 255];
        d.extend_from_slice(&[b'a'; 255]);
        d.extend_from_slice(&[0, 1]);
        assert_eq!(d.len(), MAX_HEADER_LEN);
        assert_eq!(decode_udp_header(&d).unwrap().1, MAX_HEADER_LEN);
    }
}
