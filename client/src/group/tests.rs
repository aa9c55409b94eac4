//! Tests of group changes, the roster's rules and the log's selection.

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

use super::*;
use crate::crypto::Identity;

fn people(n: usize) -> Vec<Identity> {
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    (0..n).map(|_| Identity::generate(&mut rng)).collect()
}

/// A group created by `owner`, with its log.
fn group(owner: &Identity) -> MembershipLog {
    let id = GroupId([9; GROUP_ID_LEN]);
    let creation = Change::sign(
        owner,
        id,
        0,
        ChangeHash([0; 32]),
        Op::Create { timer: None },
    );
    MembershipLog::new(creation).unwrap()
}

fn apply(log: &mut MembershipLog, author: &Identity, op: Op) -> Change {
    let change = log.propose(author, op).unwrap();
    let inserted = log.insert(change.clone()).unwrap();
    assert_eq!(inserted.placed, Placed::Selected);
    change
}

#[test]
fn a_change_round_trips_and_a_flipped_bit_breaks_its_signature() {
    let p = people(2);
    let log = group(&p[0]);
    let change = log
        .propose(
            &p[0],
            Op::Add {
                member: p[1].public(),
            },
        )
        .unwrap();
    let bytes = change.encode();
    assert!(bytes.len() <= MAX_CHANGE_LEN);
    assert_eq!(Change::decode(&bytes).unwrap(), change);
    for at in [1, 40, 80, bytes.len() - 70, bytes.len() - 1] {
        let mut bad = bytes.clone();
        bad[at] ^= 0x10;
        assert!(Change::decode(&bad).is_err(), "bit flipped at {at}");
    }
    assert_eq!(Change::decode(&bytes[..10]), Err(GroupError::Malformed));
}

#[test]
fn each_role_may_make_only_its_own_changes() {
    let p = people(5);
    let (owner, admin, member, outsider, other) = (&p[0], &p[1], &p[2], &p[3], &p[4]);
    let mut log = group(owner);
    apply(
        &mut log,
        owner,
        Op::Add {
            member: admin.public(),
        },
    );
    apply(
        &mut log,
        owner,
        Op::Add {
            member: member.public(),
        },
    );
    apply(
        &mut log,
        owner,
        Op::SetRole {
            member: admin.public(),
            admin: true,
        },
    );
    let refused = |log: &MembershipLog, who: &Identity, op: Op| log.propose(who, op).unwrap_err();

    // A member may not add, remove, set the timer, or burn.
    let add_other = Op::Add {
        member: other.public(),
    };
    assert!(matches!(
        refused(&log, member, add_other),
        GroupError::NotAllowed { .. }
    ));
    assert!(matches!(
        refused(&log, member, Op::SetTimer { timer: Some(60) }),
        GroupError::NotAllowed { .. }
    ));
    assert!(matches!(
        refused(&log, member, Op::Burn),
        GroupError::NotAllowed { .. }
    ));
    // An admin may add, remove and set the timer, but not grant admin, hand over or burn, and
    // never remove the owner.
    assert!(matches!(
        refused(
            &log,
            admin,
            Op::SetRole {
                member: member.public(),
                admin: true
            }
        ),
        GroupError::NotAllowed { .. }
    ));
    assert!(matches!(
        refused(&log, admin, Op::Burn),
        GroupError::NotAllowed { .. }
    ));
    assert!(matches!(
        refused(
            &log,
            admin,
            Op::Remove {
                member: owner.public()
            }
        ),
        GroupError::Member(_)
    ));
    apply(&mut log, admin, Op::SetTimer { timer: Some(3600) });
    assert_eq!(log.roster().timer(), Some(3600));
    apply(
        &mut log,
        admin,
        Op::Add {
            member: other.public(),
        },
    );
    apply(
        &mut log,
        admin,
        Op::Remove {
            member: other.public(),
        },
    );
    // Someone outside the group may do nothing; the owner may not leave before handing over.
    assert_eq!(refused(&log, outsider, Op::Leave), GroupError::NotAMember);
    assert!(matches!(
        refused(&log, owner, Op::Leave),
        GroupError::NotAllowed { .. }
    ));
    apply(&mut log, owner, Op::HandOver { to: admin.public() });
    assert_eq!(log.roster().role_of(&admin.public()), Some(Role::Owner));
    assert_eq!(log.roster().role_of(&owner.public()), Some(Role::Admin));
    apply(&mut log, owner, Op::Leave);
    assert_eq!(log.roster().role_of(&owner.public()), None);
    apply(&mut log, admin, Op::Burn);
    assert!(log.roster().is_burned());
    assert_eq!(refused(&log, admin, Op::Leave), GroupError::Burned);
}

#[test]
fn a_removed_member_can_no_longer_change_anything() {
    let p = people(3);
    let mut log = group(&p[0]);
    apply(
        &mut log,
        &p[0],
        Op::Add {
            member: p[1].public(),
        },
    );
    apply(
        &mut log,
        &p[0],
        Op::SetRole {
            member: p[1].public(),
            admin: true,
        },
    );
    // The admin's change, signed while still an admin, but made after the removal.
    apply(
        &mut log,
        &p[0],
        Op::Remove {
            member: p[1].public(),
        },
    );
    let late = Change::sign(
        &p[1],
        log.group(),
        log.roster().number() + 1,
        log.roster().head(),
        Op::Add {
            member: p[2].public(),
        },
    );
    assert_eq!(log.insert(late).unwrap_err(), GroupError::NotAMember);
}

