//! The per-contact conversation: disappearing timers, view-once, unsend, burn and block.
//!
//! What it does: a pure state machine between the crypto layer and the store. It turns local
//! actions and decrypted [`Payload`]s from the contact into [`Effect`]s (send this payload,
//! retract that envelope, shred that record, delete our queue, erase everything, tell the user)
//! and knows when each message must disappear. Payloads, message records and the
//! conversation's metadata each have a versioned binary encoding whose decoders never panic.
//! The semantics and byte formats are in `docs/conversation.md`.
//!
//! What it does not do: I/O of any kind, cryptography, or reading a clock. Time comes in as
//! `now`, unix seconds in a `u64`, and randomness as an RNG argument, so that every rule can be
//! tested on virtual time.

pub(crate) mod codec;
mod effect;
mod error;
mod file;
mod file_actions;
mod group;
pub mod limits;
mod machine;
mod message;
mod meta;
mod payload;
mod receive;

#[cfg(test)]
mod action_tests;
#[cfg(test)]
mod codec_tests;
#[cfg(test)]
mod file_tests;
#[cfg(test)]
mod sim;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod timer_tests;

pub use codec::DecodeError;
pub use effect::{Effect, Event};
pub use error::ConversationError;
pub use file::{FileRef, FILE_DIGEST_LEN};
pub use group::GroupAt;
pub use machine::{Conversation, Displayed};
pub use message::{hard_expiry, Direction, MessageRecord};
pub use meta::{ConversationMeta, SeenEntry, SeenKey, SeenTag, Status, META_VERSION, SEEN_TAG_LEN};
pub use payload::{
    MessageBody, MessageId, Payload, MEMBER_LEN, MESSAGE_ID_LEN, TAG_BURN, TAG_FILE,
    TAG_FILE_PADDED, TAG_GROUP_CHANGES, TAG_GROUP_INTRODUCE, TAG_INTRODUCE, TAG_IN_GROUP,
    TAG_SET_TIMER, TAG_TEXT, TAG_UNSEND,
};
