//! What the client's events (other than new messages) mean, in words, for `read` and the chat.
//!
//! What it does not do: print, or handle new messages (they are revealed and shown in full).

use hush_client::ClientEvent;

use crate::chat::view::timer_label;
use crate::output::Record;
use crate::present::timer_secs;

/// The contact an event is about and what happened, in words; `None` for new messages and
/// relay trouble, which are shown otherwise.
pub(crate) fn describe(event: &ClientEvent) -> Option<(String, String)> {
    let (contact, text) = match event {
        ClientEvent::ContactJoined { contact } => (
            contact.clone(),
            format!("{contact} accepted your invitation; you can now send messages. Compare safety numbers with: hush verify {contact}"),
        ),
        ClientEvent::Expired { contact, id } => {
            (contact.clone(), format!("message {} expired and is gone", id.to_hex()))
        }
        ClientEvent::TimerChanged {
            contact,
            timer,
            by_contact,
        } => {
            let who = if *by_contact { contact.as_str() } else { "you" };
            let label = timer_label(timer_secs(*timer));
            let text = match timer {
                Some(_) => format!("{who} set the disappearing timer to {label}"),
                None => format!("{who} turned the disappearing timer off"),
            };
            (contact.clone(), text)
        }
        ClientEvent::Unsent {
            contact,
            id,
            by_contact,
        } => {
            let who = if *by_contact { contact.as_str() } else { "you" };
            (contact.clone(), format!("{who} unsent message {}; it is gone", id.to_hex()))
        }
        ClientEvent::Burned {
            contact,
            by_contact,
        } => {
            let who = if *by_contact { contact.as_str() } else { "you" };
            (
                contact.clone(),
                format!("{who} burned the conversation: everything is erased on both sides; a new invitation is needed to talk again"),
            )
        }
        ClientEvent::Blocked { contact } => (
            contact.clone(),
            format!("you blocked {contact}; their messages can no longer reach you"),
        ),
        ClientEvent::Tampered { contact } => (
            contact.clone().unwrap_or_else(|| "(invitation)".into()),
            "a message failed authentication and was dropped; if this repeats, compare safety numbers".into(),
        ),
        ClientEvent::OutOfStep { contact } => (
            contact.clone(),
            format!("a message from {contact} came after more lost messages than hush can skip; {contact}'s messages can no longer be read here. Burn the conversation (hush burn {contact}) and send a new invitation"),
        ),
        ClientEvent::GroupChanged { group, by, what } => {
            (group.clone(), format!("{by} {what}"))
        }
        ClientEvent::GroupRemoved { group } => (
            group.clone(),
            format!("you were removed from {group}: nothing new reaches you. `hush group leave {group}` erases your copy"),
        ),
        ClientEvent::GroupBurned { group, .. } => (
            group.clone(),
            format!("the owner burned {group}: its messages and members are erased here"),
        ),
        ClientEvent::GroupRejected { group, from, reason } => (
            group.clone().unwrap_or_else(|| from.clone()),
            format!("refused a group change or message from {from}: {reason}"),
        ),
        _ => return None,
    };
    Some((contact, text))
}

/// A `notice` record for an event, if it has one.
pub(crate) fn event_notice(event: &ClientEvent) -> Option<Record> {
    describe(event).map(|(contact, text)| Record::Notice { contact, text })
}
