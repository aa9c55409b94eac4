//! What the conversation does with a payload from the contact.
//!
//! The relay delivers at least once and the network may reorder, so every payload is handled
//! idempotently: a message id already seen is dropped, an unsend that arrives before its message
//! leaves a tombstone that drops the message when it comes, and a timer change older than the
//! current one is ignored.
//!
//! What it does not do: decrypt or authenticate. It takes a [`Payload`] the crypto layer has
//! already decrypted with this contact's ratchet.

use super::effect::{Effect, Event};
use super::error::ConversationError;
use super::limits::{timer_in_range, MAX_CLOCK_SKEW_SECS, MAX_TEXT_LEN};
use super::machine::Conversation;
use super::message::{Direction, MessageRecord};
use super::meta::Status;
use super::payload::{MessageId, Payload};

impl Conversation {
    /// Handles one decrypted payload from the contact, received at `now` (unix seconds).
    ///
    /// A burned conversation refuses it; a blocked one drops it. An `Introduce` belongs to the
    /// handshake and is ignored here.
    pub fn receive(
        &mut self,
        payload: Payload,
        now: u64,
    ) -> Result<Vec<Effect>, ConversationError> {
        match self.meta.status {
            Status::Burned => return Err(ConversationError::Burned),
            Status::Blocked => return Ok(Vec::new()),
            Status::Active => {}
        }
        let (group, payload) = match payload {
            Payload::InGroup { group, payload, .. } => (Some(group), *payload),
            other => (None, other),
        };
        let mut effects = match payload {
            Payload::Text {
                id,
                sent_at,
                timer,
                view_once,
                body,
            } => {
                if body.len() > MAX_TEXT_LEN || !timer_in_range(timer) {
                    return Err(ConversationError::InvalidPayload);
                }
                let record = MessageRecord {
                    body: Some(body),
                    group,
                    ..MessageRecord::received(id, sent_at, now, timer, view_once)
                };
                self.receive_message(record, now)
            }
            Payload::File {
                id,
                sent_at,
                timer,
                view_once,
                mut file,
            } => {
                if !timer_in_range(timer) || file.layout().is_err() {
                    return Err(ConversationError::InvalidPayload);
                }
                // Only our own record of a file we sent holds a write capability.
                file.write_cap = None;
                let record = MessageRecord {
                    file: Some(file),
                    group,
                    ..MessageRecord::received(id, sent_at, now, timer, view_once)
                };
                self.receive_message(record, now)
            }
            Payload::SetTimer { timer, set_at } => {
                if !timer_in_range(timer) {
                    return Err(ConversationError::InvalidPayload);
                }
                self.receive_set_timer(timer, set_at, now)
            }
            Payload::Unsend { id } => self.receive_unsend(id, now),
            Payload::Burn => return Ok(self.receive_burn()),
            // Decoding lets only texts, files and unsends into a group payload; membership
            // changes are the client's to check and apply.
            Payload::Introduce { .. }
            | Payload::GroupChanges { .. }
            | Payload::GroupIntroduce { .. }
            | Payload::InGroup { .. } => Vec::new(),
        };
        if self.meta.prune(now) && !effects.contains(&Effect::SaveMeta) {
            effects.push(Effect::SaveMeta);
        }
        Ok(effects)
    }

    /// A burn: erase everything and delete our queue; nothing is pruned afterwards.
    fn receive_burn(&mut self) -> Vec<Effect> {
        self.erase();
        vec![
            Effect::DeleteOwnQueue,
            Effect::EraseConversation,
            Effect::Notify(Event::Burned { by_contact: true }),
        ]
    }

    /// A text or a file: shown once, unless it is a duplicate, was unsent, or has already
    /// expired.
    fn receive_message(&mut self, record: MessageRecord, now: u64) -> Vec<Effect> {
        let id = record.id;
        let until = self.retention_until(now);
        if self.meta.seen_entry(&id).is_some() {
            // A re-delivery, or a message unsent before it arrived: keep the id remembered for
            // as long as this copy's relay could deliver yet another.
            self.meta.remember(id, until, false);
            return vec![Effect::SaveMeta];
        }
        if self.messages.contains_key(&id) {
            // Our own id echoed back; nothing to show.
            return Vec::new();
        }
        if record.is_expired(now, self.meta.relay_ttl) {
            // Too old to show. Any later copy is older still, so no id needs remembering.
            return Vec::new();
        }
        self.meta.remember(id, until, false);
        let shown = Event::MessageShown {
            id,
            group: record.group,
            sent_at: record.sent_at,
            timer: record.timer,
            view_once: record.view_once,
            body: if record.view_once {
                None
            } else {
                record.body.clone()
            },
        };
        let mut effects = self.insert_record(record);
        effects.extend([
            Effect::SaveMessage(id),
            Effect::SaveMeta,
            Effect::Notify(shown),
        ]);
        effects
    }

    /// A timer change: the later change wins; on a tie, the shorter timer, so both sides agree.
    fn receive_set_timer(&mut self, timer: Option<u64>, set_at: u64, now: u64) -> Vec<Effect> {
        // A clock far ahead must not lock out every later change.
        let set_at = set_at.min(now.saturating_add(MAX_CLOCK_SKEW_SECS));
        let current = self.meta.timer_set_at;
        let rank = |t: Option<u64>| t.unwrap_or(u64::MAX);
        let newer = set_at > current || (set_at == current && rank(timer) < rank(self.meta.timer));
        if !newer {
            return Vec::new();
        }
        let changed = timer != self.meta.timer;
        self.meta.timer = timer;
        self.meta.timer_set_at = set_at;
        let mut effects = vec![Effect::SaveMeta];
        if changed {
            effects.push(Effect::Notify(Event::TimerChanged {
                timer,
                by_contact: true,
            }));
        }
        effects
    }

    /// An unsend: delete the contact's message for real, or tombstone it if not yet here.
    fn receive_unsend(&mut self, id: MessageId, now: u64) -> Vec<Effect> {
        let until = self.retention_until(now);
        match self.messages.get(&id) {
            // The contact may only unsend its own messages.
            Some(r) if r.direction == Direction::Sent => Vec::new(),
            Some(_) => {
                self.messages.remove(&id);
                self.meta.remember(id, until, true);
                vec![
                    Effect::DeleteMessage(id),
                    Effect::SaveMeta,
                    Effect::Notify(Event::Unsent {
                        id,
                        by_contact: true,
                    }),
                ]
            }
            None => {
                self.meta.remember(id, until, true);
                vec![Effect::SaveMeta]
            }
        }
    }
}
