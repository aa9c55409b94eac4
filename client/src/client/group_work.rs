//! Group work that calls relays, queued while an envelope is processed and carried out by the
//! next `tick` without the state lock: introductions between members who are not yet contacts,
//! and catching up members whose logs differ (see `docs/groups.md`).
//!
//! **Introductions.** A member who has just been added to a group makes a one-time invitation
//! for each member it has no session with, and sends it to the member who added it
//! (`GroupIntroduce`, forward); that member, a contact of both, passes it on (`GroupIntroduce`,
//! not forward) with its name for the new member; the receiver checks that the invitation is
//! signed by the identity the group's log names, and accepts it. The new contact then joins on
//! the inviter's side as any contact does. The adder cannot substitute another invitation.
//!
//! **Catching up.** Every group message carries the head of its author's log. A member whose
//! log does not know that head sends the author all its changes and asks for the author's in
//! return; a member whose log knows it but selects another head (it has changes the author
//! lacks) sends its changes. So a member who missed a change (a removal, say) learns it with
//! the next message from a member who has it.
//!
//! Every step is kept in the local store (`group_work_record`) until it is done: a crash or a
//! relay out of reach delays it, and `tick` tries it again, at most every [`OWED_RETRY_SECS`],
//! until its invitation would have expired. An invitation made for an introduction is kept as
//! the step that passes it on before it is sent, so a retry does not make another. A contact
//! made by an introduction is marked as known only through the group until it is verified.
//!
//! What it does not do: hold the state lock across a relay call.

use std::collections::HashMap;

use super::burn::OWED_RETRY_SECS;
use super::group_work_record::{list_work, put_work, GroupWork, WorkId, WorkRecord};
use super::groups::rejected_because;
use super::view::ClientEvent;
use super::{ClientError, Inner, State, DEFAULT_INVITATION_LIFETIME};
use crate::conversation::{Effect, Payload, MEMBER_LEN};
use crate::crypto::{Invitation, PublicIdentity};
use crate::group::{Change, ChangeHash, GroupId, Roster};
use crate::store::{ContactId, StoreKey};

/// When each queued step may next be tried (unix seconds), in memory.
pub(crate) type WorkRetry = HashMap<WorkId, u64>;

impl State {
    /// The name of the contact whose store id is `id`.
    fn contact_by_id(&self, id: ContactId) -> Option<String> {
        self.contacts
            .iter()
            .find(|(_, c)| c.id == id)
            .map(|(name, _)| name.clone())
    }

    /// The store id of contact `name`.
    fn contact_id(&self, name: &str) -> Option<ContactId> {
        self.contacts.get(name).map(|c| c.id)
    }
}

impl Inner {
    /// Stores `work` for group `group`, to be carried out by the next `tick`.
    fn queue_work(&self, group: GroupId, work: GroupWork) -> Result<(), ClientError> {
        let expires_at = self
            .now()
            .saturating_add(DEFAULT_INVITATION_LIFETIME.as_secs());
        let record = WorkRecord {
            group,
            expires_at,
            work,
        };
        put_work(&self.store, &record)?;
        Ok(())
    }

    /// Queues invitations for every member of `roster` we have no session with, carried by
    /// contact `via` (who added us), named as `names` suggests.
    pub(crate) fn introduce_us(
        &self,
        st: &State,
        group: GroupId,
        via: &str,
        roster: &Roster,
        names: &[([u8; MEMBER_LEN], String)],
    ) -> Result<(), ClientError> {
        let me = self.identity.public();
        let Some(via) = st.contact_id(via) else {
            return Ok(());
        };
        for (member, _) in roster.members() {
            if *member == me || st.contact_named(member).is_some() {
                continue;
            }
            let hint = names
                .iter()
                .find(|(m, _)| *m == member.to_bytes())
                .map_or("", |(_, n)| n.as_str());
            let work = GroupWork::Invite {
                via,
                member: member.to_bytes(),
                name: hint.to_owned(),
            };
            self.queue_work(group, work)?;
        }
        Ok(())
    }

    /// Queues sending our changes of `group` to contact `to` (asking for theirs if `reply`).
    pub(crate) fn queue_sync(
        &self,
        st: &State,
        group: GroupId,
        to: &str,
        reply: bool,
    ) -> Result<(), ClientError> {
        match st.contact_id(to) {
            Some(to) => self.queue_work(group, GroupWork::Sync { to, reply }),
            None => Ok(()),
        }
    }

