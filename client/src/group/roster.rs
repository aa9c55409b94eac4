//! The state of a group after a prefix of its log: who is in it, with which role, and the
//! group timer. It decides whether a change may follow, and applies it.
//!
//! What it does not do: verify signatures (a [`Change`] is always signed and checked), or pick
//! among concurrent changes (the log does).

use std::collections::BTreeMap;

use super::change::{Change, ChangeHash, GroupId, Op};
use super::error::GroupError;
use crate::crypto::{PublicIdentity, PUBLIC_IDENTITY_LEN};

/// Most members a group may have, its owner included.
pub const MAX_GROUP_MEMBERS: usize = 100;

/// A member's rights.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum Role {
    /// May send and leave.
    Member,
    /// May also add and remove members (not the owner) and set the group timer.
    Admin,
    /// May also grant and revoke admin, hand ownership over, and burn the group.
    Owner,
}

/// Members, roles and the timer after a prefix of the log.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Roster {
    group: GroupId,
    members: BTreeMap<[u8; PUBLIC_IDENTITY_LEN], (PublicIdentity, Role)>,
    timer: Option<u64>,
    burned: bool,
    number: u64,
    head: ChangeHash,
}

impl Roster {
    /// The roster a creation makes: its author as the only member, the owner.
    pub fn genesis(change: &Change) -> Result<Roster, GroupError> {
        let Op::Create { timer } = *change.op() else {
            return Err(GroupError::OutOfOrder {
                number: change.number(),
            });
        };
        if change.number() != 0 || change.previous() != ChangeHash([0; 32]) {
            return Err(GroupError::OutOfOrder {
                number: change.number(),
            });
        }
        let owner = *change.author();
        Ok(Roster {
            group: change.group(),
            members: BTreeMap::from([(owner.to_bytes(), (owner, Role::Owner))]),
            timer,
            burned: false,
            number: 0,
            head: change.hash(),
        })
    }

    /// The group.
    pub fn group(&self) -> GroupId {
        self.group
    }

    /// The number of the last change applied.
    pub fn number(&self) -> u64 {
        self.number
    }

    /// The hash of the last change applied.
    pub fn head(&self) -> ChangeHash {
        self.head
    }

    /// The group timer in seconds, if any.
    pub fn timer(&self) -> Option<u64> {
        self.timer
    }

    /// Whether the owner burned the group.
    pub fn is_burned(&self) -> bool {
        self.burned
    }

    /// Every member with their role, in a stable order.
    pub fn members(&self) -> impl Iterator<Item = (&PublicIdentity, Role)> {
        self.members.values().map(|(id, role)| (id, *role))
    }

    /// The role of `who`, or `None` if they are not a member.
    pub fn role_of(&self, who: &PublicIdentity) -> Option<Role> {
        self.members.get(&who.to_bytes()).map(|(_, role)| *role)
    }

    /// How many members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether the group has no member (never: the owner stays until a hand-over).
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Whether `change` may follow the last change applied: the right group, number and
    /// previous hash, an author who is a member with the rights it needs, and a target that
    /// makes sense.
    pub fn check(&self, change: &Change) -> Result<(), GroupError> {
        if change.group() != self.group {
            return Err(GroupError::WrongGroup);
        }
        if self.burned {
            return Err(GroupError::Burned);
        }
        if change.number() != self.number + 1 || change.previous() != self.head {
            return Err(GroupError::OutOfOrder {
                number: change.number(),
            });
        }
        let role = self
            .role_of(change.author())
            .ok_or(GroupError::NotAMember)?;
        let need = |needed: Role, what: &'static str| {
            if role >= needed {
                Ok(())
            } else {
                Err(GroupError::NotAllowed { needed: what })
            }
        };
        match change.op() {
            Op::Create { .. } => Err(GroupError::OutOfOrder {
                number: change.number(),
            }),
            Op::Add { member } => {
                need(Role::Admin, "an admin")?;
                if self.role_of(member).is_some() {
                    return Err(GroupError::Member("already in the group"));
                }
                if self.members.len() >= MAX_GROUP_MEMBERS {
                    return Err(GroupError::TooManyMembers {
                        max: MAX_GROUP_MEMBERS,
                    });
                }
                Ok(())
            }
            Op::Remove { member } => {
                need(Role::Admin, "an admin")?;
                match self.role_of(member) {
                    None => Err(GroupError::Member("not in the group")),
                    Some(Role::Owner) => Err(GroupError::Member("the owner")),
                    Some(_) => Ok(()),
                }
            }
            Op::SetRole { member, .. } => {
                need(Role::Owner, "the owner")?;
                match self.role_of(member) {
                    None => Err(GroupError::Member("not in the group")),
                    Some(Role::Owner) => Err(GroupError::Member("the owner")),
                    Some(_) => Ok(()),
                }
            }
            Op::SetTimer { .. } => need(Role::Admin, "an admin"),
            Op::HandOver { to } => {
                need(Role::Owner, "the owner")?;
                match self.role_of(to) {
                    None => Err(GroupError::Member("not in the group")),
                    Some(Role::Owner) => Err(GroupError::Member("the owner")),
                    Some(_) => Ok(()),
                }
            }
            Op::Leave if role == Role::Owner => Err(GroupError::NotAllowed {
                needed: "someone other than the owner (hand ownership over first)",
            }),
            Op::Leave => Ok(()),
            Op::Burn => need(Role::Owner, "the owner"),
        }
    }

    /// Checks `change`, then applies it.
    pub fn apply(&mut self, change: &Change) -> Result<(), GroupError> {
        self.check(change)?;
        match *change.op() {
            Op::Create { .. } => {}
            Op::Add { member } => {
                self.members
                    .insert(member.to_bytes(), (member, Role::Member));
            }
            Op::Remove { member } => {
                self.members.remove(&member.to_bytes());
            }
            Op::SetRole { member, admin } => {
                let role = if admin { Role::Admin } else { Role::Member };
                self.members.insert(member.to_bytes(), (member, role));
            }
            Op::SetTimer { timer } => self.timer = timer,
            Op::HandOver { to } => {
                let old = *change.author();
                self.members.insert(old.to_bytes(), (old, Role::Admin));
                self.members.insert(to.to_bytes(), (to, Role::Owner));
            }
            Op::Leave => {
                self.members.remove(&change.author().to_bytes());
            }
            Op::Burn => self.burned = true,
        }
        self.number = change.number();
        self.head = change.hash();
        Ok(())
    }
}
