//! The timer rules, one at a time, on virtual time.

use super::limits::MAX_TIMER_SECS;
use super::test_support::*;
use super::*;

#[test]
fn sender_copy_expires_at_send_plus_timer() {
    let (mut a, mut b) = pair();
    set_both_timers(&mut a, &mut b, 60, T0);
    let (id, _) = send_text(&mut a, "hi", false, T0 + 10);
    assert_eq!(a.next_deadline(), Some(T0 + 70));
    assert!(a.tick(T0 + 69).is_empty());
    assert!(a.message(&id).is_some());
    let fx = a.tick(T0 + 70);
    assert!(fx.contains(&Effect::DeleteMessage(id)));
    assert!(fx.contains(&Effect::Notify(Event::MessageExpired(id))));
    assert!(a.message(&id).is_none());
    assert_eq!(a.next_deadline(), None);
}

#[test]
fn receiver_copy_expires_at_first_display_plus_timer() {
    let (mut a, mut b) = pair();
    set_both_timers(&mut a, &mut b, 60, T0);
    let (id, fx) = send_text(&mut a, "hi", false, T0);
    assert_eq!(shown(&deliver(&fx, &mut b, T0 + 5)), vec![id]);
    // Unread, only the hard expiry applies.
    assert_eq!(b.next_deadline(), Some(T0 + TTL));
    let d = b.display(id, T0 + 1000).unwrap();
    assert_eq!(d.body.unwrap().as_str(), "hi");
    assert_eq!(d.effects, vec![Effect::SaveMessage(id)]);
    assert_eq!(b.next_deadline(), Some(T0 + 1060));
    // A second display does not restart the timer.
    assert!(b.display(id, T0 + 1030).unwrap().effects.is_empty());
    assert_eq!(b.next_deadline(), Some(T0 + 1060));
    assert!(b.tick(T0 + 1059).is_empty());
    assert!(b.tick(T0 + 1060).contains(&Effect::DeleteMessage(id)));
    assert_eq!(
        b.display(id, T0 + 1061),
        Err(ConversationError::UnknownMessage)
    );
}

#[test]
fn unread_message_hard_expires_at_send_plus_max_of_timer_and_ttl() {
    let (mut a, mut b) = pair();
    set_both_timers(&mut a, &mut b, 60, T0);
    let (short, fx) = send_text(&mut a, "short", false, T0);
    deliver(&fx, &mut b, T0 + 1);
    set_both_timers(&mut a, &mut b, MAX_TIMER_SECS, T0 + 2);
    let (long, fx) = send_text(&mut a, "long", false, T0 + 2);
    deliver(&fx, &mut b, T0 + 3);
    assert!(b.tick(T0 + TTL - 1).is_empty());
    let fx = b.tick(T0 + TTL);
    assert!(fx.contains(&Effect::DeleteMessage(short)));
    assert!(b.message(&long).is_some());
    assert_eq!(b.next_deadline(), Some(T0 + 2 + MAX_TIMER_SECS));
    // Displaying after the hard expiry is impossible, even before a tick.
    assert_eq!(
        b.display(long, T0 + 2 + MAX_TIMER_SECS),
        Err(ConversationError::UnknownMessage)
    );
}

#[test]
fn a_peer_clock_ahead_cannot_stretch_a_message() {
    let (_, mut b) = pair();
    let id = MessageId([1; 16]);
    let text = Payload::Text {
        id,
        sent_at: T0 + 1_000_000,
        timer: Some(60),
        view_once: false,
        body: MessageBody::new("from the future"),
    };
    assert_eq!(shown(&b.receive(text, T0).unwrap()), vec![id]);
    assert_eq!(b.next_deadline(), Some(T0 + TTL));
}

#[test]
fn a_message_already_expired_on_arrival_is_never_shown() {
    let (mut a, mut b) = pair();
    set_both_timers(&mut a, &mut b, 60, T0);
    let (id, fx) = send_text(&mut a, "late", false, T0);
    let out = deliver(&fx, &mut b, T0 + TTL);
    assert!(shown(&out).is_empty());
    assert!(b.message(&id).is_none());
    // A message without a timer never expires on its own.
    let (mut a, mut b) = pair();
    let (id, fx) = send_text(&mut a, "kept", false, T0);
    assert_eq!(shown(&deliver(&fx, &mut b, T0 + 10 * TTL)), vec![id]);
    assert_eq!(b.next_deadline(), None);
}

