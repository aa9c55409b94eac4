//! A simulation of many members changing a group at once over an unreliable network: random
//! interleavings of membership changes and group messages, with packets dropped, delayed
//! (delivered in random order) and duplicated. Every message carries its author's head; a
//! member who does not know that head asks the author for its changes (sending its own), and
//! a member who selects another head sends the author its changes. After the network settles,
//! every remaining member must agree on the log and the member list, and no message is shown
//! twice.

use std::collections::HashSet;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

use super::*;
use crate::crypto::Identity;

/// What travels between two participants.
#[derive(Clone)]
enum Packet {
    /// Changes: a new one, or every change the sender knows (a catch-up).
    Changes(Vec<Change>),
    /// A group message, with its author's head.
    Message { id: u64, head: ChangeHash },
    /// "Send me your changes; here are mine."
    SyncRequest(Vec<Change>),
}

struct Participant {
    identity: Identity,
    log: Option<MembershipLog>,
    /// Message ids shown, and how often each was shown.
    shown: Vec<u64>,
    seen: HashSet<u64>,
}

struct Sim {
    rng: ChaCha20Rng,
    people: Vec<Participant>,
    /// (to, from, packet) in flight.
    net: Vec<(usize, usize, Packet)>,
    next_message: u64,
    lossy: bool,
    /// What happened, to show the run exercised the hard cases.
    stats: Stats,
}

#[derive(Default, Clone, Copy, Debug)]
struct Stats {
    dropped: usize,
    duplicated: usize,
    superseded: usize,
    removals: usize,
}

impl Sim {
    fn new(seed: u64, n: usize) -> Sim {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let people = (0..n)
            .map(|_| Participant {
                identity: Identity::generate(&mut rng),
                log: None,
                shown: Vec::new(),
                seen: HashSet::new(),
            })
            .collect();
        Sim {
            rng,
            people,
            net: Vec::new(),
            next_message: 0,
            lossy: true,
            stats: Stats::default(),
        }
    }

    fn index_of(&self, who: &crate::crypto::PublicIdentity) -> Option<usize> {
        self.people.iter().position(|p| p.identity.public() == *who)
    }

    /// The participants `me` believes are members, other than `me`.
    fn others(&self, me: usize) -> Vec<usize> {
        let Some(log) = &self.people[me].log else {
            return Vec::new();
        };
        log.roster()
            .members()
            .filter_map(|(id, _)| self.index_of(id))
            .filter(|&i| i != me)
            .collect()
    }

    fn is_member(&self, me: usize) -> bool {
        let public = self.people[me].identity.public();
        self.people[me]
            .log
            .as_ref()
            .is_some_and(|l| l.roster().role_of(&public).is_some())
    }

    /// `me` makes a random change it believes it may make, and sends it.
    fn act(&mut self, me: usize) {
        let Some(log) = &self.people[me].log else {
            return;
        };
        let roster = log.roster();
        let pick = self.rng.gen_range(0..self.people.len());
        let target = self.people[pick].identity.public();
        let op = match self.rng.gen_range(0..10) {
            0..=3 => Op::Add { member: target },
            4..=5 => Op::Remove { member: target },
            6 => Op::SetRole {
                member: target,
                admin: self.rng.gen(),
            },
            7 => Op::SetTimer {
                timer: Some(self.rng.gen_range(1..100)),
            },
            8 if roster.number() > 20 => Op::Leave,
            _ => Op::SetTimer { timer: None },
        };
        self.propose(me, op);
    }

    /// `me` applies `op` on its head and sends it to every member it knows, the one it
    /// removes included; a new member gets every change.
    fn propose(&mut self, me: usize, op: Op) {
        let p = &self.people[me];
        let Some(Ok(change)) = p.log.as_ref().map(|l| l.propose(&p.identity, op)) else {
            return;
        };
        let mut to = self.others(me);
        if let Op::Remove { member } = op {
            to.extend(self.index_of(&member));
            self.stats.removals += 1;
        }
        let Some(log) = &mut self.people[me].log else {
            return;
        };
        if log.insert(change.clone()).is_err() {
            return;
        }
        let everything: Vec<Change> = log.changes().into_iter().cloned().collect();
        let added = match op {
            Op::Add { member } => self.index_of(&member),
            _ => None,
        };
        for peer in to {
            self.net
                .push((peer, me, Packet::Changes(vec![change.clone()])));
        }
        if let Some(new) = added {
            self.net.push((new, me, Packet::Changes(everything)));
        }
    }

