//! Where a downloaded file's ciphertext is staged, and what goes when a file message is
//! shredded.
//!
//! A downloaded file's ciphertext is staged in `<home>/files/`, named by a keyed hash of the
//! message id under the contact's random store key (`ContactKey::staged_name`), so that once
//! the contact is erased nothing links the name to it. It is useless without the file key,
//! which lives only in the message's record; deleting the message removes the staged file and
//! shreds the key, and the blob it points to is owed a deletion on its relay.
//!
//! What it does not do: decide when a message is deleted (the conversation does; the client's
//! driver calls [`forget_file`] and its kin).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::disk::{files_dir, io_error};
use super::owed::owe_deletion;
use super::state::forget_download;
use crate::client::error::ClientError;
use crate::conversation::{MessageId, MessageRecord};
use crate::store::{ContactKey, LocalStore, Namespace};

/// Where the ciphertext of file message `id` of the contact with store key `contact` is staged.
pub(crate) fn staged_path(home: &Path, contact: &ContactKey, id: MessageId) -> PathBuf {
    files_dir(home).join(format!("{}.blob", contact.staged_name(id)))
}

/// Where store format 1 staged the ciphertext of `contact`'s file message `id`: an unkeyed
/// hash of the contact's name and the message id.
pub(crate) fn legacy_staged_path(home: &Path, contact: &str, id: MessageId) -> PathBuf {
    let mut h = Sha256::new();
    h.update(b"hush staged\0");
    h.update((contact.len() as u64).to_be_bytes());
    h.update(contact.as_bytes());
    h.update(id.as_bytes());
    let name: String = h.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    files_dir(home).join(format!("{name}.blob"))
}

/// Moves the ciphertext of `name`'s file message `id` staged under its format 1 name to its
/// name under `key` (when a home is migrated), if there is one.
pub(crate) fn rename_legacy(
    home: &Path,
    name: &str,
    key: &ContactKey,
    id: MessageId,
) -> Result<(), ClientError> {
    let old = legacy_staged_path(home, name, id);
    match fs::rename(&old, staged_path(home, key, id)) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_error(&old)(e)),
        _ => Ok(()),
    }
}

/// What must happen when a file message's record is about to be shredded: the blob it points
/// to is owed a deletion (with the write capability if we sent it, else the read capability,
/// except for a group's file, which the author deletes), and the staged ciphertext goes.
pub(crate) fn forget_file(
    store: &LocalStore,
    contact: &ContactKey,
    record: &MessageRecord,
) -> Result<(), ClientError> {
    let Some(file) = &record.file else {
        return Ok(());
    };
    match (&file.write_cap, record.group) {
        (Some(cap), _) => owe_deletion(store, &file.relay, file.blob_id, cap)?,
        // A group's file is one blob for every member: a member's read capability does not
        // delete it for the others; the author's copy does.
        (None, Some(_)) => {}
        (None, None) => owe_deletion(store, &file.relay, file.blob_id, &file.read_cap)?,
    }
    let staged = staged_path(store.home(), contact, record.id);
    forget_download(store, &staged)
}

/// [`forget_file`] for message `id` of `contact`, as stored.
pub(crate) fn forget_stored(
    store: &LocalStore,
    contact: &ContactKey,
    id: MessageId,
) -> Result<(), ClientError> {
    if let Some(bytes) = store.get(&contact.message(id))? {
        if let Ok(record) = MessageRecord::decode(&bytes) {
            forget_file(store, contact, &record)?;
        }
    }
    Ok(())
}

/// [`forget_file`] for every message of `contact`, before the conversation is erased.
pub(crate) fn forget_all(store: &LocalStore, contact: &ContactKey) -> Result<(), ClientError> {
    for (_, bytes) in store.list(Namespace::Message, Some(contact.scope()))? {
        if let Ok(record) = MessageRecord::decode(&bytes) {
            forget_file(store, contact, &record)?;
        }
    }
    Ok(())
}
