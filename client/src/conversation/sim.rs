//! A two-party simulator on virtual time, driven by proptest.
//!
//! Two conversations exchange payloads through a fake relay that loses, duplicates and reorders
//! them, retracts queued envelopes, and drops envelopes older than its TTL. An oracle that knows
//! every message ever sent checks, after every step, that:
//!
//! - a delivered message is shown exactly when it should be: once, unless it was unsent first,
//!   had already expired, or the receiver's conversation was burned;
//! - no message is shown twice, whatever the duplication;
//! - nothing can be displayed, or survives a tick, after its expiry or after its unsend;
//! - a view-once message opens once, and displayed bodies are the ones sent;
//! - with no timer change lost, both sides end with the same timer.

use std::collections::{HashMap, HashSet};

use hush_protocol::ids::EnvelopeId;
use proptest::prelude::*;
use proptest::sample::Index;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

use super::*;

const TTL: u64 = 2 * 86_400;
const T0: u64 = 1_000_000;
const TIMERS: [Option<u64>; 5] = [None, Some(30), Some(3600), Some(86_400), Some(5 * 86_400)];

#[derive(Debug, Clone)]
enum Op {
    Compose {
        side: usize,
        view_once: bool,
    },
    SetTimer {
        side: usize,
        timer: Option<u64>,
    },
    Deliver(Index),
    Duplicate(Index),
    Lose(Index),
    Advance(u64),
    Display {
        side: usize,
        pick: Index,
    },
    Unsend {
        side: usize,
        pick: Index,
    },
    Tick {
        side: usize,
    },
    /// Jump to the moment the oracle says one of `side`'s messages must be gone.
    Expire {
        side: usize,
        pick: Index,
    },
    Burn {
        side: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let side = 0..2usize;
    prop_oneof![
        6 => (side.clone(), any::<bool>()).prop_map(|(side, view_once)| Op::Compose { side, view_once }),
        2 => (side.clone(), prop::sample::select(TIMERS.to_vec()))
            .prop_map(|(side, timer)| Op::SetTimer { side, timer }),
        8 => any::<Index>().prop_map(Op::Deliver),
        2 => any::<Index>().prop_map(Op::Duplicate),
        1 => any::<Index>().prop_map(Op::Lose),
        3 => prop_oneof![0..120u64, 0..4 * 86_400u64].prop_map(Op::Advance),
        4 => (side.clone(), any::<Index>()).prop_map(|(side, pick)| Op::Display { side, pick }),
        2 => (side.clone(), any::<Index>()).prop_map(|(side, pick)| Op::Unsend { side, pick }),
        3 => side.clone().prop_map(|side| Op::Tick { side }),
        2 => (side.clone(), any::<Index>()).prop_map(|(side, pick)| Op::Expire { side, pick }),
        1 => prop::bool::weighted(0.2).prop_flat_map(move |b| Just(Op::Burn { side: usize::from(b) })),
    ]
}

/// An envelope queued at the fake relay.
#[derive(Clone)]
struct Packet {
    to: usize,
    envelope_id: EnvelopeId,
    payload: Payload,
    accepted_at: u64,
}

/// What the oracle knows about a text at composition.
struct Sent {
    sent_at: u64,
    timer: Option<u64>,
    view_once: bool,
    body: String,
}

struct Sim {
    now: u64,
    parties: [Conversation; 2],
    rng: ChaCha20Rng,
    next_envelope: u64,
    net: Vec<Packet>,
    sent: HashMap<MessageId, Sent>,
    shown: [HashMap<MessageId, u32>; 2],
    unsend_arrived: [HashSet<MessageId>; 2],
    first_display: [HashMap<MessageId, u64>; 2],
    timer_change_lost: bool,
}

impl Sim {
    fn new(seed: u64) -> Self {
        Self {
            now: T0,
            parties: [
                Conversation::new(TTL, &mut ChaCha20Rng::seed_from_u64(seed)).unwrap(),
                Conversation::new(TTL, &mut ChaCha20Rng::seed_from_u64(!seed)).unwrap(),
            ],
            rng: ChaCha20Rng::seed_from_u64(seed),
            next_envelope: 0,
            net: Vec::new(),
            sent: HashMap::new(),
            shown: Default::default(),
            unsend_arrived: Default::default(),
            first_display: Default::default(),
            timer_change_lost: false,
        }
    }

    fn burned(&self, side: usize) -> bool {
        self.parties[side].status() == Status::Burned
    }

