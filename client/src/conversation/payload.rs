//! The plaintext application payloads that travel inside the ratchet, and their byte format.
//!
//! Format (see `docs/conversation.md`): a version byte, a kind tag, then the kind's fields.
//! The decoder rejects truncation, trailing bytes, unknown versions and tags, oversize fields
//! and out-of-range values with a typed [`DecodeError`], and never allocates more than a
//! field's cap.
//!
//! What it does not do: padding or encryption (the crypto layer pads and seals these bytes).

use std::fmt;

use hush_protocol::codec::{Reader, Writer};
use hush_protocol::ids::{SendCapability, SenderId, ID_LEN, SEND_CAP_LEN};
use hush_protocol::limits::MAX_ENVELOPE_LEN;
use hush_protocol::RelayAddress;
use rand_core::{CryptoRng, RngCore};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::codec::{read_relay, versioned_reader, versioned_writer, write_relay, DecodeError};
use super::file::FileRef;
use super::limits::{
    timer_in_range, MAX_GROUP_CHANGES, MAX_GROUP_NAME_LEN, MAX_INVITATION_LEN, MAX_TEXT_LEN,
};
use crate::files::Padding;
use crate::group::{GroupId, CHANGE_HASH_LEN, MAX_CHANGE_LEN, MAX_GROUP_MEMBERS};

/// Length in bytes of a [`MessageId`].
pub const MESSAGE_ID_LEN: usize = 16;

/// Kind tag of [`Payload::Text`].
pub const TAG_TEXT: u8 = 1;
/// Kind tag of [`Payload::SetTimer`].
pub const TAG_SET_TIMER: u8 = 2;
/// Kind tag of [`Payload::Unsend`].
pub const TAG_UNSEND: u8 = 3;
/// Kind tag of [`Payload::Burn`].
pub const TAG_BURN: u8 = 4;
/// Kind tag of [`Payload::Introduce`].
pub const TAG_INTRODUCE: u8 = 5;
/// Kind tag of [`Payload::File`] whose blob is not padded (sent before blobs were padded).
pub const TAG_FILE: u8 = 6;
/// Kind tag of [`Payload::File`] whose blob is padded to a Padmé length (see
/// `crate::files::padding`). The fields are those of [`TAG_FILE`].
pub const TAG_FILE_PADDED: u8 = 7;
/// Kind tag of [`Payload::InGroup`].
pub const TAG_IN_GROUP: u8 = 8;
/// Kind tag of [`Payload::GroupChanges`].
pub const TAG_GROUP_CHANGES: u8 = 9;
/// Kind tag of [`Payload::GroupIntroduce`].
pub const TAG_GROUP_INTRODUCE: u8 = 10;
/// Length of a member's public identity in group payloads.
pub const MEMBER_LEN: usize = crate::crypto::PUBLIC_IDENTITY_LEN;

/// A message's identity: 16 random bytes chosen by its sender.
///
/// It is what deduplication, display and unsend refer to. Not secret.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(pub [u8; MESSAGE_ID_LEN]);

impl MessageId {
    /// A fresh random id.
    pub fn random<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        let mut bytes = [0u8; MESSAGE_ID_LEN];
        rng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// The raw bytes of the id.
    pub const fn as_bytes(&self) -> &[u8; MESSAGE_ID_LEN] {
        &self.0
    }

    /// Lowercase hex spelling, as front ends show it.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Parses [`MessageId::to_hex`]'s spelling (either case); `None` if it is not one.
    pub fn from_hex(s: &str) -> Option<MessageId> {
        if s.len() != MESSAGE_ID_LEN * 2 || !s.is_ascii() {
            return None;
        }
        let mut out = [0u8; MESSAGE_ID_LEN];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(MessageId(out))
    }
}

impl fmt::Debug for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MessageId(")?;
        for b in &self.0[..4] {
            write!(f, "{b:02x}")?;
        }
        f.write_str("..)")
    }
}

/// The text of a message. Zeroized on drop; its `Debug` prints only its length.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct MessageBody(String);

impl MessageBody {
    /// Wraps a text. Its length is checked where it is used (compose and decode).
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the text is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for MessageBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MessageBody({} bytes)", self.0.len())
    }
}

