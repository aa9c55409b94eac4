//! View-once, unsend, burn, block, deduplication, restart and retention, one rule at a time.

use hush_protocol::ids::EnvelopeId;

use super::limits::MAX_TEXT_LEN;
use super::test_support::*;
use super::*;

#[test]
fn view_once_is_deleted_after_its_first_display_and_the_sender_keeps_a_stub() {
    let (mut a, mut b) = pair();
    let (id, fx) = send_text(&mut a, "secret", true, T0);
    assert_eq!(a.message(&id).unwrap().body, None);
    assert_eq!(payloads(&fx)[0].message_id(), Some(id));
    let got = deliver(&fx, &mut b, T0 + 1);
    assert!(got.iter().any(|e| matches!(
        e,
        Effect::Notify(Event::MessageShown {
            view_once: true,
            body: None,
            ..
        })
    )));
    let d = b.display(id, T0 + 2).unwrap();
    assert_eq!(d.body.unwrap().as_str(), "secret");
    assert_eq!(d.effects, vec![Effect::DeleteMessage(id)]);
    assert!(b.message(&id).is_none());
    assert_eq!(
        b.display(id, T0 + 3),
        Err(ConversationError::UnknownMessage)
    );
    // A re-delivery does not bring it back.
    assert!(shown(&deliver(&fx, &mut b, T0 + 4)).is_empty());
    // The sender's stub shows no body.
    assert_eq!(a.display(id, T0 + 5).unwrap().body, None);
}

#[test]
fn unsend_before_display_retracts_and_deletes_on_both_sides() {
    let (mut a, mut b) = pair();
    let (id, fx) = send_text(&mut a, "oops", false, T0);
    let envelope_id = EnvelopeId::from_bytes([9; 16]);
    assert_eq!(a.mark_sent(id, envelope_id), vec![Effect::SaveMessage(id)]);
    deliver(&fx, &mut b, T0 + 1);
    let un = a.unsend(id, T0 + 2).unwrap();
    assert_eq!(
        un,
        vec![
            Effect::Retract { envelope_id },
            Effect::SendPayload(Payload::Unsend { id }),
            Effect::DeleteMessage(id),
            Effect::Notify(Event::Unsent {
                id,
                by_contact: false
            }),
        ]
    );
    assert!(a.message(&id).is_none());
    let got = deliver(&un, &mut b, T0 + 3);
    assert!(got.contains(&Effect::DeleteMessage(id)));
    assert!(got.contains(&Effect::Notify(Event::Unsent {
        id,
        by_contact: true
    })));
    assert!(b.message(&id).is_none());
    assert_eq!(
        b.display(id, T0 + 4),
        Err(ConversationError::UnknownMessage)
    );
}

#[test]
fn unsend_after_display_deletes_for_real() {
    let (mut a, mut b) = pair();
    let (id, fx) = send_text(&mut a, "read it", false, T0);
    deliver(&fx, &mut b, T0 + 1);
    b.display(id, T0 + 2).unwrap();
    let un = a.unsend(id, T0 + 100 * TTL).unwrap();
    assert!(deliver(&un, &mut b, T0 + 100 * TTL).contains(&Effect::DeleteMessage(id)));
    assert!(b.messages().is_empty());
}

#[test]
fn an_unsend_that_arrives_before_its_message_wins() {
    let (mut a, mut b) = pair();
    let (id, fx) = send_text(&mut a, "never seen", false, T0);
    let un = a.unsend(id, T0 + 1).unwrap();
    // The envelope id was not known yet: no retraction, but one follows on mark_sent.
    assert!(!un.iter().any(|e| matches!(e, Effect::Retract { .. })));
    let envelope_id = EnvelopeId::from_bytes([3; 16]);
    assert_eq!(
        a.mark_sent(id, envelope_id),
        vec![Effect::Retract { envelope_id }]
    );
    let got = deliver(&un, &mut b, T0 + 2);
    assert!(!got.iter().any(|e| matches!(e, Effect::Notify(_))));
    assert!(shown(&deliver(&fx, &mut b, T0 + 3)).is_empty());
    assert!(shown(&deliver(&fx, &mut b, T0 + TTL)).is_empty());
    assert!(b.message(&id).is_none());
}

