//! Groups on the `Client`: create, add, remove, roles, leave and burn; group messages sent over
//! each member's pairwise session; and what arrives from members (see `docs/groups.md`).
//!
//! Every membership change is signed, applied to our log first, stored, and then sent to every
//! member the change concerns (the members before and after it), each over its pairwise session,
//! as the whole set of changes we know: a member who missed one catches up with the next. A
//! group message to n members is n - 1 messages with one id, one per member's conversation, so
//! that timers, view-once, unsend and expiry work on each copy as on any message; a member we
//! have removed gets none. What arrives is checked against our log: a change it refuses, or a
//! message from someone who is not a member, is dropped and reported.
//!
//! What it does not do: introduce members who are not contacts or catch up a member whose log
//! differs (see `group_work`: both call relays, so they wait for the next `tick`).

use std::sync::Arc;
use std::time::Duration;

use rand::rngs::OsRng;

use super::group_record::{log_of, GroupState};
use super::group_work_record::forget_group_work;
use super::view::{ClientEvent, MessageView};
use super::{driver, Client, ClientError, Inner, State};
use crate::conversation::limits::MAX_GROUP_CHANGES;
use crate::conversation::{
    Conversation, ConversationError, Effect, GroupAt, MessageBody, MessageId, Payload, MEMBER_LEN,
};
use crate::crypto::PublicIdentity;
use crate::group::{Change, GroupError, GroupId, MembershipLog, Op, Role};
use crate::transfer::forget_contact_records;

/// One group as a front end lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupView {
    /// Its local name.
    pub name: String,
    /// How many members it has, us included.
    pub members: usize,
    /// Our role, or `None` if we are no longer a member.
    pub role: Option<Role>,
    /// The group timer.
    pub timer: Option<Duration>,
}

/// One member of a group as a front end shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberView {
    /// The contact's name, our own name for us, or `member-` and the first bytes of the
    /// identity key for a member who is not our contact.
    pub name: String,
    /// Whether this is us.
    pub is_self: bool,
    /// Whether the member is one of our contacts (so we can reach them).
    pub is_contact: bool,
    /// Whether we compared safety numbers with them (`false` for members who are not contacts).
    pub verified: bool,
    /// Whether we know them only through a group's introduction, not verified yet.
    pub introduced: bool,
    /// Their role.
    pub role: Role,
}

/// What sending to a group did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupSent {
    /// The message as the group's history shows it (`None` for a change).
    pub message: Option<MessageView>,
    /// The members it reached.
    pub reached: Vec<String>,
    /// The members it did not reach, and why.
    pub unreachable: Vec<(String, String)>,
    /// The members not reached yet, to whom it is owed: tried again by `tick` until the relay
    /// TTL has passed (a burn only).
    pub owed: Vec<String>,
}

impl State {
    /// Group `name`.
    pub(crate) fn group(&mut self, name: &str) -> Result<&mut GroupState, ClientError> {
        self.groups
            .get_mut(name)
            .ok_or_else(|| ClientError::UnknownGroup {
                name: name.to_owned(),
            })
    }

    /// The name of the group with id `id`.
    pub(crate) fn group_name(&self, id: GroupId) -> Option<String> {
        self.groups
            .iter()
            .find(|(_, g)| g.id() == id)
            .map(|(name, _)| name.clone())
    }

    /// The name of the contact whose identity is `who`.
    pub(crate) fn contact_named(&self, who: &PublicIdentity) -> Option<String> {
        self.contacts
            .iter()
            .find(|(_, c)| c.link.peer == *who)
            .map(|(name, _)| name.clone())
    }

    /// A member as we name them.
    pub(crate) fn label(
        &self,
        who: &PublicIdentity,
        me: &PublicIdentity,
        own_name: &str,
    ) -> String {
        if who == me {
            return own_name.to_owned();
        }
        self.contact_named(who).unwrap_or_else(|| {
            let hex: String = who.to_bytes()[..4]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            format!("member-{hex}")
        })
    }

