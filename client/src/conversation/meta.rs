//! A conversation's own metadata: its timer, its status, and the ids it has seen.
//!
//! The metadata is persisted as one record, separate from the messages. The *seen* set holds
//! a tag of every message received (so a re-delivered copy is shown only once) and of every
//! message the contact unsent before it arrived (a tombstone, so it is never shown). Each entry
//! is kept until the latest moment its message could still arrive unexpired, then forgotten;
//! the set is also capped at [`MAX_SEEN_IDS`].
//!
//! A tag is HMAC-SHA-256 of the message id under the conversation's own random seen key,
//! truncated to [`SEEN_TAG_LEN`] bytes: the record never holds a message id, and the key is
//! shredded with the conversation. Metadata written before the key existed (version 1, raw ids)
//! still decodes: its ids are turned into tags under a key derived from that old record.
//!
//! What it does not do: hold messages (each is its own record, see `message.rs`).

use std::collections::BTreeMap;
use std::fmt;

use hmac::{Hmac, Mac};
use rand_core::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop};

use hush_protocol::codec::{Reader, Writer};

use super::codec::{versioned_reader, DecodeError};
use super::limits::{ENCODING_VERSION, MAX_RELAY_TTL_SECS, MAX_SEEN_IDS};
use super::payload::{read_timer, MessageId, MESSAGE_ID_LEN};

/// Version byte of the metadata written now: version 1 plus the seen key, with tags for ids.
pub const META_VERSION: u8 = 2;

/// Length of a seen tag, in bytes.
pub const SEEN_TAG_LEN: usize = 16;

/// Length of a conversation's seen key, in bytes.
const SEEN_KEY_LEN: usize = 32;

/// Bytes per encoded seen entry: tag (or id in version 1), expiry, tombstone flag.
const SEEN_ENTRY_LEN: usize = SEEN_TAG_LEN + 8 + 1;

const _: () = assert!(MESSAGE_ID_LEN == SEEN_TAG_LEN);

/// The key a conversation's seen tags are made under. Secret: zeroized on drop, never printed.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct SeenKey([u8; SEEN_KEY_LEN]);

impl SeenKey {
    /// A fresh random key.
    pub fn random(rng: &mut (impl RngCore + CryptoRng)) -> SeenKey {
        let mut k = [0u8; SEEN_KEY_LEN];
        rng.fill_bytes(&mut k);
        SeenKey(k)
    }

    /// The tag that stands for message `id` in the seen set.
    pub fn tag(&self, id: &MessageId) -> SeenTag {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
        mac.update(b"hush seen tag\0");
        mac.update(id.as_bytes());
        let full = mac.finalize().into_bytes();
        let mut tag = [0u8; SEEN_TAG_LEN];
        tag.copy_from_slice(&full[..SEEN_TAG_LEN]);
        SeenTag(tag)
    }

    /// The key of a version 1 record, which had none: derived from that record's bytes (which
    /// held the random ids it now replaces by tags).
    fn legacy(old_record: &[u8]) -> SeenKey {
        let mut h = Sha256::new();
        h.update(b"hush seen key from a version 1 meta\0");
        h.update(old_record);
        SeenKey(h.finalize().into())
    }
}

impl fmt::Debug for SeenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SeenKey").finish_non_exhaustive()
    }
}

/// What the seen set holds for one message: a keyed hash of its id, never the id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SeenTag(pub [u8; SEEN_TAG_LEN]);

/// How many seen ids are dropped at once when the set overflows (1% of the cap).
pub(crate) const SEEN_EVICTION_BATCH: usize = MAX_SEEN_IDS / 100;

/// Where a conversation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Messages flow both ways.
    Active,
    /// We blocked the contact: our receiving queue is deleted and nothing more is sent.
    Blocked,
    /// One side burned the conversation; only a new invitation can start another.
    Burned,
}

/// One remembered id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeenEntry {
    /// Forget the id at this moment (unix seconds).
    pub until: u64,
    /// The contact unsent this message: if it arrives, it is dropped unseen.
    pub unsent: bool,
}

/// A conversation's metadata, persisted as one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationMeta {
    /// Where the conversation stands.
    pub status: Status,
    /// The relay's maximum envelope lifetime, in seconds: the hard-expiry bound.
    pub relay_ttl: u64,
    /// The disappearing timer new messages carry, in seconds.
    pub timer: Option<u64>,
    /// When the timer was last changed (unix seconds); a change older than this is ignored.
    pub timer_set_at: u64,
    /// The key the seen tags are made under.
    pub seen_key: SeenKey,
    /// Tags of received and unsent message ids, with when to forget each.
    pub seen: BTreeMap<SeenTag, SeenEntry>,
}

impl ConversationMeta {
    /// Metadata of a new, active conversation without a timer, with a fresh seen key.
    pub fn new(relay_ttl: u64, rng: &mut (impl RngCore + CryptoRng)) -> Self {
        Self {
            status: Status::Active,
            relay_ttl,
            timer: None,
            timer_set_at: 0,
            seen_key: SeenKey::random(rng),
            seen: BTreeMap::new(),
        }
    }

