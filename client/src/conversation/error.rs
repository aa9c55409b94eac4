//! Why a conversation refused an operation.

use super::limits::MAX_TIMER_SECS;

/// Why a conversation refused an operation. A refused operation changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConversationError {
    /// The conversation was burned, by either side; its keys and queues are gone.
    #[error("this conversation was burned; exchange a new invitation to talk again")]
    Burned,
    /// We blocked the contact.
    #[error("you blocked this contact; exchange a new invitation to talk again")]
    Blocked,
    /// The text is longer than a message can carry.
    #[error("the message is {len} bytes, more than the {max} allowed; shorten it or split it")]
    BodyTooLong {
        /// Its length in bytes.
        len: usize,
        /// The most allowed.
        max: usize,
    },
    /// A disappearing timer is outside the allowed range.
    #[error(
        "a disappearing timer must be between 1 second and {} days, or off",
        MAX_TIMER_SECS / 86_400
    )]
    TimerOutOfRange,
    /// The relay TTL given for the hard-expiry bound is zero or too long.
    #[error("the relay time-to-live must be between 1 second and 30 days")]
    InvalidRelayTtl,
    /// No such message: it never existed, expired, or was deleted.
    #[error("no such message; it may have expired or been deleted")]
    UnknownMessage,
    /// Only messages we sent can be unsent.
    #[error("only messages you sent can be unsent")]
    NotOwnMessage,
    /// The message is a text, not a file.
    #[error("this message is not a file; only file messages can be saved")]
    NotAFile,
    /// The file is one we sent; only received files are saved.
    #[error("this is a file you sent; only files you received can be saved")]
    OwnFile,
    /// A payload's fields are outside their limits (a decoded payload never is).
    #[error("the message is malformed")]
    InvalidPayload,
    /// A message with this id is already in the conversation.
    #[error("a message with this id is already in the conversation")]
    DuplicateMessage,
}