    /// Our names for the members of `roster` who are contacts, and ours for us: what a member
    /// we add or introduce may call them.
    fn member_names(
        &self,
        roster: &crate::group::Roster,
        me: &PublicIdentity,
        own_name: &str,
    ) -> Vec<([u8; MEMBER_LEN], String)> {
        roster
            .members()
            .filter_map(|(m, _)| {
                let name = if m == me {
                    own_name.to_owned()
                } else {
                    self.contact_named(m)?
                };
                Some((m.to_bytes(), name.chars().take(32).collect()))
            })
            .collect()
    }

    /// A free name for a contact or group, starting from `hint`.
    pub(crate) fn free_name(&self, hint: &str, fallback: &str) -> String {
        let base = if hint.is_empty() { fallback } else { hint };
        std::iter::once(base.to_owned())
            .chain((2..).map(|n| format!("{base}-{n}")))
            .find(|n| self.check_free(n).is_ok())
            .unwrap_or_else(|| base.to_owned())
    }
}

/// What a change does, in words, with members named by `label`.
fn describe(op: &Op, label: impl Fn(&PublicIdentity) -> String) -> String {
    match op {
        Op::Create { .. } => "created the group".to_owned(),
        Op::Add { member } => format!("added {}", label(member)),
        Op::Remove { member } => format!("removed {}", label(member)),
        Op::SetRole {
            member,
            admin: true,
        } => format!("made {} an admin", label(member)),
        Op::SetRole { member, .. } => format!("revoked {}'s admin rights", label(member)),
        Op::SetTimer { timer: Some(t) } => format!("set the group timer to {t} s"),
        Op::SetTimer { timer: None } => "turned the group timer off".to_owned(),
        Op::HandOver { to } => format!("handed ownership to {}", label(to)),
        Op::Leave => "left the group".to_owned(),
        Op::Burn => "burned the group".to_owned(),
    }
}

impl Inner {
    /// Our public identity.
    fn me(&self) -> PublicIdentity {
        self.identity.public()
    }

    /// Proposes `op` on group `name`, applies it to our log and stores it. Returns the change
    /// and the members to tell: everyone in the group before or after it, but us.
    pub(crate) async fn change_group(
        &self,
        name: &str,
        op: Op,
    ) -> Result<(Change, Vec<PublicIdentity>), ClientError> {
        let mut st = self.state.lock().await;
        self.change_group_in(&mut st, name, op)
    }

    /// [`Inner::change_group`] under the lock.
    pub(crate) fn change_group_in(
        &self,
        st: &mut State,
        name: &str,
        op: Op,
    ) -> Result<(Change, Vec<PublicIdentity>), ClientError> {
        let me = self.me();
        let group = st.group(name)?;
        if group.log.roster().role_of(&me).is_none() {
            return Err(ClientError::NotAGroupMember {
                group: name.to_owned(),
            });
        }
        let to_change = |source| ClientError::GroupChange {
            group: name.to_owned(),
            source,
        };
        let before: Vec<PublicIdentity> = group.log.roster().members().map(|(m, _)| *m).collect();
        let change = group.log.propose(&self.identity, op).map_err(to_change)?;
        group.log.insert(change.clone()).map_err(to_change)?;
        self.store.put(&group.key(), &group.encode(name))?;
        let mut tell = before;
        for (m, _) in group.log.roster().members() {
            if !tell.contains(m) {
                tell.push(*m);
            }
        }
        tell.retain(|m| *m != me);
        Ok((change, tell))
    }

