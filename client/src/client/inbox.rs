//! Receiving: subscribing to every queue we own, processing pushed envelopes, and the
//! background task behind the event stream.
//!
//! An envelope on a pending invitation's queue is a handshake first message: it completes the
//! invitation and creates the contact. An envelope on a contact's queue is a ratchet message:
//! it is decrypted and fed to the conversation. Either way the results are stored durably
//! first and the envelope is acked after; duplicates, undecryptable envelopes and late envelopes
//! on a burned queue (its tombstone, see `burn`) are acked and dropped, and an envelope that
//! fails authentication is reported as
//! [`ClientEvent::Tampered`]. The relay's `Drained` push tells a one-shot `receive` when what
//! was waiting has all been processed.
//!
//! What it does not do: send (see `driver`), or keep an envelope it could not store: it is not
//! acked, so the relay delivers it again.

use std::collections::HashSet;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use ed25519_dalek::SigningKey;
use hush_protocol::{EnvelopeId, Push, RecipientId, RelayAddress};
use tokio::sync::watch;
use tokio::time::Instant;

use super::envelope::{open_handshake, open_message, Opened};
use super::records::{Link, PeerQueue};
use super::view::ClientEvent;
use super::{Client, ClientError, Contact, Inbox, Inner, State};
use crate::conversation::{Conversation, ConversationError, Payload, Status};
use crate::group::ChangeHash;
use crate::net::{NetError, PoolEvent};
use crate::store::{ContactId, ContactKey, StoreKey};

/// Longest a `receive` waits for the relays to finish pushing what was pending.
pub(crate) const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the event task waits before trying an unreachable relay again.
pub(crate) const RESUBSCRIBE_DELAY: Duration = Duration::from_secs(5);
/// Longest the event task sleeps without re-checking its subscriptions.
pub(crate) const IDLE_RECHECK: Duration = Duration::from_secs(60);

impl Client {
    /// Processes what is waiting on every queue we own, on every relay, and returns what
    /// happened (optionally only events about `contact`; the rest is still processed and
    /// stored).
    ///
    /// Returns once every relay has pushed what was pending (for queues already subscribed by
    /// this client: what has arrived so far). With `wait`, if that produced no event, it then
    /// waits up to `wait` for something new. Fails with
    /// [`ClientError::Unreachable`] only if no relay could be reached; otherwise an unreachable
    /// relay is reported as [`ClientEvent::RelayUnreachable`].
    pub async fn receive(
        &self,
        contact: Option<&str>,
        wait: Option<Duration>,
    ) -> Result<Vec<ClientEvent>, ClientError> {
        let inner = &self.inner;
        inner.yield_inbox.notify_one();
        let mut inbox = inner.inbox.lock().await;
        let mut waiting = HashSet::new();
        let mut events = inner.tick().await?;
        let (reached, failed) = inner
            .ensure_subscribed(&mut inbox, &mut waiting, &mut events)
            .await;
        if reached == 0 {
            if let Some(e) = failed {
                return Err(e.into());
            }
        }
        let start = Instant::now();
        let drain_deadline = start + DRAIN_TIMEOUT;
        let wait_deadline = wait.map(|w| start + w);
        loop {
            // First whatever has already arrived (pushes since the last call, on connections
            // subscribed before it), without waiting.
            while let Ok(ev) = inbox.rx.try_recv() {
                inner
                    .handle_and_renew(&mut inbox, ev, &mut waiting, &mut events)
                    .await;
            }
            let deadline = if !waiting.is_empty() {
                drain_deadline
            } else if events.iter().any(|e| counts(e, contact)) {
                break;
            } else if let Some(d) = wait_deadline {
                d
            } else {
                break;
            };
            match tokio::time::timeout_at(deadline, inbox.rx.recv()).await {
                Ok(Some(ev)) => {
                    inner
                        .handle_and_renew(&mut inbox, ev, &mut waiting, &mut events)
                        .await;
                }
                Ok(None) | Err(_) => break,
            }
        }
        drop(inbox);
        events.extend(inner.tick().await?);
        inner.transfers.run_deletions().await;
        inner.broadcast(events.clone());
        events.retain(|e| contact.is_none() || e.contact() == contact);
        Ok(events)
    }
}

