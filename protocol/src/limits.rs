//! Every quantity a peer controls, with its cap.
//!
//! Decoders check these before allocating. Relay operators may lower the configurable ones
//! (see the relay's configuration); they can never raise the protocol maximums.

/// Largest envelope body a relay accepts, in bytes (64 KiB).
pub const MAX_ENVELOPE_LEN: usize = 64 * 1024;

/// Largest frame on the wire, in bytes: an envelope plus headroom for the request fields.
pub const MAX_FRAME_LEN: usize = MAX_ENVELOPE_LEN + 1024;

/// Longest host name in a relay address, in bytes (the DNS limit).
pub const MAX_HOST_LEN: usize = 253;

/// The relay's maximum envelope lifetime unless its operator configures another (7 days).
pub const DEFAULT_MAX_TTL_SECS: u64 = 7 * 24 * 60 * 60;

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

/// Default sustained request rate per connection, in requests per second.
pub const DEFAULT_REQUESTS_PER_SEC: u32 = 2_000;

/// Default burst of requests a connection may send above its sustained rate.
pub const DEFAULT_REQUEST_BURST: u32 = 4_000;

/// Default cap on queues one connection may create.
pub const DEFAULT_MAX_QUEUES_PER_CONNECTION: u32 = 1_000;

/// Default cap on subscriptions one connection may hold.
pub const DEFAULT_MAX_SUBSCRIPTIONS_PER_CONNECTION: u32 = 1_000;

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

/// Bidirectional streams a client may open at once: the one request stream.
pub const MAX_BIDI_STREAMS: u32 = 1;

/// Largest piece of blob data in one `BlobWrite` request or one `BlobData` reply. It fits in a
/// frame with room for the request's other fields.
pub const MAX_BLOB_CHUNK: usize = 64 * 1024;

/// Default blob lifetime on a relay: 48 hours. Relays may configure another.
pub const DEFAULT_BLOB_TTL_SECS: u64 = 48 * 60 * 60;

/// Default largest blob a relay accepts: 1 GiB. Relays may configure another.
pub const DEFAULT_BLOB_MAX_BYTES: u64 = 1024 * 1024 * 1024;