    /// Every change of group `name` we know, as the payloads that carry them (none if there is
    /// no such group); `reply` asks the receiver for its changes in return.
    pub(crate) fn change_batches(&self, st: &State, name: &str, reply: bool) -> Vec<Payload> {
        let Some(group) = st.groups.get(name) else {
            return Vec::new();
        };
        let id = group.id();
        let encoded: Vec<Vec<u8>> = group.log.changes().iter().map(|c| c.encode()).collect();
        let names = st.member_names(group.log.roster(), &self.me(), &self.own_name);
        encoded
            .chunks(MAX_GROUP_CHANGES)
            .map(|chunk| Payload::GroupChanges {
                group: id,
                name: name.chars().take(32).collect(),
                changes: chunk.to_vec(),
                names: names.clone(),
                reply,
            })
            .collect()
    }

    /// Sends group `name`'s known changes to `members`, each over its pairwise session.
    async fn send_changes(&self, name: &str, members: &[PublicIdentity]) -> GroupSent {
        let mut sent = GroupSent::default();
        let batches = {
            let st = self.state.lock().await;
            self.change_batches(&st, name, false)
        };
        for member in members {
            let contact = { self.state.lock().await.contact_named(member) };
            let Some(contact) = contact else {
                let label = self.label(member).await;
                sent.unreachable
                    .push((label, "not one of your contacts".to_owned()));
                continue;
            };
            let effects: Vec<Effect> = batches
                .iter()
                .map(|p| Effect::SendPayload(p.clone()))
                .collect();
            match self.act_effects(&contact, effects).await {
                Ok(()) => sent.reached.push(contact),
                Err(e) => sent.unreachable.push((contact, e.to_string())),
            }
        }
        sent
    }

    /// A member as we name them.
    async fn label(&self, who: &PublicIdentity) -> String {
        let st = self.state.lock().await;
        st.label(who, &self.me(), &self.own_name)
    }

    /// Carries out `effects` on contact `name`'s conversation (after reaching its relay).
    async fn act_effects(&self, name: &str, effects: Vec<Effect>) -> Result<(), ClientError> {
        self.act(name, true, |_, _| Ok(effects)).await
    }

    /// Checks that we may write in group `name`; returns its id, the timer its messages get
    /// (`timer_override`, else the group's) and the other members.
    async fn group_members_to_send(
        &self,
        name: &str,
    ) -> Result<(GroupAt, Option<u64>, Vec<PublicIdentity>), ClientError> {
        let me = self.me();
        let mut st = self.state.lock().await;
        let group = st.group(name)?;
        let roster = group.log.roster();
        if roster.role_of(&me).is_none() {
            return Err(ClientError::NotAGroupMember {
                group: name.to_owned(),
            });
        }
        let members = roster
            .members()
            .map(|(m, _)| *m)
            .filter(|m| *m != me)
            .collect();
        let at = GroupAt {
            id: group.id(),
            head: roster.head(),
        };
        Ok((at, roster.timer(), members))
    }

    /// Sends one message to every other member of group `name`: `compose` writes each
    /// member's copy (given the group, the shared message id, the timer and now). Up to
    /// [`FAN_OUT`] members' copies are in flight at once, each on its contact's connection.
    async fn send_to_group(
        self: &Arc<Self>,
        name: &str,
        timer_override: Option<Duration>,
        compose: impl Fn(
                &mut Conversation,
                GroupAt,
                MessageId,
                Option<u64>,
                u64,
            ) -> Result<Vec<Effect>, ConversationError>
            + Send
            + Sync
            + 'static,
    ) -> Result<GroupSent, ClientError> {
        let (group, timer, members) = self.group_members_to_send(name).await?;
        let timer = timer_override.map(|t| t.as_secs().max(1)).or(timer);
        let id = MessageId::random(&mut OsRng);
        let compose = Arc::new(compose);
        let mut sent = GroupSent::default();
        let mut tasks = tokio::task::JoinSet::new();
        for member in members {
            let contact = { self.state.lock().await.contact_named(&member) };
            let Some(contact) = contact else {
                let label = self.label(&member).await;
                sent.unreachable
                    .push((label, "not one of your contacts".to_owned()));
                continue;
            };
            if tasks.len() >= FAN_OUT {
                if let Some(done) = tasks.join_next().await {
                    record_sent(&mut sent, done);
                }
            }
            let (inner, compose) = (self.clone(), compose.clone());
            tasks.spawn(async move {
                let result = inner
                    .send_message(&contact, |conv, now| {
                        Ok((id, compose(conv, group, id, timer, now)?))
                    })
                    .await;
                (contact, result)
            });
        }
        while let Some(done) = tasks.join_next().await {
            record_sent(&mut sent, done);
        }
        sent.reached.sort();
        Ok(sent)
    }