/// Whether an event ends a waiting `receive`.
fn counts(e: &ClientEvent, contact: Option<&str>) -> bool {
    !matches!(e, ClientEvent::RelayUnreachable { .. })
        && (contact.is_none() || e.contact() == contact)
}

impl Inner {
    /// Subscribes every queue we own that is not subscribed on its relay's current connection.
    /// Newly subscribed queues go into `waiting` until their `Drained` push. Returns how many
    /// relays answered and why one did not.
    pub(crate) async fn ensure_subscribed(
        &self,
        inbox: &mut Inbox,
        waiting: &mut HashSet<RecipientId>,
        events: &mut Vec<ClientEvent>,
    ) -> (usize, Option<NetError>) {
        let mut targets: Vec<(RelayAddress, RecipientId, SigningKey)> = Vec::new();
        {
            let st = self.state.lock().await;
            for c in st.contacts.values() {
                if c.conv.status() == Status::Active {
                    let o = &c.link.own;
                    targets.push((o.relay.clone(), o.recipient_id, o.key.clone()));
                }
            }
            for p in st.pending.values() {
                let o = &p.own;
                targets.push((o.relay.clone(), o.recipient_id, o.key.clone()));
            }
        }
        let mut relays: Vec<RelayAddress> = targets.iter().map(|t| t.0.clone()).collect();
        relays.sort_by_key(ToString::to_string);
        relays.dedup();
        let (mut reached, mut failed) = (0, None);
        for relay in relays {
            let conn = match self.pool.connection(&relay).await {
                Ok(c) => c,
                Err(e) => {
                    events.push(ClientEvent::RelayUnreachable {
                        relay: relay.clone(),
                    });
                    failed = Some(e);
                    continue;
                }
            };
            reached += 1;
            for (_, rid, key) in targets.iter().filter(|t| t.0 == relay) {
                if inbox.subs.get(rid) == Some(&(relay.clone(), conn.generation())) {
                    continue;
                }
                match conn.client().subscribe(key, *rid).await {
                    Ok(()) => {
                        inbox.subs.insert(*rid, (relay.clone(), conn.generation()));
                        waiting.insert(*rid);
                    }
                    Err(e) if NetError::is_transient(&e) => {
                        // The connection died under us: drop it, and let the caller retry.
                        self.pool.forget(&conn).await;
                        failed = Some(NetError::Unreachable {
                            relay: relay.clone(),
                        });
                        break;
                    }
                    Err(e) => {
                        let e = NetError::from_client(&relay, e);
                        tracing::debug!(error = %e, "subscribe refused");
                    }
                }
            }
        }
        (reached, failed)
    }

    /// Handles one pool event and, if it reports a lost connection, renews the subscriptions.
    async fn handle_and_renew(
        &self,
        inbox: &mut Inbox,
        ev: PoolEvent,
        waiting: &mut HashSet<RecipientId>,
        events: &mut Vec<ClientEvent>,
    ) {
        if self.handle_pool_event(inbox, ev, waiting, events).await {
            self.ensure_subscribed(inbox, waiting, events).await;
        }
    }

    /// Handles one pool event. Returns whether a connection was lost (subscriptions to renew).
    pub(crate) async fn handle_pool_event(
        &self,
        inbox: &mut Inbox,
        ev: PoolEvent,
        waiting: &mut HashSet<RecipientId>,
        events: &mut Vec<ClientEvent>,
    ) -> bool {
        match ev {
            PoolEvent::Push {
                relay,
                generation,
                push,
            } => match push {
                Push::Envelope {
                    recipient_id,
                    envelope_id,
                    body,
                    ..
                } => {
                    let handled = self.handle_envelope(recipient_id, &body, events).await;
                    match handled {
                        Ok(()) => {
                            self.ack(&relay, generation, recipient_id, envelope_id)
                                .await
                        }
                        Err(e) => tracing::warn!(error = %e, "envelope kept for redelivery"),
                    }
                    false
                }
                Push::Drained { recipient_id } => {
                    waiting.remove(&recipient_id);
                    false
                }
                Push::QueueGone { recipient_id } => {
                    waiting.remove(&recipient_id);
                    inbox.subs.remove(&recipient_id);
                    false
                }
                _ => false,
            },
            PoolEvent::Lost { relay, generation } => {
                let gone: Vec<RecipientId> = inbox
                    .subs
                    .iter()
                    .filter(|(_, (r, g))| *r == relay && *g == generation)
                    .map(|(rid, _)| *rid)
                    .collect();
                for rid in &gone {
                    inbox.subs.remove(rid);
                    waiting.remove(rid);
                }
                !gone.is_empty()
            }
        }
    }

