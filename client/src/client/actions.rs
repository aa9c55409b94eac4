//! The user's actions on a conversation: send, display, history, timers, unsend, burn, block
//! and expiry.
//!
//! Each action checks what it can before changing anything (the contact exists, its relay can
//! be reached), lets the conversation decide, then carries out the effects in order (see
//! `driver`: the state lock is released while relays are called). A message whose envelope
//! could not be sent is taken back, so a failed send leaves no trace.
//!
//! What it does not do: contacts and invitations (see `contacts`), files (see `files`), or
//! receive (see `inbox`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::rngs::OsRng;

use super::burn::{expire_tombstones, BurnReport, Delivery};
use super::view::{ClientEvent, MessageView};
use super::{driver, Client, ClientError, Inner};
use crate::conversation::{Conversation, ConversationError, Effect, MessageId};
use crate::net::Lane;

/// The timer a new message gets: `timer_override` (whole seconds, at least one), else the
/// conversation's.
pub(crate) fn timer_for(conv: &Conversation, timer_override: Option<Duration>) -> Option<u64> {
    match timer_override {
        Some(d) => Some(d.as_secs().max(1)),
        None => conv.timer(),
    }
}

/// Drops message `id` from `conv` (a message that never left).
fn take_back(conv: &mut Conversation, id: MessageId) {
    let rest: Vec<_> = conv
        .messages()
        .into_iter()
        .filter(|r| r.id != id)
        .cloned()
        .collect();
    *conv = Conversation::restore(conv.meta().clone(), rest);
}

impl Inner {
    /// Makes sure contact `name` exists and its relay answers (on the connection its sends
    /// take), before anything changes.
    async fn reach(&self, name: &str) -> Result<(), ClientError> {
        let (relay, sender_id) = {
            let mut st = self.state.lock().await;
            let to = &st.contact(name)?.link.to_peer;
            (to.relay.clone(), to.sender_id)
        };
        self.pool
            .connection_on(&relay, Lane::Contact(sender_id))
            .await?;
        Ok(())
    }

    /// Runs a conversation action on contact `name` (after reaching its relay if `reach`) and
    /// carries out its effects.
    pub(super) async fn act(
        &self,
        name: &str,
        reach: bool,
        action: impl FnOnce(&mut Conversation, u64) -> Result<Vec<Effect>, ConversationError>,
    ) -> Result<(), ClientError> {
        if reach {
            self.reach(name).await?;
        }
        let mut st = self.state.lock().await;
        let effects = action(&mut st.contact(name)?.conv, self.now())?;
        self.carry_out(st, name, effects, &mut Vec::new()).await.1
    }

    /// Composes a message to `name` with `compose` and sends it. A message whose envelope could
    /// not be sent is taken back. Returns the message as [`Client::history`] shows it.
    pub(crate) async fn send_message(
        &self,
        name: &str,
        compose: impl FnOnce(
            &mut Conversation,
            u64,
        ) -> Result<(MessageId, Vec<Effect>), ConversationError>,
    ) -> Result<MessageView, ClientError> {
        self.reach(name).await?;
        let mut st = self.state.lock().await;
        let c = st.contact(name)?;
        let contact = c.id;
        let conv = &mut c.conv;
        let (id, effects) = compose(conv, self.now())?;
        let ttl = conv.meta().relay_ttl;
        let view = conv
            .message(&id)
            .map(|r| MessageView::from_record(r, ttl))
            .ok_or(ConversationError::UnknownMessage)?;
        let (mut st, sent) = self.carry_out(st, name, effects, &mut Vec::new()).await;
        if let Err(e) = sent {
            // Take the message back: it never left.
            if let Some(c) = st.same_contact(name, contact) {
                take_back(&mut c.conv, id);
                self.store.delete(&c.key.message(id))?;
            }
            return Err(e);
        }
        self.yield_inbox.notify_one();
        Ok(view)
    }

