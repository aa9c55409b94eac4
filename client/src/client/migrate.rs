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

#[cfg(test)]
mod tests {
    use ed25519_dalek::SigningKey;
    use hush_protocol::{RecipientId, RelayAddress, SendCapability, SenderId};
    use rand::rngs::OsRng;

    use super::*;
    use crate::client::records::{OwnQueue, PeerQueue};
    use crate::conversation::MessageId;
    use crate::crypto::Identity;
    use crate::store::KeySource;

    fn link() -> Link {
        let relay: RelayAddress = format!("hush://127.0.0.1:4433#{}", "ab".repeat(32))
            .parse()
            .unwrap();
        Link {
            verified: false,
            introduced: false,
            peer: Identity::generate(&mut OsRng).public(),
            own: OwnQueue {
                relay: relay.clone(),
                recipient_id: RecipientId([1; 16]),
                sender_id: SenderId([2; 16]),
                key: SigningKey::from_bytes(&[3; 32]),
            },
            to_peer: PeerQueue {
                relay,
                sender_id: SenderId([4; 16]),
                send_cap: SendCapability::from_bytes([5; 32]),
            },
        }
    }

    /// A store in format 1: `bob` with a session, metadata and three messages (one with a
    /// staged download), and the placeholder of burned `carol`.
    fn legacy_home() -> (tempfile::TempDir, LocalStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::create(&dir.path().join("home"), KeySource::KeyFile).unwrap();
        let bob = || "bob".to_owned();
        let live = LegacyContact::Live(Box::new(link()));
        store
            .put(&StoreKey::LegacyContact(bob()), &live.encode())
            .unwrap();
        store
            .put(&StoreKey::LegacySession(bob()), b"ratchet")
            .unwrap();
        store.put(&StoreKey::LegacyMeta(bob()), b"meta").unwrap();
        for i in 1..=3u8 {
            let key = StoreKey::LegacyMessage(bob(), MessageId([i; 16]));
            store.put(&key, &[i; 10]).unwrap();
        }
        let burned = LegacyContact::Burned.encode();
        store
            .put(&StoreKey::LegacyContact("carol".into()), &burned)
            .unwrap();
        let staged = crate::transfer::disk::ensure_files_dir(store.home()).unwrap();
        let old = staging::legacy_staged_path(store.home(), "bob", MessageId([1; 16]));
        assert!(old.starts_with(&staged));
        std::fs::write(&old, b"ciphertext").unwrap();
        (dir, store)
    }

    /// Checks that `store` holds `bob` in format 2 and nothing of format 1.
    fn assert_migrated(store: &LocalStore) {
        let contacts = store.list(Namespace::Contact, None).unwrap();
        assert_eq!(
            contacts.len(),
            1,
            "carol's placeholder is gone, bob is there once"
        );
        let record = ContactRecord::decode(&contacts[0].1).unwrap();
        assert_eq!(record.name, "bob");
        let key = &record.key;
        assert_eq!(&store.get(&key.session()).unwrap().unwrap()[..], b"ratchet");
        assert_eq!(&store.get(&key.meta()).unwrap().unwrap()[..], b"meta");
        let messages = store.list(Namespace::Message, Some(key.scope())).unwrap();
        assert_eq!(messages.len(), 3);
        for i in 1..=3u8 {
            let got = store
                .get(&key.message(MessageId([i; 16])))
                .unwrap()
                .unwrap();
            assert_eq!(&got[..], &[i; 10]);
        }
        for ns in Namespace::ALL.into_iter().filter(|ns| ns.is_legacy()) {
            assert!(store.list(ns, None).unwrap().is_empty(), "{ns:?}");
        }
        let staged = staging::staged_path(store.home(), key, MessageId([1; 16]));
        assert_eq!(std::fs::read(staged).unwrap(), b"ciphertext");
        let old = staging::legacy_staged_path(store.home(), "bob", MessageId([1; 16]));
        assert!(!old.exists());
        let format = store.get(&StoreKey::Setting(Setting::StoreFormat)).unwrap();
        assert_eq!(format.as_deref().map(|f| &f[..]), Some(&[STORE_FORMAT][..]));
    }

    #[test]
    fn a_format_1_store_is_migrated_and_migrating_again_changes_nothing() {
        let (_dir, store) = legacy_home();
        migrate(&store).unwrap();
        assert_migrated(&store);
        migrate(&store).unwrap();
        assert_migrated(&store);
    }

    #[test]
    fn a_migration_cut_short_is_finished_by_the_next_one() {
        for cut_after in 0..4 {
            let (_dir, store) = legacy_home();
            // What a run cut short left: the new contact record, and some of the copies.
            let (id, key) = (ContactId::random(), ContactKey::random());
            store
                .put(
                    &StoreKey::Contact(id),
                    &ContactRecord::encode_parts("bob", &key, &link()),
                )
                .unwrap();
            for i in 1..=cut_after {
                let key = key.message(MessageId([i; 16]));
                store.put(&key, &[i; 10]).unwrap();
            }
            migrate(&store).unwrap();
            assert_migrated(&store);
            let contacts = store.list(Namespace::Contact, None).unwrap();
            assert_eq!(
                contacts[0].0,
                StoreKey::Contact(id),
                "the first run's key is kept"
            );
        }
    }

    #[test]
    fn a_newer_store_is_refused() {
        let (_dir, store) = legacy_home();
        store
            .put(
                &StoreKey::Setting(Setting::StoreFormat),
                &[STORE_FORMAT + 1],
            )
            .unwrap();
        assert!(matches!(migrate(&store), Err(ClientError::NewerStore)));
    }
}
