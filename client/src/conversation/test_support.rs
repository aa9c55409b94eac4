//! Fixtures shared by the conversation tests: a seeded RNG, a pair of conversations, and
//! functions that pass payloads between them.

use std::sync::atomic::{AtomicU64, Ordering};

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

use super::*;

pub(super) const TTL: u64 = 7 * 24 * 3600;
pub(super) const T0: u64 = 1_700_000_000;

/// A fresh RNG per call, each seeded differently so message ids never collide.
pub(super) fn rng() -> ChaCha20Rng {
    static SEED: AtomicU64 = AtomicU64::new(7);
    ChaCha20Rng::seed_from_u64(SEED.fetch_add(1, Ordering::Relaxed))
}

pub(super) fn pair() -> (Conversation, Conversation) {
    (
        Conversation::new(TTL, &mut rng()).unwrap(),
        Conversation::new(TTL, &mut rng()).unwrap(),
    )
}

/// The payloads among `effects`, in order.
pub(super) fn payloads(effects: &[Effect]) -> Vec<Payload> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::SendPayload(p) => Some(p.clone()),
            _ => None,
        })
        .collect()
}

/// The ids of the messages shown by `effects`.
pub(super) fn shown(effects: &[Effect]) -> Vec<MessageId> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Notify(Event::MessageShown { id, .. }) => Some(*id),
            _ => None,
        })
        .collect()
}

/// Delivers every payload in `effects` to `to` at `now`, returning all resulting effects.
pub(super) fn deliver(effects: &[Effect], to: &mut Conversation, now: u64) -> Vec<Effect> {
    payloads(effects)
        .into_iter()
        .flat_map(|p| to.receive(p, now).unwrap())
        .collect()
}

pub(super) fn send_text(
    from: &mut Conversation,
    body: &str,
    view_once: bool,
    now: u64,
) -> (MessageId, Vec<Effect>) {
    from.compose_text(body, view_once, now, &mut rng()).unwrap()
}

pub(super) fn set_both_timers(a: &mut Conversation, b: &mut Conversation, timer: u64, now: u64) {
    let fx = a.set_timer(Some(timer), now).unwrap();
    deliver(&fx, b, now);
    assert_eq!(b.timer(), Some(timer));
}
