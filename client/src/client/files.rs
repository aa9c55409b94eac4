//! Files between contacts: sending a file as a file message, and saving a received one. The
//! bytes move in [`crate::transfer`]; this is where they meet the conversation.
//!
//! What it does not do: encrypt, upload or download (the transfers do), or hold the state lock
//! while they run.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rand::rngs::OsRng;

use super::actions::timer_for;
use super::view::MessageView;
use super::{driver, Client, ClientError, Inner};
use crate::conversation::{ConversationError, FileRef, MessageId, Status};
use crate::store::ContactKey;
use crate::transfer::ProgressFn;

impl Client {
    /// Sends the file at `path` to `name` and returns the file message as
    /// [`Client::history`] shows it. The file is encrypted under a fresh key as it is read,
    /// uploaded to our relay, and announced to the contact by a file message that carries the
    /// key. `timer_override` and `view_once` are as for [`Client::send_text`] (a view-once file
    /// is deleted once the contact saves it).
    ///
    /// If the upload is cut off it fails with [`ClientError::TransferInterrupted`]; calling
    /// again with the same contact and path resumes it. `progress` is called as chunks land.
    pub async fn send_file(
        &self,
        name: &str,
        path: &Path,
        timer_override: Option<Duration>,
        view_once: bool,
        progress: ProgressFn<'_>,
    ) -> Result<MessageView, ClientError> {
        let inner = &self.inner;
        let timer = {
            let mut st = inner.state.lock().await;
            let conv = &st.contact(name)?.conv;
            match conv.status() {
                Status::Active => {}
                Status::Blocked => return Err(ConversationError::Blocked.into()),
                Status::Burned => return Err(ClientError::Burned),
            }
            timer_for(conv, timer_override)
        };
        let upload = inner.transfers.upload(name, path, progress).await?;
        let file = upload.file.clone();
        let view = inner
            .send_message(name, |conv, now| {
                conv.compose_file_with_timer(file, timer, view_once, now, &mut OsRng)
            })
            .await?;
        // The message is out: the upload is done.
        inner.transfers.finish_upload(&upload)?;
        Ok(view)
    }

    /// Saves received file message `id` to `to` (a directory, where the file gets its
    /// sanitised name, or a file path that must not exist yet) and returns the path written.
    ///
    /// Downloads the ciphertext from the sender's relay (resuming an interrupted download),
    /// checks every chunk and the digest, and writes the file only if all of it is intact
    /// ([`ClientError::FileTampered`] otherwise). A blob that is gone is
    /// [`ClientError::FileExpired`]; a download cut off is
    /// [`ClientError::TransferInterrupted`] (call again to resume). The encrypted copy stays in
    /// the home until the message is deleted, so saving again needs no network; a view-once file
    /// is deleted once saved.
    pub async fn save_file(
        &self,
        id: MessageId,
        to: &Path,
        progress: ProgressFn<'_>,
    ) -> Result<PathBuf, ClientError> {
        let inner = &self.inner;
        let (contact, key, file, in_group) = inner.received_file(id).await?;
        let dest = inner
            .transfers
            .download(&contact, &key, id, &file, to, progress)
            .await?;
        // A group's file is one blob for every member: the author deletes it.
        if !in_group {
            inner.transfers.done_with_blob(&file).await?;
        }
        let mut st = inner.state.lock().await;
        if let Some(c) = st.contacts.get_mut(&contact) {
            if let Ok(effects) = c.conv.file_saved(id, inner.now()) {
                driver::apply_local(&inner.store, &c.key, &contact, &c.conv, effects)?;
            }
        }
        inner.yield_inbox.notify_one();
        Ok(dest)
    }
}

impl Inner {
    /// The contact (its name and store key) and the file of received file message `id`, and
    /// whether it was sent in a group.
    async fn received_file(
        &self,
        id: MessageId,
    ) -> Result<(String, ContactKey, FileRef, bool), ClientError> {
        let now = self.now();
        let st = self.state.lock().await;
        for (name, c) in &st.contacts {
            if let Some(record) = c.conv.message(&id) {
                let in_group = record.group.is_some();
                let file = c.conv.received_file(id, now)?;
                return Ok((name.clone(), c.key.clone(), file.clone(), in_group));
            }
        }
        Err(ConversationError::UnknownMessage.into())
    }
}
