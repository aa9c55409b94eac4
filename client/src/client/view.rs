//! What the `Client` hands to front ends: events, messages and contacts as plain values.
//!
//! What it does not do: format anything for a terminal. Message bodies are
//! [`MessageBody`]s, zeroized on drop, whose `Debug` shows only their length.

use std::time::{Duration, SystemTime};

use hush_protocol::RelayAddress;

use crate::conversation::{Direction, MessageBody, MessageId, MessageRecord};
use crate::group::GroupId;

/// Something that happened, for the user interface.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientEvent {
    /// Someone answered one of our invitations: a new contact.
    ContactJoined {
        /// The name given to the invitation.
        contact: String,
    },
    /// A new message from a contact. View-once messages come without their body: call
    /// [`crate::Client::display`] to reveal it (once).
    Message {
        /// The contact.
        contact: String,
        /// The message.
        message: MessageView,
    },
    /// A message reached its expiry and is gone.
    Expired {
        /// The contact.
        contact: String,
        /// The message.
        id: MessageId,
    },
    /// The conversation's disappearing timer changed.
    TimerChanged {
        /// The contact.
        contact: String,
        /// The new timer, or `None` for off.
        timer: Option<Duration>,
        /// Whether the contact changed it.
        by_contact: bool,
    },
    /// A message was unsent and is gone.
    Unsent {
        /// The contact.
        contact: String,
        /// The message.
        id: MessageId,
        /// Whether the contact unsent it.
        by_contact: bool,
    },
    /// The conversation was burned: history, keys and queues are gone, and so is the contact
    /// (its name is free for a new invitation).
    Burned {
        /// The contact.
        contact: String,
        /// Whether the contact burned it.
        by_contact: bool,
    },
    /// We blocked the contact.
    Blocked {
        /// The contact.
        contact: String,
    },
    /// An envelope on one of our queues is not an authentic message for that queue: it failed
    /// authentication (altered, forged, or moved from another queue), is not a hush message at
    /// all, or is an authenticated payload that does not decode. It was dropped; if it keeps
    /// happening, check the contact's safety number.
    Tampered {
        /// The contact, if the queue belongs to one (`None` for a pending invitation).
        contact: Option<String>,
    },
    /// A message from the contact is further ahead in its chain than this device keeps keys
    /// for: more of the contact's messages were lost on the way (dropped by a relay) than the
    /// skipped-key cap allows. It was dropped, and so will the contact's later messages be:
    /// this conversation cannot be read any more. Burn it and send a new invitation.
    OutOfStep {
        /// The contact.
        contact: String,
    },
    /// A group's membership or settings changed, or we were added to a group.
    GroupChanged {
        /// The group.
        group: String,
        /// Who made the change.
        by: String,
        /// What it did, in words ("added carol").
        what: String,
    },
    /// We were removed from a group: nothing new reaches us. Its history stays until it
    /// expires or we leave it.
    GroupRemoved {
        /// The group.
        group: String,
    },
    /// A group was burned: its messages and log are erased here.
    GroupBurned {
        /// The group.
        group: String,
        /// Whether its owner burned it (rather than we).
        by_owner: bool,
    },
    /// A group change or message from a contact was refused and dropped: a forged or
    /// unauthorised change, or a message from someone who is not a member.
    GroupRejected {
        /// The group, if we know it.
        group: Option<String>,
        /// The contact it came from.
        from: String,
        /// Why.
        reason: String,
    },
    /// A relay could not be reached; the client keeps retrying. Nothing was lost.
    RelayUnreachable {
        /// The relay.
        relay: RelayAddress,
    },
}