    /// What the seen set holds for message `id`, if anything.
    pub fn seen_entry(&self, id: &MessageId) -> Option<&SeenEntry> {
        self.seen.get(&self.seen_key.tag(id))
    }

    /// Remembers `id` until at least `until`; `unsent` marks it as a tombstone.
    ///
    /// Past [`MAX_SEEN_IDS`] the entries that would be forgotten first are dropped, a batch of
    /// [`SEEN_EVICTION_BATCH`] at a time, so that a full set costs one scan per batch rather than
    /// one per message.
    pub(crate) fn remember(&mut self, id: MessageId, until: u64, unsent: bool) {
        let tag = self.seen_key.tag(&id);
        let entry = self.seen.entry(tag).or_insert(SeenEntry { until, unsent });
        entry.until = entry.until.max(until);
        entry.unsent |= unsent;
        if self.seen.len() > MAX_SEEN_IDS {
            let evict = self.seen.len() - MAX_SEEN_IDS + SEEN_EVICTION_BATCH;
            let mut by_age: Vec<(u64, SeenTag)> =
                self.seen.iter().map(|(id, e)| (e.until, *id)).collect();
            by_age.select_nth_unstable(evict - 1);
            for (_, old) in &by_age[..evict] {
                self.seen.remove(old);
            }
        }
    }

    /// Forgets every id whose time has come. Returns whether anything was forgotten.
    pub(crate) fn prune(&mut self, now: u64) -> bool {
        let before = self.seen.len();
        self.seen.retain(|_, e| e.until > now);
        self.seen.len() != before
    }

    /// The metadata's byte encoding (version [`META_VERSION`]).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(64 + self.seen.len() * SEEN_ENTRY_LEN);
        w.u8(META_VERSION);
        w.u8(match self.status {
            Status::Active => 0,
            Status::Blocked => 1,
            Status::Burned => 2,
        });
        w.u64(self.relay_ttl);
        w.opt_u64(self.timer);
        w.u64(self.timer_set_at);
        w.raw(&self.seen_key.0);
        w.u32(u32::try_from(self.seen.len()).unwrap_or(u32::MAX));
        for (tag, e) in &self.seen {
            w.raw(&tag.0);
            w.u64(e.until);
            w.bool(e.unsent);
        }
        w.finish()
    }

    /// Decodes bytes produced by [`ConversationMeta::encode`], or by the version 1 encoding
    /// (raw ids, no seen key), whose ids become tags under a key derived from those bytes.
    pub fn decode(input: &[u8]) -> Result<Self, DecodeError> {
        match input.first() {
            Some(&META_VERSION) => {
                let mut r = Reader::new(input);
                r.u8()?;
                Self::decode_fields(r, None)
            }
            Some(&ENCODING_VERSION) => {
                let r = versioned_reader(input)?;
                Self::decode_fields(r, Some(input))
            }
            Some(&v) => Err(DecodeError::UnknownVersion(v)),
            None => Err(DecodeError::Truncated),
        }
    }

    /// The fields after the version byte. `legacy` is the whole record if it is version 1
    /// (raw ids, no key: the ids are hashed here), `None` if it holds a seen key and tags.
    fn decode_fields(mut r: Reader<'_>, legacy: Option<&[u8]>) -> Result<Self, DecodeError> {
        let status = match r.u8()? {
            0 => Status::Active,
            1 => Status::Blocked,
            2 => Status::Burned,
            _ => return Err(DecodeError::InvalidValue),
        };
        let relay_ttl = r.u64()?;
        if relay_ttl == 0 || relay_ttl > MAX_RELAY_TTL_SECS {
            return Err(DecodeError::InvalidValue);
        }
        let timer = read_timer(&mut r)?;
        let timer_set_at = r.u64()?;
        let seen_key = match legacy {
            None => SeenKey(r.array()?),
            Some(old) => SeenKey::legacy(old),
        };
        let count = usize::try_from(r.u32()?).unwrap_or(usize::MAX);
        if count > MAX_SEEN_IDS {
            return Err(DecodeError::TooMany {
                count,
                max: MAX_SEEN_IDS,
            });
        }
        if count.saturating_mul(SEEN_ENTRY_LEN) > r.remaining() {
            return Err(DecodeError::Truncated);
        }
        let mut seen = BTreeMap::new();
        for _ in 0..count {
            let raw: [u8; SEEN_TAG_LEN] = r.array()?;
            let tag = match legacy {
                None => SeenTag(raw),
                Some(_) => seen_key.tag(&MessageId(raw)),
            };
            let entry = SeenEntry {
                until: r.u64()?,
                unsent: r.bool()?,
            };
            if seen.insert(tag, entry).is_some() {
                return Err(DecodeError::InvalidValue);
            }
        }
        r.finish()?;
        Ok(Self {
            status,
            relay_ttl,
            timer,
            timer_set_at,
            seen_key,
            seen,
        })
    }
}