#[test]
fn each_message_keeps_its_own_timer() {
    let (mut a, mut b) = pair();
    set_both_timers(&mut a, &mut b, 60, T0);
    let (m1, fx1) = send_text(&mut a, "one", false, T0);
    set_both_timers(&mut a, &mut b, 3600, T0 + 1);
    let (m2, fx2) = send_text(&mut a, "two", false, T0 + 1);
    deliver(&fx2, &mut b, T0 + 2);
    deliver(&fx1, &mut b, T0 + 2);
    assert_eq!(b.message(&m1).unwrap().timer, Some(60));
    assert_eq!(b.message(&m2).unwrap().timer, Some(3600));
    assert_eq!(a.message(&m1).unwrap().timer, Some(60));
}

#[test]
fn a_timer_change_is_shown_on_both_sides() {
    let (mut a, mut b) = pair();
    let fx = a.set_timer(Some(300), T0).unwrap();
    assert!(fx.contains(&Effect::Notify(Event::TimerChanged {
        timer: Some(300),
        by_contact: false
    })));
    let got = deliver(&fx, &mut b, T0);
    assert!(got.contains(&Effect::Notify(Event::TimerChanged {
        timer: Some(300),
        by_contact: true
    })));
    assert!(got.contains(&Effect::SaveMeta));
    // A re-delivered change is not shown twice.
    assert!(deliver(&fx, &mut b, T0 + 1).is_empty());
    // Either side may change it; b turns it off.
    let fx = b.set_timer(None, T0 + 5).unwrap();
    deliver(&fx, &mut a, T0 + 6);
    assert_eq!((a.timer(), b.timer()), (None, None));
}

#[test]
fn concurrent_and_reordered_timer_changes_converge() {
    let (mut a, mut b) = pair();
    let fa = a.set_timer(Some(60), T0).unwrap();
    let fb = b.set_timer(Some(600), T0).unwrap();
    deliver(&fa, &mut b, T0 + 1);
    deliver(&fb, &mut a, T0 + 1);
    assert_eq!(a.timer(), b.timer());
    // An older change that arrives late is ignored.
    let old = a.set_timer(Some(30), T0 + 10).unwrap();
    let new = a.set_timer(Some(90), T0 + 20).unwrap();
    deliver(&new, &mut b, T0 + 21);
    deliver(&old, &mut b, T0 + 22);
    assert_eq!(b.timer(), Some(90));
}

#[test]
fn timers_out_of_range_are_refused_without_change() {
    let (mut a, mut b) = pair();
    for bad in [Some(0), Some(MAX_TIMER_SECS + 1)] {
        assert_eq!(
            a.set_timer(bad, T0),
            Err(ConversationError::TimerOutOfRange)
        );
        let p = Payload::SetTimer {
            timer: bad,
            set_at: T0,
        };
        assert_eq!(b.receive(p, T0), Err(ConversationError::InvalidPayload));
    }
    assert_eq!((a.timer(), a.meta().timer_set_at), (None, 0));
    let mut fresh = ConversationMeta::new(TTL, &mut rand::rngs::OsRng);
    fresh.seen_key = b.meta().seen_key.clone();
    assert_eq!(b.meta(), &fresh);
}

#[test]
fn a_per_message_timer_applies_to_that_message_only() {
    let (mut a, mut b) = pair();
    let (id, fx) = a
        .compose_text_with_timer("brief", Some(30), false, T0, &mut rng())
        .unwrap();
    // The conversation keeps no timer; only this message carries one, on both sides.
    assert_eq!(a.timer(), None);
    assert_eq!(a.next_deadline(), Some(T0 + 30));
    assert_eq!(shown(&deliver(&fx, &mut b, T0 + 1)), vec![id]);
    assert_eq!(b.timer(), None);
    b.display(id, T0 + 2).unwrap();
    assert_eq!(b.next_deadline(), Some(T0 + 32));
    assert!(b.tick(T0 + 32).contains(&Effect::DeleteMessage(id)));
    // A later message without an override has no timer at all.
    let (later, _) = send_text(&mut a, "stays", false, T0 + 3);
    assert_eq!(a.message(&later).map(|m| m.timer), Some(None));
    // Out-of-range timers are refused and change nothing.
    assert_eq!(
        a.compose_text_with_timer("x", Some(0), false, T0, &mut rng()),
        Err(ConversationError::TimerOutOfRange)
    );
}