#[test]
fn only_own_messages_can_be_unsent() {
    let (mut a, mut b) = pair();
    let (id, fx) = send_text(&mut a, "mine", false, T0);
    deliver(&fx, &mut b, T0);
    assert_eq!(b.unsend(id, T0), Err(ConversationError::NotOwnMessage));
    assert_eq!(
        b.unsend(MessageId([0; 16]), T0),
        Err(ConversationError::UnknownMessage)
    );
    // A contact cannot delete our own copy with an Unsend of our id.
    assert!(a.receive(Payload::Unsend { id }, T0).unwrap().is_empty());
    assert!(a.message(&id).is_some());
}

#[test]
fn burn_erases_both_sides_and_later_sends_need_a_new_invitation() {
    let (mut a, mut b) = pair();
    let (_, fx) = send_text(&mut a, "hello", false, T0);
    deliver(&fx, &mut b, T0);
    let burn = a.burn().unwrap();
    assert_eq!(
        burn,
        vec![
            Effect::SendPayload(Payload::Burn),
            Effect::DeleteOwnQueue,
            Effect::EraseConversation,
            Effect::Notify(Event::Burned { by_contact: false }),
        ]
    );
    assert!(a.messages().is_empty());
    assert_eq!(a.status(), Status::Burned);
    let got = deliver(&burn, &mut b, T0 + 1);
    assert_eq!(
        got,
        vec![
            Effect::DeleteOwnQueue,
            Effect::EraseConversation,
            Effect::Notify(Event::Burned { by_contact: true }),
        ]
    );
    assert!(b.messages().is_empty() && b.meta().seen.is_empty());
    for side in [&mut a, &mut b] {
        let err = side
            .compose_text("again?", false, T0 + 2, &mut rng())
            .unwrap_err();
        assert_eq!(err, ConversationError::Burned);
        assert!(err.to_string().contains("new invitation"));
        assert_eq!(side.set_timer(None, T0), Err(ConversationError::Burned));
        assert_eq!(side.burn(), Err(ConversationError::Burned));
        assert_eq!(
            side.receive(Payload::Burn, T0),
            Err(ConversationError::Burned)
        );
    }
}

#[test]
fn block_deletes_our_queue_and_stops_the_conversation() {
    let (mut a, mut b) = pair();
    set_both_timers(&mut a, &mut b, 60, T0);
    let (id, fx) = send_text(&mut a, "before", false, T0);
    deliver(&fx, &mut b, T0);
    let blocked = b.block().unwrap();
    assert_eq!(blocked[0], Effect::DeleteOwnQueue);
    assert!(blocked.contains(&Effect::Notify(Event::Blocked)));
    assert_eq!(b.status(), Status::Blocked);
    let err = b.compose_text("x", false, T0, &mut rng()).unwrap_err();
    assert_eq!(err, ConversationError::Blocked);
    let (_, fx) = send_text(&mut a, "after", false, T0 + 1);
    assert!(deliver(&fx, &mut b, T0 + 1).is_empty());
    assert!(b.block().unwrap().is_empty());
    // Our own messages can still be unsent after a block; new ones cannot be sent.
    let (mine, _) = send_text(&mut a, "unsend me", false, T0);
    a.block().unwrap();
    let un = a.unsend(mine, T0).unwrap();
    assert!(payloads(&un).contains(&Payload::Unsend { id: mine }));
    assert_eq!(a.set_timer(None, T0), Err(ConversationError::Blocked));
    // The history left still expires.
    b.display(id, T0 + 2).unwrap();
    assert!(b.tick(T0 + 62).contains(&Effect::DeleteMessage(id)));
    // Burning a blocked conversation still tells the contact, without a second queue deletion.
    let burn = b.burn().unwrap();
    assert_eq!(burn[0], Effect::SendPayload(Payload::Burn));
    assert!(!burn.contains(&Effect::DeleteOwnQueue));
}

#[test]
fn a_duplicate_delivery_is_shown_once() {
    let (mut a, mut b) = pair();
    let (id, fx) = send_text(&mut a, "once", false, T0);
    assert_eq!(shown(&deliver(&fx, &mut b, T0)), vec![id]);
    b.display(id, T0 + 1).unwrap();
    assert!(shown(&deliver(&fx, &mut b, T0 + 2)).is_empty());
    assert_eq!(b.message(&id).unwrap().displayed_at, Some(T0 + 1));
}