    /// Carries out the network effects of `side`; returns the envelope id of the last send.
    fn apply(&mut self, side: usize, effects: &[Effect]) -> Option<EnvelopeId> {
        let mut last = None;
        for e in effects {
            match e {
                Effect::SendPayload(p) => {
                    self.next_envelope += 1;
                    let mut raw = [0u8; 16];
                    raw[..8].copy_from_slice(&self.next_envelope.to_be_bytes());
                    let envelope_id = EnvelopeId::from_bytes(raw);
                    self.net.push(Packet {
                        to: 1 - side,
                        envelope_id,
                        payload: p.clone(),
                        accepted_at: self.now,
                    });
                    last = Some(envelope_id);
                }
                Effect::Retract { envelope_id } => {
                    self.net.retain(|p| p.envelope_id != *envelope_id);
                }
                _ => {}
            }
        }
        last
    }

    /// When the oracle says `side`'s copy of `id` must be gone.
    fn deadline(&self, side: usize, record: &MessageRecord) -> u64 {
        let sent = &self.sent[&record.id];
        let Some(t) = sent.timer else { return u64::MAX };
        match record.direction {
            Direction::Sent => sent.sent_at + t,
            Direction::Received => match self.first_display[side].get(&record.id) {
                Some(d) => d + t,
                None => sent.sent_at + t.max(TTL),
            },
        }
    }

    fn purge_relay(&mut self) {
        let now = self.now;
        let lost = self
            .net
            .iter()
            .any(|p| p.accepted_at + TTL <= now && matches!(p.payload, Payload::SetTimer { .. }));
        self.timer_change_lost |= lost;
        self.net.retain(|p| p.accepted_at + TTL > now);
    }

    fn step(&mut self, op: Op) {
        match op {
            Op::Compose { side, view_once } => self.compose(side, view_once),
            Op::SetTimer { side, timer } => {
                let res = self.parties[side].set_timer(timer, self.now);
                self.expect_ok_unless_burned(side, res);
            }
            Op::Deliver(pick) => {
                self.purge_relay();
                if !self.net.is_empty() {
                    let packet = self.net.remove(pick.index(self.net.len()));
                    self.deliver(packet);
                }
            }
            Op::Duplicate(pick) if !self.net.is_empty() => {
                let copy = self.net[pick.index(self.net.len())].clone();
                self.net.push(copy);
            }
            Op::Lose(pick) if !self.net.is_empty() => {
                let lost = self.net.remove(pick.index(self.net.len()));
                self.timer_change_lost |= matches!(lost.payload, Payload::SetTimer { .. });
            }
            Op::Duplicate(_) | Op::Lose(_) => {}
            Op::Advance(secs) => self.now += secs,
            Op::Display { side, pick } => self.display(side, pick),
            Op::Unsend { side, pick } => self.unsend(side, pick),
            Op::Tick { side } => self.tick(side),
            Op::Expire { side, pick } => {
                let deadlines: Vec<u64> = self.parties[side]
                    .messages()
                    .into_iter()
                    .map(|r| self.deadline(side, r))
                    .filter(|&d| d != u64::MAX && d > self.now)
                    .collect();
                if !deadlines.is_empty() {
                    self.now = deadlines[pick.index(deadlines.len())];
                }
            }
            Op::Burn { side } => {
                let res = self.parties[side].burn();
                self.expect_ok_unless_burned(side, res);
            }
        }
        self.check_invariants();
    }

    fn expect_ok_unless_burned(
        &mut self,
        side: usize,
        res: Result<Vec<Effect>, ConversationError>,
    ) {
        if self.burned(side) && res.is_err() {
            assert_eq!(res, Err(ConversationError::Burned));
            return;
        }
        let effects = res.unwrap();
        self.apply(side, &effects);
    }

    fn compose(&mut self, side: usize, view_once: bool) {
        let body = format!("message {}", self.sent.len());
        let res = self.parties[side].compose_text(body.clone(), view_once, self.now, &mut self.rng);
        if self.burned(side) {
            assert_eq!(res.unwrap_err(), ConversationError::Burned);
            return;
        }
        let (id, effects) = res.unwrap();
        let sent = Sent {
            sent_at: self.now,
            timer: self.parties[side].timer(),
            view_once,
            body,
        };
        assert!(self.sent.insert(id, sent).is_none());
        let envelope_id = self.apply(side, &effects).unwrap();
        let more = self.parties[side].mark_sent(id, envelope_id);
        assert_eq!(more, vec![Effect::SaveMessage(id)]);
    }

