//! A minimal SOCKS5 proxy for tests, and a UDP tap that records who talks to a relay.
//!
//! [`Socks5Server`] listens on `127.0.0.1:0` and speaks just enough of RFC 1928 and RFC 1929:
//! no authentication or a username and password, and only UDP ASSOCIATE (it can be told to
//! refuse that, as Tor's SOCKS port does). Each association gets its own UDP socket on
//! loopback; datagrams from the client lose their SOCKS header and go to the address in it,
//! datagrams from anywhere else get a header and go to the client. It counts what it relays,
//! and [`Socks5Server::stop`] closes the listener, every control connection and every
//! association. Its codec is written here from the RFC, independently of the client's.
//!
//! [`UdpTap`] stands in front of a relay: clients given [`UdpTap::address`] reach the relay
//! through it, and it records the source address of every datagram: what the relay would see
//! as the client's address.
//!
//! What it does not do: CONNECT or BIND, fragments, or anything beyond loopback.

use std::collections::hash_map::{Entry, HashMap};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use hush_protocol::RelayAddress;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::JoinHandle;

/// How the test proxy behaves.
#[derive(Debug, Clone, Default)]
pub struct ProxyMode {
    /// Answer UDP ASSOCIATE with "command not supported" (0x07), as TCP-only proxies do.
    pub refuse_udp: bool,
    /// Require this username and password (RFC 1929).
    pub credentials: Option<(String, String)>,
}

