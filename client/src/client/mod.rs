//! The `Client`: the async API every front end uses. It drives the sans-IO cores (crypto,
//! conversation) with the local store, the relay pool and the system clock.
//!
//! What it does: keeps one in-memory [`State`] (contacts with their ratchet sessions and
//! conversations, pending invitations) mirrored in the [`LocalStore`], carries out the
//! conversation's effects in order, processes envelopes (store durably, then ack), and runs an
//! optional background task that turns relay pushes and timer expiries into [`ClientEvent`]s.
//! The state lock is never held across a relay call (see `driver`). The design and its
//! decisions are in `docs/client.md`.
//!
//! What it does not do: cryptography or conversation rules of its own (the cores decide), move
//! file data (its [`Transfers`] do), or print anything. It reads the clock here and only here,
//! and passes `now` into the cores.

mod access;
mod actions;
mod burn;
mod contacts;
mod driver;
mod envelope;
pub(crate) mod error;
mod expire;
mod files;
mod group_burn;
mod group_record;
mod group_work;
mod group_work_record;
mod groups;
mod inbox;
mod load;
mod migrate;
mod owed;
mod records;
mod view;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hush_protocol::limits::DEFAULT_MAX_TTL_SECS;
use hush_protocol::{HomeRelay, RecipientId, RelayAddress};
use tokio::sync::{mpsc, watch, Notify};
use tokio::task::JoinHandle;

use crate::conversation::Conversation;
use crate::crypto::{Identity, Session};
use crate::net::{PoolEvent, RelayPool, RetryPolicy, Socks5Proxy, TransportMode, CONTACT_IDLE};
use crate::store::{ContactId, ContactKey, KeySource, LocalStore, Setting, StoreKey};
use crate::transfer::Transfers;

pub use crate::clock::Clock;
pub use burn::{BurnReport, Delivery, OWED_RETRY_SECS};
pub use contacts::DEFAULT_INVITATION_LIFETIME;
pub use error::ClientError;
pub use expire::ExpiryReport;
pub use groups::{GroupSent, GroupView, MemberView};
pub use view::{ClientEvent, ContactStatus, ContactView, FileView, MessageView, PendingView};

use records::{ContactRecord, Link, PendingRecord};

/// The relay TTL assumed for the hard expiry of unread messages until our relay announces its
/// own (and always with a relay too old to announce it): the protocol's default maximum
/// envelope lifetime.
pub const RELAY_TTL_SECS: u64 = DEFAULT_MAX_TTL_SECS;

/// How the client talks to relays and tells the time. The defaults suit interactive use.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct ClientOptions {
    /// Reconnection attempts and delays.
    pub retry: RetryPolicy,
    /// The clock (the system clock unless a test moves it).
    pub clock: Clock,
    /// A SOCKS5 proxy that every relay connection goes through (never directly), if set.
    pub proxy: Option<Socks5Proxy>,
    /// How requests are spread over relay connections (per contact unless set).
    pub transport: TransportMode,
    /// How often the connection to our relay asks again for a pending certificate rotation
    /// (`None`: [`crate::net::NEXT_CERT_RECHECK`]).
    pub next_cert_recheck: Option<Duration>,
}

impl ClientOptions {
    /// Options with this retry policy.
    pub fn with_retry(retry: RetryPolicy) -> ClientOptions {
        ClientOptions {
            retry,
            ..ClientOptions::default()
        }
    }

    /// The same options, reaching every relay through `proxy` only. A proxy that is
    /// unreachable or cannot carry UDP fails each relay call with [`ClientError::Proxy`].
    pub fn with_proxy(mut self, proxy: Socks5Proxy) -> ClientOptions {
        self.proxy = Some(proxy);
        self
    }

    /// The same options with another clock.
    pub fn with_clock(mut self, clock: Clock) -> ClientOptions {
        self.clock = clock;
        self
    }

