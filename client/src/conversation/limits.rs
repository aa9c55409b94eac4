//! Every quantity in a conversation that a peer (or a stored file) controls, with its cap.
//!
//! Decoders check these before allocating; the state machine checks them before storing.

use hush_protocol::limits::MAX_ENVELOPE_LEN;

/// Version byte that starts every encoding in this module (payloads, message records, metadata).
pub const ENCODING_VERSION: u8 = 1;

/// Longest text body, in bytes of UTF-8.
///
/// A text payload is this plus a few dozen bytes of fields; the crypto layer pads it to a size
/// bucket and adds the ratchet header and tag, and the result must fit one 64 KiB envelope.
pub const MAX_TEXT_LEN: usize = 60_000;

/// Longest group name carried in a `GroupChanges` payload, in bytes of UTF-8.
pub const MAX_GROUP_NAME_LEN: usize = 64;

/// Most membership changes in one `GroupChanges` payload: a log longer than this travels in
/// several payloads.
pub const MAX_GROUP_CHANGES: usize = 160;

/// Longest invitation carried in a `GroupIntroduce` payload, in bytes.
pub const MAX_INVITATION_LEN: usize = 4096;

/// Shortest disappearing timer, in seconds. `None` (not zero) means "no timer".
pub const MIN_TIMER_SECS: u64 = 1;

/// Longest disappearing timer, in seconds (4 weeks).
pub const MAX_TIMER_SECS: u64 = 28 * 24 * 60 * 60;

/// Longest relay address carried in an `Introduce` payload, in bytes.
pub const MAX_RELAY_ADDRESS_LEN: usize = 512;

/// Longest relay TTL a conversation accepts as its hard-expiry bound, in seconds (30 days).
pub const MAX_RELAY_TTL_SECS: u64 = 30 * 24 * 60 * 60;

/// How far ahead of our clock a peer's clock may run before its timestamps stop being trusted
/// for retention decisions, in seconds (1 day).
pub const MAX_CLOCK_SKEW_SECS: u64 = 24 * 60 * 60;

/// Most received-message ids (delivered or unsent) remembered for deduplication.
///
/// Entries are forgotten once the relay can no longer deliver a copy; past this cap the 1% that
/// would be forgotten first go at once.
pub const MAX_SEEN_IDS: usize = 100_000;

/// Most messages (sent and received) kept in one conversation; past it the oldest is deleted.
pub const MAX_STORED_MESSAGES: usize = 100_000;

const _: () = assert!(MAX_TEXT_LEN + 1024 <= MAX_ENVELOPE_LEN);
// A full batch of changes fits one envelope's plaintext with room to spare.
const _: () = assert!(
    MAX_GROUP_CHANGES * (crate::group::MAX_CHANGE_LEN + 2)
        + crate::group::MAX_GROUP_MEMBERS
            * (crate::crypto::PUBLIC_IDENTITY_LEN + 2 + MAX_GROUP_NAME_LEN)
        + MAX_GROUP_NAME_LEN
        + 64
        <= crate::crypto::limits::MAX_PLAINTEXT_LEN
);

/// Whether `timer` is an allowed disappearing timer (`None` is always allowed).
pub const fn timer_in_range(timer: Option<u64>) -> bool {
    match timer {
        None => true,
        Some(secs) => secs >= MIN_TIMER_SECS && secs <= MAX_TIMER_SECS,
    }
}
