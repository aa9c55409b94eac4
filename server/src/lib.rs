//! hush-server: the hush relay, as a library and the `hush-server` binary.
//!
//! Layer: a library above hush-protocol and hush-vault; only its own binary, hush-bench and the
//! tests use it. It never depends on hush-client (see `docs/architecture.md`).
//!
//! What it does: accepts QUIC connections speaking `hush/2` or `hush/1`, keeps queues of
//! opaque envelopes behind the [`store::QueueStore`] trait, authorises senders by capability
//! and recipients by channel-bound Ed25519 signatures, pushes envelopes to subscribers in
//! order, expires what is old and enforces every limit with a typed error. [`Relay::bind`]
//! starts a relay in-process (tests bind port 0). The client side of the protocol lives in
//! `hush_client::net`.
//!
//! Inside: `relay` accepts connections, `conn` reads one connection's requests, `router` decides
//! what each kind of request does, and `ops`, `pipeline`, `blob` and `push` carry it out
//! against [`store`]. `metrics` counts what the relay does and `monitor` serves those counts
//! and the [`health`] check over HTTP (`--metrics`); `refusals` keeps refused connections from
//! flooding the log. [`stats`] reads an idle data directory for `hush-server stats`. The
//! relay's tuning defaults are in [`limits`]. The `testing` feature
//! exports [`store`]'s conformance suite for backends in other crates, and `observe`, a record
//! of which requests each connection carried.
//!
//! What it does not do: see plaintext, know who talks to whom, or federate with other relays.

pub mod access;
pub mod blob;
mod check;
pub mod clock;
pub mod config;
mod conn;
pub mod health;
pub mod limits;
mod metrics;
mod monitor;
#[cfg(feature = "testing")]
pub mod observe;
mod ops;
mod outgoing;
mod pipeline;
mod push;
mod rate;
mod refusals;
pub mod relay;
pub mod rotate;
mod router;
mod shutdown;
pub mod stats;
pub mod store;
pub mod tls;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::RelayConfig;
pub use relay::{Relay, RelayError, RelayHandle};