    /// The same options, asking relays for a pending certificate rotation this often on a
    /// connection that stays open.
    pub fn with_next_cert_recheck(mut self, every: Duration) -> ClientOptions {
        self.next_cert_recheck = Some(every);
        self
    }

    /// The same options with another transport mode.
    pub fn with_transport(mut self, transport: TransportMode) -> ClientOptions {
        self.transport = transport;
        self
    }
}

/// One contact in memory: its store identity, its queues and keys, its session and its
/// conversation. A burned contact is not kept: it is erased and forgotten.
pub(crate) struct Contact {
    /// The random id its record lives under.
    pub(crate) id: ContactId,
    /// The random key its other records' sled keys come from.
    pub(crate) key: ContactKey,
    pub(crate) link: Link,
    pub(crate) session: Session,
    pub(crate) conv: Conversation,
}

/// Everything the client knows, mirrored in the store.
#[derive(Default)]
pub(crate) struct State {
    pub(crate) contacts: BTreeMap<String, Contact>,
    /// Pending invitations by the recipient id of their queue.
    pub(crate) pending: HashMap<RecipientId, PendingRecord>,
    /// Groups by local name (groups and contacts share one name space).
    pub(crate) groups: BTreeMap<String, group_record::GroupState>,
}

impl State {
    /// Contact `name`.
    pub(crate) fn contact(&mut self, name: &str) -> Result<&mut Contact, ClientError> {
        self.contacts
            .get_mut(name)
            .ok_or_else(|| ClientError::UnknownContact {
                name: name.to_owned(),
            })
    }

    /// The name of the contact whose messages arrive on queue `rid`.
    pub(crate) fn name_of(&self, rid: RecipientId) -> Option<String> {
        self.contacts
            .iter()
            .find(|(_, c)| c.link.own.recipient_id == rid)
            .map(|(name, _)| name.clone())
    }

    /// Contact `name`, if it is still the contact `id` names (not burned, not replaced).
    pub(crate) fn same_contact(&mut self, name: &str, id: ContactId) -> Option<&mut Contact> {
        self.contacts.get_mut(name).filter(|c| c.id == id)
    }
}

impl Contact {
    /// The record that stores this contact under `name`.
    pub(crate) fn record(&self, name: &str) -> zeroize::Zeroizing<Vec<u8>> {
        ContactRecord::encode_parts(name, &self.key, &self.link)
    }
}

/// Where the pool's pushes are read, and which queue is subscribed on which connection.
pub(crate) struct Inbox {
    pub(crate) rx: mpsc::UnboundedReceiver<PoolEvent>,
    pub(crate) subs: HashMap<RecipientId, (RelayAddress, u64)>,
}

pub(crate) struct Inner {
    pub(crate) clock: Clock,
    pub(crate) store: Arc<LocalStore>,
    pub(crate) identity: Identity,
    pub(crate) own_name: String,
    pub(crate) relay: RelayAddress,
    /// Our relay's maximum envelope lifetime, as it last announced it: new conversations use it
    /// for the hard expiry of unread messages.
    pub(crate) relay_ttl: AtomicU64,
    pub(crate) pool: RelayPool,
    /// Contacts and invitations. Never held across a relay call (see `driver`).
    pub(crate) state: tokio::sync::Mutex<State>,
    /// Names an `invite` or `accept` in progress is about to give a contact.
    pub(crate) reserved: Mutex<HashSet<String>>,
    /// Uploads, downloads and owed blob deletions.
    pub(crate) transfers: Transfers,
    pub(crate) inbox: tokio::sync::Mutex<Inbox>,
    /// Asks the background task to let go of the inbox (for a `receive` call) and to recompute
    /// its next wake-up (after an action that may have set a new expiry).
    pub(crate) yield_inbox: Notify,
    pub(crate) listeners: Mutex<Vec<mpsc::UnboundedSender<ClientEvent>>>,
    /// When each owed burn may next be tried; held by whoever is delivering owed burns.
    pub(crate) owed_retry: tokio::sync::Mutex<burn::RetryTimes>,
    /// Group introduction steps that call relays, for the next `tick`.
    pub(crate) work_retry: tokio::sync::Mutex<group_work::WorkRetry>,
}

