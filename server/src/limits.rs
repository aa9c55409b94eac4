//! The relay's own tuning: default quotas and caps an operator may change, and the fixed sizes of
//! each connection's buffers and QUIC windows.
//!
//! None of these is part of the wire format, and a client never needs them: a client learns a
//! relay's limits only from its answers (`QueueFull`, `RateLimited`, a refused connection). The
//! caps the wire format itself sets (frame and envelope size, blob chunk, streams per
//! connection, the default envelope lifetime a client assumes) stay in `hush_protocol::limits`.
//!
//! What it does not do: read settings (`config.rs` assembles [`crate::RelayConfig`] from these
//! defaults, the TOML file, the environment and the flags) or enforce anything itself.

use std::time::Duration;

use hush_protocol::limits::MAX_FRAME_LEN;

/// Default cap on envelopes pending in one queue.
pub const DEFAULT_QUEUE_MAX_MESSAGES: u32 = 10_000;

/// Default cap on body bytes pending in one queue (64 MiB).
pub const DEFAULT_QUEUE_MAX_BYTES: u64 = 64 * 1024 * 1024;

/// Default time after which a queue with no send, subscribe or ack is deleted (30 days).
pub const DEFAULT_QUEUE_IDLE_SECS: u64 = 30 * 24 * 60 * 60;

/// Default cap on concurrent connections to one relay.
pub const DEFAULT_MAX_CONNECTIONS: usize = 20_000;

/// Default cap on TLS handshakes in progress at once.
pub const DEFAULT_MAX_HANDSHAKES: usize = 256;

/// Default sustained request rate per connection, in requests per second. A connection that
/// sends and acks as fast as its 32 pipelined requests allow made about 3,500 a second on a
/// 2-core machine (`hush-bench relay --clients 10`, see `docs/performance.md`); this leaves
/// room for a faster machine. Blob reads and writes are not counted.
pub const DEFAULT_REQUESTS_PER_SEC: u32 = 10_000;

/// Default burst of requests a connection may send above its sustained rate.
pub const DEFAULT_REQUEST_BURST: u32 = 20_000;

/// Default cap on queues one connection may create.
pub const DEFAULT_MAX_QUEUES_PER_CONNECTION: u32 = 1_000;

/// Default cap on subscriptions one connection may hold.
pub const DEFAULT_MAX_SUBSCRIPTIONS_PER_CONNECTION: u32 = 1_000;

/// Default blob lifetime on a relay: 48 hours. Relays may configure another.
pub const DEFAULT_BLOB_TTL_SECS: u64 = 48 * 60 * 60;

/// Default largest blob a relay accepts: 1 GiB. Relays may configure another.
pub const DEFAULT_BLOB_MAX_BYTES: u64 = 1024 * 1024 * 1024;

/// Frames the relay buffers for one connection's writer before it stops reading requests and
/// stops pulling envelopes from the store.
pub const CONNECTION_OUTGOING_FRAMES: usize = 64;

/// Bytes the relay buffers for one connection's writer (room for a few maximal frames).
pub const CONNECTION_OUTGOING_BYTES: usize = 4 * MAX_FRAME_LEN;

/// Sends and acks the relay works on at once for one connection (each waits for a group commit);
/// while that many are in flight the relay reads no further requests from the connection.
pub const CONNECTION_PIPELINED_REQUESTS: usize = 32;

/// Body bytes of the sends the relay works on at once for one connection.
pub const CONNECTION_PIPELINED_BYTES: usize = 4 * MAX_FRAME_LEN;

/// Envelopes a subscription fetches from the store in one batch.
pub const PUSH_BATCH: usize = 32;

/// Per-connection QUIC receive window, in bytes (bounded; quinn's default is unbounded).
pub const CONNECTION_RECEIVE_WINDOW: u32 = 512 * 1024;

/// Per-stream QUIC receive window, in bytes: room for a few maximal frames.
pub const STREAM_RECEIVE_WINDOW: u32 = 4 * MAX_FRAME_LEN as u32;

/// Per-connection QUIC send window, in bytes.
pub const CONNECTION_SEND_WINDOW: u64 = 1024 * 1024;

/// How long a request frame may take to arrive whole, counted from its first byte. A
/// connection whose frame is still incomplete then is closed with `RequestTimeout`, whatever
/// else it sends (QUIC keep-alives reset only the idle timer). Ten seconds carry a maximal
/// frame at about 55 kbit/s.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(10);

/// Shortest interval between two log lines about refused connections: refusals in between are
/// counted and reported in the next line.
pub const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(60);
