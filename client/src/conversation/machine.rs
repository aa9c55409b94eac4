//! The per-contact state machine: local actions (compose, display, unsend, set the timer, burn,
//! block) and the passage of time (`tick`, `next_deadline`).
//!
//! Every method takes `now` as unix seconds (`u64`) where time matters and returns the
//! [`Effect`]s its driver must carry out. A method that returns an error has changed nothing.
//! What arrives from the contact is handled in `receive.rs`.
//!
//! What it does not do: encrypt, store, send or read a clock. It never sleeps: the driver asks
//! [`Conversation::next_deadline`] when to call [`Conversation::tick`] next.

use std::collections::BTreeMap;

use hush_protocol::ids::EnvelopeId;
use rand_core::{CryptoRng, RngCore};

use super::effect::{Effect, Event};
use super::error::ConversationError;
use super::limits::{
    timer_in_range, MAX_CLOCK_SKEW_SECS, MAX_RELAY_TTL_SECS, MAX_STORED_MESSAGES, MAX_TEXT_LEN,
};
use super::message::{Direction, MessageRecord};
use super::meta::{ConversationMeta, Status};
use super::payload::{MessageBody, MessageId, Payload};

/// One conversation with one contact.
#[derive(Debug, Clone)]
pub struct Conversation {
    pub(super) meta: ConversationMeta,
    pub(super) messages: BTreeMap<MessageId, MessageRecord>,
}

/// What [`Conversation::display`] reveals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Displayed {
    /// The text, or `None` for the stub we keep of a view-once message we sent.
    pub body: Option<MessageBody>,
    /// What the driver must do (persist the read time, or shred a view-once message).
    pub effects: Vec<Effect>,
}