/// One application payload: what the ratchet encrypts.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Payload {
    /// A text message.
    Text {
        /// The message id, random, chosen by the sender.
        id: MessageId,
        /// When the sender sent it (unix seconds, the sender's clock).
        sent_at: u64,
        /// The disappearing timer that applies to this message, in seconds.
        timer: Option<u64>,
        /// Deleted by the recipient right after its first display.
        view_once: bool,
        /// The text, at most [`MAX_TEXT_LEN`] bytes.
        body: MessageBody,
    },
    /// The sender changed the conversation's disappearing timer.
    SetTimer {
        /// The new timer in seconds, `None` to turn it off.
        timer: Option<u64>,
        /// When it was changed (unix seconds, the sender's clock); the later change wins.
        set_at: u64,
    },
    /// The sender retracts one of its messages; the recipient deletes it for real.
    Unsend {
        /// The message to delete.
        id: MessageId,
    },
    /// The sender destroyed the conversation; the recipient erases it too.
    Burn,
    /// A file: where its encrypted blob is and how to open it. Timers, view-once and unsend
    /// apply as to a text.
    File {
        /// The message id, random, chosen by the sender.
        id: MessageId,
        /// When the sender sent it (unix seconds, the sender's clock).
        sent_at: u64,
        /// The disappearing timer that applies to this message, in seconds.
        timer: Option<u64>,
        /// Deleted by the recipient right after it is saved.
        view_once: bool,
        /// The uploaded file (never with a write capability).
        file: Box<FileRef>,
    },
    /// A text, a file or an unsend that belongs to a group conversation: sent to each member
    /// over its pairwise session (see `docs/groups.md`).
    InGroup {
        /// The group.
        group: GroupId,
        /// The hash of the last change of the author's selected log: a member whose log
        /// differs asks for or sends the changes the other lacks.
        head: [u8; CHANGE_HASH_LEN],
        /// A [`Payload::Text`], [`Payload::File`] or [`Payload::Unsend`]; the decoder refuses
        /// any other kind.
        payload: Box<Payload>,
    },
    /// Signed membership changes of a group, as the sender's log holds them. The conversation
    /// ignores them; the client checks and applies them.
    GroupChanges {
        /// The group.
        group: GroupId,
        /// The sender's name for the group: a suggestion for a member who does not know it yet.
        name: String,
        /// Encoded changes (`crate::group::Change`), at most [`MAX_GROUP_CHANGES`].
        changes: Vec<Vec<u8>>,
        /// The sender's names for members (their public identities): suggestions for a member
        /// who must name them, at most [`crate::group::MAX_GROUP_MEMBERS`].
        names: Vec<([u8; MEMBER_LEN], String)>,
        /// Whether the sender asks for our changes in return (its log lacked a change we
        /// named).
        reply: bool,
    },
    /// An introduction between two members who are not yet contacts: a one-time invitation
    /// made by a member just added, carried by the member who added them.
    GroupIntroduce {
        /// The group.
        group: GroupId,
        /// `true` from the new member to the adder: "forward this to `member`"; `false` from the
        /// adder to that member: "`member` invites you".
        forward: bool,
        /// The other member's public identity.
        member: [u8; MEMBER_LEN],
        /// The sender's name for the member who made the invitation (empty when forwarding).
        name: String,
        /// The `hush://invite/...` token, at most [`MAX_INVITATION_LEN`] bytes.
        invitation: String,
    },
    /// The joiner's reply queue, carried in the handshake's first message.
    Introduce {
        /// The relay that holds the joiner's queue.
        relay: RelayAddress,
        /// The queue's sender id.
        sender_id: SenderId,
        /// The capability that authorises sends to that queue.
        send_cap: SendCapability,
    },
}

impl PartialEq for Payload {
    fn eq(&self, other: &Self) -> bool {
        use Payload::*;
        match (self, other) {
            (
                Text {
                    id,
                    sent_at,
                    timer,
                    view_once,
                    body,
                },
                Text {
                    id: i2,
                    sent_at: s2,
                    timer: t2,
                    view_once: v2,
                    body: b2,
                },
            ) => id == i2 && sent_at == s2 && timer == t2 && view_once == v2 && body == b2,
            (
                SetTimer { timer, set_at },
                SetTimer {
                    timer: t2,
                    set_at: s2,
                },
            ) => timer == t2 && set_at == s2,
            (
                File {
                    id,
                    sent_at,
                    timer,
                    view_once,
                    file,
                },
                File {
                    id: i2,
                    sent_at: s2,
                    timer: t2,
                    view_once: v2,
                    file: f2,
                },
            ) => id == i2 && sent_at == s2 && timer == t2 && view_once == v2 && file == f2,
            (Unsend { id }, Unsend { id: i2 }) => id == i2,
            (
                InGroup {
                    group,
                    head,
                    payload,
                },
                InGroup {
                    group: g2,
                    head: h2,
                    payload: p2,
                },
            ) => group == g2 && head == h2 && payload == p2,
            (
                GroupChanges {
                    group,
                    name,
                    changes,
                    names,
                    reply,
                },
                GroupChanges {
                    group: g2,
                    name: n2,
                    changes: c2,
                    names: m2,
                    reply: r2,
                },
            ) => group == g2 && name == n2 && changes == c2 && names == m2 && reply == r2,
            (
                GroupIntroduce {
                    group,
                    forward,
                    member,
                    name,
                    invitation,
                },
                GroupIntroduce {
                    group: g2,
                    forward: f2,
                    member: m2,
                    name: n2,
                    invitation: i2,
                },
            ) => {
                group == g2
                    && forward == f2
                    && member == m2
                    && name == n2
                    && bool::from(invitation.as_bytes().ct_eq(i2.as_bytes()))
            }
            (Burn, Burn) => true,
            (
                Introduce {
                    relay,
                    sender_id,
                    send_cap,
                },
                Introduce {
                    relay: r2,
                    sender_id: s2,
                    send_cap: c2,
                },
            ) => {
                relay == r2
                    && sender_id == s2
                    && bool::from(send_cap.as_bytes().ct_eq(c2.as_bytes()))
            }
            _ => false,
        }
    }
}