    /// Applies every deletion that is due: [`Inner::tick_local`], then the burns owed to relays
    /// (without the state lock: they call relays; see `burn`).
    pub(crate) async fn tick(&self) -> Result<Vec<ClientEvent>, ClientError> {
        let events = self.tick_local().await?;
        self.deliver_owed(None).await;
        self.run_group_work().await;
        Ok(events)
    }

    /// The deletions that are due and need no relay: expiries in every conversation, expired
    /// tombstones of burned queues, transfer records, pending invitations, and temporary files
    /// a cut-off save left on record.
    pub(crate) async fn tick_local(&self) -> Result<Vec<ClientEvent>, ClientError> {
        let events = self.expire_conversations().await?;
        self.expire_records().await?;
        Ok(events)
    }

    /// Ends the transfer records, pending invitations and temporary files that are due. No
    /// network: what this owes a relay (a blob, an invitation's queue) waits for the next run of
    /// the owed deletions.
    async fn expire_records(&self) -> Result<(), ClientError> {
        let now = self.now();
        self.transfers.expire_records(now)?;
        self.transfers.clean_parts()?;
        self.expire_invitations(now).await?;
        Ok(())
    }

    /// Applies due expiries in every conversation, and drops expired tombstones.
    async fn expire_conversations(&self) -> Result<Vec<ClientEvent>, ClientError> {
        let events = self.tick_conversations(false).await?;
        expire_tombstones(&self.store, self.now())?;
        Ok(events)
    }

    /// Ticks the conversations: with `all`, every one (what lapsed, and what its metadata no
    /// longer needs); else only those whose next deadline has come.
    pub(super) async fn tick_conversations(
        &self,
        all: bool,
    ) -> Result<Vec<ClientEvent>, ClientError> {
        let now = self.now();
        let mut events = Vec::new();
        let mut st = self.state.lock().await;
        for (name, c) in st.contacts.iter_mut() {
            if all || c.conv.next_deadline().is_some_and(|d| d <= now) {
                let effects = c.conv.tick(now);
                events.extend(driver::apply_local(
                    &self.store,
                    &c.key,
                    name,
                    &c.conv,
                    effects,
                )?);
            }
        }
        Ok(events)
    }

    /// The earliest expiry (unix seconds) over every conversation.
    pub(crate) async fn next_deadline(&self) -> Option<u64> {
        let st = self.state.lock().await;
        st.contacts
            .values()
            .filter_map(|c| c.conv.next_deadline())
            .min()
    }
}

impl Client {
    /// Sends a text to `name` and returns it as [`Client::history`] shows it. With
    /// `timer_override`, this one message carries that disappearing timer instead of the
    /// conversation's (which stays as it is); `view_once` makes the contact's copy vanish after
    /// its first display.
    pub async fn send_text(
        &self,
        name: &str,
        text: &str,
        timer_override: Option<Duration>,
        view_once: bool,
    ) -> Result<MessageView, ClientError> {
        self.inner
            .send_message(name, |conv, now| {
                let timer = timer_for(conv, timer_override);
                conv.compose_text_with_timer(text, timer, view_once, now, &mut OsRng)
            })
            .await
    }

    /// Reveals message `id` of `name` and returns it as it now stands, its body revealed, and
    /// starts its read timer. A received view-once message is deleted right away (it comes back
    /// as it was before, with its body). The body is `None` for the stub of a view-once message
    /// we sent, and for a file.
    pub async fn display(&self, name: &str, id: MessageId) -> Result<MessageView, ClientError> {
        let inner = &self.inner;
        let mut st = inner.state.lock().await;
        let c = st.contact(name)?;
        let conv = &mut c.conv;
        let ttl = conv.meta().relay_ttl;
        let Some(before) = conv.message(&id).map(|r| MessageView::from_record(r, ttl)) else {
            return Err(ConversationError::UnknownMessage.into());
        };
        let shown = conv.display(id, inner.now())?;
        driver::apply_local(&inner.store, &c.key, name, conv, shown.effects)?;
        // A read timer may have started: the event task recomputes its next wake-up.
        inner.yield_inbox.notify_one();
        let mut view = conv
            .message(&id)
            .map_or(before, |r| MessageView::from_record(r, ttl));
        view.body = shown.body;
        Ok(view)
    }

