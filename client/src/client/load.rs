//! Loading the client's state from the local store when a home is opened: contacts with their
//! sessions and conversations, and pending invitations. A burn whose erase was cut short is
//! finished first.
//!
//! What it does not do: expire anything (the open-time pass in `expire` does, and counts it),
//! write anything but the burns' erases and rewritten old metadata, or touch the network (owed
//! burns are delivered by `tick`).

use super::burn::settle_owed;
use super::error::ClientError;
use super::group_record::GroupState;
use super::records::{ContactRecord, PendingRecord};
use super::{corrupt, Contact, State, RELAY_TTL_SECS};
use crate::conversation::{Conversation, ConversationMeta, MessageRecord, META_VERSION};
use crate::crypto::Session;
use crate::store::{LocalStore, Namespace, StoreKey};

/// Loads contacts, sessions, conversations and pending invitations, after finishing the erase
/// of any burn cut short (its tombstone and owed record are dated `now`).
pub(super) fn load_state(store: &LocalStore, now: u64) -> Result<State, ClientError> {
    settle_owed(store, now)?;
    let mut state = State::default();
    for (key, value) in store.list(Namespace::Contact, None)? {
        let StoreKey::Contact(id) = key else {
            continue;
        };
        let record =
            ContactRecord::decode(&value).map_err(|_| corrupt("a contact is unreadable"))?;
        let session = store
            .get(&record.key.session())?
            .ok_or_else(|| corrupt("a ratchet session is missing"))?;
        let session =
            Session::from_bytes(&session).map_err(|_| corrupt("a session is unreadable"))?;
        let meta = match store.get(&record.key.meta())? {
            Some(m) => {
                let meta = ConversationMeta::decode(&m)
                    .map_err(|_| corrupt("a conversation is unreadable"))?;
                // An older record holds raw message ids: rewrite it with tags now.
                if m.first() != Some(&META_VERSION) {
                    store.put(&record.key.meta(), &meta.encode())?;
                }
                meta
            }
            None => ConversationMeta::new(RELAY_TTL_SECS, &mut rand::rngs::OsRng),
        };
        let mut records = Vec::new();
        for (_, value) in store.list(Namespace::Message, Some(record.key.scope()))? {
            records.push(
                MessageRecord::decode(&value).map_err(|_| corrupt("a message is unreadable"))?,
            );
        }
        let conv = Conversation::restore(meta, records);
        let contact = Contact {
            id,
            key: record.key,
            link: record.link,
            session,
            conv,
        };
        state.contacts.insert(record.name, contact);
    }
    for (key, value) in store.list(Namespace::Invitation, None)? {
        let pending =
            PendingRecord::decode(&value).map_err(|_| corrupt("an invitation is unreadable"))?;
        let rid = pending.own.recipient_id;
        if state.name_of(rid).is_some() {
            // Completed, but its deletion was lost in a crash (older versions wrote the two
            // apart): the secrets are used, so finish the deletion.
            store.delete(&key)?;
            continue;
        }
        state.pending.insert(rid, pending);
    }
    for (_, value) in store.list(Namespace::Group, None)? {
        let (name, group) =
            GroupState::decode(&value).map_err(|_| corrupt("a group is unreadable"))?;
        state.groups.insert(name, group);
    }
    Ok(state)
}
