//! A group's membership log: every valid change seen, and the one sequence of them that every
//! member selects.
//!
//! Selection is greedy from the creation: at each number, among the known changes that follow
//! the one selected before it and that the roster at that point allows, the one with the
//! smallest hash. It depends only on the set of changes known, never on the order they came
//! in, so members who have seen the same changes agree on the log and on the roster. A change
//! that was selected and no longer is (a concurrent change with a smaller hash won) is
//! *superseded*; its author re-issues it on the new head if it still applies.
//!
//! A change whose predecessor is unknown waits (bounded by [`MAX_WAITING`]) until that comes;
//! a change whose predecessor is selected is checked at once and refused with a typed error
//! if the roster there does not allow it.
//!
//! What it does not do: transport (catching up is asking a member for the changes one lacks,
//! see [`MembershipLog::changes`]) or storage.

use std::collections::{HashMap, HashSet};

use super::change::{Change, ChangeHash, GroupId, Op};
use super::error::GroupError;
use super::roster::Roster;
use crate::crypto::Identity;

/// Most changes that may wait for a predecessor not yet seen.
pub const MAX_WAITING: usize = 1_000;

/// Where an inserted change ended up.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Placed {
    /// It was already known.
    Duplicate,
    /// It is part of the selected log.
    Selected,
    /// It follows a change that is not selected, or lost to a concurrent one.
    NotSelected,
    /// Its predecessor is not known yet.
    Waiting,
}

/// What inserting a change did.
#[derive(Clone, Debug)]
pub struct Inserted {
    /// Where the change ended up.
    pub placed: Placed,
    /// Changes that were selected before and are not any more, in log order.
    pub superseded: Vec<Change>,
}

/// The changes of one group and the log selected from them.
#[derive(Clone, Debug)]
pub struct MembershipLog {
    group: GroupId,
    genesis: ChangeHash,
    known: HashMap<ChangeHash, Change>,
    /// For each change, the known changes that name it as their predecessor.
    children: HashMap<ChangeHash, Vec<ChangeHash>>,
    selected: Vec<ChangeHash>,
    roster: Roster,
}

impl MembershipLog {
    /// The log of the group that `creation` created.
    pub fn new(creation: Change) -> Result<MembershipLog, GroupError> {
        let roster = Roster::genesis(&creation)?;
        let hash = creation.hash();
        Ok(MembershipLog {
            group: creation.group(),
            genesis: hash,
            known: HashMap::from([(hash, creation)]),
            children: HashMap::new(),
            selected: vec![hash],
            roster,
        })
    }

    /// The group.
    pub fn group(&self) -> GroupId {
        self.group
    }

    /// The roster after the selected log.
    pub fn roster(&self) -> &Roster {
        &self.roster
    }

    /// Whether the change hashed `hash` is known (selected or not).
    pub fn knows(&self, hash: &ChangeHash) -> bool {
        self.known.contains_key(hash)
    }

    /// Whether the change hashed `hash` is part of the selected log.
    pub fn is_selected(&self, hash: &ChangeHash) -> bool {
        self.selected.contains(hash)
    }

    /// The selected log, in order, creation first.
    pub fn selected(&self) -> Vec<&Change> {
        self.selected
            .iter()
            .filter_map(|h| self.known.get(h))
            .collect()
    }

    /// Every known change, selected or not, in number order: what a member who lacks some
    /// is sent to catch up.
    pub fn changes(&self) -> Vec<&Change> {
        let mut all: Vec<&Change> = self.known.values().collect();
        all.sort_by_key(|c| (c.number(), c.hash()));
        all
    }

    /// A change by `author` on the current head, checked against the current roster.
    pub fn propose(&self, author: &Identity, op: Op) -> Result<Change, GroupError> {
        let change = Change::sign(
            author,
            self.group,
            self.roster.number() + 1,
            self.roster.head(),
            op,
        );
        self.roster.check(&change)?;
        Ok(change)
    }

    /// Adds `change` to the known changes and selects the log again.
    ///
    /// Refused: a change of another group, a second creation, a change whose (selected)
    /// predecessor's roster does not allow it, and more than [`MAX_WAITING`] waiting changes.
    pub fn insert(&mut self, change: Change) -> Result<Inserted, GroupError> {
        if change.group() != self.group {
            return Err(GroupError::WrongGroup);
        }
        let hash = change.hash();
        if self.known.contains_key(&hash) {
            return Ok(Inserted {
                placed: Placed::Duplicate,
                superseded: Vec::new(),
            });
        }
        if change.number() == 0 {
            return Err(GroupError::OutOfOrder { number: 0 });
        }
        let previous = change.previous();
        if let Some(at) = self.selected.iter().position(|h| *h == previous) {
            self.roster_at(at)?.check(&change)?;
        } else if !self.known.contains_key(&previous) && self.waiting() >= MAX_WAITING {
            return Err(GroupError::TooManyWaiting);
        }
        self.children.entry(previous).or_default().push(hash);
        self.known.insert(hash, change);
        let before = std::mem::take(&mut self.selected);
        self.select();
        let placed = if self.selected.contains(&hash) {
            Placed::Selected
        } else if self.reachable(&hash) {
            Placed::NotSelected
        } else {
            Placed::Waiting
        };
        let now: HashSet<&ChangeHash> = self.selected.iter().collect();
        let superseded = before
            .iter()
            .filter(|h| !now.contains(h))
            .filter_map(|h| self.known.get(h).cloned())
            .collect();
        Ok(Inserted { placed, superseded })
    }

    /// Selects the log greedily from the creation, and the roster after it.
    fn select(&mut self) {
        let Some(creation) = self.known.get(&self.genesis) else {
            return;
        };
        let Ok(mut roster) = Roster::genesis(creation) else {
            return;
        };
        let mut selected = vec![self.genesis];
        loop {
            let head = roster.head();
            let next = self
                .children
                .get(&head)
                .into_iter()
                .flatten()
                .filter_map(|h| self.known.get(h).map(|c| (h, c)))
                .filter(|(_, c)| roster.check(c).is_ok())
                .min_by_key(|(h, _)| **h);
            let Some((hash, change)) = next else {
                break;
            };
            if roster.apply(change).is_err() {
                break;
            }
            selected.push(*hash);
        }
        self.selected = selected;
        self.roster = roster;
    }

    /// The roster after the first `at + 1` selected changes.
    fn roster_at(&self, at: usize) -> Result<Roster, GroupError> {
        let mut changes = self.selected[..=at]
            .iter()
            .filter_map(|h| self.known.get(h));
        let creation = changes.next().ok_or(GroupError::OutOfOrder { number: 0 })?;
        let mut roster = Roster::genesis(creation)?;
        for change in changes {
            roster.apply(change)?;
        }
        Ok(roster)
    }

    /// Whether following predecessors from `hash` reaches the creation.
    fn reachable(&self, hash: &ChangeHash) -> bool {
        let mut at = *hash;
        while let Some(change) = self.known.get(&at) {
            if at == self.genesis {
                return true;
            }
            at = change.previous();
        }
        false
    }

    /// How many known changes cannot reach the creation yet.
    fn waiting(&self) -> usize {
        self.known.keys().filter(|h| !self.reachable(h)).count()
    }
}