    /// Erases group `name` here: every message of it in every conversation, and its record.
    pub(crate) fn forget_group_here(
        &self,
        st: &mut State,
        name: &str,
    ) -> Result<Option<GroupId>, ClientError> {
        let Some(group) = st.groups.remove(name) else {
            return Ok(None);
        };
        let id = group.id();
        for (contact, c) in st.contacts.iter_mut() {
            let effects = c.conv.forget_group(id);
            driver::apply_local(&self.store, &c.key, contact, &c.conv, effects)?;
        }
        // An upload to the group cut off before its message left, and its queued steps.
        forget_contact_records(&self.store, name)?;
        forget_group_work(&self.store, id)?;
        self.store.delete(&group.key())?;
        Ok(Some(id))
    }

    /// Handles membership changes of group `id` that contact `from` sent; returns what the user
    /// should see.
    pub(crate) fn receive_changes(
        &self,
        st: &mut State,
        from: &str,
        id: GroupId,
        hint: &str,
        changes: Vec<Vec<u8>>,
        names: &[([u8; MEMBER_LEN], String)],
    ) -> Result<Vec<ClientEvent>, ClientError> {
        let me = self.me();
        let mut events = Vec::new();
        let mut decoded = Vec::new();
        for bytes in changes {
            match Change::decode(&bytes) {
                Ok(c) if c.group() == id => decoded.push(c),
                Ok(_) => events.push(rejected(st, id, from, &GroupError::WrongGroup)),
                Err(e) => events.push(rejected(st, id, from, &e)),
            }
        }
        let Some(name) = st.group_name(id) else {
            // A group we do not know: we join it only if its log makes us a member.
            let Ok(log) = log_of(decoded) else {
                return Ok(events);
            };
            if log.roster().role_of(&me).is_none() || log.roster().is_burned() {
                return Ok(events);
            }
            let name = st.free_name(hint, "group");
            let group = GroupState { log };
            self.store.put(&group.key(), &group.encode(&name))?;
            self.introduce_us(st, id, from, group.log.roster(), names)?;
            st.groups.insert(name.clone(), group);
            events.push(ClientEvent::GroupChanged {
                group: name,
                by: from.to_owned(),
                what: "added you to the group".to_owned(),
            });
            return Ok(events);
        };
        self.apply_changes(st, &name, from, decoded, &mut events)?;
        Ok(events)
    }

