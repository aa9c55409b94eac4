//! A quinn socket whose datagrams all go through a SOCKS5 UDP association.
//!
//! [`Socks5Socket`] implements quinn's `AsyncUdpSocket`: each outgoing QUIC datagram gets the
//! SOCKS UDP request header naming its real destination and goes to the proxy's relay address;
//! each datagram the proxy relays back loses its header and is handed to quinn as coming from
//! the source the header names. The UDP socket is connected to the proxy's relay address, so
//! the kernel drops datagrams from anywhere else. A task holds the TCP control connection: when
//! the proxy closes it the association is over, the socket sends nothing more, and the
//! [`super::ProxyLink`] reports it; when the socket is dropped the task closes the connection.
//!
//! What it does not do: send anything anywhere but to the proxy, batch datagrams (one per
//! call), or allow MTU discovery (it reports that datagrams may fragment, so quinn keeps to
//! 1200-byte packets, which leave room for the header on any path).

use std::fmt;
use std::future::Future;
use std::io::{self, IoSliceMut};
use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use quinn::udp::{RecvMeta, Transmit};
use quinn::{AsyncUdpSocket, UdpPoller};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::{oneshot, watch};

use super::header::{self, Target};

/// The longest header put in front of an outgoing datagram (IPv6 destination).
const MAX_IP_HEADER_LEN: usize = 3 + 1 + 16 + 2;

/// A UDP socket speaking through a SOCKS5 UDP association.
pub(super) struct Socks5Socket {
    io: Arc<UdpSocket>,
    closed: watch::Receiver<bool>,
    /// Dropped with the socket, which tells the control task to close the TCP connection.
    _stop: oneshot::Sender<()>,
}

impl fmt::Debug for Socks5Socket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Socks5Socket")
            .field("proxy_relay", &self.io.peer_addr().ok())
            .field("closed", &*self.closed.borrow())
            .finish_non_exhaustive()
    }
}

impl Socks5Socket {
    /// Wraps `udp` (connected to the proxy's relay address) and takes over `control`, the TCP
    /// connection the association lives on. The receiver turns `true` when it ends.
    pub(super) fn new(udp: UdpSocket, control: TcpStream) -> (Socks5Socket, watch::Receiver<bool>) {
        let (closed_tx, closed) = watch::channel(false);
        let (stop, stopped) = oneshot::channel();
        tokio::spawn(hold_control(control, closed_tx, stopped));
        let socket = Socks5Socket {
            io: Arc::new(udp),
            closed: closed.clone(),
            _stop: stop,
        };
        (socket, closed)
    }

    fn is_closed(&self) -> bool {
        *self.closed.borrow()
    }
}

/// Keeps the control connection open until the proxy ends it (then reports it) or the socket
/// goes away (then closes it). Anything the proxy sends on it is ignored.
async fn hold_control(
    mut control: TcpStream,
    closed: watch::Sender<bool>,
    stopped: oneshot::Receiver<()>,
) {
    let mut sink = [0u8; 256];
    let ended = async {
        while let Ok(n) = control.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    };
    tokio::select! {
        () = ended => {
            tracing::debug!("the SOCKS5 proxy closed the UDP association");
            closed.send_replace(true);
        }
        _ = stopped => {}
    }
}

/// The address quinn sees for a datagram's source. The socket reports an IPv6 local address,
/// so quinn addresses IPv4 peers as IPv4-mapped IPv6; sources must match that.
fn as_seen_by_quinn(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V4(v4) => SocketAddrV6::new(v4.ip().to_ipv6_mapped(), v4.port(), 0, 0).into(),
        v6 => v6,
    }
}

impl AsyncUdpSocket for Socks5Socket {
    fn create_io_poller(self: Arc<Self>) -> Pin<Box<dyn UdpPoller>> {
        Box::pin(Poller {
            io: self.io.clone(),
            writable: None,
        })
    }

    fn try_send(&self, transmit: &Transmit<'_>) -> io::Result<()> {
        if self.is_closed() {
            // The association is over: nothing may leave, and nothing goes anywhere else.
            return Ok(());
        }
        let segment = transmit
            .segment_size
            .unwrap_or(transmit.contents.len())
            .max(1);
        let mut datagram = Vec::with_capacity(MAX_IP_HEADER_LEN + segment);
        for chunk in transmit.contents.chunks(segment) {
            datagram.clear();
            header::encode_udp_header(transmit.destination, &mut datagram);
            datagram.extend_from_slice(chunk);
            match self.io.try_send(&datagram) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Err(e),
                // Lost like any UDP datagram (QUIC resends); an error here would end every
                // connection of the endpoint at once.
                Err(e) => tracing::debug!(error = %e, "a datagram to the SOCKS5 proxy was lost"),
            }
        }
        Ok(())
    }

    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        let (Some(buf), Some(meta)) = (bufs.first_mut(), meta.first_mut()) else {
            return Poll::Ready(Ok(0));
        };
        loop {
            ready!(self.io.poll_recv_ready(cx))?;
            let n = match self.io.try_recv(buf) {
                Ok(n) => n,
                // Readiness was stale, or an ICMP error (which anyone can forge) was reported
                // on the connected socket: neither is a datagram.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::ConnectionRefused
                            | io::ErrorKind::ConnectionReset
                    ) =>
                {
                    continue
                }
                Err(e) => return Poll::Ready(Err(e)),
            };
            // Fragments, malformed headers and host-name sources are dropped.
            let Ok((Target::Ip(source), start)) = header::decode_udp_header(&buf[..n]) else {
                continue;
            };
            if start >= n {
                continue;
            }
            buf.copy_within(start..n, 0);
            *meta = RecvMeta {
                addr: as_seen_by_quinn(source),
                len: n - start,
                stride: n - start,
                ..RecvMeta::default()
            };
            return Poll::Ready(Ok(1));
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        let port = self.io.local_addr()?.port();
        Ok((Ipv6Addr::UNSPECIFIED, port).into())
    }
}

/// Waits until the socket can send again.
struct Poller {
    io: Arc<UdpSocket>,
    writable: Option<Pin<Box<dyn Future<Output = io::Result<()>> + Send + Sync>>>,
}

impl fmt::Debug for Poller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Poller").finish_non_exhaustive()
    }
}

impl UdpPoller for Poller {
    fn poll_writable(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let io = &this.io;
        let fut = this.writable.get_or_insert_with(|| {
            let io = io.clone();
            Box::pin(async move { io.writable().await })
        });
        let result = fut.as_mut().poll(cx);
        if result.is_ready() {
            this.writable = None;
        }
        result
    }
}
