//! Contacts: inviting, accepting an invitation, listing contacts and pending invitations, and
//! safety numbers.
//!
//! An invitation or acceptance in progress reserves its name first, so that the state lock is
//! not held while the relay creates the queue or carries the first message, and no other call
//! can take the name meanwhile.
//!
//! What it does not do: messages (see `actions`) or receiving the answer to an invitation (see
//! `inbox`).

use std::sync::PoisonError;
use std::time::{Duration, UNIX_EPOCH};

use ed25519_dalek::SigningKey;
use hush_protocol::{ErrorCode, RelayAddress, SendCapability};
use rand::rngs::OsRng;
use rand::RngCore;

use super::records::{Link, OwnQueue, PeerQueue, PendingRecord};
use super::view::{ContactStatus, ContactView, PendingView};
use super::{secs, Client, ClientError, Contact, Inner, State};
use crate::conversation::{Conversation, Payload, Status};
use crate::crypto::{self, Invitation, InvitationSecrets, SafetyNumber};
use crate::net::{Lane, NetError};
use crate::store::limits::MAX_NAME_LEN;
use crate::store::{Batch, ContactId, ContactKey, StoreKey};
use crate::transfer::owed::owe_queue_deletion;

/// How long an invitation stays valid unless the inviter says otherwise: 7 days.
pub const DEFAULT_INVITATION_LIFETIME: Duration = Duration::from_secs(7 * 24 * 60 * 60);

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

fn taken(name: &str) -> ClientError {
    ClientError::NameTaken {
        name: name.to_owned(),
    }
}

impl State {
    /// Fails unless `name` is free for a new contact (a burned one left nothing behind).
    pub(crate) fn check_free(&self, name: &str) -> Result<(), ClientError> {
        check_name(name)?;
        if self.contacts.contains_key(name)
            || self.groups.contains_key(name)
            || self.pending.values().any(|p| p.name == name)
        {
            return Err(taken(name));
        }
        Ok(())
    }
}

/// A name held for an invitation or acceptance in progress; dropping it frees the name.
struct Reserved<'a> {
    inner: &'a Inner,
    name: String,
}

impl Drop for Reserved<'_> {
    fn drop(&mut self) {
        self.inner
            .reserved
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.name);
    }
}

impl Inner {
    /// [`Client::invite_expiring`].
    pub(crate) async fn invite_as(
        &self,
        as_name: &str,
        lifetime: Duration,
        introduced: bool,
    ) -> Result<String, ClientError> {
        let inner = self;
        let _name = inner.reserve(as_name).await?;
        let expires_at = inner.now().saturating_add(lifetime.as_secs().max(1));
        let (own, cap) = inner.create_queue(&inner.relay).await?;
        // After a certificate rotation, the address with the certificate our relay serves now.
        let (invitation, secrets) = Invitation::create(
            &inner.identity,
            inner.pool.pins().current_address(&inner.relay),
            own.sender_id,
            cap,
            expires_at,
            &mut OsRng,
        );
        let recipient_id = own.recipient_id;
        let pending = PendingRecord {
            name: as_name.to_owned(),
            own,
            secrets: secrets.to_bytes(),
            introduced,
        };
        inner.store.put(
            &StoreKey::Invitation(recipient_id.as_bytes().to_vec()),
            &pending.encode(),
        )?;
        inner
            .state
            .lock()
            .await
            .pending
            .insert(recipient_id, pending);
        Ok(invitation.encode())
    }

