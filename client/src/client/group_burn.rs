//! Burning a group for everyone, the owner's act, on every path: a member whose relay is out of
//! reach is told later, as a 1:1 burn's contact is (see `burn`).
//!
//! The burn change is signed and stored in our log first. Then, under the state lock, the
//! change is sealed for every member who is our contact, through their pairwise session (which
//! is saved advanced), and each sealed envelope is written as an owed send; only then is the
//! group erased here. The relays are called after, without the lock: a send that fails stays
//! owed and `tick` tries it again until the relay TTL has passed, when it would have expired
//! unread anyway. The owed record holds the sealed envelope and the contact's queue, never the
//! group's name or id in the clear.
//!
//! A burn cut short by a crash is finished when the home is opened: a group whose log is burned
//! is still on record only if its erase did not finish; if we are its owner, its burn is sealed
//! and owed again (a member told twice drops the second, as it no longer knows the group), then
//! it is erased.
//!
//! What it does not do: reach a member who is not our contact (no session to seal it with), a
//! member who has blocked us (their queue is gone), or a member whose log lacks more than
//! `MAX_GROUP_CHANGES` (160) changes before the burn (the envelope carries the last ones).

use rand::rngs::OsRng;
use zeroize::Zeroizing;

use super::burn::{owed_until, put_new_owed, Delivery, OwedId};
use super::groups::GroupSent;
use super::owed::{OwedBurn, OwedSend};
use super::{Client, ClientError, Inner, State};
use crate::crypto::PublicIdentity;
use crate::group::{Op, Role};

/// Why a member was not reached by a burn, when their queue is gone.
const QUEUE_GONE: &str = "their queue is gone (they blocked you or erased your conversation)";

/// The burn sealed for each member we can reach: (contact, owed send).
type OwedSends = Vec<(String, OwedId)>;

impl Inner {
    /// Under the lock: seals group `name`'s last changes (its burn among them) for every member
    /// in `tell` who is our contact, writes each as an owed send, and erases the group here.
    /// Returns the owed sends and the members that cannot be reached at all.
    fn owe_group_burn(
        &self,
        st: &mut State,
        name: &str,
        tell: &[PublicIdentity],
    ) -> Result<(OwedSends, GroupSent), ClientError> {
        let mut sent = GroupSent::default();
        let mut owed = Vec::new();
        let last = self.last_changes(st, name)?;
        let expires_at = owed_until(self.now());
        for member in tell {
            let Some(contact) = st.contact_named(member) else {
                let label = st.label(member, &self.identity.public(), &self.own_name);
                sent.unreachable
                    .push((label, "not one of your contacts".to_owned()));
                continue;
            };
            let c = st.contact(&contact)?;
            let envelope = c.session.encrypt(&last, &mut OsRng)?;
            self.save_session(c)?;
            let to = &c.link.to_peer;
            let record = OwedBurn {
                expires_at,
                contact: None,
                send: Some(OwedSend {
                    relay: to.relay.clone(),
                    sender_id: to.sender_id,
                    send_cap: to.send_cap.clone(),
                    envelope,
                }),
                delete: None,
            };
            owed.push((contact, put_new_owed(&self.store, &record)?));
        }
        self.forget_group_here(st, name)?;
        Ok((owed, sent))
    }

    /// The payload carrying group `name`'s last `MAX_GROUP_CHANGES` changes, encoded.
    fn last_changes(&self, st: &State, name: &str) -> Result<Zeroizing<Vec<u8>>, ClientError> {
        self.change_batches(st, name, false)
            .pop()
            .map(|p| p.encode())
            .ok_or_else(|| ClientError::UnknownGroup {
                name: name.to_owned(),
            })
    }

    /// Tries the owed sends of a burn now and sorts the members by what became of theirs.
    async fn deliver_group_burn(&self, owed: OwedSends, sent: &mut GroupSent) {
        let ids: Vec<OwedId> = owed.iter().map(|(_, id)| *id).collect();
        let reports = self.deliver_owed_now(&ids).await;
        for (contact, id) in owed {
            match reports.get(&id).map(|r| r.contact_told) {
                Some(Delivery::Done) => sent.reached.push(contact),
                Some(Delivery::Gone) => sent.unreachable.push((contact, QUEUE_GONE.to_owned())),
                _ => sent.owed.push(contact),
            }
        }
        sent.reached.sort();
        sent.owed.sort();
    }

    /// Finishes the burns cut short before the home was last closed: every group whose log is
    /// burned is erased, its burn owed again to every member if we are its owner. The owed
    /// sends go with the next `tick`.
    pub(crate) async fn finish_group_burns(&self) -> Result<(), ClientError> {
        let me = self.identity.public();
        let mut st = self.state.lock().await;
        let burned: Vec<(String, bool, Vec<PublicIdentity>)> = st
            .groups
            .iter()
            .filter(|(_, g)| g.log.roster().is_burned())
            .map(|(name, g)| {
                let roster = g.log.roster();
                let ours = roster.role_of(&me) == Some(Role::Owner);
                let others = roster.members().map(|(m, _)| *m).filter(|m| *m != me);
                (name.clone(), ours, others.collect())
            })
            .collect();
        for (name, ours, members) in burned {
            if ours {
                self.owe_group_burn(&mut st, &name, &members)?;
            } else {
                self.forget_group_here(&mut st, &name)?;
            }
        }
        Ok(())
    }
}

impl Client {
    /// Burns group `name` for everyone (the owner only): every member's client erases the
    /// group's messages and log; ours is erased at once. A member out of reach now is told
    /// later (`GroupSent::owed`), by `tick`, until the relay TTL has passed.
    pub async fn burn_group(&self, name: &str) -> Result<GroupSent, ClientError> {
        let (owed, mut sent) = {
            let mut st = self.inner.state.lock().await;
            let (_, tell) = self.inner.change_group_in(&mut st, name, Op::Burn)?;
            self.inner.owe_group_burn(&mut st, name, &tell)?
        };
        self.inner.deliver_group_burn(owed, &mut sent).await;
        Ok(sent)
    }
}