    /// Inserts `changes` into group `name`'s log and reports what the selected log gained.
    fn apply_changes(
        &self,
        st: &mut State,
        name: &str,
        from: &str,
        changes: Vec<Change>,
        events: &mut Vec<ClientEvent>,
    ) -> Result<(), ClientError> {
        let me = self.me();
        let group = st.group(name)?;
        let before: Vec<_> = group.log.selected().iter().map(|c| c.hash()).collect();
        let was_member = group.log.roster().role_of(&me).is_some();
        let mut refused = Vec::new();
        let mut superseded = Vec::new();
        for change in changes {
            match group.log.insert(change) {
                Ok(inserted) => superseded.extend(inserted.superseded),
                Err(e) => refused.push(e),
            }
        }
        self.reissue(st, name, superseded)?;
        let group = st.group(name)?;
        let new: Vec<Change> = group
            .log
            .selected()
            .into_iter()
            .filter(|c| !before.contains(&c.hash()))
            .cloned()
            .collect();
        let burned = group.log.roster().is_burned();
        let member = group.log.roster().role_of(&me).is_some();
        self.store.put(&group.key(), &group.encode(name))?;
        for e in refused {
            events.push(rejected(st, st.groups[name].id(), from, &e));
        }
        for change in &new {
            let by = st.label(change.author(), &me, &self.own_name);
            let what = describe(change.op(), |m| st.label(m, &me, &self.own_name));
            events.push(ClientEvent::GroupChanged {
                group: name.to_owned(),
                by,
                what,
            });
        }
        if burned {
            self.forget_group_here(st, name)?;
            events.push(ClientEvent::GroupBurned {
                group: name.to_owned(),
                by_owner: true,
            });
        } else if was_member && !member {
            events.push(ClientEvent::GroupRemoved {
                group: name.to_owned(),
            });
        }
        Ok(())
    }

    /// Whether contact `from` may write in group `id` now: the group is ours, we and they are
    /// members. Reports the refusal in `events`.
    pub(crate) fn check_group_message(
        &self,
        st: &State,
        from: &str,
        id: GroupId,
        events: &mut Vec<ClientEvent>,
    ) -> bool {
        let Some(author) = st.contacts.get(from).map(|c| c.link.peer) else {
            return false;
        };
        let roster = st
            .groups
            .values()
            .find(|g| g.id() == id)
            .map(|g| g.log.roster());
        let reason = match roster {
            None => "a message for a group you are not in",
            Some(r) if r.role_of(&self.me()).is_none() => {
                "a message for a group you are no longer in"
            }
            Some(r) if r.role_of(&author).is_none() => "a message from someone who is not a member",
            Some(_) => return true,
        };
        events.push(rejected_because(st, id, from, reason));
        false
    }
}

/// Most members' copies of one group message in flight at once.
const FAN_OUT: usize = 16;

/// Adds the outcome of one member's copy to `sent`.
fn record_sent(
    sent: &mut GroupSent,
    done: Result<(String, Result<MessageView, ClientError>), tokio::task::JoinError>,
) {
    match done {
        Ok((contact, Ok(view))) => {
            sent.message.get_or_insert(view);
            sent.reached.push(contact);
        }
        Ok((contact, Err(e))) => sent.unreachable.push((contact, e.to_string())),
        Err(e) => tracing::warn!(error = %e, "a group send task failed"),
    }
}

/// The event for a change from `from` that group `id`'s log refused.
fn rejected(st: &State, id: GroupId, from: &str, e: &GroupError) -> ClientEvent {
    rejected_because(st, id, from, &e.to_string())
}

/// The event for something about group `id` from contact `from` that was refused.
pub(crate) fn rejected_because(st: &State, id: GroupId, from: &str, reason: &str) -> ClientEvent {
    ClientEvent::GroupRejected {
        group: st.group_name(id),
        from: from.to_owned(),
        reason: reason.to_owned(),
    }
}

impl Client {
    /// Creates group `name` with us as its owner and no other member yet. Groups and contacts
    /// share one name space.
    pub async fn create_group(
        &self,
        name: &str,
        timer: Option<Duration>,
    ) -> Result<GroupView, ClientError> {
        let inner = &self.inner;
        let mut st = inner.state.lock().await;
        st.check_free(name)?;
        if inner
            .reserved
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(name)
        {
            return Err(ClientError::NameTaken {
                name: name.to_owned(),
            });
        }
        let timer = timer.map(|t| t.as_secs().max(1));
        let creation = Change::sign(
            &inner.identity,
            GroupId::random(&mut OsRng),
            0,
            crate::group::ChangeHash([0; crate::group::CHANGE_HASH_LEN]),
            Op::Create { timer },
        );
        let log = MembershipLog::new(creation).map_err(|source| ClientError::GroupChange {
            group: name.to_owned(),
            source,
        })?;
        let group = GroupState { log };
        inner.store.put(&group.key(), &group.encode(name))?;
        st.groups.insert(name.to_owned(), group);
        Ok(view_of(name, &st.groups[name], &inner.me()))
    }

