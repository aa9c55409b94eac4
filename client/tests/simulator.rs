//! A two-party simulator on random schedules: messages are lost, reordered, duplicated and
//! replayed, sessions are saved and restored, and every delivered message must decrypt exactly
//! once, with the right plaintext.

mod common;

use common::{pair, Pair, NOW};
use hush_client::crypto::Session;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    /// A side encrypts a new message.
    Send { from_a: bool },
    /// The network delivers the in-flight message at this index (modulo the queue length).
    Deliver { to_b: bool, index: usize },
    /// The network loses a message.
    Drop { to_b: bool, index: usize },
    /// The network duplicates a message.
    Duplicate { to_b: bool, index: usize },
    /// Someone replays an already delivered message.
    Replay { to_b: bool, index: usize },
    /// A side saves and restores its session.
    Restart { a: bool },
    /// Time passes (well within the skipped-key lifetime).
    Tick,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => any::<bool>().prop_map(|from_a| Op::Send { from_a }),
        5 => (any::<bool>(), any::<usize>()).prop_map(|(to_b, index)| Op::Deliver { to_b, index }),
        1 => (any::<bool>(), any::<usize>()).prop_map(|(to_b, index)| Op::Drop { to_b, index }),
        1 => (any::<bool>(), any::<usize>()).prop_map(|(to_b, index)| Op::Duplicate { to_b, index }),
        1 => (any::<bool>(), any::<usize>()).prop_map(|(to_b, index)| Op::Replay { to_b, index }),
        1 => any::<bool>().prop_map(|a| Op::Restart { a }),
        1 => Just(Op::Tick),
    ]
}

#[derive(Default)]
struct Direction {
    in_flight: Vec<(u32, Vec<u8>)>,
    delivered: Vec<(u32, Vec<u8>)>,
    received: std::collections::HashSet<u32>,
}

struct Sim {
    p: Pair,
    to_b: Direction,
    to_a: Direction,
    next_id: u32,
    now: u64,
}

impl Sim {
    fn receiver(&mut self, to_b: bool) -> (&mut Session, &mut Direction) {
        if to_b {
            (&mut self.p.b, &mut self.to_b)
        } else {
            (&mut self.p.a, &mut self.to_a)
        }
    }

    fn run(&mut self, op: Op) -> Result<(), TestCaseError> {
        let now = self.now;
        match op {
            Op::Send { from_a } => {
                let id = self.next_id;
                self.next_id += 1;
                let pt = plaintext(id);
                let (session, dir) = if from_a {
                    (&mut self.p.a, &mut self.to_b)
                } else {
                    (&mut self.p.b, &mut self.to_a)
                };
                let wire = session.encrypt(&pt, &mut self.p.rng).unwrap();
                dir.in_flight.push((id, wire));
            }
            Op::Deliver { to_b, index } => {
                let (session, dir) = self.receiver(to_b);
                if dir.in_flight.is_empty() {
                    return Ok(());
                }
                let (id, wire) = dir.in_flight.remove(index % dir.in_flight.len());
                let result = session.decrypt(&wire, now);
                if dir.received.insert(id) {
                    prop_assert_eq!(
                        result.ok(),
                        Some(plaintext(id)),
                        "message {} must decrypt",
                        id
                    );
                    dir.delivered.push((id, wire));
                } else {
                    prop_assert!(result.is_err(), "duplicate of {} decrypted twice", id);
                }
            }
            Op::Drop { to_b, index } => {
                let (_, dir) = self.receiver(to_b);
                if !dir.in_flight.is_empty() {
                    let i = index % dir.in_flight.len();
                    dir.in_flight.remove(i);
                }
            }
            Op::Duplicate { to_b, index } => {
                let (_, dir) = self.receiver(to_b);
                if !dir.in_flight.is_empty() {
                    let copy = dir.in_flight[index % dir.in_flight.len()].clone();
                    dir.in_flight.push(copy);
                }
            }
            Op::Replay { to_b, index } => {
                let (session, dir) = self.receiver(to_b);
                if !dir.delivered.is_empty() {
                    let (id, wire) = dir.delivered[index % dir.delivered.len()].clone();
                    let before = session.to_bytes();
                    prop_assert!(
                        session.decrypt(&wire, now).is_err(),
                        "replay of {} decrypted",
                        id
                    );
                    prop_assert!(session.to_bytes() == before, "replay changed the state");
                }
            }
            Op::Restart { a } => {
                let session = if a { &mut self.p.a } else { &mut self.p.b };
                *session = Session::from_bytes(&session.to_bytes()).unwrap();
            }
            Op::Tick => self.now += 3600,
        }
        Ok(())
    }
}

fn plaintext(id: u32) -> Vec<u8> {
    // Lengths vary so that several padding buckets are used.
    let len = (id as usize * 37) % 600;
    let mut pt = id.to_be_bytes().to_vec();
    pt.resize(4 + len, id as u8);
    pt
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn every_delivered_message_decrypts_exactly_once(seed in any::<u64>(), ops in prop::collection::vec(op(), 1..160)) {
        let mut sim = Sim { p: pair(seed), to_b: Direction::default(), to_a: Direction::default(), next_id: 0, now: NOW };
        for op in ops {
            sim.run(op)?;
        }
        // Finally deliver everything still in flight, in reverse order.
        for to_b in [true, false] {
            while !sim.receiver(to_b).1.in_flight.is_empty() {
                let last = sim.receiver(to_b).1.in_flight.len() - 1;
                sim.run(Op::Deliver { to_b, index: last })?;
            }
        }
    }
}
