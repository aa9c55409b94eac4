//! Our relay's create token and announced limits: storing the token that came in the relay
//! address, presenting it (through the pool's `Hello`) before creating queues, and keeping the
//! relay's maximum envelope lifetime for the hard expiry of new conversations.
//!
//! The token is stored in the home's encrypted store, under its own setting, and given only to
//! the pool for our own relay. It never enters an invitation, an introduction or a file offer:
//! those carry a [`RelayAddress`], which has no room for one.
//!
//! It also keeps the certificate pins the pool learns from relays' announced rotations in the
//! home, under their own setting, so they survive a restart.
//!
//! What it does not do: create queues (`contacts.rs`) or blobs (`transfer`), or hash or check
//! tokens (the relay does).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use hush_protocol::limits::DEFAULT_MAX_TTL_SECS;
use hush_protocol::{CreateToken, HomeRelay, RelayAddress, RelayInfo};

use super::{corrupt, Client, ClientError, ClientOptions, Inner};
use crate::conversation::limits::MAX_RELAY_TTL_SECS;
use crate::net::{PinBook, RelayPool, CONTACT_IDLE};
use crate::store::{LocalStore, Setting, StoreKey};

/// The create token stored in `store`, if any.
pub(super) fn stored_token(store: &LocalStore) -> Result<Option<CreateToken>, ClientError> {
    match store.get(&StoreKey::Setting(Setting::CreateToken))? {
        None => Ok(None),
        Some(b) => CreateToken::from_bytes(&b)
            .map(Some)
            .map_err(|_| corrupt("the create token is unreadable")),
    }
}

/// Loads the certificate pins learned earlier into `pins`, and stores them after every change.
/// A failure to store is logged: the pins stay in memory, and the next change tries again.
pub(super) fn keep_pins(store: &Arc<LocalStore>, pins: &PinBook) -> Result<(), ClientError> {
    if let Some(b) = store.get(&StoreKey::Setting(Setting::RelayPins))? {
        pins.load(&b)
            .map_err(|_| corrupt("the relay certificate pins are unreadable"))?;
    }
    let store = Arc::downgrade(store);
    pins.set_persist(move |bytes| {
        let Some(store) = store.upgrade() else { return };
        if let Err(error) = store.put(&StoreKey::Setting(Setting::RelayPins), bytes) {
            tracing::warn!(%error, "cannot store a relay's new certificate pin");
        }
    });
    Ok(())
}

/// Our relay's maximum envelope lifetime as last announced, or the protocol default.
pub(super) fn stored_ttl(store: &LocalStore) -> Result<u64, ClientError> {
    match store.get(&StoreKey::Setting(Setting::RelayTtl))? {
        None => Ok(DEFAULT_MAX_TTL_SECS),
        Some(b) => <[u8; 8]>::try_from(&b[..])
            .map(u64::from_be_bytes)
            .ok()
            .filter(|&t| usable_ttl(t) == t)
            .ok_or_else(|| corrupt("the relay's lifetime setting is unreadable")),
    }
}

/// A relay's announced lifetime as a conversation can use it: at least a second, at most
/// [`MAX_RELAY_TTL_SECS`] (a longer one makes unread messages expire before the relay would
/// drop them, which errs on the side of deleting).
fn usable_ttl(secs: u64) -> u64 {
    secs.clamp(1, MAX_RELAY_TTL_SECS)
}

/// The relay's refusal of our access, as the error to show: `Forbidden` (a bad token), or
/// `TokenRequired` when the relay is closed and we presented none it accepts.
fn refusal(
    relay: &RelayAddress,
    info: Option<RelayInfo>,
) -> Result<Option<RelayInfo>, ClientError> {
    match info {
        Some(i) if !i.may_create => Err(ClientError::TokenRequired {
            relay: relay.clone(),
        }),
        other => Ok(other),
    }
}

impl Inner {
    /// Our relay's maximum envelope lifetime, for a new conversation.
    pub(crate) fn relay_ttl(&self) -> u64 {
        self.relay_ttl.load(Ordering::Relaxed)
    }

    /// Keeps what our relay announced: its lifetime, stored when it changed.
    pub(crate) fn learn_limits(&self, info: Option<RelayInfo>) -> Result<(), ClientError> {
        let Some(info) = info else { return Ok(()) };
        let ttl = usable_ttl(info.max_ttl_secs);
        if self.relay_ttl.swap(ttl, Ordering::Relaxed) != ttl {
            self.store
                .put(&StoreKey::Setting(Setting::RelayTtl), &ttl.to_be_bytes())?;
        }
        Ok(())
    }
}

impl Client {
    /// Replaces this home's create token with the one in `home` (an address of this home's
    /// relay; without a token, forgets ours), once the relay has accepted it: a token the relay
    /// refuses, or a relay out of reach, changes nothing. The check runs on a new connection.
    pub async fn set_create_token(
        &self,
        home: &HomeRelay,
    ) -> Result<Option<RelayInfo>, ClientError> {
        let inner = &self.inner;
        if home.address != inner.relay {
            return Err(ClientError::OtherRelay {
                relay: inner.relay.clone(),
            });
        }
        let before = stored_token(&inner.store)?;
        self.present_token(home.token.clone()).await;
        let info = match self.relay_info().await {
            Ok(info) => info,
            Err(e) => {
                self.present_token(before).await;
                return Err(e);
            }
        };
        let key = StoreKey::Setting(Setting::CreateToken);
        match &home.token {
            Some(t) => inner.store.put(&key, t.as_bytes())?,
            None => {
                inner.store.delete(&key)?;
            }
        }
        Ok(info)
    }

    /// Presents `token` to our relay from now on: on new connections, so the one open to it
    /// (which said its `Hello` with the token before) is let go; its subscriptions are renewed
    /// on the next.
    async fn present_token(&self, token: Option<CreateToken>) {
        let inner = &self.inner;
        inner.pool.set_create_token(&inner.relay, token);
        if let Some(conn) = inner.pool.current(&inner.relay).await {
            inner.pool.forget(&conn).await;
        }
    }

    /// Asks our relay for its limits, presenting our create token: `None` from a relay too old
    /// to announce them. [`ClientError::TokenRefused`] if it does not accept the token,
    /// [`ClientError::TokenRequired`] if it needs one and we have none.
    pub async fn relay_info(&self) -> Result<Option<RelayInfo>, ClientError> {
        let inner = &self.inner;
        let info = inner
            .pool
            .run(&inner.relay, |conn| async move { conn.hello().await })
            .await?;
        inner.learn_limits(info)?;
        refusal(&inner.relay, info)
    }

    /// Checks, before a home is made for it, that the relay in `home` lets us create queues
    /// with the token the address carries (if any): as [`Client::relay_info`], through the
    /// proxy and with the retries of `options`.
    pub async fn check_relay(
        home: &HomeRelay,
        options: &ClientOptions,
    ) -> Result<Option<RelayInfo>, ClientError> {
        let (pool, _events) = RelayPool::configured(
            options.retry,
            options.transport,
            CONTACT_IDLE,
            options.proxy.clone(),
        );
        pool.set_create_token(&home.address, home.token.clone());
        let info = pool
            .run(&home.address, |conn| async move { conn.hello().await })
            .await;
        pool.close_all();
        refusal(&home.address, info.map_err(ClientError::from)?)
    }
}