impl Eq for Payload {}

impl Payload {
    /// The kind tag this payload is encoded with.
    pub fn tag(&self) -> u8 {
        match self {
            Payload::Text { .. } => TAG_TEXT,
            Payload::SetTimer { .. } => TAG_SET_TIMER,
            Payload::Unsend { .. } => TAG_UNSEND,
            Payload::Burn => TAG_BURN,
            Payload::Introduce { .. } => TAG_INTRODUCE,
            Payload::InGroup { .. } => TAG_IN_GROUP,
            Payload::GroupChanges { .. } => TAG_GROUP_CHANGES,
            Payload::GroupIntroduce { .. } => TAG_GROUP_INTRODUCE,
            Payload::File { file, .. } => match file.padding {
                Padding::None => TAG_FILE,
                Padding::Padme => TAG_FILE_PADDED,
            },
        }
    }

    /// The id of the message this payload carries, for a text or a file.
    pub fn message_id(&self) -> Option<MessageId> {
        match self {
            Payload::Text { id, .. } | Payload::File { id, .. } => Some(*id),
            Payload::InGroup { payload, .. } => payload.message_id(),
            _ => None,
        }
    }

    /// The byte encoding, zeroized when dropped (it holds the message text). Fields are assumed
    /// within their caps (the constructors in this module and [`Payload::decode`] guarantee it).
    /// The buffer is sized for the largest payload up front, so it never grows and leaves no
    /// copy of the text behind in freed memory.
    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut w = versioned_writer(MAX_ENVELOPE_LEN);
        self.encode_into(&mut w);
        Zeroizing::new(w.finish())
    }

    /// Writes the kind tag and the fields.
    fn encode_into(&self, w: &mut Writer) {
        w.u8(self.tag());
        match self {
            Payload::Text {
                id,
                sent_at,
                timer,
                view_once,
                body,
            } => {
                w.raw(id.as_bytes());
                w.u64(*sent_at);
                w.opt_u64(*timer);
                w.bool(*view_once);
                w.bytes(body.as_str().as_bytes());
            }
            Payload::SetTimer { timer, set_at } => {
                w.opt_u64(*timer);
                w.u64(*set_at);
            }
            Payload::File {
                id,
                sent_at,
                timer,
                view_once,
                file,
            } => {
                w.raw(id.as_bytes());
                w.u64(*sent_at);
                w.opt_u64(*timer);
                w.bool(*view_once);
                file.encode_payload(w);
            }
            Payload::Unsend { id } => w.raw(id.as_bytes()),
            Payload::Burn => {}
            Payload::Introduce {
                relay,
                sender_id,
                send_cap,
            } => {
                write_relay(w, relay);
                w.raw(sender_id.as_bytes());
                w.raw(send_cap.as_bytes());
            }
            Payload::InGroup {
                group,
                head,
                payload,
            } => {
                w.raw(&group.0);
                w.raw(head);
                payload.encode_into(w);
            }
            Payload::GroupChanges {
                group,
                name,
                changes,
                names,
                reply,
            } => {
                w.raw(&group.0);
                w.bool(*reply);
                w.bytes16(name.as_bytes());
                w.u16(u16::try_from(changes.len()).unwrap_or(u16::MAX));
                for change in changes {
                    w.bytes16(change);
                }
                w.u16(u16::try_from(names.len()).unwrap_or(u16::MAX));
                for (member, name) in names {
                    w.raw(member);
                    w.bytes16(name.as_bytes());
                }
            }
            Payload::GroupIntroduce {
                group,
                forward,
                member,
                name,
                invitation,
            } => {
                w.raw(&group.0);
                w.bool(*forward);
                w.raw(member);
                w.bytes16(name.as_bytes());
                w.bytes16(invitation.as_bytes());
            }
        }
    }

    /// Decodes bytes produced by [`Payload::encode`], rejecting anything else.
    pub fn decode(input: &[u8]) -> Result<Self, DecodeError> {
        let mut r = versioned_reader(input)?;
        let payload = Payload::decode_from(&mut r, true)?;
        r.finish()?;
        Ok(payload)
    }

    /// Reads a kind tag and its fields. Group kinds are refused unless `outer` (a group payload
    /// carries only a text, a file or an unsend).
    fn decode_from(r: &mut Reader<'_>, outer: bool) -> Result<Self, DecodeError> {
        Ok(match r.u8()? {
            TAG_TEXT => Payload::Text {
                id: MessageId(r.array()?),
                sent_at: r.u64()?,
                timer: read_timer(r)?,
                view_once: r.bool()?,
                body: MessageBody(r.str(MAX_TEXT_LEN)?.to_owned()),
            },
            TAG_SET_TIMER => Payload::SetTimer {
                timer: read_timer(r)?,
                set_at: r.u64()?,
            },
            TAG_UNSEND => Payload::Unsend {
                id: MessageId(r.array()?),
            },
            TAG_BURN => Payload::Burn,
            tag @ (TAG_FILE | TAG_FILE_PADDED) => Payload::File {
                id: MessageId(r.array()?),
                sent_at: r.u64()?,
                timer: read_timer(r)?,
                view_once: r.bool()?,
                file: Box::new(FileRef::decode_payload(
                    r,
                    if tag == TAG_FILE {
                        Padding::None
                    } else {
                        Padding::Padme
                    },
                )?),
            },
            TAG_IN_GROUP if outer => {
                let group = GroupId(r.array()?);
                let head = r.array()?;
                let payload = Payload::decode_from(r, false)?;
                if !matches!(
                    payload,
                    Payload::Text { .. } | Payload::File { .. } | Payload::Unsend { .. }
                ) {
                    return Err(DecodeError::UnknownTag(payload.tag()));
                }
                Payload::InGroup {
                    group,
                    head,
                    payload: Box::new(payload),
                }
            }
            TAG_GROUP_CHANGES if outer => {
                let group = GroupId(r.array()?);
                let reply = r.bool()?;
                let name = r.str16(MAX_GROUP_NAME_LEN)?.to_owned();
                let count = read_count(r, MAX_GROUP_CHANGES)?;
                let mut changes = Vec::with_capacity(count);
                for _ in 0..count {
                    changes.push(r.bytes16(MAX_CHANGE_LEN)?.to_vec());
                }
                let count = read_count(r, MAX_GROUP_MEMBERS)?;
                let mut names = Vec::with_capacity(count);
                for _ in 0..count {
                    names.push((r.array()?, r.str16(MAX_GROUP_NAME_LEN)?.to_owned()));
                }
                Payload::GroupChanges {
                    group,
                    name,
                    changes,
                    names,
                    reply,
                }
            }
            TAG_GROUP_INTRODUCE if outer => Payload::GroupIntroduce {
                group: GroupId(r.array()?),
                forward: r.bool()?,
                member: r.array()?,
                name: r.str16(MAX_GROUP_NAME_LEN)?.to_owned(),
                invitation: r.str16(MAX_INVITATION_LEN)?.to_owned(),
            },
            TAG_INTRODUCE => {
                let relay = read_relay(r)?;
                let sender_id = SenderId::from_bytes(r.array::<ID_LEN>()?);
                let send_cap = SendCapability::from_bytes(r.array::<SEND_CAP_LEN>()?);
                Payload::Introduce {
                    relay,
                    sender_id,
                    send_cap,
                }
            }
            other => return Err(DecodeError::UnknownTag(other)),
        })
    }
}

/// Reads a `u16` count of items and checks it is at most `max`.
fn read_count(r: &mut Reader<'_>, max: usize) -> Result<usize, DecodeError> {
    let count = usize::from(r.u16()?);
    if count > max {
        return Err(DecodeError::TooLong { len: count, max });
    }
    Ok(count)
}

/// Reads an optional timer and checks its range.
pub(crate) fn read_timer(r: &mut Reader<'_>) -> Result<Option<u64>, DecodeError> {
    let timer = r.opt_u64()?;
    if timer_in_range(timer) {
        Ok(timer)
    } else {
        Err(DecodeError::InvalidTimer)
    }
}
