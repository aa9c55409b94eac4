//! Every quantity a peer controls in the cryptographic layer, with its cap.
//!
//! Decoders check these before allocating or deriving anything. Changing a value here changes
//! the wire format (size buckets) or how much a peer can make us store (skipped keys), so
//! each is documented in `docs/crypto.md`.

use hush_protocol::limits::{DEFAULT_MAX_TTL_SECS, MAX_ENVELOPE_LEN};

/// Most message keys one receiving chain may skip ahead in a single message.
pub const MAX_SKIP: u64 = 1_000;

/// Most skipped message keys stored in all; the oldest are dropped past this cap.
pub const MAX_SKIPPED_TOTAL: usize = 2_000;

/// How long a skipped message key is kept, in seconds: the relay's longest envelope lifetime.
pub const SKIPPED_KEY_LIFETIME_SECS: u64 = DEFAULT_MAX_TTL_SECS;

/// Total sizes, in bytes, of every wire message this code sends: first messages and ratchet
/// messages alike are padded to the smallest of these that holds them, so the relay learns
/// only the bucket, never the kind. The smallest is the smallest power of two that holds a
/// first message (whose fixed fields take [`HANDSHAKE_OVERHEAD`] bytes) with its introduction.
pub const WIRE_BUCKETS: [usize; 4] = [2 * 1024, 4 * 1024, 16 * 1024, 64 * 1024];

/// Length of the padding's end marker, always present after the plaintext.
pub const PADDING_MARKER_LEN: usize = 1;

/// Largest plaintext a single message carries, in bytes.
pub const MAX_PLAINTEXT_LEN: usize = 60 * 1024;

/// Most messages one sending chain carries; a counter never wraps.
pub const MAX_CHAIN_LEN: u64 = u32::MAX as u64;

/// Longest relay address an invitation may carry, in bytes.
pub const MAX_RELAY_ADDRESS_LEN: usize = 512;

/// Longest `hush://invite/...` token accepted, in characters (checked before decoding).
pub const MAX_INVITATION_TOKEN_LEN: usize = 4096;

/// Length of the clear prefix of a ratchet message: the version byte, nothing else.
pub const RATCHET_PREFIX_LEN: usize = 1;

/// Length of an encrypted header: 24-byte nonce, 40-byte header, 16-byte tag.
pub const ENCRYPTED_HEADER_LEN: usize = 24 + 40 + 16;

/// Length of the AEAD tag on a message body.
pub const BODY_TAG_LEN: usize = 16;

/// Bytes of a ratchet message besides its padded plaintext: prefix, encrypted header, body tag.
pub const RATCHET_OVERHEAD: usize = RATCHET_PREFIX_LEN + ENCRYPTED_HEADER_LEN + BODY_TAG_LEN;

/// Length of the handshake fields a first message adds after its ratchet message: the
/// ephemeral key, the ML-KEM-768 ciphertext and the sealed joiner identity, sealed together
/// under a key from the invitation (with a 16-byte tag).
pub const SEALED_HANDSHAKE_FIELDS_LEN: usize = 32 + 1088 + (64 + 64 + 16) + 16;

/// Bytes of a first message besides its padded plaintext.
pub const HANDSHAKE_OVERHEAD: usize = RATCHET_OVERHEAD + SEALED_HANDSHAKE_FIELDS_LEN;

/// Largest wire message of any kind: the largest bucket. It fits in one relay envelope.
pub const MAX_WIRE_MESSAGE_LEN: usize = WIRE_BUCKETS[WIRE_BUCKETS.len() - 1];

/// Plaintext size buckets of version 1 ratchet messages, which are still read: a version 1
/// plaintext was padded up to one of these (plus the end marker), and the bucket's index was
/// sent in the clear.
pub const V1_PADDING_BUCKETS: [usize; 5] = [256, 1024, 4096, 16 * 1024, 60 * 1024];

/// Length of the clear prefix of a version 1 ratchet message: type tag, version, bucket.
pub const V1_RATCHET_PREFIX_LEN: usize = 3;

/// Length of the clear fields before the ratchet message in a version 1 first message: type
/// tag and version, the ephemeral key, the ML-KEM-768 ciphertext and the sealed identity.
pub const V1_HANDSHAKE_PREFIX_LEN: usize = 2 + 32 + 1088 + (64 + 64 + 16);

const _: () = assert!(MAX_WIRE_MESSAGE_LEN <= MAX_ENVELOPE_LEN);
const _: () =
    assert!(HANDSHAKE_OVERHEAD + MAX_PLAINTEXT_LEN + PADDING_MARKER_LEN <= MAX_WIRE_MESSAGE_LEN);
const _: () = assert!(HANDSHAKE_OVERHEAD + PADDING_MARKER_LEN < WIRE_BUCKETS[0]);
const _: () = assert!(
    V1_HANDSHAKE_PREFIX_LEN
        + V1_RATCHET_PREFIX_LEN
        + ENCRYPTED_HEADER_LEN
        + MAX_PLAINTEXT_LEN
        + PADDING_MARKER_LEN
        + BODY_TAG_LEN
        <= MAX_WIRE_MESSAGE_LEN
);
const _: () = assert!(V1_PADDING_BUCKETS.len() < 256);