impl Conversation {
    /// A new, active conversation. `relay_ttl` is our relay's maximum envelope lifetime in
    /// seconds: it bounds how long an unread message can live. `rng` draws the key of its seen
    /// set.
    pub fn new(
        relay_ttl: u64,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<Self, ConversationError> {
        if relay_ttl == 0 || relay_ttl > MAX_RELAY_TTL_SECS {
            return Err(ConversationError::InvalidRelayTtl);
        }
        Ok(Self {
            meta: ConversationMeta::new(relay_ttl, rng),
            messages: BTreeMap::new(),
        })
    }

    /// Rebuilds a conversation from its stored metadata and message records, for example after
    /// a restart. Call [`Conversation::tick`] next, to expire what lapsed in the meantime.
    pub fn restore(
        meta: ConversationMeta,
        records: impl IntoIterator<Item = MessageRecord>,
    ) -> Self {
        let messages = records.into_iter().map(|r| (r.id, r)).collect();
        Self { meta, messages }
    }

    /// The metadata, to persist on [`Effect::SaveMeta`].
    pub fn meta(&self) -> &ConversationMeta {
        &self.meta
    }

    /// Where the conversation stands.
    pub fn status(&self) -> Status {
        self.meta.status
    }

    /// The disappearing timer new messages get, in seconds.
    pub fn timer(&self) -> Option<u64> {
        self.meta.timer
    }

    /// One message's record, to persist on [`Effect::SaveMessage`].
    pub fn message(&self, id: &MessageId) -> Option<&MessageRecord> {
        self.messages.get(id)
    }

    /// Every message still here, oldest first (by our own clock, then id).
    pub fn messages(&self) -> Vec<&MessageRecord> {
        let mut all: Vec<&MessageRecord> = self.messages.values().collect();
        all.sort_by_key(|r| (r.received_at, r.id));
        all
    }

    /// Fails unless messages may be sent.
    pub(super) fn ensure_active(&self) -> Result<(), ConversationError> {
        match self.meta.status {
            Status::Active => Ok(()),
            Status::Blocked => Err(ConversationError::Blocked),
            Status::Burned => Err(ConversationError::Burned),
        }
    }

    /// How long to remember an id seen or unsent at `now`: as long as the relay may still
    /// deliver a copy, plus the clock skew allowance.
    pub(super) fn retention_until(&self, now: u64) -> u64 {
        now.saturating_add(self.meta.relay_ttl)
            .saturating_add(MAX_CLOCK_SKEW_SECS)
    }

    /// Writes a text message with the conversation's current timer.
    ///
    /// Returns its id and the effects: save the record, then send the payload. A view-once
    /// message's body goes only into the payload: we keep a stub without it.
    pub fn compose_text<R: RngCore + CryptoRng>(
        &mut self,
        body: impl Into<String>,
        view_once: bool,
        now: u64,
        rng: &mut R,
    ) -> Result<(MessageId, Vec<Effect>), ConversationError> {
        let timer = self.meta.timer;
        self.compose_text_with_timer(body, timer, view_once, now, rng)
    }

    /// Like [`Conversation::compose_text`], but this one message carries `timer` (seconds, or
    /// `None` for no timer) instead of the conversation's timer. The conversation's timer is
    /// left as it is, on both sides.
    pub fn compose_text_with_timer<R: RngCore + CryptoRng>(
        &mut self,
        body: impl Into<String>,
        timer: Option<u64>,
        view_once: bool,
        now: u64,
        rng: &mut R,
    ) -> Result<(MessageId, Vec<Effect>), ConversationError> {
        self.check_compose(timer)?;
        let body = MessageBody::new(body);
        check_body(&body)?;
        Ok(self.compose_with(rng, |id| {
            let record = MessageRecord {
                body: (!view_once).then(|| body.clone()),
                ..MessageRecord::sent(id, now, timer, view_once)
            };
            let payload = Payload::Text {
                id,
                sent_at: now,
                timer,
                view_once,
                body,
            };
            (record, payload)
        }))
    }

    /// Checks that a message carrying `timer` may be composed now.
    pub(super) fn check_compose(&self, timer: Option<u64>) -> Result<(), ConversationError> {
        self.ensure_active()?;
        if !timer_in_range(timer) {
            return Err(ConversationError::TimerOutOfRange);
        }
        Ok(())
    }

    /// A message of ours, already checked: draws its id, has `build` make its record and
    /// payload, stores the record, and returns the id and the effects: save the record, then
    /// send the payload.
    pub(super) fn compose_with<R: RngCore + CryptoRng>(
        &mut self,
        rng: &mut R,
        build: impl FnOnce(MessageId) -> (MessageRecord, Payload),
    ) -> (MessageId, Vec<Effect>) {
        let id = MessageId::random(rng);
        let (record, payload) = build(id);
        let mut effects = self.insert_record(record);
        effects.push(Effect::SaveMessage(id));
        effects.push(Effect::SendPayload(payload));
        (id, effects)
    }

    /// Stores a record, first evicting the oldest message if the conversation is full.
    pub(super) fn insert_record(&mut self, record: MessageRecord) -> Vec<Effect> {
        let mut effects = Vec::new();
        if self.messages.len() >= MAX_STORED_MESSAGES {
            let oldest = self
                .messages
                .values()
                .min_by_key(|r| (r.received_at, r.id))
                .map(|r| r.id);
            if let Some(oldest) = oldest {
                self.messages.remove(&oldest);
                effects.push(Effect::DeleteMessage(oldest));
                effects.push(Effect::Notify(Event::MessageExpired(oldest)));
            }
        }
        self.messages.insert(record.id, record);
        effects
    }

    /// Records the envelope id the relay returned for a sent message, so it can be retracted.
    ///
    /// If the message was unsent before its envelope id was known, the retraction happens now.
    pub fn mark_sent(&mut self, id: MessageId, envelope_id: EnvelopeId) -> Vec<Effect> {
        match self.messages.get_mut(&id) {
            Some(r) if r.direction == Direction::Sent => {
                r.envelope_id = Some(envelope_id);
                vec![Effect::SaveMessage(id)]
            }
            Some(_) => Vec::new(),
            None if self.meta.seen_entry(&id).is_some_and(|e| e.unsent) => {
                vec![Effect::Retract { envelope_id }]
            }
            None => Vec::new(),
        }
    }

    /// Reveals a message to the user.
    ///
    /// The first display of a received message starts its read timer; a received view-once
    /// message is deleted right away and can never be displayed again.
    pub fn display(&mut self, id: MessageId, now: u64) -> Result<Displayed, ConversationError> {
        if self.meta.status == Status::Burned {
            return Err(ConversationError::Burned);
        }
        let relay_ttl = self.meta.relay_ttl;
        let record = match self.messages.get_mut(&id) {
            Some(r) if !r.is_expired(now, relay_ttl) => r,
            _ => return Err(ConversationError::UnknownMessage),
        };
        let body = record.body.clone();
        let mut effects = Vec::new();
        if record.direction == Direction::Received {
            // A view-once file is consumed by saving it (`file_saved`), not by showing it.
            if record.view_once && record.file.is_none() {
                self.messages.remove(&id);
                effects.push(Effect::DeleteMessage(id));
            } else if record.displayed_at.is_none() {
                record.displayed_at = Some(now);
                effects.push(Effect::SaveMessage(id));
            }
        }
        Ok(Displayed { body, effects })
    }

    /// Unsends a message we sent: retracts its envelope if we know it, tells the contact to
    /// delete it, and deletes our copy. There is no time window.
    ///
    /// Unsend still works after a block (the contact's queue is untouched); not after a burn.
    pub fn unsend(&mut self, id: MessageId, now: u64) -> Result<Vec<Effect>, ConversationError> {
        if self.meta.status == Status::Burned {
            return Err(ConversationError::Burned);
        }
        let envelope_id = match self.messages.get(&id) {
            None => return Err(ConversationError::UnknownMessage),
            Some(r) if r.direction != Direction::Sent => {
                return Err(ConversationError::NotOwnMessage)
            }
            Some(r) => r.envelope_id,
        };
        self.messages.remove(&id);
        let mut effects = Vec::new();
        match envelope_id {
            Some(envelope_id) => effects.push(Effect::Retract { envelope_id }),
            None => {
                // The send may still be in flight: remember to retract on `mark_sent`.
                let until = self.retention_until(now);
                self.meta.remember(id, until, true);
                effects.push(Effect::SaveMeta);
            }
        }
        effects.push(Effect::SendPayload(Payload::Unsend { id }));
        effects.push(Effect::DeleteMessage(id));
        effects.push(Effect::Notify(Event::Unsent {
            id,
            by_contact: false,
        }));
        Ok(effects)
    }

    /// Sets the conversation's disappearing timer (seconds, `None` for off) on both sides.
    ///
    /// It applies to messages composed from now on; each message keeps the timer it was sent
    /// with.
    pub fn set_timer(
        &mut self,
        timer: Option<u64>,
        now: u64,
    ) -> Result<Vec<Effect>, ConversationError> {
        self.ensure_active()?;
        if !timer_in_range(timer) {
            return Err(ConversationError::TimerOutOfRange);
        }
        // Strictly later than any change seen so far, so that this one wins on both sides.
        let set_at = now.max(self.meta.timer_set_at.saturating_add(1));
        self.meta.timer = timer;
        self.meta.timer_set_at = set_at;
        Ok(vec![
            Effect::SaveMeta,
            Effect::SendPayload(Payload::SetTimer { timer, set_at }),
            Effect::Notify(Event::TimerChanged {
                timer,
                by_contact: false,
            }),
        ])
    }

    /// Destroys the conversation on both sides: tells the contact, deletes our queue, and
    /// erases everything here. Afterwards every operation fails with
    /// [`ConversationError::Burned`].
    ///
    /// The `Burn` payload comes first, so that it is sealed while the ratchet exists; the
    /// driver erases everything before it calls any relay, and owes the relays what they could
    /// not be told.
    pub fn burn(&mut self) -> Result<Vec<Effect>, ConversationError> {
        let was = self.meta.status;
        if was == Status::Burned {
            return Err(ConversationError::Burned);
        }
        self.erase();
        let mut effects = vec![Effect::SendPayload(Payload::Burn)];
        if was == Status::Active {
            effects.push(Effect::DeleteOwnQueue);
        }
        effects.push(Effect::EraseConversation);
        effects.push(Effect::Notify(Event::Burned { by_contact: false }));
        Ok(effects)
    }

    /// Forgets every message and id and marks the conversation burned.
    pub(super) fn erase(&mut self) {
        self.messages.clear();
        self.meta.seen.clear();
        self.meta.timer = None;
        self.meta.status = Status::Burned;
    }

    /// Blocks the contact: deletes the queue it sends to. The history stays until it expires.
    /// No new message or timer change is sent and nothing more is received; unsend and burn
    /// still reach the contact.
    pub fn block(&mut self) -> Result<Vec<Effect>, ConversationError> {
        match self.meta.status {
            Status::Burned => Err(ConversationError::Burned),
            Status::Blocked => Ok(Vec::new()),
            Status::Active => {
                self.meta.status = Status::Blocked;
                Ok(vec![
                    Effect::DeleteOwnQueue,
                    Effect::SaveMeta,
                    Effect::Notify(Event::Blocked),
                ])
            }
        }
    }

    /// Deletes every message whose time has come and forgets expired ids.
    pub fn tick(&mut self, now: u64) -> Vec<Effect> {
        let relay_ttl = self.meta.relay_ttl;
        let expired: Vec<MessageId> = self
            .messages
            .values()
            .filter(|r| r.is_expired(now, relay_ttl))
            .map(|r| r.id)
            .collect();
        let mut effects = Vec::with_capacity(expired.len() * 2 + 1);
        for id in expired {
            self.messages.remove(&id);
            effects.push(Effect::DeleteMessage(id));
            effects.push(Effect::Notify(Event::MessageExpired(id)));
        }
        if self.meta.prune(now) {
            effects.push(Effect::SaveMeta);
        }
        effects
    }

    /// The next moment (unix seconds) at which a message expires, if any: when the driver
    /// should call [`Conversation::tick`] again. Forgotten ids need no wake-up; they are pruned
    /// on the next tick or receive.
    pub fn next_deadline(&self) -> Option<u64> {
        let relay_ttl = self.meta.relay_ttl;
        self.messages
            .values()
            .filter_map(|r| r.expires_at(relay_ttl))
            .min()
    }
}

/// Fails if `body` is longer than [`MAX_TEXT_LEN`].
pub(super) fn check_body(body: &MessageBody) -> Result<(), ConversationError> {
    if body.len() > MAX_TEXT_LEN {
        return Err(ConversationError::BodyTooLong {
            len: body.len(),
            max: MAX_TEXT_LEN,
        });
    }
    Ok(())
}
