//! The caps the protocol itself sets: sizes on the wire, streams per connection, and the
//! default envelope lifetime both sides assume.
//!
//! Decoders check these before allocating. Relay operators may lower the configurable ones
//! (see the relay's configuration); they can never raise the protocol maximums.
//!
//! What it does not hold: the relay's own tuning (queue quotas, connection and request caps,
//! buffer and QUIC window sizes, blob defaults), which only the relay needs; that lives in
//! the relay crate's `limits` module.

/// Largest envelope body a relay accepts, in bytes (64 KiB).
pub const MAX_ENVELOPE_LEN: usize = 64 * 1024;

/// Largest frame on the wire, in bytes: an envelope plus headroom for the request fields.
pub const MAX_FRAME_LEN: usize = MAX_ENVELOPE_LEN + 1024;

/// Longest host name in a relay address, in bytes (the DNS limit).
pub const MAX_HOST_LEN: usize = 253;

/// Most hosts one relay address lists (`hush://h1:4433,h2:4433#...`): the nodes of one relay.
pub const MAX_RELAY_HOSTS: usize = 8;

/// Longest relay address, in bytes, as it travels in invitations and introductions.
pub const MAX_ADDRESS_LEN: usize = 512;

/// The relay's maximum envelope lifetime unless its operator configures another (7 days).
pub const DEFAULT_MAX_TTL_SECS: u64 = 7 * 24 * 60 * 60;

/// Bidirectional streams a client may open at once: the one request stream.
pub const MAX_BIDI_STREAMS: u32 = 1;

/// Largest piece of blob data in one `BlobWrite` request or one `BlobData` reply. It fits in a
/// frame with room for the request's other fields.
pub const MAX_BLOB_CHUNK: usize = 64 * 1024;

/// Fewest characters in a create token: short tokens are guessable.
pub const MIN_TOKEN_LEN: usize = 16;

/// Most characters in a create token.
pub const MAX_TOKEN_LEN: usize = 128;

/// Most envelope ids one `AckMany` request (`hush/2`) carries.
pub const MAX_ACK_BATCH: usize = 256;

/// Most envelopes one `Envelopes` push (`hush/2`) carries; the frame limit bounds their bytes.
pub const MAX_PUSH_BATCH: usize = 256;
