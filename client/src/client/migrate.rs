//! Bringing a home written in an older store format up to date when it is opened.
//!
//! Store format 1 keyed each contact's records by tags of its name under the store-lifetime
//! index key, so anyone holding the key file could confirm a guessed name, even after a burn
//! (sled's log keeps old keys). Format 2 gives each contact a random id and a random key, kept
//! in its sealed contact record (see `store::ContactKey`). Migrating a contact copies its
//! records under the new keys and renames its staged downloads, then shreds the old records in
//! one batch; a format 1 burn placeholder is simply shredded. The format setting is written
//! once every contact is done.
//!
//! Crash safety: every step is a durable store operation, and the old contact record goes
//! last (with the rest of the old records). A run cut short leaves the old records whole, so
//! running it again (the next open does) finds the new contact record it had written by its
//! name, copies everything again over the partial copies (replacing them shreds their keys),
//! and finishes.
//!
//! What it does not do: touch the network, or downgrade a home (a newer format is refused).

use super::corrupt;
use super::error::ClientError;
use super::records::{ContactRecord, LegacyContact, Link};
use crate::store::{ContactId, ContactKey, LocalStore, Namespace, Setting, StoreKey};
use crate::transfer::staging;

/// The store format this client writes.
pub(crate) const STORE_FORMAT: u8 = 2;

/// Migrates the store to [`STORE_FORMAT`] if it is older; refuses a newer one.
pub(crate) fn migrate(store: &LocalStore) -> Result<(), ClientError> {
    let format = match store.get(&StoreKey::Setting(Setting::StoreFormat))? {
        None => 1,
        Some(v) => match v.as_slice() {
            [f] => *f,
            _ => return Err(corrupt("the store format is unreadable")),
        },
    };
    if format > STORE_FORMAT {
        return Err(ClientError::NewerStore);
    }
    if format == STORE_FORMAT {
        return Ok(());
    }
    for (key, value) in store.list(Namespace::LegacyContact, None)? {
        let StoreKey::LegacyContact(name) = key else {
            continue;
        };
        match LegacyContact::decode(&value) {
            Ok(LegacyContact::Live(link)) => migrate_contact(store, &name, &link)?,
            // A burn's placeholder: nothing of it is kept.
            Ok(LegacyContact::Burned) => {
                store.erase_legacy_contact(&name)?;
            }
            Err(_) => return Err(corrupt("a contact is unreadable")),
        }
    }
    store.put(&StoreKey::Setting(Setting::StoreFormat), &[STORE_FORMAT])?;
    Ok(())
}

/// Moves the format 1 records of contact `name` under a random id and key.
fn migrate_contact(store: &LocalStore, name: &str, link: &Link) -> Result<(), ClientError> {
    let key = match started(store, name)? {
        Some(key) => key,
        None => {
            let (id, key) = (ContactId::random(), ContactKey::random());
            store.put(
                &StoreKey::Contact(id),
                &ContactRecord::encode_parts(name, &key, link),
            )?;
            key
        }
    };
    if let Some(session) = store.get(&StoreKey::LegacySession(name.to_owned()))? {
        store.put(&key.session(), &session)?;
    }
    if let Some(meta) = store.get(&StoreKey::LegacyMeta(name.to_owned()))? {
        store.put(&key.meta(), &meta)?;
    }
    for (old, value) in store.list_legacy(Namespace::LegacyMessage, name)? {
        let StoreKey::LegacyMessage(_, id) = old else {
            continue;
        };
        store.put(&key.message(id), &value)?;
        staging::rename_legacy(store.home(), name, &key, id)?;
    }
    store.erase_legacy_contact(name)?;
    Ok(())
}

/// The key of the format 2 record an interrupted migration already wrote for `name`.
fn started(store: &LocalStore, name: &str) -> Result<Option<ContactKey>, ClientError> {
    for (_, value) in store.list(Namespace::Contact, None)? {
        let record =
            ContactRecord::decode(&value).map_err(|_| corrupt("a contact is unreadable"))?;
        if record.name == name {
            return Ok(Some(record.key));
        }
    }
    Ok(None)
}
