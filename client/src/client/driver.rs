//! Carrying out a conversation's effects, in order: encrypt and send, retract, persist and
//! shred records, delete our queue, erase the conversation, and tell the user.
//!
//! Rules (see `docs/conversation.md`): a session is saved after every encrypt, before the
//! envelope leaves; a message record is saved before its payload is sent; a burn (effects that
//! erase the conversation) is carried out by `burn`: erased here first, the relays told after.
//!
//! The state lock is never held across a relay call. [`Inner::carry_out`] works in three
//! steps: under the lock it applies the effects up to the first relay call and prepares every
//! call (sealing each payload with the session, which it saves); it releases the lock and makes
//! the calls; then it takes the lock again and, if the contact is still the same one, commits
//! what each successful call was followed by. A send that fails stops there: what came after it
//! is not applied, and the caller takes back what it must.
//!
//! What it does not do: decide anything. The conversation chose the effects.

use hush_protocol::{EnvelopeId, ErrorCode, RecipientId};
use rand::rngs::OsRng;
use tokio::sync::MutexGuard;

use super::error::ClientError;
use super::view::{ClientEvent, MessageView};
use super::{secs, Contact, Inner, State};
use crate::conversation::{Conversation, Effect, Event, MessageId, Payload};
use crate::net::{Lane, NetError};
use crate::store::{ContactId, ContactKey, LocalStore};
use crate::transfer::staging;

/// Applies the effects that touch only the store (what `tick` and `display` return) to the
/// records of contact `name`, whose store key is `key`.
pub(crate) fn apply_local(
    store: &LocalStore,
    key: &ContactKey,
    name: &str,
    conv: &Conversation,
    effects: Vec<Effect>,
) -> Result<Vec<ClientEvent>, ClientError> {
    let mut events = Vec::new();
    for effect in effects {
        match effect {
            Effect::SaveMessage(id) => save_message(store, key, conv, id)?,
            Effect::DeleteMessage(id) => {
                staging::forget_stored(store, key, id)?;
                store.delete(&key.message(id))?;
            }
            Effect::SaveMeta => save_meta(store, key, conv)?,
            Effect::Notify(ev) => events.push(to_event(name, Some(conv), ev)),
            other => {
                tracing::warn!(effect = ?effect_kind(&other), "unexpected effect ignored");
            }
        }
    }
    Ok(events)
}

fn effect_kind(e: &Effect) -> &'static str {
    match e {
        Effect::SendPayload(_) => "send",
        Effect::Retract { .. } => "retract",
        Effect::DeleteOwnQueue => "delete-queue",
        Effect::EraseConversation => "erase",
        _ => "local",
    }
}

fn save_message(
    store: &LocalStore,
    key: &ContactKey,
    conv: &Conversation,
    id: MessageId,
) -> Result<(), ClientError> {
    if let Some(record) = conv.message(&id) {
        store.put(&key.message(id), &record.encode())?;
    }
    Ok(())
}

fn save_meta(store: &LocalStore, key: &ContactKey, conv: &Conversation) -> Result<(), ClientError> {
    store.put(&key.meta(), &conv.meta().encode())?;
    Ok(())
}

/// Turns a conversation event into a client event about `name`.
pub(crate) fn to_event(name: &str, conv: Option<&Conversation>, ev: Event) -> ClientEvent {
    let contact = name.to_owned();
    match ev {
        Event::MessageShown {
            id,
            group,
            sent_at,
            timer,
            view_once,
            body,
        } => {
            let record = conv.and_then(|c| Some((c.message(&id)?, c.meta().relay_ttl)));
            let message = match record {
                Some((r, ttl)) => MessageView::from_record(r, ttl),
                None => MessageView {
                    id,
                    outgoing: false,
                    sent_at,
                    received_at: sent_at,
                    timer: secs(timer),
                    view_once,
                    displayed_at: None,
                    expires_at: None,
                    body,
                    file: None,
                    group,
                },
            };
            ClientEvent::Message { contact, message }
        }
        Event::MessageExpired(id) => ClientEvent::Expired { contact, id },
        Event::TimerChanged { timer, by_contact } => ClientEvent::TimerChanged {
            contact,
            timer: secs(timer),
            by_contact,
        },
        Event::Unsent { id, by_contact } => ClientEvent::Unsent {
            contact,
            id,
            by_contact,
        },
        Event::Burned { by_contact } => ClientEvent::Burned {
            contact,
            by_contact,
        },
        Event::Blocked => ClientEvent::Blocked { contact },
    }
}

