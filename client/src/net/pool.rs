//! A pool of relay connections, kept per relay and per [`Lane`], with reconnection.
//!
//! [`RelayPool::connection`] hands out the live connection to a relay for our own queues, and
//! [`RelayPool::connection_on`] the one for any lane (see `transport.rs` for which lane shares
//! which connection in each [`TransportMode`]), connecting (with [`Backoff`]) when there is none
//! or the last one died. The connection for our own queues carries the subscriptions: its
//! pushes are forwarded into one channel of [`PoolEvent`]s, tagged with the relay and the
//! connection's generation, so one task can wait on all relays at once and tell which
//! connection an envelope came from (an ack must go back on that connection). When it ends, a
//! [`PoolEvent::Lost`] says so: its subscriptions are gone and must be renewed on the next
//! connection. A contact's connection is closed after its idle time; a transfer's connection
//! is never kept, and closes when its last handle is dropped.
//!
//! A relay address may list several hosts (the nodes of one relay, sharing its certificate and
//! its queues). Each attempt of the retry policy tries them in order, starting from the host
//! that worked last, each within the connect timeout; when a connection dies, or fails under a
//! request, the next one starts from the host after it. So a client moves to another node when
//! one dies, and its subscriptions are renewed there like after any lost connection. Every lane
//! picks its host this way on its own connection, so transport isolation is unchanged.
//!
//! Every new connection asks its relay once whether it will rotate its certificate
//! (`NextCert`), and the connection for our own queues asks again every [`NEXT_CERT_RECHECK`];
//! the answers go to the pool's [`PinBook`], whose pins every connection accepts.
//!
//! What it does not do: resubscribe by itself (the `Client` knows the queues), or retry a
//! relay's refusal (only transport failures are retried).

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use hush_protocol::{CreateToken, Push, RelayAddress, RelayInfo};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::backoff::{Backoff, RetryPolicy};
use super::error::NetError;
use super::hosts::{try_hosts, HostChoice, Round};
use super::pins::{learn_rotation, PinBook};
use super::relay_client::{RelayCallError, RelayClient};
use super::socks5::Socks5Proxy;
use super::transport::{Keep, Lane, TransportMode, CONTACT_IDLE};

/// How often, by default, the connection for our own queues asks its relay again whether it
/// will rotate its certificate (every new connection asks once). A grace period much longer
/// than this lets a client that stays connected learn the new certificate in time.
pub const NEXT_CERT_RECHECK: Duration = Duration::from_secs(3600);

/// Something that happened on one of the pool's connections.
#[derive(Debug)]
#[non_exhaustive]
pub enum PoolEvent {
    /// The relay pushed something on the connection of this generation.
    Push {
        /// The relay.
        relay: RelayAddress,
        /// Which connection to that relay (see [`Connection::generation`]).
        generation: u64,
        /// What it pushed.
        push: Push,
    },
    /// The connection of this generation ended; its subscriptions ended with it.
    Lost {
        /// The relay.
        relay: RelayAddress,
        /// Which connection.
        generation: u64,
    },
}