    /// [`Client::accept`].
    pub(crate) async fn accept_as(
        &self,
        invitation: &str,
        as_name: &str,
        introduced: bool,
    ) -> Result<(), ClientError> {
        let inner = self;
        let invitation = Invitation::parse(invitation)?;
        invitation.check_unexpired(inner.now())?;
        let _name = inner.reserve(as_name).await?;
        let lane = Lane::Contact(invitation.sender_id());
        inner.pool.connection_on(invitation.relay(), lane).await?;
        let (own, own_cap) = inner.create_queue(&inner.relay).await?;
        let intro = Payload::Introduce {
            relay: inner.pool.pins().current_address(&own.relay),
            sender_id: own.sender_id,
            send_cap: own_cap,
        };
        let (session, wire) =
            crypto::accept(&inner.identity, &invitation, &intro.encode(), &mut OsRng)?;
        let new_cap = random_cap();
        let link = Link {
            verified: false,
            introduced,
            peer: *invitation.inviter(),
            own,
            to_peer: PeerQueue {
                relay: invitation.relay().clone(),
                sender_id: invitation.sender_id(),
                send_cap: new_cap.clone(),
            },
        };
        let contact = Contact {
            id: ContactId::random(),
            key: ContactKey::random(),
            link,
            session,
            conv: Conversation::new(inner.relay_ttl(), &mut OsRng)?,
        };
        // Stored before the first message leaves, so a crash cannot lose the contact.
        inner.persist_contact(as_name, &contact)?;
        let sent = inner
            .pool
            .run_on(invitation.relay(), lane, |conn| {
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
            inner.store.erase_contact(contact.id, contact.key.scope())?;
            let own = &contact.link.own;
            inner
                .delete_queue(&own.relay, own.recipient_id, &own.key)
                .await;
            return Err(match e {
                NetError::Refused {
                    code: ErrorCode::Auth | ErrorCode::NoQueue,
                    ..
                } => ClientError::InvitationUsed,
                other => other.into(),
            });
        }
        let mut st = inner.state.lock().await;
        st.contacts.insert(as_name.to_owned(), contact);
        Ok(())
    }

    /// Holds `name` for a new contact, failing if it is taken or held already.
    async fn reserve(&self, name: &str) -> Result<Reserved<'_>, ClientError> {
        let st = self.state.lock().await;
        st.check_free(name)?;
        let mut reserved = self.reserved.lock().unwrap_or_else(PoisonError::into_inner);
        if !reserved.insert(name.to_owned()) {
            return Err(taken(name));
        }
        Ok(Reserved {
            inner: self,
            name: name.to_owned(),
        })
    }

    /// Creates a queue we own on `relay`; returns it and its send capability. The connection
    /// says `Hello` first, presenting our create token, and what the relay announces is kept
    /// (its lifetime, for the conversation this queue will carry).
    async fn create_queue(
        &self,
        relay: &RelayAddress,
    ) -> Result<(OwnQueue, SendCapability), ClientError> {
        let key = SigningKey::generate(&mut OsRng);
        let cap = random_cap();
        let (info, (recipient_id, sender_id)) = self
            .pool
            .run(relay, |conn| {
                let (key, cap) = (key.clone(), cap.clone());
                async move {
                    let info = conn.hello().await?;
                    Ok((info, conn.client().create_queue(&key, &cap).await?))
                }
            })
            .await?;
        self.learn_limits(info)?;
        let own = OwnQueue {
            relay: relay.clone(),
            recipient_id,
            sender_id,
            key,
        };
        Ok((own, cap))
    }

    /// Deletes every pending invitation whose signed expiry is at or before `now`: its name
    /// and secrets here, and its queue at the relay (owed, and carried out by the next run of
    /// the owed deletions: `tick`, `expire`, `unsend`, `burn`, `save`). No network. Secrets
    /// stored before invitations carried an expiry (or that no longer decode) get [`DEFAULT_INVITATION_LIFETIME`] from `now`.
    pub(crate) async fn expire_invitations(&self, now: u64) -> Result<(), ClientError> {
        let mut st = self.state.lock().await;
        let mut expired = Vec::new();
        for (rid, p) in st.pending.iter_mut() {
            let secrets = InvitationSecrets::from_bytes(&p.secrets).ok();
            match secrets.as_ref().and_then(InvitationSecrets::expires_at) {
                Some(at) if at <= now => expired.push(*rid),
                Some(_) => {}
                None => match secrets {
                    Some(s) => {
                        let at = now.saturating_add(DEFAULT_INVITATION_LIFETIME.as_secs());
                        p.secrets = s.with_expiry(at).to_bytes();
                        let key = StoreKey::Invitation(rid.as_bytes().to_vec());
                        self.store.put(&key, &p.encode())?;
                    }
                    None => expired.push(*rid),
                },
            }
        }
        for rid in &expired {
            if let Some(p) = st.pending.remove(rid) {
                // Owed first: a crash in between leaves the invitation to expire again.
                owe_queue_deletion(&self.store, &p.own.relay, *rid, &p.own.key)?;
                self.store
                    .delete(&StoreKey::Invitation(rid.as_bytes().to_vec()))?;
            }
        }
        Ok(())
    }

