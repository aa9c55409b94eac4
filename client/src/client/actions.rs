//! The user's actions: invite, accept, send, display, history, contacts, verification, timers,
//! unsend, burn, block and expiry.
//!
//! Each action checks what it can before changing anything (the contact exists, the relay can
//! be reached), lets the conversation decide, then carries out the effects in order. A text
//! whose envelope could not be sent is taken back, so a failed send leaves no trace.
//!
//! What it does not do: receive (see `inbox`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ed25519_dalek::SigningKey;
use hush_protocol::{ErrorCode, RelayAddress, SendCapability};
use rand::rngs::OsRng;
use rand::RngCore;

use super::records::{ContactRecord, Link, OwnQueue, PeerQueue, PendingRecord};
use super::view::{ClientEvent, ContactStatus, ContactView, MessageView, PendingView};
use super::{secs, Client, ClientError, Contact, Inner, State, RELAY_TTL_SECS};
use crate::conversation::{Conversation, MessageBody, MessageId, Payload, Status};
use crate::crypto::{self, Invitation, SafetyNumber};
use crate::net::NetError;
use crate::store::limits::MAX_NAME_LEN;
use crate::store::StoreKey;

fn random_cap() -> SendCapability {
    let mut b = [0u8; 32];
    OsRng.fill_bytes(&mut b);
    SendCapability::from_bytes(b)
}

fn check_name(name: &str) -> Result<(), ClientError> {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(ClientError::InvalidName);
    }
    Ok(())
}

fn unknown(name: &str) -> ClientError {
    ClientError::UnknownContact {
        name: name.to_owned(),
    }
}

impl State {
    /// Fails unless `name` is free for a new contact (a burned one may be replaced).
    fn check_free(&self, name: &str) -> Result<(), ClientError> {
        check_name(name)?;
        let live = self
            .contacts
            .get(name)
            .is_some_and(|c| matches!(c.record, ContactRecord::Live(_)));
        if live || self.pending.values().any(|p| p.name == name) {
            return Err(ClientError::NameTaken {
                name: name.to_owned(),
            });
        }
        Ok(())
    }

    pub(super) fn contact(&mut self, name: &str) -> Result<&mut Contact, ClientError> {
        self.contacts.get_mut(name).ok_or_else(|| unknown(name))
    }
}

impl Contact {
    pub(super) fn conv(&mut self) -> Result<&mut Conversation, ClientError> {
        self.conv.as_mut().ok_or(ClientError::Burned)
    }

    fn link(&self) -> Result<&Link, ClientError> {
        match &self.record {
            ContactRecord::Live(link) => Ok(link),
            ContactRecord::Burned => Err(ClientError::Burned),
        }
    }
}

impl Inner {
    /// Creates a queue we own on `relay`; returns it and its send capability.
    async fn create_queue(
        &self,
        relay: &RelayAddress,
    ) -> Result<(OwnQueue, SendCapability), ClientError> {
        let key = SigningKey::generate(&mut OsRng);
        let cap = random_cap();
        let (recipient_id, sender_id) = self
            .pool
            .run(relay, |conn| {
                let (key, cap) = (key.clone(), cap.clone());
                async move { conn.client().create_queue(&key, &cap).await }
            })
            .await?;
        let own = OwnQueue {
            relay: relay.clone(),
            recipient_id,
            sender_id,
            key,
        };
        Ok((own, cap))
    }

    /// Makes sure the contact's relay answers before anything changes.
    pub(super) async fn reach(&self, c: &Contact) -> Result<(), ClientError> {
        let relay = &c.link()?.to_peer.relay;
        self.pool.connection(relay).await?;
        Ok(())
    }
}

