//! Carrying out a conversation's effects, in order: encrypt and send, retract, persist and
//! shred records, delete our queue, erase the conversation, and tell the user.
//!
//! Rules (see `docs/conversation.md`): a session is saved after every encrypt, before the
//! envelope leaves; a message record is saved before its payload is sent; erasing shreds every
//! record of the contact and leaves a tombstone so that later calls say "burned".
//!
//! What it does not do: decide anything. The conversation chose the effects.

use std::collections::VecDeque;

use hush_protocol::ErrorCode;
use rand::rngs::OsRng;

use super::records::ContactRecord;
use super::view::{ClientEvent, MessageView};
use super::{secs, ClientError, Contact, Inner};
use crate::conversation::{Conversation, Effect, Event, Payload};
use crate::net::NetError;
use crate::store::{LocalStore, StoreKey};

/// Applies the effects that touch only the store (what `tick` and `display` return).
pub(crate) fn apply_local(
    store: &LocalStore,
    name: &str,
    conv: &Conversation,
    effects: Vec<Effect>,
) -> Result<Vec<ClientEvent>, ClientError> {
    let mut events = Vec::new();
    for effect in effects {
        match effect {
            Effect::SaveMessage(id) => save_message(store, name, conv, id)?,
            Effect::DeleteMessage(id) => {
                super::transfer::forget_stored(store, name, id)?;
                store.delete(&StoreKey::Message(name.to_owned(), id))?;
            }
            Effect::SaveMeta => save_meta(store, name, conv)?,
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
    name: &str,
    conv: &Conversation,
    id: crate::conversation::MessageId,
) -> Result<(), ClientError> {
    if let Some(record) = conv.message(&id) {
        store.put(&StoreKey::Message(name.to_owned(), id), &record.encode())?;
    }
    Ok(())
}

fn save_meta(store: &LocalStore, name: &str, conv: &Conversation) -> Result<(), ClientError> {
    store.put(
        &StoreKey::ConversationMeta(name.to_owned()),
        &conv.meta().encode(),
    )?;
    Ok(())
}

/// Turns a conversation event into a client event about `name`.
pub(crate) fn to_event(name: &str, conv: Option<&Conversation>, ev: Event) -> ClientEvent {
    let contact = name.to_owned();
    match ev {
        Event::MessageShown {
            id,
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
        // `Blocked` and any later kinds.
        _ => ClientEvent::Blocked { contact },
    }
}

impl Inner {
    /// Saves the contact's session, as it is now.
    pub(crate) fn save_session(&self, name: &str, c: &Contact) -> Result<(), ClientError> {
        if let Some(session) = &c.session {
            self.store
                .put(&StoreKey::Session(name.to_owned()), &session.to_bytes())?;
        }
        Ok(())
    }

    /// Carries out `effects` for contact `name`, in order, appending what the user should see
    /// to `events`. Stops at the first failure (the caller restores what it must).
    pub(crate) async fn apply(
        &self,
        name: &str,
        c: &mut Contact,
        effects: Vec<Effect>,
        events: &mut Vec<ClientEvent>,
    ) -> Result<(), ClientError> {
        let mut queue: VecDeque<Effect> = effects.into();
        while let Some(effect) = queue.pop_front() {
            match effect {
                Effect::SendPayload(payload) => {
                    let envelope_id = self.send_payload(name, c, &payload).await?;
                    if let (Some(id), Some(conv)) = (payload.message_id(), c.conv.as_mut()) {
                        queue.extend(conv.mark_sent(id, envelope_id));
                    }
                }
                Effect::Retract { envelope_id } => {
                    if let ContactRecord::Live(link) = &c.record {
                        let to = &link.to_peer;
                        let r = self
                            .pool
                            .run(&to.relay, |conn| {
                                let cap = to.send_cap.clone();
                                async move {
                                    conn.client().retract(to.sender_id, &cap, envelope_id).await
                                }
                            })
                            .await;
                        if let Err(e) = r {
                            tracing::debug!(error = %e, "retract failed; the unsend covers it");
                        }
                    }
                }
                Effect::DeleteOwnQueue => self.delete_own_queue(c).await,
                Effect::EraseConversation => {
                    super::transfer::forget_all(&self.store, name)?;
                    self.store.erase_contact(name)?;
                    self.store.put(
                        &StoreKey::Contact(name.to_owned()),
                        &ContactRecord::Burned.encode(),
                    )?;
                    c.record = ContactRecord::Burned;
                    c.session = None;
                    c.conv = None;
                }
                Effect::Notify(ev) => events.push(to_event(name, c.conv.as_ref(), ev)),
                local => {
                    if let Some(conv) = &c.conv {
                        events.extend(apply_local(&self.store, name, conv, vec![local])?);
                    }
                }
            }
        }
        Ok(())
    }

    /// Encrypts `payload`, saves the advanced session, and sends it to the contact's queue.
    async fn send_payload(
        &self,
        name: &str,
        c: &mut Contact,
        payload: &Payload,
    ) -> Result<hush_protocol::EnvelopeId, ClientError> {
        let ContactRecord::Live(link) = &c.record else {
            return Err(ClientError::Burned);
        };
        let session = c.session.as_mut().ok_or(ClientError::Burned)?;
        let wire = session.encrypt(&payload.encode(), &mut OsRng)?;
        self.store
            .put(&StoreKey::Session(name.to_owned()), &session.to_bytes())?;
        let to = &link.to_peer;
        let sent = self
            .pool
            .run(&to.relay, |conn| {
                let (cap, wire) = (to.send_cap.clone(), wire.clone());
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

    /// Deletes the queue the contact sends to. Best effort: a relay that cannot be reached now
    /// drops the idle queue later, and nothing more is read from it either way.
    async fn delete_own_queue(&self, c: &Contact) {
        let ContactRecord::Live(link) = &c.record else {
            return;
        };
        let own = &link.own;
        let r = self
            .pool
            .run(&own.relay, |conn| {
                let key = own.key.clone();
                async move { conn.client().delete_queue(&key, own.recipient_id).await }
            })
            .await;
        match r {
            Ok(()) => {}
            Err(e) if e.code() == Some(ErrorCode::NoQueue) => {}
            Err(e) => tracing::warn!(error = %e, "deleting a queue failed"),
        }
    }
}