    /// Adds contacts `members` to group `name` (one signed change each) and tells every member.
    /// Needs admin rights.
    pub async fn add_to_group(
        &self,
        name: &str,
        members: &[&str],
    ) -> Result<GroupSent, ClientError> {
        let mut ids = Vec::new();
        {
            let mut st = self.inner.state.lock().await;
            st.group(name)?;
            for m in members {
                let c = st
                    .contacts
                    .get(*m)
                    .ok_or_else(|| ClientError::NotAContact {
                        group: name.to_owned(),
                        member: (*m).to_owned(),
                    })?;
                ids.push(c.link.peer);
            }
        }
        let mut tell = Vec::new();
        for member in ids {
            let (_, to) = self.inner.change_group(name, Op::Add { member }).await?;
            for m in to {
                if !tell.contains(&m) {
                    tell.push(m);
                }
            }
        }
        Ok(self.inner.send_changes(name, &tell).await)
    }

    /// Removes `member` (a contact's name) from group `name` and tells every member, the
    /// removed one included. From now on our group messages do not reach them.
    pub async fn remove_from_group(
        &self,
        name: &str,
        member: &str,
    ) -> Result<GroupSent, ClientError> {
        let who = self.member_identity(name, member).await?;
        let (_, tell) = self
            .inner
            .change_group(name, Op::Remove { member: who })
            .await?;
        Ok(self.inner.send_changes(name, &tell).await)
    }

    /// Grants (`admin`) or revokes a member's admin rights. Needs ownership.
    pub async fn set_group_admin(
        &self,
        name: &str,
        member: &str,
        admin: bool,
    ) -> Result<GroupSent, ClientError> {
        let who = self.member_identity(name, member).await?;
        let (_, tell) = self
            .inner
            .change_group(name, Op::SetRole { member: who, admin })
            .await?;
        Ok(self.inner.send_changes(name, &tell).await)
    }

    /// Sets or clears the group timer (admins). Later group messages carry it.
    pub async fn set_group_timer(
        &self,
        name: &str,
        timer: Option<Duration>,
    ) -> Result<GroupSent, ClientError> {
        let timer = timer.map(|t| t.as_secs().max(1));
        let (_, tell) = self
            .inner
            .change_group(name, Op::SetTimer { timer })
            .await?;
        Ok(self.inner.send_changes(name, &tell).await)
    }

    /// Leaves group `name`: tells the members, then erases our copy (its messages and log).
    /// The owner must hand ownership over first, or burn the group. A member already removed
    /// just erases its copy.
    pub async fn leave_group(&self, name: &str) -> Result<GroupSent, ClientError> {
        let sent = match self.inner.change_group(name, Op::Leave).await {
            Ok((_, tell)) => self.inner.send_changes(name, &tell).await,
            Err(ClientError::NotAGroupMember { .. }) => GroupSent::default(),
            Err(e) => return Err(e),
        };
        let mut st = self.inner.state.lock().await;
        self.inner.forget_group_here(&mut st, name)?;
        Ok(sent)
    }

    /// Sends `text` to every other member of group `name`, each over its pairwise session,
    /// with the group timer unless `timer_override`.
    pub async fn send_group_text(
        &self,
        name: &str,
        text: &str,
        timer_override: Option<Duration>,
        view_once: bool,
    ) -> Result<GroupSent, ClientError> {
        let body = MessageBody::new(text);
        self.inner
            .send_to_group(name, timer_override, move |conv, group, id, timer, now| {
                conv.compose_group_text(group, id, &body, timer, view_once, now)
            })
            .await
    }

