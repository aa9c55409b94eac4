//! A group as the `Client` keeps it: the local name and the membership log, persisted as one
//! record under the group's id (its sled key is a keyed hash of the id).
//!
//! Format (integers big-endian): `1 | name:str16 | count:u16 | change:bytes16 ...`: every
//! change known, selected or not, so that the log selects the same way after a restart.
//!
//! What it does not do: decide anything about the group (the log and roster do) or hold its
//! messages, which live in the members' conversations.

use hush_protocol::codec::{Reader, Writer};

use super::records::RecordError;
use crate::group::{Change, GroupError, GroupId, MembershipLog, MAX_CHANGE_LEN};
use crate::store::StoreKey;

const VERSION: u8 = 1;
/// Most changes a group record holds: the waiting ones and the selected log together.
const MAX_RECORD_CHANGES: usize = u16::MAX as usize;

/// One group in memory.
#[derive(Clone, Debug)]
pub(crate) struct GroupState {
    pub(crate) log: MembershipLog,
}

impl GroupState {
    /// The group's id.
    pub(crate) fn id(&self) -> GroupId {
        self.log.group()
    }

    /// The key of the group's record.
    pub(crate) fn key(&self) -> StoreKey {
        StoreKey::Group(self.id().0)
    }

    /// The record of this group under `name`.
    pub(crate) fn encode(&self, name: &str) -> Vec<u8> {
        let changes = self.log.changes();
        let mut w = Writer::with_capacity(64 + changes.len() * (MAX_CHANGE_LEN + 2));
        w.u8(VERSION);
        w.bytes16(name.as_bytes());
        w.u16(u16::try_from(changes.len()).unwrap_or(u16::MAX));
        for change in changes.iter().take(MAX_RECORD_CHANGES) {
            w.bytes16(&change.encode());
        }
        w.finish()
    }

    /// Decodes a record: the group's name and state.
    pub(crate) fn decode(bytes: &[u8]) -> Result<(String, GroupState), RecordError> {
        let mut r = Reader::new(bytes);
        if r.u8().map_err(|_| RecordError)? != VERSION {
            return Err(RecordError);
        }
        let name = r
            .str16(u16::MAX as usize)
            .map_err(|_| RecordError)?
            .to_owned();
        let count = r.u16().map_err(|_| RecordError)?;
        let mut changes = Vec::with_capacity(usize::from(count));
        for _ in 0..count {
            let bytes = r.bytes16(MAX_CHANGE_LEN).map_err(|_| RecordError)?;
            changes.push(Change::decode(bytes).map_err(|_| RecordError)?);
        }
        r.finish().map_err(|_| RecordError)?;
        let log = log_of(changes).map_err(|_| RecordError)?;
        Ok((name, GroupState { log }))
    }
}

/// The log of a set of changes of one group, one of which is its creation; changes that do
/// not fit are left out. Fails without a creation.
pub(crate) fn log_of(changes: Vec<Change>) -> Result<MembershipLog, GroupError> {
    let (creations, rest): (Vec<Change>, Vec<Change>) =
        changes.into_iter().partition(|c| c.number() == 0);
    let creation = creations
        .into_iter()
        .next()
        .ok_or(GroupError::OutOfOrder { number: 0 })?;
    let mut log = MembershipLog::new(creation)?;
    for change in rest {
        // A change the log refuses was refused when it first came; it is not kept again.
        let _ = log.insert(change);
    }
    Ok(log)
}