#[derive(Default)]
struct Shared {
    mode: ProxyMode,
    relayed: AtomicU64,
    associations: AtomicU64,
    udp_addrs: Mutex<Vec<SocketAddr>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

/// A SOCKS5 proxy on loopback.
pub struct Socks5Server {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl Socks5Server {
    /// Starts a proxy that behaves as `mode` says.
    pub async fn start(mode: ProxyMode) -> Socks5Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let shared = Arc::new(Shared {
            mode,
            ..Shared::default()
        });
        let accept = tokio::spawn(accept_loop(listener, shared.clone()));
        shared.tasks.lock().unwrap().push(accept);
        Socks5Server { addr, shared }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL a client is given: `socks5://[user:pass@]127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        match &self.shared.mode.credentials {
            Some((u, p)) => format!("socks5://{u}:{p}@{}", self.addr),
            None => format!("socks5://{}", self.addr),
        }
    }

    /// How many datagrams it relayed, both ways.
    pub fn relayed(&self) -> u64 {
        self.shared.relayed.load(Ordering::SeqCst)
    }

    /// How many UDP associations it granted.
    pub fn associations(&self) -> u64 {
        self.shared.associations.load(Ordering::SeqCst)
    }

    /// The UDP addresses its associations relay from: what a relay sees of its clients.
    pub fn udp_addrs(&self) -> Vec<SocketAddr> {
        self.shared.udp_addrs.lock().unwrap().clone()
    }

    /// Closes the listener, every control connection and every association, and waits until
    /// they are gone.
    pub async fn stop(&self) {
        let tasks = std::mem::take(&mut *self.shared.tasks.lock().unwrap());
        for t in &tasks {
            t.abort();
        }
        for t in tasks {
            let _ = t.await;
        }
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    while let Ok((stream, _)) = listener.accept().await {
        let task = tokio::spawn(serve(stream, shared.clone()));
        shared.tasks.lock().unwrap().push(task);
    }
}

/// One control connection: negotiation, then UDP ASSOCIATE, then relaying until it closes.
async fn serve(mut tcp: TcpStream, shared: Arc<Shared>) {
    if negotiate(&mut tcp, &shared.mode).await.is_none() {
        return;
    }
    let mut head = [0u8; 4];
    if tcp.read_exact(&mut head).await.is_err() || read_addr(&mut tcp, head[3]).await.is_none() {
        return;
    }
    if head[1] != 0x03 || shared.mode.refuse_udp {
        let _ = tcp.write_all(&[5, 0x07, 0, 1, 0, 0, 0, 0, 0, 0]).await;
        return;
    }
    let udp = UdpSocket::bind("127.0.0.1:0").await.expect("bind relay");
    let bound = udp.local_addr().expect("relay address");
    shared.udp_addrs.lock().unwrap().push(bound);
    shared.associations.fetch_add(1, Ordering::SeqCst);
    let mut reply = vec![5, 0, 0, 1, 127, 0, 0, 1];
    reply.extend_from_slice(&bound.port().to_be_bytes());
    if tcp.write_all(&reply).await.is_err() {
        return;
    }
    let _relay = AbortOnDrop(tokio::spawn(relay_datagrams(udp, shared.clone())));
    // The association lives as long as the control connection (and this task).
    let mut sink = [0u8; 64];
    while matches!(tcp.read(&mut sink).await, Ok(n) if n > 0) {}
}

/// A task that ends when this handle is dropped.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Method negotiation and, if configured, RFC 1929 authentication. `None` ends the connection.
async fn negotiate(tcp: &mut TcpStream, mode: &ProxyMode) -> Option<()> {
    let mut head = [0u8; 2];
    tcp.read_exact(&mut head).await.ok()?;
    let mut methods = vec![0u8; usize::from(head[1])];
    tcp.read_exact(&mut methods).await.ok()?;
    let Some((user, pass)) = &mode.credentials else {
        let method = if methods.contains(&0) { 0 } else { 0xff };
        tcp.write_all(&[5, method]).await.ok()?;
        return (method == 0).then_some(());
    };
    if !methods.contains(&2) {
        let _ = tcp.write_all(&[5, 0xff]).await;
        return None;
    }
    tcp.write_all(&[5, 2]).await.ok()?;
    let mut ver_len = [0u8; 2];
    tcp.read_exact(&mut ver_len).await.ok()?;
    let mut got_user = vec![0u8; usize::from(ver_len[1])];
    tcp.read_exact(&mut got_user).await.ok()?;
    let mut plen = [0u8; 1];
    tcp.read_exact(&mut plen).await.ok()?;
    let mut got_pass = vec![0u8; usize::from(plen[0])];
    tcp.read_exact(&mut got_pass).await.ok()?;
    let ok = got_user == user.as_bytes() && got_pass == pass.as_bytes();
    tcp.write_all(&[1, if ok { 0 } else { 1 }]).await.ok()?;
    ok.then_some(())
}

/// Reads (and discards) the address of a request.
async fn read_addr(tcp: &mut TcpStream, atyp: u8) -> Option<()> {
    let len = match atyp {
        1 => 4,
        4 => 16,
        3 => {
            let mut l = [0u8; 1];
            tcp.read_exact(&mut l).await.ok()?;
            usize::from(l[0])
        }
        _ => return None,
    };
    let mut skip = vec![0u8; len + 2];
    tcp.read_exact(&mut skip).await.ok().map(drop)
}

/// Relays datagrams: the first sender is the client.
async fn relay_datagrams(udp: UdpSocket, shared: Arc<Shared>) {
    let mut client: Option<SocketAddr> = None;
    let mut buf = vec![0u8; 65_536];
    while let Ok((n, from)) = udp.recv_from(&mut buf).await {
        let client_addr = *client.get_or_insert(from);
        let sent = if from == client_addr {
            match unwrap_datagram(&buf[..n]) {
                Some((dst, payload)) => udp.send_to(payload, dst).await.is_ok(),
                None => false,
            }
        } else {
            udp.send_to(&wrap_datagram(from, &buf[..n]), client_addr)
                .await
                .is_ok()
        };
        if sent {
            shared.relayed.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// The destination and payload of a datagram from the client (FRAG 0, IP address only).
fn unwrap_datagram(d: &[u8]) -> Option<(SocketAddr, &[u8])> {
    if d.len() < 4 || d[2] != 0 {
        return None;
    }
    let (ip, rest): (std::net::IpAddr, &[u8]) = match d[3] {
        1 if d.len() >= 10 => {
            let o: [u8; 4] = d[4..8].try_into().ok()?;
            (Ipv4Addr::from(o).into(), &d[8..])
        }
        4 if d.len() >= 22 => {
            let o: [u8; 16] = d[4..20].try_into().ok()?;
            (Ipv6Addr::from(o).into(), &d[20..])
        }
        _ => return None,
    };
    let port = u16::from_be_bytes([rest[0], rest[1]]);
    Some((SocketAddr::new(ip, port), &rest[2..]))
}

/// A datagram from `from` with the SOCKS UDP header in front.
fn wrap_datagram(from: SocketAddr, payload: &[u8]) -> Vec<u8> {
    let mut d = vec![0, 0, 0];
    match from.ip() {
        std::net::IpAddr::V4(ip) => {
            d.push(1);
            d.extend_from_slice(&ip.octets());
        }
        std::net::IpAddr::V6(ip) => {
            d.push(4);
            d.extend_from_slice(&ip.octets());
        }
    }
    d.extend_from_slice(&from.port().to_be_bytes());
    d.extend_from_slice(payload);
    d
}

/// A UDP forwarder in front of a relay that records every source address it receives from.
pub struct UdpTap {
    addr: SocketAddr,
    sources: Arc<Mutex<Vec<SocketAddr>>>,
    task: JoinHandle<()>,
}

impl UdpTap {
    /// Starts a tap forwarding to `relay`.
    pub async fn start(relay: SocketAddr) -> UdpTap {
        let front = Arc::new(UdpSocket::bind("127.0.0.1:0").await.expect("bind tap"));
        let addr = front.local_addr().expect("tap address");
        let sources = Arc::new(Mutex::new(Vec::new()));
        let task = tokio::spawn(tap_loop(front, relay, sources.clone()));
        UdpTap {
            addr,
            sources,
            task,
        }
    }

    /// `relay` with the tap's port: clients given it reach the relay through the tap.
    pub fn address(&self, relay: &RelayAddress) -> RelayAddress {
        RelayAddress::new("127.0.0.1", self.addr.port(), relay.fingerprint)
    }

    /// Every source address seen so far, in order of first appearance.
    pub fn sources(&self) -> Vec<SocketAddr> {
        self.sources.lock().unwrap().clone()
    }
}

impl Drop for UdpTap {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn tap_loop(front: Arc<UdpSocket>, relay: SocketAddr, sources: Arc<Mutex<Vec<SocketAddr>>>) {
    let mut upstreams: HashMap<SocketAddr, (Arc<UdpSocket>, AbortOnDrop)> = HashMap::new();
    let mut buf = vec![0u8; 65_536];
    while let Ok((n, from)) = front.recv_from(&mut buf).await {
        let up = match upstreams.entry(from) {
            Entry::Occupied(e) => e.get().0.clone(),
            Entry::Vacant(e) => {
                sources.lock().unwrap().push(from);
                let up = Arc::new(UdpSocket::bind("127.0.0.1:0").await.expect("bind upstream"));
                up.connect(relay).await.expect("connect upstream");
                let back = AbortOnDrop(tokio::spawn(tap_back(up.clone(), front.clone(), from)));
                e.insert((up.clone(), back));
                up
            }
        };
        let _ = up.send(&buf[..n]).await;
    }
}

/// Forwards what the relay answers back to the source it belongs to.
async fn tap_back(up: Arc<UdpSocket>, front: Arc<UdpSocket>, to: SocketAddr) {
    let mut buf = vec![0u8; 65_536];
    while let Ok(n) = up.recv(&mut buf).await {
        let _ = front.send_to(&buf[..n], to).await;
    }
}