/// A hush installation: its identity, contacts and conversations, and its relay connections.
///
/// Every method is `async` and takes `&self`; calls are serialised internally. Drop it (or
/// better, `close` it) before opening the same home again.
pub struct Client {
    inner: Arc<Inner>,
    stop: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
    /// Messages that expired while the home was opened, until [`Client::expire`] reports them.
    expired_on_open: AtomicUsize,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("home", &self.inner.store.home())
            .finish_non_exhaustive()
    }
}

fn corrupt(what: &'static str) -> ClientError {
    ClientError::Corrupt { what }
}

impl Inner {
    /// Now, in unix seconds: the only clock reading the client makes.
    pub(crate) fn now(&self) -> u64 {
        self.clock.now_secs()
    }
}

impl Client {
    /// Creates a new home in `home`: a fresh identity, the user's `name` and `relay` (where
    /// invitations' queues live, with its create token if the relay requires one), locked by
    /// `key`. No relay is contacted.
    pub async fn init(
        home: &Path,
        name: &str,
        relay: impl Into<HomeRelay>,
        key: KeySource,
    ) -> Result<Client, ClientError> {
        Client::init_with(home, name, relay, key, ClientOptions::default()).await
    }

    /// As [`Client::init`], with options.
    pub async fn init_with(
        home: &Path,
        name: &str,
        relay: impl Into<HomeRelay>,
        key: KeySource,
        options: ClientOptions,
    ) -> Result<Client, ClientError> {
        let HomeRelay {
            address: relay,
            token,
        } = relay.into();
        let store = LocalStore::create(home, key)?;
        if let Some(token) = token {
            store.put(&StoreKey::Setting(Setting::CreateToken), token.as_bytes())?;
        }
        let identity = Identity::generate(&mut rand::rngs::OsRng);
        store.put(&StoreKey::Identity, &identity.to_bytes())?;
        store.put(&StoreKey::Setting(Setting::OwnName), name.as_bytes())?;
        store.put(
            &StoreKey::Setting(Setting::RelayAddress),
            relay.to_string().as_bytes(),
        )?;
        store.put(
            &StoreKey::Setting(Setting::StoreFormat),
            &[migrate::STORE_FORMAT],
        )?;
        Client::start(store, options)
    }

    /// Opens the home in `home` with `key`. A wrong passphrase is
    /// [`ClientError::WrongPassphrase`]; a directory without a home is
    /// [`ClientError::NotInitialised`].
    ///
    /// Before it returns, every deletion that fell due while no client ran is applied (expired
    /// messages and everything else [`Client::tick`] deletes locally), so nothing expired can
    /// be shown or kept. No relay is contacted: blob deletions owed to relays wait for
    /// [`Client::expire`] or the next action that reaches them.
    pub async fn open(home: &Path, key: KeySource) -> Result<Client, ClientError> {
        Client::open_with(home, key, ClientOptions::default()).await
    }

    /// As [`Client::open`], with options.
    pub async fn open_with(
        home: &Path,
        key: KeySource,
        options: ClientOptions,
    ) -> Result<Client, ClientError> {
        let store = LocalStore::open(home, key)?;
        migrate::migrate(&store)?;
        let client = Client::start(store, options)?;
        client.inner.finish_group_burns().await?;
        client.expire_on_open().await?;
        Ok(client)
    }