    /// Compares `head`, the head of contact `from`'s log of `group` carried by a group
    /// message, with ours, and queues what catches the one behind up.
    pub(crate) fn compare_heads(
        &self,
        st: &State,
        from: &str,
        group: GroupId,
        head: ChangeHash,
    ) -> Result<(), ClientError> {
        let Some(g) = st.groups.values().find(|g| g.id() == group) else {
            return Ok(());
        };
        if g.log.roster().head() == head {
            return Ok(());
        }
        // They have a change we lack: ask for theirs. Else we have one they lack: send ours.
        let reply = !g.log.knows(&head);
        self.queue_sync(st, group, from, reply)
    }

    /// Makes our changes among `superseded` (selected before, and a concurrent change won)
    /// again on group `name`'s new head, where they still apply, and queues sending the log to
    /// every member concerned.
    pub(crate) fn reissue(
        &self,
        st: &mut State,
        name: &str,
        superseded: Vec<Change>,
    ) -> Result<(), ClientError> {
        let me = self.identity.public();
        let mut tell = Vec::new();
        for change in superseded.into_iter().filter(|c| *c.author() == me) {
            match self.change_group_in(st, name, *change.op()) {
                Ok((_, members)) => tell.extend(members),
                // It no longer applies (done by the change that won, say, or we lost the right).
                Err(ClientError::GroupChange { .. } | ClientError::NotAGroupMember { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        tell.sort_by_key(|m| m.to_bytes());
        tell.dedup();
        let group = st.group(name)?.id();
        for member in tell {
            if let Some(contact) = st.contact_named(&member) {
                self.queue_sync(st, group, &contact, false)?;
            }
        }
        Ok(())
    }

    /// Handles a `GroupIntroduce` from contact `from`: passes it on, or queues its acceptance.
    /// Anything that does not check out is dropped and reported.
    pub(crate) fn receive_introduction(
        &self,
        st: &State,
        from: &str,
        payload: Payload,
    ) -> Result<Vec<ClientEvent>, ClientError> {
        let Payload::GroupIntroduce {
            group,
            forward,
            member,
            name,
            invitation,
        } = payload
        else {
            return Ok(Vec::new());
        };
        match self.check_introduction(st, from, group, forward, &member, &invitation) {
            Ok(Step::Forward { to, sender }) => {
                // To the member it is for: made by `sender`, whom we call `from`.
                let payload = Payload::GroupIntroduce {
                    group,
                    forward: false,
                    member: sender.to_bytes(),
                    name: from.to_owned(),
                    invitation,
                };
                self.queue_work(group, GroupWork::forward(to, &payload))?;
                Ok(Vec::new())
            }
            Ok(Step::Accept) => {
                self.queue_work(group, GroupWork::Accept { invitation, name })?;
                Ok(Vec::new())
            }
            Err(reason) => Ok(vec![rejected_because(st, group, from, reason)]),
        }
    }

    /// Checks an introduction from contact `from` against group `group`'s log.
    fn check_introduction(
        &self,
        st: &State,
        from: &str,
        group: GroupId,
        forward: bool,
        member: &[u8; MEMBER_LEN],
        invitation: &str,
    ) -> Result<Step, &'static str> {
        let roster = st
            .groups
            .values()
            .find(|g| g.id() == group)
            .map(|g| g.log.roster())
            .ok_or("an introduction for a group you are not in")?;
        let sender = st
            .contacts
            .get(from)
            .map(|c| c.link.peer)
            .ok_or("an introduction from someone who is not a contact")?;
        let member =
            PublicIdentity::from_bytes(member).map_err(|_| "an introduction names no member")?;
        let me = self.identity.public();
        if roster.role_of(&me).is_none()
            || roster.role_of(&sender).is_none()
            || roster.role_of(&member).is_none()
        {
            return Err("an introduction between people who are not all members");
        }
        if forward {
            let to = st
                .contact_named(&member)
                .and_then(|name| st.contact_id(&name))
                .ok_or("an introduction to pass on to a member who is not your contact")?;
            return Ok(Step::Forward {
                to,
                sender: Box::new(sender),
            });
        }
        let parsed = Invitation::parse(invitation).map_err(|_| "a broken invitation")?;
        if *parsed.inviter() != member {
            return Err("an introduction whose invitation is not the member's");
        }
        if st.contact_named(&member).is_some() {
            return Err("an introduction to a member who is already your contact");
        }
        Ok(Step::Accept)
    }

    /// Carries out the queued steps that are due (introductions, catch-up sends). A step that
    /// fails for want of a relay is tried again at most every [`OWED_RETRY_SECS`] until its
    /// invitation would have expired; a step that can no longer succeed is dropped with a log
    /// line.
    pub(crate) async fn run_group_work(&self) {
        // A run already under way covers this one.
        let Ok(mut next_try) = self.work_retry.try_lock() else {
            return;
        };
        let now = self.now();
        let steps = match list_work(&self.store) {
            Ok(steps) => steps,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list queued group steps");
                return;
            }
        };
        next_try.retain(|id, _| steps.iter().any(|(s, _)| s == id));
        for (id, record) in steps {
            if next_try.get(&id).is_some_and(|&at| at > now) {
                continue;
            }
            let key = StoreKey::GroupWork(id);
            let outcome = if record.expires_at <= now {
                Ok(())
            } else {
                self.run_step(id, &record).await
            };
            let stored = match outcome {
                Ok(()) => self.store.delete(&key).map(drop),
                Err(e) if is_transient(&e) => {
                    next_try.insert(id, now.saturating_add(OWED_RETRY_SECS));
                    Ok(())
                }
                // The error's text may name a contact: the log says only that a step failed.
                Err(_) => {
                    tracing::warn!("a group step cannot succeed; it is dropped");
                    self.store.delete(&key).map(drop)
                }
            };
            if let Err(e) = stored {
                tracing::warn!(error = %e, "cannot update a queued group step");
            }
        }
    }

    /// Tries one step: `Ok` when it is done or can no longer be done (its contact or group is
    /// gone, or the member is a contact already).
    async fn run_step(&self, id: WorkId, record: &WorkRecord) -> Result<(), ClientError> {
        let group = record.group;
        match &record.work {
            GroupWork::Invite { via, member, name } => {
                let (to, name) = {
                    let st = self.state.lock().await;
                    let member = PublicIdentity::from_bytes(member)
                        .map_err(|_| super::corrupt("a queued group step"))?;
                    let Some(to) = st.contact_by_id(*via) else {
                        return Ok(());
                    };
                    if st.contact_named(&member).is_some() || st.group_name(group).is_none() {
                        return Ok(());
                    }
                    (to, st.free_name(name, "member"))
                };
                let invitation = self
                    .invite_as(&name, DEFAULT_INVITATION_LIFETIME, true)
                    .await?;
                let payload = Payload::GroupIntroduce {
                    group,
                    forward: true,
                    member: member.to_owned(),
                    name: String::new(),
                    invitation,
                };
                // The invitation exists now: what is left is to pass it on, kept before trying.
                let rest = WorkRecord {
                    work: GroupWork::forward(*via, &payload),
                    ..record.clone()
                };
                self.store.put(&StoreKey::GroupWork(id), &rest.encode())?;
                self.send_payload(&to, payload).await?;
                Ok(())
            }
            GroupWork::Forward { to, payload } => {
                let Some(to) = self.state.lock().await.contact_by_id(*to) else {
                    return Ok(());
                };
                let payload =
                    Payload::decode(payload).map_err(|_| super::corrupt("a queued group step"))?;
                self.send_payload(&to, payload).await?;
                Ok(())
            }
            GroupWork::Sync { to, reply } => {
                let (to, batches) = {
                    let st = self.state.lock().await;
                    let (Some(to), Some(name)) = (st.contact_by_id(*to), st.group_name(group))
                    else {
                        return Ok(());
                    };
                    (to, self.change_batches(&st, &name, *reply))
                };
                let effects = batches.into_iter().map(Effect::SendPayload).collect();
                self.act(&to, true, |_, _| Ok(effects)).await?;
                Ok(())
            }
            GroupWork::Accept { invitation, name } => {
                let name = {
                    let st = self.state.lock().await;
                    let parsed = Invitation::parse(invitation)?;
                    if st.contact_named(parsed.inviter()).is_some() {
                        return Ok(());
                    }
                    st.free_name(name, "member")
                };
                self.accept_as(invitation, &name, true).await?;
                Ok(())
            }
        }
    }

    /// Sends `payload` to contact `to`.
    async fn send_payload(&self, to: &str, payload: Payload) -> Result<(), ClientError> {
        self.act(to, true, |_, _| Ok(vec![Effect::SendPayload(payload)]))
            .await
    }
}

/// Whether a step that failed with `e` may succeed later: a relay was out of reach or busy.
fn is_transient(e: &ClientError) -> bool {
    matches!(
        e,
        ClientError::Unreachable { .. } | ClientError::Relay { .. } | ClientError::Proxy(_)
    )
}

/// What an introduction asks of us.
enum Step {
    /// Pass it on to contact `to`; `sender` made it.
    Forward {
        to: ContactId,
        sender: Box<PublicIdentity>,
    },
    /// Accept its invitation.
    Accept,
}