    /// Sends the file at `path` to group `name`: one upload to our relay, whose key and read
    /// capability go to every other member in a file message over its pairwise session.
    /// Members' saves leave the blob for the others; it goes when our copy of the message does
    /// (unsend, expiry, burn) or at the relay's expiry. If no member is reached, the upload
    /// stays on record and the same call resumes it.
    pub async fn send_group_file(
        &self,
        name: &str,
        path: &std::path::Path,
        timer_override: Option<Duration>,
        view_once: bool,
        progress: crate::transfer::ProgressFn<'_>,
    ) -> Result<GroupSent, ClientError> {
        let inner = &self.inner;
        inner.group_members_to_send(name).await?;
        let upload = inner.transfers.upload(name, path, progress).await?;
        let file = upload.file.clone();
        let sent = inner
            .send_to_group(name, timer_override, move |conv, group, id, timer, now| {
                conv.compose_group_file(group, id, &file, timer, view_once, now)
            })
            .await?;
        if !sent.reached.is_empty() {
            // The message is out: the upload is done.
            inner.transfers.finish_upload(&upload)?;
        }
        Ok(sent)
    }

    /// The groups, by name.
    pub async fn groups(&self) -> Vec<GroupView> {
        let st = self.inner.state.lock().await;
        let me = self.inner.me();
        st.groups
            .iter()
            .map(|(name, g)| view_of(name, g, &me))
            .collect()
    }

    /// The members of group `name`.
    pub async fn group_members(&self, name: &str) -> Result<Vec<MemberView>, ClientError> {
        let me = self.inner.me();
        let mut st = self.inner.state.lock().await;
        let roster = st.group(name)?.log.roster().clone();
        Ok(roster
            .members()
            .map(|(who, role)| {
                let contact = st.contacts.iter().find(|(_, c)| c.link.peer == *who);
                MemberView {
                    name: st.label(who, &me, &self.inner.own_name),
                    is_self: *who == me,
                    is_contact: contact.is_some(),
                    verified: contact.is_some_and(|(_, c)| c.link.verified),
                    introduced: contact.is_some_and(|(_, c)| c.link.introduced),
                    role,
                }
            })
            .collect())
    }

    /// The messages of group `name`, oldest first: each with its author (our own name for
    /// ours). A message we sent appears once, however many members it went to.
    pub async fn group_history(
        &self,
        name: &str,
    ) -> Result<Vec<(String, MessageView)>, ClientError> {
        let mut st = self.inner.state.lock().await;
        let id = st.group(name)?.id();
        let mut out: Vec<(String, MessageView)> = Vec::new();
        for (contact, c) in &st.contacts {
            let ttl = c.conv.meta().relay_ttl;
            for r in c.conv.group_messages(id) {
                let view = MessageView::from_record(r, ttl);
                if view.outgoing && out.iter().any(|(_, v)| v.outgoing && v.id == view.id) {
                    continue;
                }
                let author = if view.outgoing {
                    self.inner.own_name.clone()
                } else {
                    contact.clone()
                };
                out.push((author, view));
            }
        }
        out.sort_by_key(|(_, v)| (v.sent_at, v.received_at, v.id));
        Ok(out)
    }

    /// This installation's public identity, as group changes name members.
    pub fn public_identity(&self) -> PublicIdentity {
        self.inner.me()
    }

    /// The local name of the group with id `id`, if we know it.
    pub async fn group_name(&self, id: GroupId) -> Option<String> {
        self.inner.state.lock().await.group_name(id)
    }

    /// Unsends our group message `id` from every member it reached.
    pub async fn unsend_group(&self, name: &str, id: MessageId) -> Result<(), ClientError> {
        let holders: Vec<String> = {
            let mut st = self.inner.state.lock().await;
            let group = st.group(name)?.id();
            st.contacts
                .iter()
                .filter(|(_, c)| c.conv.message(&id).is_some_and(|r| r.group == Some(group)))
                .map(|(n, _)| n.clone())
                .collect()
        };
        if holders.is_empty() {
            return Err(ClientError::Conversation(
                crate::conversation::ConversationError::UnknownMessage,
            ));
        }
        for contact in holders {
            self.unsend(&contact, id).await?;
        }
        Ok(())
    }

