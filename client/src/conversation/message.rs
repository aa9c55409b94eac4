//! One stored message: its record, its expiry rules, and its own byte encoding.
//!
//! Each message is a separate record so that the store can shred one message (delete its
//! per-record key) without touching any other. A record knows when it expires:
//!
//! - a message we sent expires at `sent_at + T`;
//! - a message we received expires at `first display + T` once displayed, and before that at the
//!   hard expiry `min(sent_at, received_at) + max(T, relay TTL)`;
//! - without a timer (`T` is `None`) a message does not expire on its own.
//!
//! All times are unix seconds (`u64`) and all arithmetic saturates.
//!
//! What it does not do: decide what happens on expiry (the conversation does) or store anything.

use super::codec::{versioned_reader, versioned_writer, DecodeError};
use super::file::FileRef;
use super::limits::MAX_TEXT_LEN;
use super::payload::{read_timer, MessageBody, MessageId};
use crate::files::Padding;
use crate::group::GroupId;
use hush_protocol::ids::EnvelopeId;

/// Flag of a record that holds a file whose blob is not padded.
const RECORD_FILE: u8 = 1;
/// Flag of a record that holds a file whose blob is padded to a Padmé length.
const RECORD_FILE_PADME: u8 = 2;
/// Flag of the section that names the group a message belongs to.
const RECORD_GROUP: u8 = 3;

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// We sent it.
    Sent,
    /// The contact sent it.
    Received,
}

/// One message as the conversation keeps it and the store persists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRecord {
    /// The sender-chosen id.
    pub id: MessageId,
    /// Who wrote it.
    pub direction: Direction,
    /// When it was sent (unix seconds). For received messages this is the sender's claim.
    pub sent_at: u64,
    /// When we received it (unix seconds); equal to `sent_at` for messages we sent.
    pub received_at: u64,
    /// The disappearing timer carried by the message, in seconds.
    pub timer: Option<u64>,
    /// Whether it is a view-once message.
    pub view_once: bool,
    /// The envelope id the relay returned on send (sent messages only), kept for retraction.
    pub envelope_id: Option<EnvelopeId>,
    /// When it was first displayed (received messages only).
    pub displayed_at: Option<u64>,
    /// The text. `None` for the stub a sender keeps of a view-once message, and for a file.
    pub body: Option<MessageBody>,
    /// The file, for a file message.
    pub file: Option<Box<FileRef>>,
    /// The group the message was sent in, `None` for a message of the 1:1 conversation.
    pub group: Option<GroupId>,
}

impl MessageRecord {
    /// The record of a message we send now, without its text or file yet.
    pub(super) fn sent(id: MessageId, now: u64, timer: Option<u64>, view_once: bool) -> Self {
        Self::new(id, Direction::Sent, now, now, timer, view_once)
    }

    /// The record of a message the contact sent at `sent_at` and we received `now`, without its
    /// text or file yet.
    pub(super) fn received(
        id: MessageId,
        sent_at: u64,
        now: u64,
        timer: Option<u64>,
        view_once: bool,
    ) -> Self {
        Self::new(id, Direction::Received, sent_at, now, timer, view_once)
    }

    fn new(
        id: MessageId,
        direction: Direction,
        sent_at: u64,
        received_at: u64,
        timer: Option<u64>,
        view_once: bool,
    ) -> Self {
        MessageRecord {
            id,
            direction,
            sent_at,
            received_at,
            timer,
            view_once,
            envelope_id: None,
            displayed_at: None,
            body: None,
            file: None,
            group: None,
        }
    }

    /// The moment (unix seconds) at which this message must be gone, if it ever must.
    ///
    /// A received view-once message that has been displayed is already gone; it never reaches
    /// this function in a record.
    pub fn expires_at(&self, relay_ttl: u64) -> Option<u64> {
        let timer = self.timer?;
        match self.direction {
            Direction::Sent => Some(self.sent_at.saturating_add(timer)),
            Direction::Received => Some(match self.displayed_at {
                Some(shown) => shown.saturating_add(timer),
                None => hard_expiry(self.sent_at, self.received_at, timer, relay_ttl),
            }),
        }
    }

