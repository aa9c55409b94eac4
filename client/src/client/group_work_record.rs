//! Group work waiting for a relay, kept in the local store so that a crash or a relay out of
//! reach does not lose it: each step of an introduction, and each catch-up send (see
//! `group_work`). One record per step, under a random id, removed when the step is done, when
//! it can no longer succeed, or when its time is up; and removed with its group when the group
//! is erased, or with a contact it names when that contact is erased.
//!
//! Format (integers big-endian, `str` = u16 length + UTF-8): `1 | group:[32] |
//! expires_at:u64 | kind:u8 | ...`, then by kind:
//!
//! - 1 invite: `via:[16] member:[64] name:str`
//! - 2 forward: `to:[16] payload:(u32 length, bytes)`
//! - 3 accept: `invitation:str name:str`
//! - 4 sync: `to:[16] reply:u8`
//!
//! Contacts are named by their random store id, never by name.
//!
//! What it does not do: run the steps (`group_work` does) or encrypt (the store seals every
//! record).

use hush_protocol::codec::{Reader, Writer};
use rand::rngs::OsRng;
use rand::RngCore;
use zeroize::Zeroizing;

use super::error::ClientError;
use crate::conversation::limits::MAX_INVITATION_LEN;
use crate::conversation::{Payload, MEMBER_LEN};
use crate::group::GroupId;
use crate::store::{ContactId, LocalStore, Namespace, StoreKey, CONTACT_ID_LEN, OWED_ID_LEN};

const VERSION: u8 = 1;
/// Most bytes a name in a record may take.
const MAX_NAME_LEN: usize = u16::MAX as usize;
/// Most bytes a forwarded payload may take.
const MAX_PAYLOAD_LEN: usize = 64 * 1024;

/// A step's id in the store.
pub(crate) type WorkId = [u8; OWED_ID_LEN];

/// A step waiting for a relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum GroupWork {
    /// We were added to `group`: invite `member`, calling them `name`, through contact `via`.
    Invite {
        via: ContactId,
        member: [u8; MEMBER_LEN],
        name: String,
    },
    /// Pass `payload` on to contact `to`.
    Forward { to: ContactId, payload: Vec<u8> },
    /// Accept `invitation`, calling its maker `name`.
    Accept { invitation: String, name: String },
    /// Send every change of the group we know to contact `to`, asking for theirs if `reply`.
    Sync { to: ContactId, reply: bool },
}

/// A step and what it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WorkRecord {
    pub(crate) group: GroupId,
    /// After this (unix seconds) the step is dropped: its invitation has expired.
    pub(crate) expires_at: u64,
    pub(crate) work: GroupWork,
}

/// A work record that does not decode.
#[derive(Debug, thiserror::Error)]
#[error("a queued group step is unreadable")]
pub(crate) struct DamagedWork;

impl From<hush_protocol::codec::DecodeError> for DamagedWork {
    fn from(_: hush_protocol::codec::DecodeError) -> Self {
        DamagedWork
    }
}

impl GroupWork {
    /// Whether the step names contact `id`.
    fn names(&self, id: ContactId) -> bool {
        match self {
            GroupWork::Invite { via, .. } => *via == id,
            GroupWork::Forward { to, .. } | GroupWork::Sync { to, .. } => *to == id,
            GroupWork::Accept { .. } => false,
        }
    }

    /// A forward of `payload` to contact `to`.
    pub(crate) fn forward(to: ContactId, payload: &Payload) -> GroupWork {
        GroupWork::Forward {
            to,
            payload: payload.encode().to_vec(),
        }
    }
}

