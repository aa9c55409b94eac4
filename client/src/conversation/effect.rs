//! What the conversation asks its driver to do, and what it tells the user interface.
//!
//! Every state-changing call returns a list of [`Effect`]s. The driver carries them out **in
//! order**: a burn, for instance, seals the `Burn` payload before erasing the keys that encrypt
//! it. (The client's driver sends it only once everything here is erased, so that a relay out of
//! reach never holds up the erase.)
//!
//! What it does not do: carry anything out. The conversation never touches the network, the
//! store or the clock.

use hush_protocol::ids::EnvelopeId;

use super::payload::{MessageBody, MessageId, Payload};
use crate::group::GroupId;

/// One thing the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Effect {
    /// Encrypt this payload for the contact and send it to the contact's queue.
    SendPayload(Payload),
    /// Retract this envelope at the contact's relay. If it was already delivered the relay
    /// refuses, which is fine: the `Unsend` payload sent alongside covers that case.
    Retract {
        /// The id the relay returned when the envelope was sent.
        envelope_id: EnvelopeId,
    },
    /// Persist this message's record (`Conversation::message`), replacing any older copy.
    SaveMessage(MessageId),
    /// Shred this message's record: delete its per-record key so it cannot be recovered.
    DeleteMessage(MessageId),
    /// Persist the conversation's metadata (`Conversation::meta`).
    SaveMeta,
    /// Delete our receiving queue (the one the contact sends to) at our relay.
    DeleteOwnQueue,
    /// Erase the whole conversation: every message, the metadata, the ratchet state and keys,
    /// and the contact itself.
    EraseConversation,
    /// Tell the user interface.
    Notify(Event),
}

/// Something the user should see.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A new message from the contact is in the conversation. Raised once per message, however
    /// often the relay delivers it.
    MessageShown {
        /// The message.
        id: MessageId,
        /// The group it was sent in, `None` for the 1:1 conversation.
        group: Option<GroupId>,
        /// When the contact sent it (unix seconds, the contact's clock).
        sent_at: u64,
        /// Its disappearing timer, in seconds.
        timer: Option<u64>,
        /// Whether it is view-once; its body is then revealed only by `Conversation::display`.
        view_once: bool,
        /// The text, or `None` for a view-once message.
        body: Option<MessageBody>,
    },
    /// A message reached its expiry and is gone.
    MessageExpired(MessageId),
    /// The conversation's disappearing timer changed.
    TimerChanged {
        /// The new timer in seconds, or `None` if turned off.
        timer: Option<u64>,
        /// Whether the contact (rather than we) changed it.
        by_contact: bool,
    },
    /// A message was unsent and is gone.
    Unsent {
        /// The message.
        id: MessageId,
        /// Whether the contact (rather than we) unsent it.
        by_contact: bool,
    },
    /// The conversation was burned: everything is erased and the contact is gone.
    Burned {
        /// Whether the contact (rather than we) burned it.
        by_contact: bool,
    },
    /// We blocked the contact.
    Blocked,
}