    /// Acks an envelope on the connection that delivered it, if that one is still up (if not,
    /// the relay delivers it again and the copy is dropped as a duplicate).
    async fn ack(&self, relay: &RelayAddress, generation: u64, rid: RecipientId, id: EnvelopeId) {
        if let Some(conn) = self.pool.current(relay).await {
            if conn.generation() == generation {
                if let Err(e) = conn.client().ack(rid, id).await {
                    tracing::debug!(error = %e, "ack failed; the envelope will come again");
                }
            }
        }
    }

    /// Processes one envelope. `Ok` means: done with it (stored, or dropped on purpose), ack it.
    async fn handle_envelope(
        &self,
        rid: RecipientId,
        body: &[u8],
        events: &mut Vec<ClientEvent>,
    ) -> Result<(), ClientError> {
        let now = self.now();
        let mut st = self.state.lock().await;
        // Contacts first: a queue that became a contact's is never an invitation's again, so
        // a replayed first message cannot restart the conversation.
        let Some(name) = st.name_of(rid) else {
            if st.pending.contains_key(&rid) {
                return self.join(&mut st, rid, body, now, events);
            }
            if self.is_tombstoned(rid)? {
                tracing::debug!("late envelope on a burned queue dropped");
            }
            // A queue we no longer know (burned, or its tombstone expired): nothing to keep.
            return Ok(());
        };
        let c = st.contact(&name)?;
        let session = &mut c.session;
        let tampered = ClientEvent::Tampered {
            contact: Some(name.clone()),
        };
        let payload = match open_message(session, body, now) {
            Opened::Ok(payload) => payload,
            Opened::Ignore => return Ok(()),
            Opened::OutOfStep => {
                events.push(ClientEvent::OutOfStep { contact: name });
                return Ok(());
            }
            Opened::Tampered { advanced } => {
                if advanced {
                    self.save_session(c)?;
                }
                events.push(tampered);
                return Ok(());
            }
        };
        // Group changes are the client's; a group message must come from a member.
        let payload = match payload {
            Payload::GroupChanges {
                group,
                name: hint,
                changes,
                names,
                reply,
            } => {
                let got = self.receive_changes(&mut st, &name, group, &hint, changes, &names)?;
                events.extend(got);
                if reply {
                    self.queue_sync(&st, group, &name, false)?;
                }
                self.save_session(st.contact(&name)?)?;
                return Ok(());
            }
            intro @ Payload::GroupIntroduce { .. } => {
                events.extend(self.receive_introduction(&st, &name, intro)?);
                self.save_session(st.contact(&name)?)?;
                return Ok(());
            }
            Payload::InGroup { group, .. }
                if !self.check_group_message(&st, &name, group, events) =>
            {
                self.save_session(st.contact(&name)?)?;
                return Ok(());
            }
            other => other,
        };
        if let Payload::InGroup { group, head, .. } = &payload {
            self.compare_heads(&st, &name, *group, ChangeHash(*head))?;
        }
        let c = st.contact(&name)?;
        let effects = match c.conv.receive(payload, now) {
            Ok(e) => e,
            Err(ConversationError::Burned) => return Ok(()),
            Err(_) => {
                self.save_session(c)?;
                events.push(tampered);
                return Ok(());
            }
        };
        let id = c.id;
        // Messages first, then the session: a crash in between redelivers a copy that the
        // conversation drops as seen, rather than losing a message the session already used.
        let (mut st, done) = self.carry_out(st, &name, effects, events).await;
        match done {
            // Burned here while a relay was called: nothing is left to store.
            Ok(()) | Err(ClientError::Burned) => {}
            Err(e) => return Err(e),
        }
        if let Some(c) = st.same_contact(&name, id) {
            self.save_session(c)?;
        }
        Ok(())
    }

