//! One membership change of a group: its fields, its byte encoding and its signature.
//!
//! Encoding (all integers big-endian):
//! `version (u8) | group id (32) | number (u64) | previous (32) | author (64) | op tag (u8) |
//! op fields | signature (64)`. The signature is Ed25519 by the author's identity key over
//! `DOMAIN` followed by everything before the signature. A [`Change`] only exists signed: it
//! is made by [`Change::sign`] or read by [`Change::decode`], which checks the signature.
//!
//! What it does not do: decide whether the author may make the change (that is the roster's
//! job) or order changes (the log's).

use hush_protocol::codec::{Reader, Writer};
use rand_core::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};

use super::error::GroupError;
use crate::crypto::{Identity, PublicIdentity, PUBLIC_IDENTITY_LEN};

/// Length in bytes of a [`GroupId`].
pub const GROUP_ID_LEN: usize = 32;

/// Length in bytes of a [`ChangeHash`].
pub const CHANGE_HASH_LEN: usize = 32;

/// Version byte of the change encoding.
const CHANGE_VERSION: u8 = 1;

/// Domain separation of change signatures.
const DOMAIN: &[u8] = b"hush/v1/group-change";

/// Longest encoded change: version, ids, number, previous, author, the largest op, signature.
pub const MAX_CHANGE_LEN: usize = 1 + GROUP_ID_LEN + 8 + CHANGE_HASH_LEN + 2 * 64 + 2 + 9 + 64;

const TAG_CREATE: u8 = 1;
const TAG_ADD: u8 = 2;
const TAG_REMOVE: u8 = 3;
const TAG_SET_ROLE: u8 = 4;
const TAG_SET_TIMER: u8 = 5;
const TAG_HAND_OVER: u8 = 6;
const TAG_LEAVE: u8 = 7;
const TAG_BURN: u8 = 8;

/// A group's identity: 32 random bytes chosen by its creator. Not secret from members.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupId(pub [u8; GROUP_ID_LEN]);

impl GroupId {
    /// A fresh random id.
    pub fn random<R: RngCore + CryptoRng>(rng: &mut R) -> GroupId {
        let mut bytes = [0u8; GROUP_ID_LEN];
        rng.fill_bytes(&mut bytes);
        GroupId(bytes)
    }
}

impl std::fmt::Debug for GroupId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GroupId({:02x}{:02x}..)", self.0[0], self.0[1])
    }
}

/// SHA-256 of a change's encoding: how the next change names the one it follows.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct ChangeHash(pub [u8; CHANGE_HASH_LEN]);

/// What a change does.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum Op {
    /// Creates the group (change 0); the author is its owner.
    Create {
        /// The group timer in seconds, if any.
        timer: Option<u64>,
    },
    /// Adds a member.
    Add {
        /// Who.
        member: PublicIdentity,
    },
    /// Removes a member.
    Remove {
        /// Who.
        member: PublicIdentity,
    },
    /// Grants (`admin: true`) or revokes admin rights.
    SetRole {
        /// Who.
        member: PublicIdentity,
        /// Whether they are an admin from now on.
        admin: bool,
    },
    /// Sets or clears the group timer.
    SetTimer {
        /// The group timer in seconds, or `None` for none.
        timer: Option<u64>,
    },
    /// Hands ownership over; the old owner becomes an admin.
    HandOver {
        /// The new owner.
        to: PublicIdentity,
    },
    /// The author leaves the group.
    Leave,
    /// The owner burns the group for everyone.
    Burn,
}

/// One signed membership change.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Change {
    group: GroupId,
    number: u64,
    previous: ChangeHash,
    author: PublicIdentity,
    op: Op,
    signature: [u8; 64],
    /// SHA-256 of the encoding, computed once.
    hash: ChangeHash,
}

impl Change {
    /// A change by `author`, numbered `number`, following the change hashed `previous` (zeros
    /// for the creation), signed.
    pub fn sign(
        author: &Identity,
        group: GroupId,
        number: u64,
        previous: ChangeHash,
        op: Op,
    ) -> Change {
        let mut change = Change {
            group,
            number,
            previous,
            author: author.public(),
            op,
            signature: [0; 64],
            hash: ChangeHash([0; CHANGE_HASH_LEN]),
        };
        let mut signed = DOMAIN.to_vec();
        signed.extend_from_slice(&change.body());
        change.signature = author.sign(&signed);
        change.hash = ChangeHash(Sha256::digest(change.encode()).into());
        change
    }

    /// The group it belongs to.
    pub fn group(&self) -> GroupId {
        self.group
    }

    /// Its number: 0 for the creation, then one more than the change it follows.
    pub fn number(&self) -> u64 {
        self.number
    }