/// A relay call an effect needs, prepared under the state lock and made without it.
enum Call {
    /// Send a sealed payload to the contact's queue; `message` is the message it carries.
    Send {
        to: Target,
        wire: Vec<u8>,
        message: Option<MessageId>,
    },
    /// Retract an envelope from the contact's queue (best effort).
    Retract { to: Target, envelope_id: EnvelopeId },
    /// Delete the queue the contact sends to (best effort).
    DeleteQueue {
        relay: hush_protocol::RelayAddress,
        recipient_id: RecipientId,
        key: ed25519_dalek::SigningKey,
    },
}

/// The contact's queue, as a call needs it.
struct Target {
    relay: hush_protocol::RelayAddress,
    sender_id: hush_protocol::SenderId,
    send_cap: hush_protocol::SendCapability,
}

impl Target {
    fn of(c: &Contact) -> Target {
        let to = &c.link.to_peer;
        Target {
            relay: to.relay.clone(),
            sender_id: to.sender_id,
            send_cap: to.send_cap.clone(),
        }
    }
}

/// Effects prepared under the lock: the relay calls still to make, in order, each with the
/// local effects that follow it.
struct Prepared {
    /// The contact they are for.
    contact: ContactId,
    steps: Vec<(Call, Vec<Effect>)>,
}

impl Inner {
    /// Saves the contact's session, as it is now.
    pub(crate) fn save_session(&self, c: &Contact) -> Result<(), ClientError> {
        self.store.put(&c.key.session(), &c.session.to_bytes())?;
        Ok(())
    }