    fn deliver(&mut self, packet: Packet) {
        let to = packet.to;
        let receiver_burned = self.burned(to);
        let expected_show = match &packet.payload {
            Payload::Text { id, timer, .. } => {
                let sent = &self.sent[id];
                let expired = timer.is_some_and(|t| self.now >= sent.sent_at + t.max(TTL));
                !receiver_burned
                    && !self.shown[to].contains_key(id)
                    && !self.unsend_arrived[to].contains(id)
                    && !expired
            }
            _ => false,
        };
        let res = self.parties[to].receive(packet.payload.clone(), self.now);
        if receiver_burned {
            assert_eq!(res, Err(ConversationError::Burned));
            return;
        }
        let effects = res.unwrap();
        self.apply(to, &effects);
        let shown: Vec<MessageId> = effects
            .iter()
            .filter_map(|e| match e {
                Effect::Notify(Event::MessageShown { id, .. }) => Some(*id),
                _ => None,
            })
            .collect();
        match packet.payload {
            Payload::Text { id, .. } => {
                assert_eq!(shown.contains(&id), expected_show, "text {id:?}");
                assert!(shown.len() <= 1);
                if expected_show {
                    *self.shown[to].entry(id).or_default() += 1;
                }
            }
            Payload::Unsend { id } => {
                assert!(shown.is_empty());
                self.unsend_arrived[to].insert(id);
                let kept = self.parties[to].message(&id);
                assert!(kept.is_none_or(|r| r.direction == Direction::Sent));
            }
            _ => assert!(shown.is_empty()),
        }
    }

    fn display(&mut self, side: usize, pick: Index) {
        let records: Vec<MessageRecord> =
            self.parties[side].messages().into_iter().cloned().collect();
        if records.is_empty() {
            return;
        }
        let record = &records[pick.index(records.len())];
        let deadline = self.deadline(side, record);
        let res = self.parties[side].display(record.id, self.now);
        assert_eq!(
            res.is_ok(),
            self.now < deadline,
            "display of {:?}",
            record.id
        );
        let Ok(shown) = res else { return };
        let sent = &self.sent[&record.id];
        let stub = record.direction == Direction::Sent && sent.view_once;
        let want = (!stub).then_some(sent.body.as_str());
        assert_eq!(shown.body.as_ref().map(MessageBody::as_str), want);
        if record.direction == Direction::Received {
            self.first_display[side]
                .entry(record.id)
                .or_insert(self.now);
            if sent.view_once {
                assert!(self.parties[side].message(&record.id).is_none());
            }
        }
    }

    fn unsend(&mut self, side: usize, pick: Index) {
        let own: Vec<MessageId> = self.parties[side]
            .messages()
            .into_iter()
            .filter(|r| r.direction == Direction::Sent)
            .map(|r| r.id)
            .collect();
        if own.is_empty() {
            return;
        }
        let id = own[pick.index(own.len())];
        let res = self.parties[side].unsend(id, self.now);
        self.expect_ok_unless_burned(side, res);
        assert!(self.parties[side].message(&id).is_none());
    }

    fn tick(&mut self, side: usize) {
        let effects = self.parties[side].tick(self.now);
        self.apply(side, &effects);
        for record in self.parties[side].messages() {
            assert!(
                self.now < self.deadline(side, record),
                "{:?} outlived",
                record.id
            );
        }
        if let Some(next) = self.parties[side].next_deadline() {
            assert!(next > self.now);
        }
    }

    fn check_invariants(&self) {
        for side in 0..2 {
            assert!(self.shown[side].values().all(|&n| n == 1));
            for record in self.parties[side].messages() {
                if record.direction == Direction::Received {
                    assert!(!self.unsend_arrived[side].contains(&record.id));
                    let sent = &self.sent[&record.id];
                    assert_eq!(
                        record.body.as_ref().map(MessageBody::as_str),
                        Some(sent.body.as_str())
                    );
                }
            }
            if self.burned(side) {
                assert!(self.parties[side].messages().is_empty());
            }
            let earliest = self.parties[side]
                .messages()
                .into_iter()
                .map(|r| self.deadline(side, r))
                .filter(|&d| d != u64::MAX)
                .min();
            assert_eq!(self.parties[side].next_deadline(), earliest);
        }
    }

    /// Delivers everything still queued, without letting time pass.
    fn drain(&mut self) {
        self.purge_relay();
        while !self.net.is_empty() {
            let packet = self.net.remove(0);
            self.deliver(packet);
            self.check_invariants();
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn lossy_duplicating_reordering_network(seed in any::<u64>(), ops in prop::collection::vec(op(), 1..150)) {
        let mut sim = Sim::new(seed);
        for op in ops {
            sim.step(op);
        }
        sim.drain();
        if !sim.timer_change_lost && !sim.burned(0) && !sim.burned(1) {
            prop_assert_eq!(sim.parties[0].timer(), sim.parties[1].timer());
        }
    }
}