    /// Completes the pending invitation of queue `rid` with the handshake in `body`: the
    /// contact who answered is stored and joins.
    fn join(
        &self,
        st: &mut State,
        rid: RecipientId,
        body: &[u8],
        now: u64,
        events: &mut Vec<ClientEvent>,
    ) -> Result<(), ClientError> {
        let Some(pending) = st.pending.get(&rid) else {
            return Ok(());
        };
        let joined = match open_handshake(&self.identity, &pending.secrets, body, now)? {
            Opened::Ok(joined) => joined,
            Opened::Ignore => return Ok(()),
            Opened::Tampered { .. } | Opened::OutOfStep => {
                events.push(ClientEvent::Tampered { contact: None });
                return Ok(());
            }
        };
        let conv = Conversation::new(self.relay_ttl(), &mut rand::rngs::OsRng)?;
        let Some(mut pending) = st.pending.remove(&rid) else {
            return Ok(());
        };
        let name = pending.name.clone();
        let contact = Contact {
            id: ContactId::random(),
            key: ContactKey::random(),
            link: Link {
                verified: false,
                introduced: pending.introduced,
                peer: joined.peer,
                own: pending.own,
                to_peer: PeerQueue {
                    relay: joined.relay,
                    sender_id: joined.sender_id,
                    send_cap: joined.send_cap,
                },
            },
            session: joined.session,
            conv,
        };
        // The contact's records and the deletion of the used secrets land together: a crash
        // cannot leave both the contact and an invitation that would answer its first message
        // again.
        let secrets = StoreKey::Invitation(rid.as_bytes().to_vec());
        if let Err(e) = self.persist_contact_replacing(&name, &contact, &secrets) {
            // Nothing was written: the invitation stays pending, and the first message (not
            // acked) comes again.
            pending.own = contact.link.own;
            st.pending.insert(rid, pending);
            return Err(e);
        }
        st.contacts.insert(name.clone(), contact);
        events.push(ClientEvent::ContactJoined { contact: name });
        Ok(())
    }

    /// Sends events to every listener, forgetting those that went away. Returns whether any
    /// listener is left.
    fn broadcast(&self, events: Vec<ClientEvent>) -> bool {
        let mut listeners = self
            .listeners
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for ev in events {
            listeners.retain(|l| l.send(ev.clone()).is_ok());
        }
        listeners.retain(|l| !l.is_closed());
        !listeners.is_empty()
    }
}

/// The background task behind [`Client::subscribe_events`]: keeps every queue subscribed,
/// processes pushes as they come, and applies expiries on time.
pub(crate) async fn run_events(inner: Arc<Inner>, mut stop: watch::Receiver<bool>) {
    let mut waiting = HashSet::new();
    loop {
        if *stop.borrow() {
            return;
        }
        let mut inbox = tokio::select! {
            guard = inner.inbox.lock() => guard,
            _ = stop.changed() => return,
        };
        let mut events = Vec::new();
        let (_, failed) = inner
            .ensure_subscribed(&mut inbox, &mut waiting, &mut events)
            .await;
        let now = inner.now();
        let mut wake = Instant::now() + IDLE_RECHECK;
        if failed.is_some() {
            wake = wake.min(Instant::now() + RESUBSCRIBE_DELAY);
        }
        if let Some(deadline) = inner.next_deadline().await {
            let after = Duration::from_secs(deadline.saturating_sub(now));
            wake = wake.min(Instant::now() + after);
        }
        let mut yielded = false;
        tokio::select! {
            ev = inbox.rx.recv() => match ev {
                Some(ev) => {
                    inner.handle_pool_event(&mut inbox, ev, &mut waiting, &mut events).await;
                }
                None => return,
            },
            _ = inner.yield_inbox.notified() => yielded = true,
            _ = tokio::time::sleep_until(wake) => {}
            _ = stop.changed() => return,
        }
        drop(inbox);
        match inner.tick().await {
            Ok(expired) => events.extend(expired),
            Err(e) => tracing::warn!(error = %e, "applying expiries failed"),
        }
        if !events.is_empty() {
            // Expired, unsent or burned file messages may owe their blobs a deletion; a relay
            // out of reach must not hold up the events.
            let inner = inner.clone();
            tokio::spawn(async move { inner.transfers.run_deletions().await });
        }
        if !inner.broadcast(events) {
            return;
        }
        if yielded {
            // Let the `receive` that asked take the inbox (the lock is first-come, first-served).
            tokio::task::yield_now().await;
        }
    }
}