    /// Carries out `effects`, which contact `name`'s conversation returned under the lock
    /// `st`, in order, appending what the user should see to `events`. The lock is released
    /// while relays are called and taken again to commit; it is handed back with the result.
    /// Stops at the first failure (the caller takes back what it must).
    ///
    /// Effects that erase the conversation (a burn) are carried out by [`Inner::burn_here`]:
    /// everything is erased before any relay is called, and what the relays are owed is
    /// delivered by the next `tick`.
    pub(crate) async fn carry_out<'a>(
        &'a self,
        mut st: MutexGuard<'a, State>,
        name: &str,
        mut effects: Vec<Effect>,
        events: &mut Vec<ClientEvent>,
    ) -> (MutexGuard<'a, State>, Result<(), ClientError>) {
        if effects.contains(&Effect::EraseConversation) {
            let burned = self.burn_here(&mut st, name, effects, events).map(|_| ());
            return (st, burned);
        }
        loop {
            let prepared = match self.prepare(&mut st, name, effects, events) {
                Ok(p) if p.steps.is_empty() => return (st, Ok(())),
                Ok(p) => p,
                Err(e) => return (st, Err(e)),
            };
            drop(st);
            let outcomes = self.call(&prepared.steps).await;
            st = self.state.lock().await;
            match self.commit(&mut st, name, prepared, outcomes, events) {
                Ok(more) if more.is_empty() => return (st, Ok(())),
                Ok(more) => effects = more,
                Err(e) => return (st, Err(e)),
            }
        }
    }

    /// Under the lock: applies the effects before the first relay call and prepares the calls.
    fn prepare(
        &self,
        st: &mut State,
        name: &str,
        effects: Vec<Effect>,
        events: &mut Vec<ClientEvent>,
    ) -> Result<Prepared, ClientError> {
        let c = st.contact(name)?;
        let mut prepared = Prepared {
            contact: c.id,
            steps: Vec::new(),
        };
        for effect in effects {
            let call = match effect {
                Effect::SendPayload(payload) => Some(self.seal(c, &payload)?),
                Effect::Retract { envelope_id } => Some(Call::Retract {
                    to: Target::of(c),
                    envelope_id,
                }),
                Effect::DeleteOwnQueue => Some(Call::DeleteQueue {
                    relay: c.link.own.relay.clone(),
                    recipient_id: c.link.own.recipient_id,
                    key: c.link.own.key.clone(),
                }),
                local => match prepared.steps.last_mut() {
                    Some((_, after)) => {
                        after.push(local);
                        None
                    }
                    None => {
                        self.apply_one(name, c, local, events)?;
                        None
                    }
                },
            };
            if let Some(call) = call {
                prepared.steps.push((call, Vec::new()));
            }
        }
        Ok(prepared)
    }

    /// Encrypts `payload` and saves the advanced session: the envelope to send.
    fn seal(&self, c: &mut Contact, payload: &Payload) -> Result<Call, ClientError> {
        let to = Target::of(c);
        let wire = c.session.encrypt(&payload.encode(), &mut OsRng)?;
        self.save_session(c)?;
        Ok(Call::Send {
            to,
            wire,
            message: payload.message_id(),
        })
    }

    /// Without the lock: makes the calls in order, stopping after the first send that fails.
    /// Returns the outcome of each call made (a send's envelope id).
    async fn call(
        &self,
        steps: &[(Call, Vec<Effect>)],
    ) -> Vec<Result<Option<EnvelopeId>, ClientError>> {
        let mut outcomes = Vec::with_capacity(steps.len());
        for (call, _) in steps {
            let outcome = match call {
                Call::Send { to, wire, .. } => self.send_envelope(to, wire).await.map(Some),
                Call::Retract { to, envelope_id } => {
                    self.retract(to, *envelope_id).await;
                    Ok(None)
                }
                Call::DeleteQueue {
                    relay,
                    recipient_id,
                    key,
                } => {
                    self.delete_queue(relay, *recipient_id, key).await;
                    Ok(None)
                }
            };
            let failed = outcome.is_err();
            outcomes.push(outcome);
            if failed {
                break;
            }
        }
        outcomes
    }

    /// Under the lock again: for each call that succeeded, records a sent message's envelope
    /// id and applies the effects that followed the call. Returns the effects that recording
    /// asked for (to carry out next), or the first failure.
    fn commit(
        &self,
        st: &mut State,
        name: &str,
        prepared: Prepared,
        outcomes: Vec<Result<Option<EnvelopeId>, ClientError>>,
        events: &mut Vec<ClientEvent>,
    ) -> Result<Vec<Effect>, ClientError> {
        let Some(c) = st.same_contact(name, prepared.contact) else {
            // Burned (or burned and replaced) while the relay was called.
            return Err(ClientError::Burned);
        };
        let mut more = Vec::new();
        for ((call, after), outcome) in prepared.steps.into_iter().zip(outcomes) {
            let envelope_id = outcome?;
            if let (
                Call::Send {
                    message: Some(id), ..
                },
                Some(envelope_id),
            ) = (&call, envelope_id)
            {
                more.extend(c.conv.mark_sent(*id, envelope_id));
            }
            for effect in after {
                self.apply_one(name, c, effect, events)?;
            }
        }
        Ok(more)
    }

    /// Applies one effect that needs no relay.
    fn apply_one(
        &self,
        name: &str,
        c: &mut Contact,
        effect: Effect,
        events: &mut Vec<ClientEvent>,
    ) -> Result<(), ClientError> {
        match effect {
            Effect::Notify(ev) => events.push(to_event(name, Some(&c.conv), ev)),
            local => events.extend(apply_local(
                &self.store,
                &c.key,
                name,
                &c.conv,
                vec![local],
            )?),
        }
        Ok(())
    }

    /// Sends a sealed envelope to the contact's queue.
    async fn send_envelope(&self, to: &Target, wire: &[u8]) -> Result<EnvelopeId, ClientError> {
        let sent = self
            .pool
            .run_on(&to.relay, Lane::Contact(to.sender_id), |conn| {
                let (cap, wire) = (to.send_cap.clone(), wire.to_vec());
                async move { conn.client().send(to.sender_id, &cap, 0, None, wire).await }
            })
            .await;
        match sent {
            Ok(id) => Ok(id),
            Err(NetError::Refused {
                code: ErrorCode::Auth | ErrorCode::NoQueue,
                ..
            }) => Err(ClientError::ContactGone),
            Err(e) => Err(e.into()),
        }
    }

    /// Retracts an envelope. Best effort: the unsend sent alongside covers a failure.
    async fn retract(&self, to: &Target, envelope_id: EnvelopeId) {
        let r = self
            .pool
            .run_on(&to.relay, Lane::Contact(to.sender_id), |conn| {
                let cap = to.send_cap.clone();
                async move { conn.client().retract(to.sender_id, &cap, envelope_id).await }
            })
            .await;
        if let Err(e) = r {
            tracing::debug!(error = %e, "retract failed; the unsend covers it");
        }
    }

    /// Deletes a queue we own. Best effort: a relay that cannot be reached now drops the idle
    /// queue later, and nothing more is read from it either way.
    pub(crate) async fn delete_queue(
        &self,
        relay: &hush_protocol::RelayAddress,
        recipient_id: RecipientId,
        key: &ed25519_dalek::SigningKey,
    ) {
        let r = self
            .pool
            .run(relay, |conn| {
                let key = key.clone();
                async move { conn.client().delete_queue(&key, recipient_id).await }
            })
            .await;
        match r {
            Ok(()) => {}
            Err(e) if e.code() == Some(ErrorCode::NoQueue) => {}
            Err(e) => tracing::warn!(error = %e, "deleting a queue failed"),
        }
    }
}