    fn send_message(&mut self, me: usize) {
        let Some(log) = &self.people[me].log else {
            return;
        };
        let head = log.roster().head();
        let id = self.next_message;
        self.next_message += 1;
        for peer in self.others(me) {
            self.net.push((peer, me, Packet::Message { id, head }));
        }
    }

    fn deliver(&mut self, to: usize, from: usize, packet: Packet) {
        match packet {
            Packet::Changes(changes) => self.receive_changes(to, changes),
            Packet::Message { id, head } => {
                let log = self.people[to].log.as_ref();
                let knows = log.is_some_and(|l| l.knows(&head));
                let mine: Vec<Change> = log
                    .map(|l| l.changes().into_iter().cloned().collect())
                    .unwrap_or_default();
                if !knows {
                    self.net.push((from, to, Packet::SyncRequest(mine)));
                } else if log.is_some_and(|l| l.roster().head() != head) {
                    // The author selects another head: it lacks changes we have.
                    self.net.push((from, to, Packet::Changes(mine)));
                }
                let p = &mut self.people[to];
                if p.seen.insert(id) {
                    p.shown.push(id);
                }
            }
            Packet::SyncRequest(theirs) => {
                self.receive_changes(to, theirs);
                if let Some(log) = &self.people[to].log {
                    let all = log.changes().into_iter().cloned().collect();
                    self.net.push((from, to, Packet::Changes(all)));
                }
            }
        }
    }

    fn receive_changes(&mut self, to: usize, mut changes: Vec<Change>) {
        changes.sort_by_key(|c| c.number());
        let mut superseded = Vec::new();
        for change in changes {
            let p = &mut self.people[to];
            match &mut p.log {
                None => {
                    if let Ok(log) = MembershipLog::new(change) {
                        p.log = Some(log);
                    }
                }
                Some(log) => {
                    // Refused changes (forged, not allowed) are reported and dropped.
                    if let Ok(inserted) = log.insert(change) {
                        self.stats.superseded += inserted.superseded.len();
                        superseded.extend(inserted.superseded);
                    }
                }
            }
        }
        // Our own superseded changes are made again on the new head, if they still apply.
        let me = self.people[to].identity.public();
        for change in superseded {
            if *change.author() == me {
                self.propose(to, *change.op());
            }
        }
    }

    fn step(&mut self) {
        let roll = self.rng.gen_range(0..100);
        if roll < 10 {
            let members: Vec<usize> = (0..self.people.len())
                .filter(|&i| self.is_member(i))
                .collect();
            if let Some(&me) = members.choose(&mut self.rng) {
                self.act(me);
            }
        } else if roll < 25 {
            let members: Vec<usize> = (0..self.people.len())
                .filter(|&i| self.is_member(i))
                .collect();
            if let Some(&me) = members.choose(&mut self.rng) {
                self.send_message(me);
            }
        } else if !self.net.is_empty() {
            let at = self.rng.gen_range(0..self.net.len());
            let (to, from, packet) = self.net.swap_remove(at);
            let fate = self.rng.gen_range(0..100);
            if self.lossy && fate < 10 {
                self.stats.dropped += 1;
                return;
            }
            if self.lossy && fate < 20 {
                self.stats.duplicated += 1;
                self.net.push((to, from, packet.clone()));
            }
            self.deliver(to, from, packet);
        }
    }

    /// Delivers everything in flight, in random order, with no loss.
    fn drain(&mut self) {
        let mut budget = 1_000_000;
        while !self.net.is_empty() && budget > 0 {
            budget -= 1;
            let at = self.rng.gen_range(0..self.net.len());
            let (to, from, packet) = self.net.swap_remove(at);
            self.deliver(to, from, packet);
        }
        assert!(self.net.is_empty(), "the network did not settle");
    }

