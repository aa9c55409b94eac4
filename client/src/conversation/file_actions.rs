//! File messages in the conversation: composing one, and what saving one means.
//!
//! A file message follows the text rules: it carries its own timer, can be view-once, can be
//! unsent, and is erased by a burn. Two things differ. The sender's record keeps the blob's
//! write capability (so that deleting the message also retracts the blob), and a received
//! view-once file is consumed by saving it rather than by displaying it: displaying shows
//! only its name and size, and [`Conversation::file_saved`] deletes it.
//!
//! What it does not do: upload, download or decrypt (the `Client` does), or touch the staged
//! copy of a file (the driver removes it when the record is deleted).

use rand_core::{CryptoRng, RngCore};

use super::effect::Effect;
use super::error::ConversationError;
use super::file::FileRef;
use super::machine::Conversation;
use super::message::{Direction, MessageRecord};
use super::meta::Status;
use super::payload::{MessageId, Payload};

impl Conversation {
    /// Writes a file message for a file already uploaded. `file` carries the write capability,
    /// which stays in our record and is left out of the payload.
    ///
    /// Returns its id and the effects: save the record, then send the payload.
    pub fn compose_file_with_timer<R: RngCore + CryptoRng>(
        &mut self,
        file: FileRef,
        timer: Option<u64>,
        view_once: bool,
        now: u64,
        rng: &mut R,
    ) -> Result<(MessageId, Vec<Effect>), ConversationError> {
        self.check_compose(timer)?;
        let mut sent = file.clone();
        sent.write_cap = None;
        Ok(self.compose_with(rng, |id| {
            let record = MessageRecord {
                file: Some(Box::new(file)),
                ..MessageRecord::sent(id, now, timer, view_once)
            };
            let payload = Payload::File {
                id,
                sent_at: now,
                timer,
                view_once,
                file: Box::new(sent),
            };
            (record, payload)
        }))
    }

    /// The received file message `id`, if it is there and has not expired.
    pub fn received_file(&self, id: MessageId, now: u64) -> Result<&FileRef, ConversationError> {
        if self.meta.status == Status::Burned {
            return Err(ConversationError::Burned);
        }
        match self.messages.get(&id) {
            Some(r) if r.is_expired(now, self.meta.relay_ttl) => {
                Err(ConversationError::UnknownMessage)
            }
            Some(r) if r.direction == Direction::Sent => Err(ConversationError::OwnFile),
            Some(r) => r.file.as_deref().ok_or(ConversationError::NotAFile),
            None => Err(ConversationError::UnknownMessage),
        }
    }

    /// The user saved received file `id`: a view-once file is deleted now; otherwise its read
    /// timer starts, as on a first display.
    pub fn file_saved(
        &mut self,
        id: MessageId,
        now: u64,
    ) -> Result<Vec<Effect>, ConversationError> {
        self.received_file(id, now)?;
        let Some(record) = self.messages.get_mut(&id) else {
            return Err(ConversationError::UnknownMessage);
        };
        if record.view_once {
            self.messages.remove(&id);
            return Ok(vec![Effect::DeleteMessage(id)]);
        }
        if record.displayed_at.is_none() {
            record.displayed_at = Some(now);
            return Ok(vec![Effect::SaveMessage(id)]);
        }
        Ok(Vec::new())
    }
}