/// Closes a connection nobody is kept to when its last handle goes.
#[derive(Debug)]
struct CloseOnDrop(Arc<RelayClient>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// A live connection handed out by the pool.
#[derive(Clone, Debug)]
pub struct Connection {
    client: Arc<RelayClient>,
    relay: RelayAddress,
    /// Which of the relay's hosts it reached (an index into [`RelayAddress::hosts`]).
    host: usize,
    generation: u64,
    keep: Keep,
    /// When it was last handed out or finished a `run`.
    used: Arc<Mutex<Instant>>,
    /// For a connection of its own: closes it with the last handle.
    _fresh: Option<Arc<CloseOnDrop>>,
    /// The create token to present to this relay, if the client has one for it.
    token: Option<CreateToken>,
    /// What the connection's `Hello` learned, once said (`None` inside: a relay too old to
    /// know `Hello`).
    hello: Arc<tokio::sync::OnceCell<Option<RelayInfo>>>,
}

impl Connection {
    /// The protocol-level connection.
    pub fn client(&self) -> &RelayClient {
        &self.client
    }

    /// The relay it goes to.
    pub fn relay(&self) -> &RelayAddress {
        &self.relay
    }

    /// Which of the relay's hosts it reached: an index into [`RelayAddress::hosts`].
    pub fn host(&self) -> usize {
        self.host
    }

    /// A number unique to this connection within the pool: a reconnection gets a new one.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Says `Hello` on this connection once (presenting the client's create token for this
    /// relay, if it has one) and returns the relay's limits: `None` from a relay too old to
    /// announce them. Creating a queue or a blob needs it first on a relay that requires a
    /// token; a token the relay does not accept fails with `Forbidden`.
    pub async fn hello(&self) -> Result<Option<RelayInfo>, RelayCallError> {
        let said = self
            .hello
            .get_or_try_init(|| self.client.hello(self.token.as_ref()))
            .await?;
        Ok(*said)
    }

    fn touch(&self) {
        *self.used.lock().unwrap_or_else(PoisonError::into_inner) = Instant::now();
    }

    fn last_used(&self) -> Instant {
        *self.used.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

type Slot = Arc<tokio::sync::Mutex<Option<Connection>>>;
type SlotKey = (RelayAddress, Keep);

struct Inner {
    slots: Mutex<HashMap<SlotKey, Slot>>,
    /// Connections of their own still open, to close with the pool.
    fresh: Mutex<Vec<Weak<RelayClient>>>,
    events: mpsc::UnboundedSender<PoolEvent>,
    policy: RetryPolicy,
    mode: TransportMode,
    contact_idle: Duration,
    next_generation: AtomicU64,
    /// Every connection goes through this proxy when set.
    proxy: Option<Socks5Proxy>,
    /// The create token for each relay the client has one for (its own).
    tokens: Mutex<HashMap<RelayAddress, CreateToken>>,
    /// The certificates each relay may present.
    pins: PinBook,
    /// How often the connection for our own queues asks again for a pending rotation.
    recheck: Mutex<Duration>,
    /// For relays with several hosts: the host to try first.
    hosts: HostChoice,
}

impl Inner {
    fn slot(&self, key: &SlotKey) -> Slot {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        slots.entry(key.clone()).or_default().clone()
    }

    /// Closes every kept connection and every connection of its own still open.
    fn close_all(&self) {
        let slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        for slot in slots.values() {
            if let Ok(mut guard) = slot.try_lock() {
                if let Some(c) = guard.take() {
                    c.client.close();
                }
            }
        }
        let mut fresh = self.fresh.lock().unwrap_or_else(PoisonError::into_inner);
        for client in fresh.drain(..).filter_map(|w| w.upgrade()) {
            client.close();
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.close_all();
    }
}

/// Connections to several relays, each pinned to the fingerprint in its address.
///
/// [`RelayPool::connection`], [`RelayPool::current`] and [`RelayPool::run`] use the handle's
/// lane: [`Lane::Own`], or [`Lane::Transfer`] for the handle [`RelayPool::for_transfers`] gives.
#[derive(Clone)]
pub struct RelayPool {
    inner: Arc<Inner>,
    lane: Lane,
}

impl std::fmt::Debug for RelayPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayPool")
            .field("policy", &self.inner.policy)
            .field("mode", &self.inner.mode)
            .field("lane", &self.lane)
            .finish_non_exhaustive()
    }
}

impl RelayPool {
    /// An empty pool in the default [`TransportMode`], and the receiver of every connection's
    /// pushes.
    pub fn new(policy: RetryPolicy) -> (RelayPool, mpsc::UnboundedReceiver<PoolEvent>) {
        RelayPool::configured(policy, TransportMode::default(), CONTACT_IDLE, None)
    }

    /// As [`RelayPool::new`], in `mode`.
    pub fn with_mode(
        policy: RetryPolicy,
        mode: TransportMode,
    ) -> (RelayPool, mpsc::UnboundedReceiver<PoolEvent>) {
        RelayPool::configured(policy, mode, CONTACT_IDLE, None)
    }

    /// As [`RelayPool::new`]; with `proxy`, every connection goes through that SOCKS5 proxy.
    pub fn with_proxy(
        policy: RetryPolicy,
        proxy: Option<Socks5Proxy>,
    ) -> (RelayPool, mpsc::UnboundedReceiver<PoolEvent>) {
        RelayPool::configured(policy, TransportMode::default(), CONTACT_IDLE, proxy)
    }

    /// A pool in `mode` that closes a contact's connection after `contact_idle` without use
    /// and, with `proxy`, makes every connection through that SOCKS5 proxy.
    pub fn configured(
        policy: RetryPolicy,
        mode: TransportMode,
        contact_idle: Duration,
        proxy: Option<Socks5Proxy>,
    ) -> (RelayPool, mpsc::UnboundedReceiver<PoolEvent>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let inner = Inner {
            slots: Mutex::new(HashMap::new()),
            fresh: Mutex::new(Vec::new()),
            events: tx,
            policy,
            mode,
            contact_idle,
            next_generation: AtomicU64::new(1),
            proxy,
            tokens: Mutex::new(HashMap::new()),
            pins: PinBook::default(),
            recheck: Mutex::new(NEXT_CERT_RECHECK),
            hosts: HostChoice::default(),
        };
        let pool = RelayPool {
            inner: Arc::new(inner),
            lane: Lane::Own,
        };
        (pool, rx)
    }

    /// The same pool, whose [`RelayPool::connection`] and [`RelayPool::run`] use
    /// [`Lane::Transfer`]: what file transfers are given.
    pub fn for_transfers(&self) -> RelayPool {
        RelayPool {
            inner: self.inner.clone(),
            lane: Lane::Transfer,
        }
    }

    /// Presents `token` in the `Hello` of every new connection to `relay` (`None`: no token).
    /// Connections open already keep what they said.
    pub fn set_create_token(&self, relay: &RelayAddress, token: Option<CreateToken>) {
        let mut tokens = self
            .inner
            .tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match token {
            Some(t) => tokens.insert(relay.clone(), t),
            None => tokens.remove(relay),
        };
    }

    /// The certificate pins of every relay: what connections accept, and what they learned.
    pub fn pins(&self) -> &PinBook {
        &self.inner.pins
    }

    /// How often a connection for our own queues asks again whether its relay will rotate its
    /// certificate ([`NEXT_CERT_RECHECK`] unless set); applies to connections made after.
    pub fn set_next_cert_recheck(&self, every: Duration) {
        *self
            .inner
            .recheck
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = every;
    }

    /// The retry policy.
    pub fn policy(&self) -> RetryPolicy {
        self.inner.policy
    }

    /// How requests are spread over connections.
    pub fn mode(&self) -> TransportMode {
        self.inner.mode
    }

    /// The live connection to `relay` on this handle's lane, connecting first if needed. After
    /// every attempt of the retry policy has failed: [`NetError::Unreachable`].
    pub async fn connection(&self, relay: &RelayAddress) -> Result<Connection, NetError> {
        self.connection_on(relay, self.lane).await
    }

    /// The live connection to `relay` for `lane`, connecting first if needed.
    pub async fn connection_on(
        &self,
        relay: &RelayAddress,
        lane: Lane,
    ) -> Result<Connection, NetError> {
        let keep = self.inner.mode.keep(lane);
        if keep == Keep::Fresh {
            return self.fresh(relay).await;
        }
        let key = (relay.clone(), keep);
        let slot = self.inner.slot(&key);
        let mut guard = slot.lock().await;
        if let Some(c) = guard.as_ref() {
            if !c.client.is_closed() {
                c.touch();
                return Ok(c.clone());
            }
            self.inner.hosts.failed(relay, c.host);
        }
        *guard = None;
        let conn = self.new_connection(relay, keep).await?;
        match keep {
            Keep::Own => {
                tokio::spawn(forward(conn.clone(), self.inner.events.clone()));
            }
            _ => {
                let idle = close_when_idle(Arc::downgrade(&self.inner), key, conn.generation);
                tokio::spawn(idle);
            }
        }
        *guard = Some(conn.clone());
        Ok(conn)
    }

    /// A connection of its own to `relay`, closed when its last handle is dropped.
    async fn fresh(&self, relay: &RelayAddress) -> Result<Connection, NetError> {
        let mut conn = self.new_connection(relay, Keep::Fresh).await?;
        conn._fresh = Some(Arc::new(CloseOnDrop(conn.client.clone())));
        let mut fresh = self
            .inner
            .fresh
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        fresh.retain(|w| w.strong_count() > 0);
        fresh.push(Arc::downgrade(&conn.client));
        Ok(conn)
    }

    async fn new_connection(
        &self,
        relay: &RelayAddress,
        keep: Keep,
    ) -> Result<Connection, NetError> {
        let (client, host) = self.connect(relay).await?;
        let client = Arc::new(client);
        let recheck = *self
            .inner
            .recheck
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        tokio::spawn(learn_rotation(
            Arc::downgrade(&client),
            relay.clone(),
            self.inner.pins.clone(),
            (keep == Keep::Own).then_some(recheck),
        ));
        let token = self
            .inner
            .tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(relay)
            .cloned();
        Ok(Connection {
            client,
            host,
            relay: relay.clone(),
            generation: self.inner.next_generation.fetch_add(1, Ordering::Relaxed),
            keep,
            used: Arc::new(Mutex::new(Instant::now())),
            _fresh: None,
            token,
            hello: Arc::default(),
        })
    }

    /// Connects to `relay`: each attempt of the retry policy tries its hosts in order, starting
    /// from the one that worked last, each within the connect timeout. Returns the client and
    /// which host it reached.
    async fn connect(&self, relay: &RelayAddress) -> Result<(RelayClient, usize), NetError> {
        let policy = self.inner.policy;
        let mut backoff = Backoff::new(policy);
        let mut proxy_error = None;
        while let Some(delay) = backoff.next_delay(&mut rand::rngs::OsRng) {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let first = self.inner.hosts.preferred(relay);
            let pins = self.inner.pins.pins(relay).accepted();
            let proxy = self.inner.proxy.as_ref();
            match try_hosts(relay, first, &pins, proxy, policy).await {
                Round::Connected(client, host) => {
                    if let Some(fingerprint) = client.presented_fingerprint() {
                        self.inner.pins.presented(relay, fingerprint);
                    }
                    self.inner.hosts.prefer(relay, host);
                    return Ok((*client, host));
                }
                Round::Failed { proxy, permanent } => {
                    proxy_error = proxy.or(proxy_error);
                    if permanent {
                        break;
                    }
                }
                Round::Fatal(e) => return Err(e),
            }
        }
        Err(match proxy_error {
            Some(error) => NetError::Proxy {
                relay: relay.clone(),
                error,
            },
            None => NetError::Unreachable {
                relay: relay.clone(),
            },
        })
    }

    /// The current connection to `relay` on this handle's lane, without connecting: `None` if
    /// there is none or it has closed (always `None` for a lane whose connections are not kept).
    pub async fn current(&self, relay: &RelayAddress) -> Option<Connection> {
        self.current_on(relay, self.lane).await
    }

    /// As [`RelayPool::current`], for `lane`. Does not count as a use of the connection.
    pub async fn current_on(&self, relay: &RelayAddress, lane: Lane) -> Option<Connection> {
        let keep = self.inner.mode.keep(lane);
        if keep == Keep::Fresh {
            return None;
        }
        let slot = self.inner.slot(&(relay.clone(), keep));
        let guard = slot.lock().await;
        guard.as_ref().filter(|c| !c.client.is_closed()).cloned()
    }

    /// Drops `conn` from the pool if it is still the current connection of its kind, so the
    /// next call reconnects. A connection that is not kept is closed.
    pub async fn forget(&self, conn: &Connection) {
        self.inner.hosts.failed(&conn.relay, conn.host);
        if conn.keep == Keep::Fresh {
            conn.client.close();
            return;
        }
        let slot = self.inner.slot(&(conn.relay.clone(), conn.keep));
        let mut guard = slot.lock().await;
        if guard
            .as_ref()
            .is_some_and(|c| c.generation == conn.generation)
        {
            if let Some(c) = guard.take() {
                c.client.close();
            }
        }
    }

    /// Runs `op` on the connection to `relay` on this handle's lane. If the connection fails
    /// underneath it (closed, reset), reconnects and runs it once more. A relay's refusal is
    /// returned as is.
    ///
    /// `op` may therefore run twice; it must be safe to repeat (every hush request is: a
    /// repeated send is a duplicate the recipient drops).
    pub async fn run<T, F, Fut>(&self, relay: &RelayAddress, op: F) -> Result<T, NetError>
    where
        F: Fn(Connection) -> Fut,
        Fut: Future<Output = Result<T, RelayCallError>>,
    {
        self.run_on(relay, self.lane, op).await
    }

    /// As [`RelayPool::run`], on the connection for `lane`.
    pub async fn run_on<T, F, Fut>(
        &self,
        relay: &RelayAddress,
        lane: Lane,
        op: F,
    ) -> Result<T, NetError>
    where
        F: Fn(Connection) -> Fut,
        Fut: Future<Output = Result<T, RelayCallError>>,
    {
        let conn = self.connection_on(relay, lane).await?;
        let first = op(conn.clone()).await;
        conn.touch();
        match first {
            Ok(v) => Ok(v),
            Err(e) if NetError::is_transient(&e) => {
                self.forget(&conn).await;
                let conn = self.connection_on(relay, lane).await?;
                let again = op(conn.clone()).await;
                conn.touch();
                again.map_err(|e| NetError::from_client(relay, e))
            }
            Err(e) => Err(NetError::from_client(relay, e)),
        }
    }

    /// Closes every connection.
    pub fn close_all(&self) {
        self.inner.close_all();
    }
}

/// Closes the kept connection `key` of `generation` once it has gone unused for the pool's
/// contact idle time. Ends early if the pool goes away or the connection is replaced.
async fn close_when_idle(inner: Weak<Inner>, key: SlotKey, generation: u64) {
    let Some(idle) = inner.upgrade().map(|i| i.contact_idle) else {
        return;
    };
    let mut at = Instant::now() + idle;
    loop {
        tokio::time::sleep_until(at).await;
        let Some(pool) = inner.upgrade() else { return };
        let slot = pool.slot(&key);
        let mut guard = slot.lock().await;
        let Some(c) = guard.as_ref().filter(|c| c.generation == generation) else {
            return;
        };
        let now = Instant::now();
        if Arc::strong_count(&c.client) > 1 {
            // Handed out and still held: look again later.
            at = now + idle;
        } else if c.last_used() + idle <= now {
            if let Some(c) = guard.take() {
                c.client.close();
            }
            return;
        } else {
            at = c.last_used() + idle;
        }
    }
}

/// Forwards one connection's pushes until it ends, then reports it lost.
async fn forward(conn: Connection, events: mpsc::UnboundedSender<PoolEvent>) {
    while let Some(push) = conn.client.next_push().await {
        let event = PoolEvent::Push {
            relay: conn.relay.clone(),
            generation: conn.generation,
            push,
        };
        if events.send(event).is_err() {
            return;
        }
    }
    let _ = events.send(PoolEvent::Lost {
        relay: conn.relay.clone(),
        generation: conn.generation,
    });
}
