//! A conversation's own metadata: its timer, its status, and the ids it has seen.
//!
//! The metadata is persisted as one record, separate from the messages. The *seen* set holds
//! the id of every message received (so a re-delivered copy is shown only once) and of every
//! message the contact unsent before it arrived (a tombstone, so it is never shown). Each entry
//! is kept until the latest moment its message could still arrive unexpired, then forgotten;
//! the set is also capped at [`MAX_SEEN_IDS`].
//!
//! What it does not do: hold messages (each is its own record, see `message.rs`).

use std::collections::BTreeMap;

use super::codec::{versioned_reader, versioned_writer, DecodeError};
use super::limits::{MAX_RELAY_TTL_SECS, MAX_SEEN_IDS};
use super::payload::{read_timer, MessageId, MESSAGE_ID_LEN};

/// Bytes per encoded seen entry: id, expiry, tombstone flag.
const SEEN_ENTRY_LEN: usize = MESSAGE_ID_LEN + 8 + 1;

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
    /// Received and unsent message ids, with when to forget each.
    pub seen: BTreeMap<MessageId, SeenEntry>,
}

impl ConversationMeta {
    /// Metadata of a new, active conversation without a timer.
    pub fn new(relay_ttl: u64) -> Self {
        Self {
            status: Status::Active,
            relay_ttl,
            timer: None,
            timer_set_at: 0,
            seen: BTreeMap::new(),
        }
    }

    /// Remembers `id` until at least `until`; `unsent` marks it as a tombstone.
    ///
    /// Past [`MAX_SEEN_IDS`] the entries that would be forgotten first are dropped, a batch of
    /// [`SEEN_EVICTION_BATCH`] at a time, so that a full set costs one scan per batch rather than
    /// one per message.
    pub(crate) fn remember(&mut self, id: MessageId, until: u64, unsent: bool) {
        let entry = self.seen.entry(id).or_insert(SeenEntry { until, unsent });
        entry.until = entry.until.max(until);
        entry.unsent |= unsent;
        if self.seen.len() > MAX_SEEN_IDS {
            let evict = self.seen.len() - MAX_SEEN_IDS + SEEN_EVICTION_BATCH;
            let mut by_age: Vec<(u64, MessageId)> =
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

    /// The metadata's byte encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = versioned_writer(32 + self.seen.len() * SEEN_ENTRY_LEN);
        w.u8(match self.status {
            Status::Active => 0,
            Status::Blocked => 1,
            Status::Burned => 2,
        });
        w.u64(self.relay_ttl);
        w.opt_u64(self.timer);
        w.u64(self.timer_set_at);
        w.u32(u32::try_from(self.seen.len()).unwrap_or(u32::MAX));
        for (id, e) in &self.seen {
            w.raw(id.as_bytes());
            w.u64(e.until);
            w.bool(e.unsent);
        }
        w.finish()
    }

    /// Decodes bytes produced by [`ConversationMeta::encode`].
    pub fn decode(input: &[u8]) -> Result<Self, DecodeError> {
        let mut r = versioned_reader(input)?;
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
            let id = MessageId(r.array()?);
            let entry = SeenEntry {
                until: r.u64()?,
                unsent: r.bool()?,
            };
            if seen.insert(id, entry).is_some() {
                return Err(DecodeError::InvalidValue);
            }
        }
        r.finish()?;
        Ok(Self {
            status,
            relay_ttl,
            timer,
            timer_set_at,
            seen,
        })
    }
}
