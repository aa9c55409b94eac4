//! Groups: a random id plus a signed, numbered membership log that every member applies in the
//! same order (see `docs/groups.md`).
//!
//! What it does: membership changes ([`Change`]: encoding and signatures), who may make which
//! change ([`Roster`]), and the one log every member selects from the changes it has seen
//! ([`MembershipLog`]).
//!
//! What it does not do yet: send group messages over the members' pairwise sessions, store
//! groups, or carry changes between members.

mod change;
mod error;
mod log;
mod roster;

#[cfg(test)]
mod sim_tests;
#[cfg(test)]
mod tests;

pub use change::{Change, ChangeHash, GroupId, Op, CHANGE_HASH_LEN, GROUP_ID_LEN, MAX_CHANGE_LEN};
pub use error::GroupError;
pub use log::{Inserted, MembershipLog, Placed, MAX_WAITING};
pub use roster::{Role, Roster, MAX_GROUP_MEMBERS};
