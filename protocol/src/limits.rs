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