impl Client {
    /// Creates a one-time invitation for a contact to be called `as_name`: a new receive queue
    /// on our relay (with its own Ed25519 recipient key and send capability) and the
    /// `hush://invite/...` token to hand over. The contact appears once it answers and
    /// [`Client::receive`] (or the event stream) processes the answer.
    pub async fn invite(&self, as_name: &str) -> Result<String, ClientError> {
        let inner = &self.inner;
        let mut st = inner.state.lock().await;
        st.check_free(as_name)?;
        let (own, cap) = inner.create_queue(&inner.relay).await?;
        let (invitation, secrets) = Invitation::create(
            &inner.identity,
            inner.relay.clone(),
            own.sender_id,
            cap,
            &mut OsRng,
        );
        let recipient_id = own.recipient_id;
        let pending = PendingRecord {
            name: as_name.to_owned(),
            own,
            secrets: secrets.to_bytes(),
        };
        inner.store.put(
            &StoreKey::Invitation(recipient_id.as_bytes().to_vec()),
            &pending.encode(),
        )?;
        st.pending.insert(recipient_id, pending);
        Ok(invitation.encode())
    }

    /// The invitations we handed out that nobody has answered yet.
    pub async fn pending_invitations(&self) -> Vec<PendingView> {
        let st = self.inner.state.lock().await;
        let mut all: Vec<PendingView> = st
            .pending
            .values()
            .map(|p| PendingView {
                name: p.name.clone(),
                relay: p.own.relay.clone(),
            })
            .collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// Answers an invitation and adds its sender as contact `as_name`: creates our own queue on
    /// our relay, runs the handshake, and sends the first message (introducing our queue) while
    /// atomically replacing the invitation's send capability with one only we know.
    pub async fn accept(&self, invitation: &str, as_name: &str) -> Result<(), ClientError> {
        let inner = &self.inner;
        let invitation = Invitation::parse(invitation)?;
        let mut st = inner.state.lock().await;
        st.check_free(as_name)?;
        inner.pool.connection(invitation.relay()).await?;
        let (own, own_cap) = inner.create_queue(&inner.relay).await?;
        let intro = Payload::Introduce {
            relay: own.relay.clone(),
            sender_id: own.sender_id,
            send_cap: own_cap,
        };
        let (session, wire) =
            crypto::accept(&inner.identity, &invitation, &intro.encode(), &mut OsRng)?;
        let new_cap = random_cap();
        let link = Link {
            verified: false,
            peer: *invitation.inviter(),
            own,
            to_peer: PeerQueue {
                relay: invitation.relay().clone(),
                sender_id: invitation.sender_id(),
                send_cap: new_cap.clone(),
            },
        };
        let mut contact = Contact {
            record: ContactRecord::Live(Box::new(link)),
            session: Some(session),
            conv: Some(Conversation::new(RELAY_TTL_SECS)?),
        };
        // Stored before the first message leaves, so a crash cannot lose the contact.
        inner.persist_contact(as_name, &contact)?;
        let sent = inner
            .pool
            .run(invitation.relay(), |conn| {
                let (cap, new_cap, wire) = (
                    invitation.send_capability().clone(),
                    new_cap.clone(),
                    wire.clone(),
                );
                let sid = invitation.sender_id();
                async move { conn.client().send(sid, &cap, 0, Some(&new_cap), wire).await }
            })
            .await;
        if let Err(e) = sent {
            inner.store.erase_contact(as_name)?;
            contact.conv = None;
            inner.delete_queue_of(&contact).await;
            return Err(match e {
                NetError::Refused {
                    code: ErrorCode::Auth | ErrorCode::NoQueue,
                    ..
                } => ClientError::InvitationUsed,
                other => other.into(),
            });
        }
        st.contacts.insert(as_name.to_owned(), contact);
        Ok(())
    }

    /// Sends a text to `name` and returns its id. With `timer_override`, this one message
    /// carries that disappearing timer instead of the conversation's (which stays as it is);
    /// `view_once` makes the contact's copy vanish after its first display.
    pub async fn send_text(
        &self,
        name: &str,
        text: &str,
        timer_override: Option<Duration>,
        view_once: bool,
    ) -> Result<MessageId, ClientError> {
        let inner = &self.inner;
        let mut st = inner.state.lock().await;
        let c = st.contact(name)?;
        c.conv()?;
        inner.reach(c).await?;
        let mut events = Vec::new();
        let before = c.conv()?.clone();
        let conv = c.conv()?;
        let timer = match timer_override {
            Some(d) => Some(d.as_secs().max(1)),
            None => conv.timer(),
        };
        let (id, effects) =
            conv.compose_text_with_timer(text, timer, view_once, inner.now(), &mut OsRng)?;
        if let Err(e) = inner.apply(name, c, effects, &mut events).await {
            // Take the message back: it never left.
            if c.conv.is_some() {
                c.conv = Some(before);
                inner
                    .store
                    .delete(&StoreKey::Message(name.to_owned(), id))?;
            }
            return Err(e);
        }
        inner.yield_inbox.notify_one();
        Ok(id)
    }

    /// Reveals message `id` of `name`: returns its body and starts its read timer (a received
    /// view-once message is deleted right away). `None` for the stub of a view-once message we
    /// sent.
    pub async fn display(
        &self,
        name: &str,
        id: MessageId,
    ) -> Result<Option<MessageBody>, ClientError> {
        let inner = &self.inner;
        let mut st = inner.state.lock().await;
        let c = st.contact(name)?;
        let shown = c.conv()?.display(id, inner.now())?;
        let conv = c.conv()?;
        super::driver::apply_local(&inner.store, name, conv, shown.effects)?;
        // A read timer may have started: the event task recomputes its next wake-up.
        inner.yield_inbox.notify_one();
        Ok(shown.body)
    }

    /// The conversation with `name`, oldest first, after applying expiries. No network.
    /// Received view-once messages come without their body (see [`Client::display`]).
    pub async fn history(&self, name: &str) -> Result<Vec<MessageView>, ClientError> {
        let inner = &self.inner;
        let mut st = inner.state.lock().await;
        let c = st.contact(name)?;
        let conv = c.conv()?;
        let effects = conv.tick(inner.now());
        super::driver::apply_local(&inner.store, name, conv, effects)?;
        let ttl = conv.meta().relay_ttl;
        Ok(conv
            .messages()
            .into_iter()
            .map(|r| MessageView::from_record(r, ttl))
            .collect())
    }

    /// Every contact, by name.
    pub async fn contacts(&self) -> Vec<ContactView> {
        let st = self.inner.state.lock().await;
        st.contacts
            .iter()
            .map(|(name, c)| {
                let status = match (&c.record, c.conv.as_ref().map(Conversation::status)) {
                    (ContactRecord::Live(_), Some(Status::Blocked)) => ContactStatus::Blocked,
                    (ContactRecord::Live(_), Some(Status::Active)) => ContactStatus::Active,
                    _ => ContactStatus::Burned,
                };
                let link = c.link().ok();
                ContactView {
                    name: name.clone(),
                    status,
                    verified: link.is_some_and(|l| l.verified),
                    timer: secs(c.conv.as_ref().and_then(Conversation::timer)),
                    relay: link.map(|l| l.to_peer.relay.clone()),
                    messages: c.conv.as_ref().map_or(0, |v| v.messages().len()),
                }
            })
            .collect()
    }

    /// The safety number of our identity and `name`'s, to compare out of band.
    pub async fn safety_number(&self, name: &str) -> Result<SafetyNumber, ClientError> {
        let mut st = self.inner.state.lock().await;
        let link = st.contact(name)?.link()?;
        Ok(crypto::safety_number(
            &self.inner.identity.public(),
            &link.peer,
        ))
    }

    /// Records that the user compared `name`'s safety number and it matched.
    pub async fn mark_verified(&self, name: &str) -> Result<(), ClientError> {
        let inner = &self.inner;
        let mut st = inner.state.lock().await;
        let c = st.contact(name)?;
        if let ContactRecord::Live(link) = &mut c.record {
            link.verified = true;
        } else {
            return Err(ClientError::Burned);
        }
        inner
            .store
            .put(&StoreKey::Contact(name.to_owned()), &c.record.encode())?;
        Ok(())
    }

    /// Sets the disappearing timer of the conversation with `name` on both sides (`None`: off).
    /// Durations are counted in whole seconds, at least one.
    pub async fn set_timer(&self, name: &str, timer: Option<Duration>) -> Result<(), ClientError> {
        let inner = &self.inner;
        let mut st = inner.state.lock().await;
        let c = st.contact(name)?;
        c.conv()?;
        inner.reach(c).await?;
        let effects = c
            .conv()?
            .set_timer(timer.map(|d| d.as_secs().max(1)), inner.now())?;
        inner.apply(name, c, effects, &mut Vec::new()).await
    }

    /// Unsends our message `id` to `name`: retracted at the relay if still queued, deleted by the
    /// contact otherwise (an encrypted control message), and deleted here.
    pub async fn unsend(&self, name: &str, id: MessageId) -> Result<(), ClientError> {
        let inner = &self.inner;
        let mut st = inner.state.lock().await;
        let c = st.contact(name)?;
        c.conv()?;
        inner.reach(c).await?;
        let effects = c.conv()?.unsend(id, inner.now())?;
        inner.apply(name, c, effects, &mut Vec::new()).await?;
        drop(st);
        // A file message's blob is retracted too.
        inner.run_blob_deletions().await;
        Ok(())
    }

    /// Burns the conversation with `name` on both sides: history, ratchet state and keys, and
    /// both queues. Sending to `name` afterwards fails with [`ClientError::Burned`].
    pub async fn burn(&self, name: &str) -> Result<(), ClientError> {
        let inner = &self.inner;
        let mut st = inner.state.lock().await;
        let c = st.contact(name)?;
        c.conv()?;
        inner.reach(c).await?;
        let effects = c.conv()?.burn()?;
        inner.apply(name, c, effects, &mut Vec::new()).await?;
        drop(st);
        // The blobs of file messages are retracted too.
        inner.run_blob_deletions().await;
        Ok(())
    }

    /// Blocks `name`: deletes the queue it sends to. History stays until it expires.
    pub async fn block(&self, name: &str) -> Result<(), ClientError> {
        let inner = &self.inner;
        let mut st = inner.state.lock().await;
        let c = st.contact(name)?;
        let effects = c.conv()?.block()?;
        inner.apply(name, c, effects, &mut Vec::new()).await
    }

    /// Applies every expiry that is due now, returning what expired.
    pub async fn tick(&self) -> Result<Vec<ClientEvent>, ClientError> {
        let events = self.inner.tick().await?;
        self.inner.run_blob_deletions().await;
        Ok(events)
    }

    /// When the next message expires, if any: when to call [`Client::tick`] again.
    pub async fn next_deadline(&self) -> Option<SystemTime> {
        let secs = self.inner.next_deadline().await?;
        Some(UNIX_EPOCH + Duration::from_secs(secs))
    }
}

impl Inner {
    /// Saves a new contact's record, session and conversation metadata.
    pub(crate) fn persist_contact(&self, name: &str, c: &Contact) -> Result<(), ClientError> {
        self.store
            .put(&StoreKey::Contact(name.to_owned()), &c.record.encode())?;
        self.save_session(name, c)?;
        if let Some(conv) = &c.conv {
            self.store.put(
                &StoreKey::ConversationMeta(name.to_owned()),
                &conv.meta().encode(),
            )?;
        }
        Ok(())
    }