    /// The conversation with `name`, oldest first, after applying expiries. No network.
    /// Received view-once messages come without their body (see [`Client::display`]).
    pub async fn history(&self, name: &str) -> Result<Vec<MessageView>, ClientError> {
        let inner = &self.inner;
        let mut st = inner.state.lock().await;
        let c = st.contact(name)?;
        let conv = &mut c.conv;
        let effects = conv.tick(inner.now());
        driver::apply_local(&inner.store, &c.key, name, conv, effects)?;
        let ttl = conv.meta().relay_ttl;
        // Group messages belong to their group's history (`group_history`).
        Ok(conv
            .messages()
            .into_iter()
            .filter(|r| r.group.is_none())
            .map(|r| MessageView::from_record(r, ttl))
            .collect())
    }

    /// Sets the disappearing timer of the conversation with `name` on both sides (`None`: off).
    /// Durations are counted in whole seconds, at least one.
    pub async fn set_timer(&self, name: &str, timer: Option<Duration>) -> Result<(), ClientError> {
        let timer = timer.map(|d| d.as_secs().max(1));
        self.inner
            .act(name, true, |conv, now| conv.set_timer(timer, now))
            .await
    }

    /// Unsends our message `id` to `name`: retracted at the relay if still queued, deleted by the
    /// contact otherwise (an encrypted control message), and deleted here.
    pub async fn unsend(&self, name: &str, id: MessageId) -> Result<(), ClientError> {
        let inner = &self.inner;
        inner
            .act(name, true, |conv, now| conv.unsend(id, now))
            .await?;
        // A file message's blob is retracted too.
        inner.transfers.run_deletions().await;
        Ok(())
    }

    /// Burns the conversation with `name` on both sides: history, ratchet state and keys, and
    /// both queues.
    ///
    /// Everything here is erased first, whatever the relays say: the contact and its name are
    /// gone when this returns (the name is free for a new contact, and
    /// [`ClientError::UnknownContact`] is what a later call gets). Then the contact is sent
    /// `Burn` and our queue is deleted, best effort: the report says what was done, and what
    /// could not be done (a relay out of reach) is tried again by [`Client::tick`] and the event
    /// stream until the relay TTL has passed. Works on a blocked contact, a contact who blocked
    /// us or burned first, and with every relay down.
    pub async fn burn(&self, name: &str) -> Result<BurnReport, ClientError> {
        let inner = &self.inner;
        let id = {
            let mut st = inner.state.lock().await;
            let effects = st.contact(name)?.conv.burn()?;
            inner.burn_here(&mut st, name, effects, &mut Vec::new())?
        };
        inner.yield_inbox.notify_one();
        // Settled by a concurrent tick if it is gone already.
        let report = inner.deliver_owed(Some(id)).await.unwrap_or(BurnReport {
            contact_told: Delivery::Done,
            queue_deleted: Delivery::Done,
        });
        // The blobs of file messages are retracted too.
        inner.transfers.run_deletions().await;
        Ok(report)
    }

    /// Blocks `name`: deletes the queue it sends to. History stays until it expires.
    pub async fn block(&self, name: &str) -> Result<(), ClientError> {
        self.inner.act(name, false, |conv, _| conv.block()).await
    }

    /// Applies every expiry that is due now, returning what expired.
    pub async fn tick(&self) -> Result<Vec<ClientEvent>, ClientError> {
        let events = self.inner.tick().await?;
        self.inner.transfers.run_deletions().await;
        Ok(events)
    }

    /// When the next message expires, if any: when to call [`Client::tick`] again.
    pub async fn next_deadline(&self) -> Option<SystemTime> {
        let secs = self.inner.next_deadline().await?;
        Some(UNIX_EPOCH + Duration::from_secs(secs))
    }
}
