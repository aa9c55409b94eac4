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
//! What it does not do: persist the queued steps (a step lost to a crash is not retried), or
//! mark a contact as known only through the group.

use std::sync::PoisonError;

use super::groups::rejected_because;
use super::view::ClientEvent;
use super::{ClientError, Inner, State, DEFAULT_INVITATION_LIFETIME};
use crate::conversation::{Effect, Payload, MEMBER_LEN};
use crate::crypto::{Invitation, PublicIdentity};
use crate::group::{ChangeHash, GroupId, Roster};

/// A step of an introduction, waiting for the next `tick`.
#[derive(Debug)]
pub(crate) enum GroupWork {
    /// We were added to `group`: invite `member`, calling them `name`, through contact `via`.
    Invite {
        group: GroupId,
        via: String,
        member: PublicIdentity,
        name: String,
    },
    /// Pass `payload` on to contact `to`.
    Forward { to: String, payload: Payload },
    /// Accept `invitation`, calling its maker `name`.
    Accept { invitation: String, name: String },
    /// Send every change of `group` we know to contact `to`, asking for theirs if `reply`.
    Sync {
        group: GroupId,
        to: String,
        reply: bool,
    },
}

impl Inner {
    /// Queues invitations for every member of `roster` we have no session with, carried by
    /// contact `via` (who added us), named as `names` suggests.
    pub(crate) fn introduce_us(
        &self,
        st: &State,
        group: GroupId,
        via: &str,
        roster: &Roster,
        names: &[([u8; MEMBER_LEN], String)],
    ) {
        let me = self.identity.public();
        let mut work = self.work();
        for (member, _) in roster.members() {
            if *member == me || st.contact_named(member).is_some() {
                continue;
            }
            let hint = names
                .iter()
                .find(|(m, _)| *m == member.to_bytes())
                .map_or("", |(_, n)| n.as_str());
            work.push(GroupWork::Invite {
                group,
                via: via.to_owned(),
                member: *member,
                name: hint.to_owned(),
            });
        }
    }

    /// Queues sending our changes of `group` to contact `to` (asking for theirs if `reply`).
    pub(crate) fn queue_sync(&self, group: GroupId, to: &str, reply: bool) {
        self.work().push(GroupWork::Sync {
            group,
            to: to.to_owned(),
            reply,
        });
    }

    /// Compares `head`, the head of contact `from`'s log of `group` carried by a group
    /// message, with ours, and queues what catches the one behind up.
    pub(crate) fn compare_heads(&self, st: &State, from: &str, group: GroupId, head: ChangeHash) {
        let Some(g) = st.groups.values().find(|g| g.id() == group) else {
            return;
        };
        if g.log.roster().head() == head {
            return;
        }
        // They have a change we lack: ask for theirs. Else we have one they lack: send ours.
        let reply = !g.log.knows(&head);
        self.queue_sync(group, from, reply);
    }

    fn work(&self) -> std::sync::MutexGuard<'_, Vec<GroupWork>> {
        self.group_work
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Handles a `GroupIntroduce` from contact `from`: passes it on, or queues its acceptance.
    /// Anything that does not check out is dropped and reported.
    pub(crate) fn receive_introduction(
        &self,
        st: &State,
        from: &str,
        payload: Payload,
    ) -> Vec<ClientEvent> {
        let Payload::GroupIntroduce {
            group,
            forward,
            member,
            name,
            invitation,
        } = payload
        else {
            return Vec::new();
        };
        match self.check_introduction(st, from, group, forward, &member, &invitation) {
            Ok(Step::Forward { to, sender }) => {
                // To the member it is for: made by `sender`, whom we call `from`.
                let our_name = from.to_owned();
                self.work().push(GroupWork::Forward {
                    to,
                    payload: Payload::GroupIntroduce {
                        group,
                        forward: false,
                        member: sender.to_bytes(),
                        name: our_name,
                        invitation,
                    },
                });
                Vec::new()
            }
            Ok(Step::Accept) => {
                self.work().push(GroupWork::Accept { invitation, name });
                Vec::new()
            }
            Err(reason) => vec![rejected_because(st, group, from, reason)],
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

    /// Carries out the queued steps (introductions, catch-up sends). A step that fails is
    /// dropped with a log line (an introduction's pending invitation expires on its own).
    pub(crate) async fn run_group_work(&self) {
        let steps: Vec<GroupWork> = std::mem::take(&mut *self.work());
        for step in steps {
            // The error's text may name a contact: the log says only that a step failed.
            if self.run_step(step).await.is_err() {
                tracing::warn!("a group step failed; it is not retried");
            }
        }
    }

    async fn run_step(&self, step: GroupWork) -> Result<(), ClientError> {
        match step {
            GroupWork::Invite {
                group,
                via,
                member,
                name,
            } => {
                let name = {
                    let st = self.state.lock().await;
                    if st.contact_named(&member).is_some() {
                        return Ok(());
                    }
                    st.free_name(&name, "member")
                };
                let invitation = self
                    .invite_as(&name, DEFAULT_INVITATION_LIFETIME, true)
                    .await?;
                let payload = Payload::GroupIntroduce {
                    group,
                    forward: true,
                    member: member.to_bytes(),
                    name: String::new(),
                    invitation,
                };
                self.act(&via, true, |_, _| Ok(vec![Effect::SendPayload(payload)]))
                    .await
            }
            GroupWork::Forward { to, payload } => {
                self.act(&to, true, |_, _| Ok(vec![Effect::SendPayload(payload)]))
                    .await
            }
            GroupWork::Sync { group, to, reply } => {
                let batches = {
                    let st = self.state.lock().await;
                    match st.group_name(group) {
                        Some(name) => self.change_batches(&st, &name, reply),
                        None => return Ok(()),
                    }
                };
                let effects = batches.into_iter().map(Effect::SendPayload).collect();
                self.act(&to, true, |_, _| Ok(effects)).await
            }
            GroupWork::Accept { invitation, name } => {
                let name = {
                    let st = self.state.lock().await;
                    st.free_name(&name, "member")
                };
                self.accept_as(&invitation, &name, true).await
            }
        }
    }
}

/// What an introduction asks of us.
enum Step {
    /// Pass it on to contact `to`; `sender` made it.
    Forward {
        to: String,
        sender: Box<PublicIdentity>,
    },
    /// Accept its invitation.
    Accept,
}