    /// Deletes our queue of a contact that did not come about.
    async fn delete_queue_of(&self, c: &Contact) {
        if let Ok(link) = c.link() {
            let own = &link.own;
            let _ = self
                .pool
                .run(&own.relay, |conn| {
                    let key = own.key.clone();
                    async move { conn.client().delete_queue(&key, own.recipient_id).await }
                })
                .await;
        }
    }

    /// Applies due expiries in every conversation.
    pub(crate) async fn tick(&self) -> Result<Vec<ClientEvent>, ClientError> {
        let now = self.now();
        let mut st = self.state.lock().await;
        let mut events = Vec::new();
        for (name, c) in st.contacts.iter_mut() {
            if let Some(conv) = c.conv.as_mut() {
                if conv.next_deadline().is_some_and(|d| d <= now) {
                    let effects = conv.tick(now);
                    events.extend(super::driver::apply_local(
                        &self.store,
                        name,
                        conv,
                        effects,
                    )?);
                }
            }
        }
        Ok(events)
    }

    /// The earliest expiry (unix seconds) over every conversation.
    pub(crate) async fn next_deadline(&self) -> Option<u64> {
        let st = self.state.lock().await;
        st.contacts
            .values()
            .filter_map(|c| c.conv.as_ref()?.next_deadline())
            .min()
    }
}