#[test]
fn forged_and_misplaced_changes_are_refused() {
    let p = people(3);
    let mut log = group(&p[0]);
    apply(
        &mut log,
        &p[0],
        Op::Add {
            member: p[1].public(),
        },
    );
    // A member pretending to be the owner: signed by the member, so the author is the member.
    let forged = Change::sign(
        &p[1],
        log.group(),
        2,
        log.roster().head(),
        Op::Add {
            member: p[2].public(),
        },
    );
    assert!(matches!(
        log.insert(forged),
        Err(GroupError::NotAllowed { .. })
    ));
    // Wrong number on the right head, and another group's change.
    let misnumbered = Change::sign(&p[0], log.group(), 5, log.roster().head(), Op::Burn);
    assert!(matches!(
        log.insert(misnumbered),
        Err(GroupError::OutOfOrder { .. })
    ));
    let other = Change::sign(&p[0], GroupId([1; 32]), 2, log.roster().head(), Op::Burn);
    assert_eq!(log.insert(other).unwrap_err(), GroupError::WrongGroup);
    let second_creation = Change::sign(
        &p[0],
        log.group(),
        0,
        ChangeHash([0; 32]),
        Op::Create { timer: Some(1) },
    );
    assert!(log.insert(second_creation).is_err());
    assert_eq!(log.roster().len(), 2);
}

#[test]
fn the_group_size_is_capped() {
    let p = people(MAX_GROUP_MEMBERS + 1);
    let mut log = group(&p[0]);
    for who in &p[1..MAX_GROUP_MEMBERS] {
        apply(
            &mut log,
            &p[0],
            Op::Add {
                member: who.public(),
            },
        );
    }
    assert_eq!(log.roster().len(), MAX_GROUP_MEMBERS);
    let err = log
        .propose(
            &p[0],
            Op::Add {
                member: p[MAX_GROUP_MEMBERS].public(),
            },
        )
        .unwrap_err();
    assert_eq!(
        err,
        GroupError::TooManyMembers {
            max: MAX_GROUP_MEMBERS
        }
    );
}

#[test]
fn concurrent_changes_select_the_smaller_hash_in_any_arrival_order() {
    let p = people(5);
    let mut base = group(&p[0]);
    apply(
        &mut base,
        &p[0],
        Op::Add {
            member: p[1].public(),
        },
    );
    apply(
        &mut base,
        &p[0],
        Op::SetRole {
            member: p[1].public(),
            admin: true,
        },
    );
    // The owner and the admin both write change 3 on the same head.
    let a = base
        .propose(
            &p[0],
            Op::Add {
                member: p[2].public(),
            },
        )
        .unwrap();
    let b = base
        .propose(
            &p[1],
            Op::Add {
                member: p[3].public(),
            },
        )
        .unwrap();
    let (win, lose) = if a.hash() < b.hash() { (a, b) } else { (b, a) };
    // One built on the loser is dropped with it.
    let mut on_loser = base.clone();
    on_loser.insert(lose.clone()).unwrap();
    let after_loser = on_loser
        .propose(&p[0], Op::SetTimer { timer: Some(5) })
        .unwrap();

    let mut first = base.clone();
    first.insert(lose.clone()).unwrap();
    first.insert(after_loser.clone()).unwrap();
    let inserted = first.insert(win.clone()).unwrap();
    assert_eq!(inserted.placed, Placed::Selected);
    assert_eq!(inserted.superseded, vec![lose.clone(), after_loser.clone()]);

    let mut second = base.clone();
    second.insert(win.clone()).unwrap();
    let inserted = second.insert(lose.clone()).unwrap();
    assert_eq!(inserted.placed, Placed::NotSelected);
    assert!(inserted.superseded.is_empty());
    second.insert(after_loser).unwrap();
    assert_eq!(first.roster(), second.roster());
    assert!(first.is_selected(&win.hash()) && !first.is_selected(&lose.hash()));
}

#[test]
fn a_change_waits_for_the_one_it_follows() {
    let p = people(3);
    let mut owner = group(&p[0]);
    let mut member = owner.clone();
    let c1 = apply(
        &mut owner,
        &p[0],
        Op::Add {
            member: p[1].public(),
        },
    );
    let c2 = apply(
        &mut owner,
        &p[0],
        Op::Add {
            member: p[2].public(),
        },
    );
    assert_eq!(member.insert(c2.clone()).unwrap().placed, Placed::Waiting);
    assert_eq!(member.roster().len(), 1);
    assert_eq!(member.insert(c1).unwrap().placed, Placed::Selected);
    assert!(member.is_selected(&c2.hash()));
    assert_eq!(member.insert(c2).unwrap().placed, Placed::Duplicate);
    assert_eq!(member.roster(), owner.roster());
}
