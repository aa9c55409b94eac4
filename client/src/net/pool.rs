//! A pool of relay connections, one per relay address, with reconnection.
//!
//! [`RelayPool::connection`] hands out the live connection to a relay, connecting (with
//! [`Backoff`]) when there is none or the last one died. Every connection's pushes are forwarded
//! into one channel of [`PoolEvent`]s, tagged with the relay and the connection's generation, so
//! one task can wait on all relays at once and tell which connection an envelope came from (an
//! ack must go back on that connection). When a connection ends, a [`PoolEvent::Lost`] says so:
//! its subscriptions are gone and must be renewed on the next connection.
//!
//! What it does not do: resubscribe by itself (the `Client` knows the queues), or retry a
//! relay's refusal (only transport failures are retried).

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use hush_protocol::{Push, RelayAddress};
use tokio::sync::mpsc;

use super::backoff::{Backoff, RetryPolicy};
use super::error::NetError;
use super::relay_client::{RelayCallError, RelayClient};
use super::socks5::Socks5Proxy;

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

/// A live connection handed out by the pool.
#[derive(Clone, Debug)]
pub struct Connection {
    client: Arc<RelayClient>,
    relay: RelayAddress,
    generation: u64,
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

    /// A number unique to this connection within the pool: a reconnection gets a new one.
    pub fn generation(&self) -> u64 {
        self.generation
    }
}

type Slot = Arc<tokio::sync::Mutex<Option<Connection>>>;

struct Inner {
    slots: Mutex<HashMap<RelayAddress, Slot>>,
    events: mpsc::UnboundedSender<PoolEvent>,
    policy: RetryPolicy,
    next_generation: AtomicU64,
    /// Every connection goes through this proxy when set.
    proxy: Option<Socks5Proxy>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        for slot in slots.values() {
            if let Ok(guard) = slot.try_lock() {
                if let Some(c) = guard.as_ref() {
                    c.client.close();
                }
            }
        }
    }
}

/// Connections to several relays, each pinned to the fingerprint in its address.
#[derive(Clone)]
pub struct RelayPool {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RelayPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayPool")
            .field("policy", &self.inner.policy)
            .finish_non_exhaustive()
    }
}

impl RelayPool {
    /// An empty pool, and the receiver of every connection's pushes.
    pub fn new(policy: RetryPolicy) -> (RelayPool, mpsc::UnboundedReceiver<PoolEvent>) {
        RelayPool::with_proxy(policy, None)
    }

    /// As [`RelayPool::new`]; with `proxy`, every connection goes through that SOCKS5 proxy.
    pub fn with_proxy(
        policy: RetryPolicy,
        proxy: Option<Socks5Proxy>,
    ) -> (RelayPool, mpsc::UnboundedReceiver<PoolEvent>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let inner = Inner {
            slots: Mutex::new(HashMap::new()),
            events: tx,
            policy,
            next_generation: AtomicU64::new(1),
            proxy,
        };
        (
            RelayPool {
                inner: Arc::new(inner),
            },
            rx,
        )
    }

    /// The retry policy.
    pub fn policy(&self) -> RetryPolicy {
        self.inner.policy
    }

    fn slot(&self, relay: &RelayAddress) -> Slot {
        let mut slots = self
            .inner
            .slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        slots.entry(relay.clone()).or_default().clone()
    }

    /// The live connection to `relay`, connecting first if needed. After every attempt of the
    /// retry policy has failed: [`NetError::Unreachable`].
    pub async fn connection(&self, relay: &RelayAddress) -> Result<Connection, NetError> {
        let slot = self.slot(relay);
        let mut guard = slot.lock().await;
        if let Some(c) = guard.as_ref() {
            if !c.client.is_closed() {
                return Ok(c.clone());
            }
        }
        *guard = None;
        let client = self.connect(relay).await?;
        let conn = Connection {
            client: Arc::new(client),
            relay: relay.clone(),
            generation: self.inner.next_generation.fetch_add(1, Ordering::Relaxed),
        };
        tokio::spawn(forward(conn.clone(), self.inner.events.clone()));
        *guard = Some(conn.clone());
        Ok(conn)
    }

    async fn connect(&self, relay: &RelayAddress) -> Result<RelayClient, NetError> {
        let policy = self.inner.policy;
        let mut backoff = Backoff::new(policy);
        let mut proxy_error = None;
        while let Some(delay) = backoff.next_delay(&mut rand::rngs::OsRng) {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let attempt = RelayClient::connect_via(relay, self.inner.proxy.as_ref());
            match tokio::time::timeout(policy.connect_timeout, attempt).await {
                Ok(Ok(client)) => return Ok(client),
                Ok(Err(RelayCallError::Proxy(error))) => {
                    tracing::debug!(%error, "relay connection through the proxy failed");
                    let permanent = error.is_permanent();
                    proxy_error = Some(error);
                    if permanent {
                        break;
                    }
                }
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "relay connection attempt failed");
                }
                Err(_) => tracing::debug!("relay connection attempt timed out"),
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

    /// The current connection to `relay`, without connecting: `None` if there is none or it
    /// has closed.
    pub async fn current(&self, relay: &RelayAddress) -> Option<Connection> {
        let slot = self.slot(relay);
        let guard = slot.lock().await;
        guard.as_ref().filter(|c| !c.client.is_closed()).cloned()
    }

    /// Drops `conn` from the pool if it is still the current connection to its relay, so the
    /// next call reconnects.
    pub async fn forget(&self, conn: &Connection) {
        let slot = self.slot(&conn.relay);
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

    /// Runs `op` on the connection to `relay`. If the connection fails underneath it (closed,
    /// reset), reconnects and runs it once more. A relay's refusal is returned as is.
    ///
    /// `op` may therefore run twice; it must be safe to repeat (every hush request is: a
    /// repeated send is a duplicate the recipient drops).
    pub async fn run<T, F, Fut>(&self, relay: &RelayAddress, op: F) -> Result<T, NetError>
    where
        F: Fn(Connection) -> Fut,
        Fut: Future<Output = Result<T, RelayCallError>>,
    {
        let conn = self.connection(relay).await?;
        match op(conn.clone()).await {
            Ok(v) => Ok(v),
            Err(e) if NetError::is_transient(&e) => {
                self.forget(&conn).await;
                let conn = self.connection(relay).await?;
                op(conn).await.map_err(|e| NetError::from_client(relay, e))
            }
            Err(e) => Err(NetError::from_client(relay, e)),
        }
    }

    /// Closes every connection.
    pub fn close_all(&self) {
        let slots = self
            .inner
            .slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for slot in slots.values() {
            if let Ok(mut guard) = slot.try_lock() {
                if let Some(c) = guard.take() {
                    c.client.close();
                }
            }
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