    /// The hash of the change it follows (zeros for the creation).
    pub fn previous(&self) -> ChangeHash {
        self.previous
    }

    /// Who made and signed it.
    pub fn author(&self) -> &PublicIdentity {
        &self.author
    }

    /// What it does.
    pub fn op(&self) -> &Op {
        &self.op
    }

    /// SHA-256 of its encoding.
    pub fn hash(&self) -> ChangeHash {
        self.hash
    }

    /// The encoding, signature included.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.body();
        out.extend_from_slice(&self.signature);
        out
    }

    /// Reads [`Change::encode`] and checks the signature.
    pub fn decode(bytes: &[u8]) -> Result<Change, GroupError> {
        if bytes.len() > MAX_CHANGE_LEN {
            return Err(GroupError::Malformed);
        }
        let change = read_change(Reader::new(bytes))?;
        let mut signed = DOMAIN.to_vec();
        signed.extend_from_slice(&bytes[..bytes.len() - 64]);
        if !change.author.verify(&signed, &change.signature) {
            return Err(GroupError::BadSignature);
        }
        Ok(change)
    }

    /// Everything but the signature.
    fn body(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(MAX_CHANGE_LEN);
        w.u8(CHANGE_VERSION);
        w.raw(&self.group.0);
        w.u64(self.number);
        w.raw(&self.previous.0);
        w.raw(&self.author.to_bytes());
        write_op(&mut w, &self.op);
        w.finish()
    }
}

fn write_op(w: &mut Writer<Vec<u8>>, op: &Op) {
    match op {
        Op::Create { timer } => {
            w.u8(TAG_CREATE);
            w.opt_u64(*timer);
        }
        Op::Add { member } => {
            w.u8(TAG_ADD);
            w.raw(&member.to_bytes());
        }
        Op::Remove { member } => {
            w.u8(TAG_REMOVE);
            w.raw(&member.to_bytes());
        }
        Op::SetRole { member, admin } => {
            w.u8(TAG_SET_ROLE);
            w.raw(&member.to_bytes());
            w.bool(*admin);
        }
        Op::SetTimer { timer } => {
            w.u8(TAG_SET_TIMER);
            w.opt_u64(*timer);
        }
        Op::HandOver { to } => {
            w.u8(TAG_HAND_OVER);
            w.raw(&to.to_bytes());
        }
        Op::Leave => w.u8(TAG_LEAVE),
        Op::Burn => w.u8(TAG_BURN),
    }
}

fn read_change(mut reader: Reader<'_>) -> Result<Change, GroupError> {
    let bad = |_| GroupError::Malformed;
    let r = &mut reader;
    if r.u8().map_err(bad)? != CHANGE_VERSION {
        return Err(GroupError::Malformed);
    }
    let group = GroupId(r.array().map_err(bad)?);
    let number = r.u64().map_err(bad)?;
    let previous = ChangeHash(r.array().map_err(bad)?);
    let author = read_identity(r)?;
    let op = read_op(r)?;
    let signature = r.array::<64>().map_err(bad)?;
    reader.finish().map_err(bad)?;
    let mut change = Change {
        group,
        number,
        previous,
        author,
        op,
        signature,
        hash: ChangeHash([0; CHANGE_HASH_LEN]),
    };
    change.hash = ChangeHash(Sha256::digest(change.encode()).into());
    Ok(change)
}

fn read_identity(r: &mut Reader<'_>) -> Result<PublicIdentity, GroupError> {
    let bytes = r
        .array::<PUBLIC_IDENTITY_LEN>()
        .map_err(|_| GroupError::Malformed)?;
    PublicIdentity::from_bytes(&bytes).map_err(|_| GroupError::Malformed)
}

fn read_op(r: &mut Reader<'_>) -> Result<Op, GroupError> {
    let bad = |_| GroupError::Malformed;
    Ok(match r.u8().map_err(bad)? {
        TAG_CREATE => Op::Create {
            timer: r.opt_u64().map_err(bad)?,
        },
        TAG_ADD => Op::Add {
            member: read_identity(r)?,
        },
        TAG_REMOVE => Op::Remove {
            member: read_identity(r)?,
        },
        TAG_SET_ROLE => Op::SetRole {
            member: read_identity(r)?,
            admin: r.bool().map_err(bad)?,
        },
        TAG_SET_TIMER => Op::SetTimer {
            timer: r.opt_u64().map_err(bad)?,
        },
        TAG_HAND_OVER => Op::HandOver {
            to: read_identity(r)?,
        },
        TAG_LEAVE => Op::Leave,
        TAG_BURN => Op::Burn,
        _ => return Err(GroupError::Malformed),
    })
}
