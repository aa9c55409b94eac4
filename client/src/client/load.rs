//! Loading the client's state from the local store when a home is opened: contacts with their
//! sessions and conversations, and pending invitations. What lapsed while the client was not
//! running expires here.
//!
//! What it does not do: write anything but the expiries, or touch the network.

use super::error::ClientError;
use super::records::{ContactRecord, PendingRecord};
use super::{corrupt, driver, Contact, State, RELAY_TTL_SECS};
use crate::conversation::{Conversation, ConversationMeta, MessageRecord, META_VERSION};
use crate::crypto::Session;
use crate::store::{LocalStore, Namespace, StoreKey};

/// Loads contacts, sessions, conversations and pending invitations, and expires what lapsed
/// while the client was not running.
pub(super) fn load_state(store: &LocalStore, now: u64) -> Result<State, ClientError> {
    let mut state = State::default();
    for (key, value) in store.list(Namespace::Contact, None)? {
        let StoreKey::Contact(name) = key else {
            continue;
        };
        let record =
            ContactRecord::decode(&value).map_err(|_| corrupt("a contact is unreadable"))?;
        let mut contact = Contact {
            record,
            session: None,
            conv: None,
        };
        if matches!(contact.record, ContactRecord::Live(_)) {
            let session = store
                .get(&StoreKey::Session(name.clone()))?
                .ok_or_else(|| corrupt("a ratchet session is missing"))?;
            contact.session = Some(
                Session::from_bytes(&session).map_err(|_| corrupt("a session is unreadable"))?,
            );
            let meta_key = StoreKey::ConversationMeta(name.clone());
            let meta = match store.get(&meta_key)? {
                Some(m) => {
                    let meta = ConversationMeta::decode(&m)
                        .map_err(|_| corrupt("a conversation is unreadable"))?;
                    // An older record holds raw message ids: rewrite it with tags now.
                    if m.first() != Some(&META_VERSION) {
                        store.put(&meta_key, &meta.encode())?;
                    }
                    meta
                }
                None => ConversationMeta::new(RELAY_TTL_SECS, &mut rand::rngs::OsRng),
            };
            let mut records = Vec::new();
            for (_, value) in store.list(Namespace::Message, Some(&name))? {
                records.push(
                    MessageRecord::decode(&value)
                        .map_err(|_| corrupt("a message is unreadable"))?,
                );
            }
            let mut conv = Conversation::restore(meta, records);
            let effects = conv.tick(now);
            driver::apply_local(store, &name, &conv, effects)?;
            contact.conv = Some(conv);
        }
        state.contacts.insert(name, contact);
    }
    for (_, value) in store.list(Namespace::Invitation, None)? {
        let pending =
            PendingRecord::decode(&value).map_err(|_| corrupt("an invitation is unreadable"))?;
        state.pending.insert(pending.own.recipient_id, pending);
    }
    Ok(state)
}