#[test]
fn state_survives_a_restart_through_its_encodings() {
    let (mut a, mut b) = pair();
    set_both_timers(&mut a, &mut b, 600, T0);
    let (id, fx) = send_text(&mut a, "durable", false, T0);
    deliver(&fx, &mut b, T0 + 1);
    b.display(id, T0 + 2).unwrap();
    let meta = ConversationMeta::decode(&b.meta().encode()).unwrap();
    let records: Vec<MessageRecord> = b
        .messages()
        .iter()
        .map(|r| MessageRecord::decode(&r.encode()).unwrap())
        .collect();
    let mut restored = Conversation::restore(meta, records);
    assert_eq!(restored.timer(), Some(600));
    assert!(shown(&deliver(&fx, &mut restored, T0 + 3)).is_empty());
    assert_eq!(restored.next_deadline(), Some(T0 + 602));
    assert!(restored.tick(T0 + 602).contains(&Effect::DeleteMessage(id)));
}

#[test]
fn seen_ids_and_tombstones_are_forgotten_after_the_relay_could_redeliver() {
    let (mut a, mut b) = pair();
    let (_, fx) = send_text(&mut a, "x", false, T0);
    deliver(&fx, &mut b, T0);
    b.receive(
        Payload::Unsend {
            id: MessageId([5; 16]),
        },
        T0,
    )
    .unwrap();
    assert_eq!(b.meta().seen.len(), 2);
    let horizon = T0 + TTL + limits::MAX_CLOCK_SKEW_SECS;
    assert!(!b.tick(horizon - 1).contains(&Effect::SaveMeta));
    assert!(b.tick(horizon).contains(&Effect::SaveMeta));
    assert!(b.meta().seen.is_empty());
}

#[test]
fn oversize_bodies_are_refused_and_refusals_change_nothing() {
    let (mut a, mut b) = pair();
    let max = "x".repeat(MAX_TEXT_LEN);
    assert!(a.compose_text(max.clone(), false, T0, &mut rng()).is_ok());
    let err = a.compose_text(max.clone() + "y", false, T0, &mut rng());
    assert_eq!(
        err.unwrap_err(),
        ConversationError::BodyTooLong {
            len: MAX_TEXT_LEN + 1,
            max: MAX_TEXT_LEN
        }
    );
    assert_eq!(a.messages().len(), 1);
    let bad = Payload::Text {
        id: MessageId([2; 16]),
        sent_at: T0,
        timer: None,
        view_once: false,
        body: MessageBody::new(max + "y"),
    };
    assert_eq!(b.receive(bad, T0), Err(ConversationError::InvalidPayload));
    assert!(b.messages().is_empty() && b.meta().seen.is_empty());
    assert_eq!(
        Conversation::new(0, &mut rand::rngs::OsRng).unwrap_err(),
        ConversationError::InvalidRelayTtl
    );
}

#[test]
fn the_seen_set_is_capped() {
    let mut meta = ConversationMeta::new(TTL, &mut rand::rngs::OsRng);
    for i in 0..=limits::MAX_SEEN_IDS as u64 {
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&i.to_be_bytes());
        meta.remember(MessageId(id), T0 + i, false);
    }
    // The entries that would have been forgotten first went, a batch at once.
    let batch = limits::MAX_SEEN_IDS / 100;
    assert_eq!(meta.seen.len(), limits::MAX_SEEN_IDS - batch);
    let earliest_kept = meta.seen.values().map(|e| e.until).min();
    assert_eq!(earliest_kept, Some(T0 + batch as u64 + 1));
    let mut newest = [0u8; 16];
    newest[..8].copy_from_slice(&(limits::MAX_SEEN_IDS as u64).to_be_bytes());
    assert!(meta.seen_entry(&MessageId(newest)).is_some());
}

#[test]
fn a_full_conversation_deletes_its_oldest_message_first() {
    let records = (0..limits::MAX_STORED_MESSAGES as u64).map(|i| {
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&(i + 1).to_be_bytes());
        MessageRecord {
            id: MessageId(id),
            direction: Direction::Received,
            sent_at: T0 + i,
            received_at: T0 + i,
            timer: None,
            view_once: false,
            envelope_id: None,
            displayed_at: None,
            body: Some(MessageBody::new("old")),
            file: None,
            group: None,
        }
    });
    let mut b = Conversation::restore(ConversationMeta::new(TTL, &mut rand::rngs::OsRng), records);
    let oldest = b.messages()[0].id;
    let (mut a, _) = pair();
    let (id, fx) = send_text(&mut a, "new", false, T0 + 200_000);
    let got = deliver(&fx, &mut b, T0 + 200_000);
    assert_eq!(got[0], Effect::DeleteMessage(oldest));
    assert_eq!(shown(&got), vec![id]);
    assert_eq!(b.messages().len(), limits::MAX_STORED_MESSAGES);
    assert!(b.message(&oldest).is_none());
}