    /// Whether the message must be gone at `now`.
    pub fn is_expired(&self, now: u64, relay_ttl: u64) -> bool {
        self.expires_at(relay_ttl).is_some_and(|at| at <= now)
    }

    /// The record's byte encoding, independent of every other record.
    pub fn encode(&self) -> Vec<u8> {
        let body_len = self.body.as_ref().map_or(0, MessageBody::len);
        let mut w = versioned_writer(80 + body_len);
        w.raw(self.id.as_bytes());
        w.u8(match self.direction {
            Direction::Sent => 0,
            Direction::Received => 1,
        });
        w.u64(self.sent_at);
        w.u64(self.received_at);
        w.opt_u64(self.timer);
        w.bool(self.view_once);
        w.opt_raw(self.envelope_id.as_ref().map(|e| &e.as_bytes()[..]));
        w.opt_u64(self.displayed_at);
        match &self.body {
            None => w.u8(0),
            Some(b) => {
                w.u8(1);
                w.bytes(b.as_str().as_bytes());
            }
        }
        // Absent for a text, so that records written before files existed still decode. The
        // flag says how the blob is padded: 1 not at all (written before blobs were padded),
        // 2 to a Padmé length.
        if let Some(file) = &self.file {
            w.u8(match file.padding {
                Padding::None => RECORD_FILE,
                Padding::Padme => RECORD_FILE_PADME,
            });
            file.encode_record(&mut w);
        }
        // Absent outside groups, for the same reason.
        if let Some(group) = &self.group {
            w.u8(RECORD_GROUP);
            w.raw(&group.0);
        }
        w.finish()
    }

    /// Decodes bytes produced by [`MessageRecord::encode`].
    pub fn decode(input: &[u8]) -> Result<Self, DecodeError> {
        let mut r = versioned_reader(input)?;
        let id = MessageId(r.array()?);
        let direction = match r.u8()? {
            0 => Direction::Sent,
            1 => Direction::Received,
            _ => return Err(DecodeError::InvalidValue),
        };
        let sent_at = r.u64()?;
        let received_at = r.u64()?;
        let timer = read_timer(&mut r)?;
        let view_once = r.bool()?;
        let envelope_id = r.opt_array()?.map(EnvelopeId::from_bytes);
        let displayed_at = r.opt_u64()?;
        let body = if r.bool()? {
            Some(MessageBody::new(r.str(MAX_TEXT_LEN)?))
        } else {
            None
        };
        // Optional sections, each at most once and in this order: the file, then the group.
        let (mut file, mut group) = (None, None);
        while r.remaining() > 0 {
            let flag = r.u8()?;
            match flag {
                RECORD_FILE | RECORD_FILE_PADME if file.is_none() && group.is_none() => {
                    let padding = if flag == RECORD_FILE {
                        Padding::None
                    } else {
                        Padding::Padme
                    };
                    file = Some(Box::new(FileRef::decode_record(&mut r, padding)?));
                }
                RECORD_GROUP if group.is_none() => group = Some(GroupId(r.array()?)),
                _ => return Err(DecodeError::TrailingBytes),
            }
        }
        Ok(Self {
            envelope_id,
            displayed_at,
            body,
            file,
            group,
            ..Self::new(id, direction, sent_at, received_at, timer, view_once)
        })
    }
}

/// When an unread received message must be gone: `min(sent_at, received_at) + max(T, ttl)`.
///
/// Taking the earlier of the sender's claim and our own receipt time means a peer's clock that
/// runs ahead cannot stretch a message's life.
pub fn hard_expiry(sent_at: u64, received_at: u64, timer: u64, relay_ttl: u64) -> u64 {
    sent_at
        .min(received_at)
        .saturating_add(timer.max(relay_ttl))
}