    /// Whether everyone who believes they are a member has the same head, and everyone each
    /// of them lists believes they are a member.
    fn settled(&self) -> bool {
        let heads = self.member_heads();
        let believers: HashSet<usize> = heads.iter().map(|(i, _)| *i).collect();
        heads.windows(2).all(|w| w[0].1 == w[1].1)
            && believers
                .iter()
                .all(|&i| self.others(i).iter().all(|other| believers.contains(other)))
    }

    /// The heads of every participant that believes it is a member.
    fn member_heads(&self) -> Vec<(usize, ChangeHash)> {
        (0..self.people.len())
            .filter(|&i| self.is_member(i))
            .filter_map(|i| Some((i, self.people[i].log.as_ref()?.roster().head())))
            .collect()
    }
}

fn run(seed: u64) -> Stats {
    let mut sim = Sim::new(seed, 7);
    let mut rng = ChaCha20Rng::seed_from_u64(seed ^ 0xFF);
    let creation = Change::sign(
        &sim.people[0].identity,
        GroupId::random(&mut rng),
        0,
        ChangeHash([0; 32]),
        Op::Create { timer: None },
    );
    sim.people[0].log = Some(MembershipLog::new(creation).unwrap());
    for i in 1..4 {
        let member = sim.people[i].identity.public();
        sim.propose(0, Op::Add { member });
    }
    let admin = sim.people[1].identity.public();
    sim.propose(
        0,
        Op::SetRole {
            member: admin,
            admin: true,
        },
    );
    for _ in 0..1_000 {
        sim.step();
    }
    // The network settles: no loss, and every member announces its head until all agree.
    sim.lossy = false;
    let mut rounds = 0;
    loop {
        for (me, _) in sim.member_heads() {
            sim.send_message(me);
        }
        sim.drain();
        if sim.settled() {
            break;
        }
        rounds += 1;
        assert!(
            rounds < 20,
            "seed {seed}: members never agreed: {:?}",
            sim.member_heads()
        );
    }
    let members: Vec<usize> = (0..sim.people.len())
        .filter(|&i| sim.is_member(i))
        .collect();
    assert!(
        !members.is_empty(),
        "seed {seed}: the owner is always a member"
    );
    let reference = sim.people[members[0]].log.as_ref().unwrap();
    for &i in &members {
        let log = sim.people[i].log.as_ref().unwrap();
        assert_eq!(
            log.roster(),
            reference.roster(),
            "seed {seed}: member {i}'s roster"
        );
        let mine: Vec<ChangeHash> = log.selected().iter().map(|c| c.hash()).collect();
        let theirs: Vec<ChangeHash> = reference.selected().iter().map(|c| c.hash()).collect();
        assert_eq!(mine, theirs, "seed {seed}: member {i}'s log");
        // The member list agrees with who believes they are a member.
        let listed: Vec<usize> = log
            .roster()
            .members()
            .filter_map(|(id, _)| sim.index_of(id))
            .collect();
        assert_eq!(listed.len(), members.len(), "seed {seed}");
    }
    for p in &sim.people {
        let unique: HashSet<&u64> = p.shown.iter().collect();
        assert_eq!(
            unique.len(),
            p.shown.len(),
            "seed {seed}: a message shown twice"
        );
    }
    sim.stats
}

#[test]
fn members_agree_after_random_changes_over_a_lossy_network() {
    let mut total = Stats::default();
    for seed in 0..24 {
        let s = run(seed);
        total.dropped += s.dropped;
        total.duplicated += s.duplicated;
        total.superseded += s.superseded;
        total.removals += s.removals;
    }
    // The runs met every hard case: losses, copies, concurrent changes, removals.
    assert!(total.dropped > 0 && total.duplicated > 0, "{total:?}");
    assert!(total.superseded > 0 && total.removals > 0, "{total:?}");
}
