//! Every quantity a peer controls in the cryptographic layer, with its cap.
//!
//! Decoders check these before allocating or deriving anything. Changing a value here changes
//! the wire format (padding buckets) or how much a peer can make us store (skipped keys), so
//! each is documented in `docs/crypto.md`.

use hush_protocol::limits::{DEFAULT_MAX_TTL_SECS, MAX_ENVELOPE_LEN};

/// Most message keys one receiving chain may skip ahead in a single message.
pub const MAX_SKIP: u64 = 1_000;

/// Most skipped message keys stored in all; the oldest are dropped past this cap.
pub const MAX_SKIPPED_TOTAL: usize = 2_000;

/// How long a skipped message key is kept, in seconds: the relay's longest envelope lifetime.
pub const SKIPPED_KEY_LIFETIME_SECS: u64 = DEFAULT_MAX_TTL_SECS;

/// Plaintext size buckets in bytes. A plaintext is padded up to the smallest bucket that holds
/// it (plus a one-byte end marker), so the relay learns only the bucket.
pub const PADDING_BUCKETS: [usize; 5] = [256, 1024, 4096, 16 * 1024, 60 * 1024];

/// Length of the padding's end marker, always present after the plaintext.
pub const PADDING_MARKER_LEN: usize = 1;

/// Largest plaintext a single message carries, in bytes (the largest bucket).
pub const MAX_PLAINTEXT_LEN: usize = PADDING_BUCKETS[PADDING_BUCKETS.len() - 1];

/// Most messages one sending chain carries; a counter never wraps.
pub const MAX_CHAIN_LEN: u64 = u32::MAX as u64;

/// Longest relay address an invitation may carry, in bytes.
pub const MAX_RELAY_ADDRESS_LEN: usize = 512;

/// Longest `hush://invite/...` token accepted, in characters (checked before decoding).
pub const MAX_INVITATION_TOKEN_LEN: usize = 4096;

/// Length of the clear prefix of a ratchet message: type tag, version, padding bucket.
pub const RATCHET_PREFIX_LEN: usize = 3;

/// Length of an encrypted header: 24-byte nonce, 40-byte header, 16-byte tag.
pub const ENCRYPTED_HEADER_LEN: usize = 24 + 40 + 16;

/// Length of the AEAD tag on a message body.
pub const BODY_TAG_LEN: usize = 16;

/// Largest ratchet message on the wire, in bytes.
pub const MAX_RATCHET_MESSAGE_LEN: usize = RATCHET_PREFIX_LEN
    + ENCRYPTED_HEADER_LEN
    + MAX_PLAINTEXT_LEN
    + PADDING_MARKER_LEN
    + BODY_TAG_LEN;

/// Length of the handshake fields before the embedded ratchet message: tag and version, the
/// ephemeral key, the ML-KEM-768 ciphertext and the sealed joiner identity.
pub const HANDSHAKE_PREFIX_LEN: usize = 2 + 32 + 1088 + (64 + 64 + 16);

/// Largest handshake first message on the wire, in bytes.
pub const MAX_HANDSHAKE_MESSAGE_LEN: usize = HANDSHAKE_PREFIX_LEN + MAX_RATCHET_MESSAGE_LEN;

/// Largest wire message of any kind; it fits in one relay envelope.
pub const MAX_WIRE_MESSAGE_LEN: usize = MAX_HANDSHAKE_MESSAGE_LEN;

const _: () = assert!(MAX_WIRE_MESSAGE_LEN <= MAX_ENVELOPE_LEN);
const _: () = assert!(PADDING_BUCKETS.len() < 256);