    fn start(store: LocalStore, options: ClientOptions) -> Result<Client, ClientError> {
        let identity = store
            .get(&StoreKey::Identity)?
            .ok_or_else(|| corrupt("the identity is missing"))?;
        let identity =
            Identity::from_bytes(&identity).map_err(|_| corrupt("the identity is unreadable"))?;
        let own_name = store
            .get(&StoreKey::Setting(Setting::OwnName))?
            .and_then(|b| String::from_utf8(b.to_vec()).ok())
            .ok_or_else(|| corrupt("the own name is missing"))?;
        let relay: RelayAddress = store
            .get(&StoreKey::Setting(Setting::RelayAddress))?
            .and_then(|b| std::str::from_utf8(&b).ok()?.parse().ok())
            .ok_or_else(|| corrupt("the relay address is missing"))?;
        // Loading expires nothing: `expire_on_open` does, once the client can count it.
        let state = load::load_state(&store, options.clock.now_secs())?;
        let (pool, rx) = RelayPool::configured(
            options.retry,
            options.transport,
            CONTACT_IDLE,
            options.proxy,
        );
        pool.set_create_token(&relay, access::stored_token(&store)?);
        if let Some(every) = options.next_cert_recheck {
            pool.set_next_cert_recheck(every);
        }
        let relay_ttl = AtomicU64::new(access::stored_ttl(&store)?);
        let store = Arc::new(store);
        access::keep_pins(&store, pool.pins())?;
        let transfers = Transfers::new(
            store.clone(),
            pool.for_transfers(),
            relay.clone(),
            options.clock.clone(),
        );
        let inner = Arc::new(Inner {
            clock: options.clock,
            store,
            identity,
            own_name,
            relay,
            relay_ttl,
            pool,
            state: tokio::sync::Mutex::new(state),
            reserved: Mutex::new(HashSet::new()),
            transfers,
            inbox: tokio::sync::Mutex::new(Inbox {
                rx,
                subs: HashMap::new(),
            }),
            yield_inbox: Notify::new(),
            listeners: Mutex::new(Vec::new()),
            owed_retry: tokio::sync::Mutex::new(burn::RetryTimes::new()),
            work_retry: tokio::sync::Mutex::new(group_work::WorkRetry::new()),
        });
        let (stop, _) = watch::channel(false);
        Ok(Client {
            inner,
            stop,
            task: Mutex::new(None),
            expired_on_open: AtomicUsize::new(0),
        })
    }

    /// The name this installation shows.
    pub fn name(&self) -> &str {
        &self.inner.own_name
    }

    /// The relay this installation receives on.
    pub fn relay(&self) -> &RelayAddress {
        &self.inner.relay
    }

    /// The certificate fingerprints this client accepts from `relay` now: its address's, or
    /// what it learned from the relay's announced rotation.
    pub fn certificate_pins(&self, relay: &RelayAddress) -> crate::net::Pins {
        self.inner.pool.pins().pins(relay)
    }

    /// The home directory.
    pub fn home(&self) -> &Path {
        self.inner.store.home()
    }

    /// A stream of events (new messages, expiries, contacts joining, burns...) as they happen,
    /// driven by a background task that subscribes to every queue, processes pushes and applies
    /// expiries on time. While it runs, [`Client::receive`] still works: the task steps aside
    /// for it. Every event goes to the stream, including those a `receive` call processed
    /// (which that call also returns).
    pub fn subscribe_events(&self) -> mpsc::UnboundedReceiver<ClientEvent> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.inner
            .listeners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(tx);
        let mut task = self.task.lock().unwrap_or_else(PoisonError::into_inner);
        if task.is_none() {
            let inner = self.inner.clone();
            *task = Some(tokio::spawn(inbox::run_events(
                inner,
                self.stop.subscribe(),
            )));
        }
        rx
    }

    /// Stops the background task and closes every relay connection, then releases the home.
    pub async fn close(self) {
        let _ = self.stop.send(true);
        let task = self
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(task) = task {
            let _ = task.await;
        }
        self.inner.pool.close_all();
        let _ = self.inner.store.flush();
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        self.inner.pool.close_all();
    }
}

/// A timer in seconds as a `Duration`.
pub(crate) fn secs(timer: Option<u64>) -> Option<Duration> {
    timer.map(Duration::from_secs)
}