    /// Saves a new contact's record, session and conversation metadata.
    pub(crate) fn persist_contact(&self, name: &str, c: &Contact) -> Result<(), ClientError> {
        self.write_contact(name, c, None)
    }

    /// Stores contact `c` under `name` and deletes the record under `done` in one atomic
    /// write: after a crash, either the contact exists and `done` is gone, or neither changed.
    pub(crate) fn persist_contact_replacing(
        &self,
        name: &str,
        c: &Contact,
        done: &StoreKey,
    ) -> Result<(), ClientError> {
        self.write_contact(name, c, Some(done))
    }

    fn write_contact(
        &self,
        name: &str,
        c: &Contact,
        delete: Option<&StoreKey>,
    ) -> Result<(), ClientError> {
        let (contact_key, session_key, meta_key) =
            (StoreKey::Contact(c.id), c.key.session(), c.key.meta());
        let (record, session, meta) =
            (c.record(name), c.session.to_bytes(), c.conv.meta().encode());
        let mut batch = Batch::new();
        batch
            .put(&contact_key, &record)
            .put(&session_key, &session)
            .put(&meta_key, &meta);
        if let Some(key) = delete {
            batch.delete(key);
        }
        self.store.write_batch(&batch)?;
        Ok(())
    }
}

impl Client {
    /// Creates a one-time invitation for a contact to be called `as_name`: a new receive queue
    /// on our relay (with its own Ed25519 recipient key and send capability) and the
    /// `hush://invite/...` token to hand over. The contact appears once it answers and
    /// [`Client::receive`] (or the event stream) processes the answer. It expires after
    /// [`DEFAULT_INVITATION_LIFETIME`] (see [`Client::invite_expiring`]).
    pub async fn invite(&self, as_name: &str) -> Result<String, ClientError> {
        self.invite_expiring(as_name, DEFAULT_INVITATION_LIFETIME)
            .await
    }

    /// As [`Client::invite`], valid for `lifetime` (whole seconds, at least one). The expiry is
    /// signed inside the invitation: [`Client::accept`] refuses it afterwards, and once it
    /// passes, our pending invitation (its name and secrets) is deleted, and so is its queue at
    /// the relay (later, if the relay is out of reach).
    pub async fn invite_expiring(
        &self,
        as_name: &str,
        lifetime: Duration,
    ) -> Result<String, ClientError> {
        self.inner.invite_as(as_name, lifetime, false).await
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
                expires_at: InvitationSecrets::from_bytes(&p.secrets)
                    .ok()
                    .and_then(|s| s.expires_at())
                    .map(|at| UNIX_EPOCH + Duration::from_secs(at)),
            })
            .collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// Answers an invitation and adds its sender as contact `as_name`: creates our own queue on
    /// our relay, runs the handshake, and sends the first message (introducing our queue) while
    /// atomically replacing the invitation's send capability with one only we know. An
    /// invitation whose signed expiry has passed is refused
    /// ([`crate::crypto::InvitationError::Expired`]).
    pub async fn accept(&self, invitation: &str, as_name: &str) -> Result<(), ClientError> {
        self.inner.accept_as(invitation, as_name, false).await
    }

    /// Every contact, by name. A burned conversation leaves no contact behind.
    pub async fn contacts(&self) -> Vec<ContactView> {
        let st = self.inner.state.lock().await;
        st.contacts
            .iter()
            .map(|(name, c)| {
                let status = match c.conv.status() {
                    Status::Blocked => ContactStatus::Blocked,
                    Status::Active => ContactStatus::Active,
                    Status::Burned => ContactStatus::Burned,
                };
                ContactView {
                    name: name.clone(),
                    status,
                    verified: c.link.verified,
                    introduced: c.link.introduced,
                    timer: secs(c.conv.timer()),
                    relay: Some(c.link.to_peer.relay.clone()),
                    messages: c.conv.messages().len(),
                }
            })
            .collect()
    }

    /// The safety number of our identity and `name`'s, to compare out of band.
    pub async fn safety_number(&self, name: &str) -> Result<SafetyNumber, ClientError> {
        let mut st = self.inner.state.lock().await;
        let link = &st.contact(name)?.link;
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
        c.link.verified = true;
        c.link.introduced = false;
        inner.store.put(&StoreKey::Contact(c.id), &c.record(name))?;
        Ok(())
    }
}