    /// The identity of `member`, a contact's name or a member's label in group `name`.
    async fn member_identity(
        &self,
        name: &str,
        member: &str,
    ) -> Result<PublicIdentity, ClientError> {
        let me = self.inner.me();
        let mut st = self.inner.state.lock().await;
        let roster = st.group(name)?.log.roster().clone();
        let found = roster
            .members()
            .map(|(who, _)| *who)
            .find(|who| st.label(who, &me, &self.inner.own_name) == member);
        found.ok_or_else(|| ClientError::UnknownMember {
            group: name.to_owned(),
            member: member.to_owned(),
        })
    }
}

/// The view of group `name`.
fn view_of(name: &str, g: &GroupState, me: &PublicIdentity) -> GroupView {
    let roster = g.log.roster();
    GroupView {
        name: name.to_owned(),
        members: roster.len(),
        role: roster.role_of(me),
        timer: roster.timer().map(Duration::from_secs),
    }
}

#[cfg(feature = "testing")]
impl Client {
    /// Testing only: makes change `op` on group `name` as usual but tells only contacts
    /// `tell`, as if the others' copies were lost.
    pub async fn change_group_telling_only(
        &self,
        name: &str,
        op: Op,
        tell: &[&str],
    ) -> Result<(), ClientError> {
        self.inner.change_group(name, op).await?;
        let batches = {
            let st = self.inner.state.lock().await;
            self.inner.change_batches(&st, name, false)
        };
        for contact in tell {
            let effects = batches.iter().cloned().map(Effect::SendPayload).collect();
            self.inner.act_effects(contact, effects).await?;
        }
        Ok(())
    }

    /// Testing only: sends `payload` to contact `contact` as it is, as a modified client could.
    pub async fn send_payload_unchecked(
        &self,
        contact: &str,
        payload: Payload,
    ) -> Result<(), ClientError> {
        self.inner
            .act_effects(contact, vec![Effect::SendPayload(payload)])
            .await
    }

    /// Testing only: signs `op` on group `name`'s head without asking whether we may, and
    /// sends our changes with it to every member, as a modified client could. Our own log is
    /// left as it was.
    pub async fn send_unchecked_group_change(
        &self,
        name: &str,
        op: Op,
    ) -> Result<GroupSent, ClientError> {
        let inner = &self.inner;
        let (id, hint, changes, members) = {
            let mut st = inner.state.lock().await;
            let group = st.group(name)?;
            let roster = group.log.roster();
            let forged = Change::sign(
                &inner.identity,
                group.id(),
                roster.number() + 1,
                roster.head(),
                op,
            );
            let mut changes: Vec<Vec<u8>> =
                group.log.changes().iter().map(|c| c.encode()).collect();
            changes.push(forged.encode());
            let members: Vec<PublicIdentity> = roster.members().map(|(m, _)| *m).collect();
            (group.id(), name.to_owned(), changes, members)
        };
        let mut sent = GroupSent::default();
        for member in members.iter().filter(|m| **m != inner.me()) {
            let contact = { inner.state.lock().await.contact_named(member) };
            let Some(contact) = contact else { continue };
            let payload = Payload::GroupChanges {
                group: id,
                name: hint.clone(),
                changes: changes.clone(),
                names: Vec::new(),
                reply: false,
            };
            match inner
                .act_effects(&contact, vec![Effect::SendPayload(payload)])
                .await
            {
                Ok(()) => sent.reached.push(contact),
                Err(e) => sent.unreachable.push((contact, e.to_string())),
            }
        }
        Ok(sent)
    }
}