impl ClientEvent {
    /// The contact the event is about, if any.
    pub fn contact(&self) -> Option<&str> {
        match self {
            ClientEvent::ContactJoined { contact }
            | ClientEvent::Message { contact, .. }
            | ClientEvent::Expired { contact, .. }
            | ClientEvent::TimerChanged { contact, .. }
            | ClientEvent::Unsent { contact, .. }
            | ClientEvent::Burned { contact, .. }
            | ClientEvent::Blocked { contact }
            | ClientEvent::OutOfStep { contact } => Some(contact),
            ClientEvent::GroupChanged { group, .. }
            | ClientEvent::GroupRemoved { group }
            | ClientEvent::GroupBurned { group, .. } => Some(group),
            ClientEvent::GroupRejected { from, .. } => Some(from),
            ClientEvent::Tampered { contact } => contact.as_deref(),
            ClientEvent::RelayUnreachable { .. } => None,
        }
    }
}

/// One message as a front end shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageView {
    /// Its id (for display and unsend); [`MessageId::to_hex`] spells it.
    pub id: MessageId,
    /// Whether we sent it.
    pub outgoing: bool,
    /// When it was sent (unix seconds; the sender's clock for received messages).
    pub sent_at: u64,
    /// When we received it (unix seconds), or sent it.
    pub received_at: u64,
    /// Its disappearing timer.
    pub timer: Option<Duration>,
    /// Whether it is view-once.
    pub view_once: bool,
    /// When it was first displayed (received messages).
    pub displayed_at: Option<u64>,
    /// When it will be gone (unix seconds), if it expires.
    pub expires_at: Option<u64>,
    /// The text; `None` for a view-once message (until [`crate::Client::display`]), for the
    /// stub we keep of a view-once message we sent, and for a file.
    pub body: Option<MessageBody>,
    /// The file, for a file message ([`crate::Client::save_file`] saves it).
    pub file: Option<FileView>,
    /// The group it was sent in (`None` for the 1:1 conversation);
    /// [`crate::Client::group_name`] names it.
    pub group: Option<GroupId>,
}

/// A file message's file as a front end shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileView {
    /// The name the sender suggested, sanitised: one safe path component.
    pub name: String,
    /// The size in bytes.
    pub size: u64,
    /// When the relay deletes the file (unix seconds), downloaded or not.
    pub expires_at: u64,
}

impl MessageView {
    pub(crate) fn from_record(r: &MessageRecord, relay_ttl: u64) -> MessageView {
        let outgoing = r.direction == Direction::Sent;
        MessageView {
            id: r.id,
            outgoing,
            sent_at: r.sent_at,
            received_at: r.received_at,
            timer: r.timer.map(Duration::from_secs),
            view_once: r.view_once,
            displayed_at: r.displayed_at,
            expires_at: r.expires_at(relay_ttl),
            body: if r.view_once && !outgoing {
                None
            } else {
                r.body.clone()
            },
            file: r.file.as_ref().map(|f| FileView {
                name: f.name.clone(),
                size: f.size,
                expires_at: f.expires_at,
            }),
            group: r.group,
        }
    }
}

/// Where a contact stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ContactStatus {
    /// We can talk.
    Active,
    /// We blocked them.
    Blocked,
    /// The conversation was burned; a new invitation is needed. (A burned contact is erased
    /// and no longer listed, so `contacts` does not return this any more.)
    Burned,
}

/// A contact as `contacts` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactView {
    /// The local name.
    pub name: String,
    /// Where it stands.
    pub status: ContactStatus,
    /// Whether we marked its safety number verified.
    pub verified: bool,
    /// Whether we know them only through a group's introduction (and have not verified them):
    /// we never exchanged an invitation with them ourselves.
    pub introduced: bool,
    /// The conversation's disappearing timer.
    pub timer: Option<Duration>,
    /// The relay the contact receives on (`None` once burned).
    pub relay: Option<RelayAddress>,
    /// How many messages the conversation holds.
    pub messages: usize,
}

/// A pending invitation as `pending_invitations` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingView {
    /// The name the contact will get.
    pub name: String,
    /// The relay holding its queue.
    pub relay: RelayAddress,
    /// When the invitation expires (`None` for one made before invitations carried an expiry
    /// and not yet given one).
    pub expires_at: Option<SystemTime>,
}