impl WorkRecord {
    pub(crate) fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut w = Writer::new(Zeroizing::new(Vec::new()));
        w.u8(VERSION);
        w.raw(&self.group.0);
        w.u64(self.expires_at);
        match &self.work {
            GroupWork::Invite { via, member, name } => {
                w.u8(1);
                w.raw(&via.0);
                w.raw(member);
                w.bytes16(name.as_bytes());
            }
            GroupWork::Forward { to, payload } => {
                w.u8(2);
                w.raw(&to.0);
                w.bytes(payload);
            }
            GroupWork::Accept { invitation, name } => {
                w.u8(3);
                w.bytes16(invitation.as_bytes());
                w.bytes16(name.as_bytes());
            }
            GroupWork::Sync { to, reply } => {
                w.u8(4);
                w.raw(&to.0);
                w.bool(*reply);
            }
        }
        w.finish()
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<WorkRecord, DamagedWork> {
        let mut r = Reader::new(bytes);
        if r.u8()? != VERSION {
            return Err(DamagedWork);
        }
        let group = GroupId(r.array()?);
        let expires_at = r.u64()?;
        let contact = |r: &mut Reader<'_>| r.array::<CONTACT_ID_LEN>().map(ContactId);
        let work = match r.u8()? {
            1 => GroupWork::Invite {
                via: contact(&mut r)?,
                member: r.array()?,
                name: r.str16(MAX_NAME_LEN)?.to_owned(),
            },
            2 => GroupWork::Forward {
                to: contact(&mut r)?,
                payload: r.bytes(MAX_PAYLOAD_LEN)?.to_vec(),
            },
            3 => GroupWork::Accept {
                invitation: r.str16(MAX_INVITATION_LEN)?.to_owned(),
                name: r.str16(MAX_NAME_LEN)?.to_owned(),
            },
            4 => GroupWork::Sync {
                to: contact(&mut r)?,
                reply: r.bool()?,
            },
            _ => return Err(DamagedWork),
        };
        r.finish()?;
        Ok(WorkRecord {
            group,
            expires_at,
            work,
        })
    }
}

/// Writes `record` under a new random id.
pub(crate) fn put_work(store: &LocalStore, record: &WorkRecord) -> Result<WorkId, ClientError> {
    let mut id = [0u8; OWED_ID_LEN];
    OsRng.fill_bytes(&mut id);
    store.put(&StoreKey::GroupWork(id), &record.encode())?;
    Ok(id)
}

/// Every step on record. A damaged one is removed (a typed error is logged).
pub(crate) fn list_work(store: &LocalStore) -> Result<Vec<(WorkId, WorkRecord)>, ClientError> {
    let mut out = Vec::new();
    for (key, value) in store.list(Namespace::GroupWork, None)? {
        let StoreKey::GroupWork(id) = key else {
            continue;
        };
        match WorkRecord::decode(&value) {
            Ok(record) => out.push((id, record)),
            Err(e) => {
                tracing::warn!(error = %e, "removing a damaged group step");
                store.delete(&key)?;
            }
        }
    }
    Ok(out)
}

/// Removes every step of group `group` (the group is being erased).
pub(crate) fn forget_group_work(store: &LocalStore, group: GroupId) -> Result<(), ClientError> {
    for (id, record) in list_work(store)? {
        if record.group == group {
            store.delete(&StoreKey::GroupWork(id))?;
        }
    }
    Ok(())
}

/// Removes every step that names contact `contact` (the contact is being erased).
pub(crate) fn forget_contact_work(
    store: &LocalStore,
    contact: ContactId,
) -> Result<(), ClientError> {
    for (id, record) in list_work(store)? {
        if record.work.names(contact) {
            store.delete(&StoreKey::GroupWork(id))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records() -> Vec<WorkRecord> {
        let work = [
            GroupWork::Invite {
                via: ContactId([1; CONTACT_ID_LEN]),
                member: [2; MEMBER_LEN],
                name: "dave".into(),
            },
            GroupWork::Forward {
                to: ContactId([3; CONTACT_ID_LEN]),
                payload: vec![4; 300],
            },
            GroupWork::Accept {
                invitation: "hush-invite".into(),
                name: "carol".into(),
            },
            GroupWork::Sync {
                to: ContactId([5; CONTACT_ID_LEN]),
                reply: true,
            },
        ];
        work.into_iter()
            .map(|work| WorkRecord {
                group: GroupId([9; 32]),
                expires_at: 1_800_000_000,
                work,
            })
            .collect()
    }

    #[test]
    fn work_records_round_trip_and_damage_is_an_error() {
        for record in records() {
            let bytes = record.encode();
            assert_eq!(WorkRecord::decode(&bytes).unwrap(), record);
            for cut in 0..bytes.len() {
                assert!(WorkRecord::decode(&bytes[..cut]).is_err(), "cut at {cut}");
            }
            let mut long = bytes.to_vec();
            long.push(0);
            assert!(WorkRecord::decode(&long).is_err());
        }
    }

    #[test]
    fn a_step_names_only_the_contacts_it_goes_through() {
        let [invite, forward, accept, sync] = &records()[..] else {
            unreachable!()
        };
        assert!(invite.work.names(ContactId([1; CONTACT_ID_LEN])));
        assert!(forward.work.names(ContactId([3; CONTACT_ID_LEN])));
        assert!(sync.work.names(ContactId([5; CONTACT_ID_LEN])));
        assert!(!accept.work.names(ContactId([1; CONTACT_ID_LEN])));
        assert!(!sync.work.names(ContactId([1; CONTACT_ID_LEN])));
    }
}
