//! A conversation's share of group conversations: the group messages sent to and received from
//! this one contact over its pairwise session (see `docs/groups.md`).
//!
//! A group message to n members is n - 1 messages with one id, one per member's conversation,
//! each carrying the group's id; timers, view-once, unsend and expiry then work on each copy as
//! on any message.
//!
//! What it does not do: decide who is a member (the client checks the group's log) or send.

use super::effect::Effect;
use super::error::ConversationError;
use super::file::FileRef;
use super::machine::{check_body, Conversation};
use super::message::MessageRecord;
use super::payload::{MessageBody, MessageId, Payload};
use crate::group::{ChangeHash, GroupId};

/// A group and the head of the author's log, as a group message carries them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupAt {
    /// The group.
    pub id: GroupId,
    /// The last change of the author's selected log.
    pub head: ChangeHash,
}

impl Conversation {
    /// Writes this contact's copy of a text in `group`. `id` is the message's id in every
    /// member's copy, so that unsend and display name the same message everywhere.
    ///
    /// Returns the effects: save the record, then send the payload.
    pub fn compose_group_text(
        &mut self,
        group: GroupAt,
        id: MessageId,
        body: &MessageBody,
        timer: Option<u64>,
        view_once: bool,
        now: u64,
    ) -> Result<Vec<Effect>, ConversationError> {
        check_body(body)?;
        let record = MessageRecord {
            body: (!view_once).then(|| body.clone()),
            ..MessageRecord::sent(id, now, timer, view_once)
        };
        let payload = Payload::Text {
            id,
            sent_at: now,
            timer,
            view_once,
            body: body.clone(),
        };
        self.compose_in_group(group, record, payload)
    }

    /// Writes this contact's copy of a file message in `group`: the one upload's `file` (our
    /// record keeps its write capability; the payload never carries it).
    pub fn compose_group_file(
        &mut self,
        group: GroupAt,
        id: MessageId,
        file: &FileRef,
        timer: Option<u64>,
        view_once: bool,
        now: u64,
    ) -> Result<Vec<Effect>, ConversationError> {
        let mut sent = file.clone();
        sent.write_cap = None;
        let record = MessageRecord {
            file: Some(Box::new(file.clone())),
            ..MessageRecord::sent(id, now, timer, view_once)
        };
        let payload = Payload::File {
            id,
            sent_at: now,
            timer,
            view_once,
            file: Box::new(sent),
        };
        self.compose_in_group(group, record, payload)
    }

    /// Stores `record` as a message of `group` and sends `payload` in it.
    fn compose_in_group(
        &mut self,
        group: GroupAt,
        record: MessageRecord,
        payload: Payload,
    ) -> Result<Vec<Effect>, ConversationError> {
        self.check_compose(record.timer)?;
        let id = record.id;
        if self.messages.contains_key(&id) {
            return Err(ConversationError::DuplicateMessage);
        }
        let record = MessageRecord {
            group: Some(group.id),
            ..record
        };
        let payload = Payload::InGroup {
            group: group.id,
            head: group.head.0,
            payload: Box::new(payload),
        };
        let mut effects = self.insert_record(record);
        effects.push(Effect::SaveMessage(id));
        effects.push(Effect::SendPayload(payload));
        Ok(effects)
    }

    /// The messages of `group` in this conversation.
    pub fn group_messages(&self, group: GroupId) -> Vec<&MessageRecord> {
        self.messages
            .values()
            .filter(|r| r.group == Some(group))
            .collect()
    }

    /// Shreds every message of `group` in this conversation (the group was burned, or we left
    /// it). Nothing is sent.
    pub fn forget_group(&mut self, group: GroupId) -> Vec<Effect> {
        let ids: Vec<MessageId> = self
            .messages
            .values()
            .filter(|r| r.group == Some(group))
            .map(|r| r.id)
            .collect();
        ids.into_iter()
            .map(|id| {
                self.messages.remove(&id);
                Effect::DeleteMessage(id)
            })
            .collect()
    }
}
