//! Sending a file: encrypt it chunk by chunk as it is read from disk and upload the pieces of
//! its padded blob (see `crate::files::padding`) to our own relay with [`IN_FLIGHT`] writes in
//! flight.
//!
//! The upload is resumable. Its state (contact, blob, capabilities, file key, the source's
//! stamp, the blob's padding and expiry) is a record in the encrypted store, written before the
//! first byte leaves (see `state`: it ends when the message is sent, the blob expires or the
//! contact goes), and so are the hashes of the pieces sent (see `seals`), before each batch
//! leaves. Running the same send again (same contact, same path, file unchanged) asks the relay
//! how much it holds and goes on from there; a connection cut or a relay restart during the
//! upload is retried the same way. The ciphertext digest of what the relay already holds is
//! recomputed from the source, so the whole file is never in memory and never stored in
//! plaintext.
//!
//! A piece is never sent twice with different bytes under one nonce: the source's stamp is
//! checked before every attempt and after the last piece, and every piece sealed again is
//! checked against the hash of the one sent. If the file changed, the upload stops with
//! [`ClientError::FileChanged`], its blob is owed a deletion and its record goes; the next run
//! starts a new blob under a new key.
//!
//! What it does not do: send the file message (the client does, with the [`Upload`] this
//! returns), download (see `download`), or keep the source: the sender's copy is the file it
//! sent from.

use std::collections::VecDeque;
use std::path::Path;

use hush_protocol::ids::{BlobCapability, BLOB_CAP_LEN};
use hush_protocol::ErrorCode;
use rand::rngs::OsRng;
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::owed::owe_deletion;
use super::seals::SealLog;
use super::source::Source;
use super::state::{forget_upload, random_key, UploadRecord};
use super::tags::UPLOAD_TAG;
use super::{Interrupt, Stalls, TransferProgress, Transfers, IN_FLIGHT};
use crate::client::error::ClientError;
use crate::conversation::{FileRef, FILE_DIGEST_LEN};
use crate::files::window::Window;
use crate::files::{ChunkCipher, FileKey, Layout, NoncePrefix, Padding};
use crate::net::{Connection, NetError};
use crate::store::StoreKey;

/// A progress callback: called with the bytes moved so far.
pub type ProgressFn<'a> = &'a (dyn Fn(TransferProgress) + Send + Sync);

/// How a new upload pads its blob.
const NEW_PADDING: Padding = Padding::Padme;

/// A file that is whole on our relay: what its file message carries, and the record of the
/// upload, to drop once that message is sent.
pub(crate) struct Upload {
    /// The file, as the file message announces it.
    pub(crate) file: FileRef,
    key: StoreKey,
}

fn random_cap() -> BlobCapability {
    let mut b = [0u8; BLOB_CAP_LEN];
    OsRng.fill_bytes(&mut b);
    BlobCapability::from_bytes(b)
}

/// The layout of the source's blob, padded as `padding` says.
fn layout_of(src: &Source, padding: Padding) -> Result<Layout, ClientError> {
    let size = src.stamp.size;
    let layout =
        Layout::standard(size).map_err(|_| ClientError::FileTooLarge { size, max: None })?;
    Ok(layout.with_padding(padding))
}

/// The blob an upload fills: its record, the cipher that seals its chunks, the source, and
/// whom to tell how far it got.
struct Blob<'a> {
    up: &'a UploadRecord,
    cipher: &'a ChunkCipher,
    src: &'a Source,
    progress: ProgressFn<'a>,
}

impl Blob<'_> {
    /// Tells the progress callback that `done` bytes of the blob are on the relay.
    fn report(&self, done: u64) {
        (self.progress)(TransferProgress::of(self.cipher.layout(), done));
    }

    /// Piece `index`, checked against (or added to) what was sent under its nonce.
    fn piece(&self, seals: &mut SealLog, index: u64) -> Result<Vec<u8>, Interrupt> {
        let piece = self
            .src
            .piece(self.cipher, index)
            .map_err(Interrupt::Fatal)?;
        seals
            .note(index, &piece)
            .map_err(|_| Interrupt::Fatal(self.src.changed()))?;
        Ok(piece)
    }
}

/// What an upload sent: the hashes of its pieces, and the digest of the pieces the relay
/// confirmed so far.
struct Sent<'s> {
    seals: &'s mut SealLog,
    pieces: u64,
    hasher: Sha256,
}

impl Sent<'_> {
    /// Brings the digest up to piece `start` (which the relay holds), sealing again from the
    /// source, each piece checked against the one sent. The relay may hold more than we saw
    /// confirmed (answers lost in a cut), or less (it restarted and dropped what was not yet
    /// durable, or it lies).
    fn catch_up(&mut self, blob: &Blob<'_>, start: u64) -> Result<(), Interrupt> {
        if self.pieces > start {
            self.pieces = 0;
            self.hasher = Sha256::new();
        }
        for i in self.pieces..start {
            self.hasher.update(blob.piece(self.seals, i)?);
            self.pieces = i + 1;
        }
        Ok(())
    }
}

impl Transfers {
    /// Uploads the file at `path` (for `contact`) to a blob on our relay, resuming an upload of
    /// the same file that was cut off. `progress` is called as pieces land.
    pub(crate) async fn upload(
        &self,
        contact: &str,
        path: &Path,
        progress: ProgressFn<'_>,
    ) -> Result<Upload, ClientError> {
        let src = Source::open(path)?;
        layout_of(&src, NEW_PADDING)?;
        let (key, mut stored) = match self.find_upload(contact, &src.path)? {
            Some((key, up)) => (key, Some(up)),
            None => (random_key(UPLOAD_TAG), None),
        };
        let mut fresh_tries = 0;
        let (up, layout, digest) = loop {
            let (up, mut seals) = match self.resumable_upload(&key, stored.take(), &src)? {
                Some(resumed) => resumed,
                None => {
                    let up = self.start_upload(contact, &key, &src).await?;
                    (up, SealLog::new(&key))
                }
            };
            let layout = layout_of(&src, up.padding)?;
            let cipher = ChunkCipher::new(&up.key, up.prefix, layout);
            let blob = Blob {
                up: &up,
                cipher: &cipher,
                src: &src,
                progress,
            };
            match self.push_blob(&blob, &mut seals).await {
                Ok(Some(digest)) => break (up, layout, digest),
                // The blob is gone (expired or lost by the relay): start over, once.
                Ok(None) if fresh_tries == 0 => {
                    fresh_tries += 1;
                    forget_upload(&self.store, &key)?;
                }
                Ok(None) => return Err(ClientError::FileExpired),
                Err(e @ ClientError::FileChanged { .. }) => {
                    self.drop_upload(&key, &up)?;
                    return Err(e);
                }
                Err(e) => return Err(e),
            }
        };
        let file = FileRef {
            relay: up.relay.clone(),
            blob_id: up.blob_id,
            read_cap: up.read_cap.clone(),
            key: up.key.clone(),
            nonce_prefix: up.prefix,
            digest,
            size: src.stamp.size,
            chunk: layout.chunk(),
            name: src.file_name(),
            expires_at: up.expires_at,
            write_cap: Some(up.write_cap.clone()),
            padding: up.padding,
        };
        Ok(Upload { file, key })
    }

    /// Drops the record of an upload whose file message is sent. (Had the message failed, the
    /// record would let the next run send it without uploading again.)
    pub(crate) fn finish_upload(&self, upload: &Upload) -> Result<(), ClientError> {
        forget_upload(&self.store, &upload.key)
    }

    /// Ends an upload that will not be resumed: its blob is owed a deletion, its record and
    /// the hashes of what it sent go.
    fn drop_upload(&self, key: &StoreKey, up: &UploadRecord) -> Result<(), ClientError> {
        owe_deletion(&self.store, &up.relay, up.blob_id, &up.write_cap)?;
        forget_upload(&self.store, key)
    }

    /// The stored upload of this source (`stored`, under `key`) with the hashes of what it
    /// sent, if it is for this very version of the file (the same stamp), its blob has not
    /// expired, and what it sent is known; any other is dropped (see [`Self::drop_upload`]).
    /// A record written before sent pieces were hashed is never resumed.
    fn resumable_upload(
        &self,
        key: &StoreKey,
        stored: Option<UploadRecord>,
        src: &Source,
    ) -> Result<Option<(UploadRecord, SealLog)>, ClientError> {
        let Some(up) = stored else {
            return Ok(None);
        };
        let fresh = !up.legacy
            && up.stamp == src.stamp
            && up.relay == self.relay
            && up.expires_at > self.clock.now_secs();
        if fresh {
            if let Some(seals) = SealLog::load(&self.store, key)? {
                return Ok(Some((up, seals)));
            }
            tracing::warn!("the record of what an upload sent is damaged; starting it again");
        }
        self.drop_upload(key, &up)?;
        Ok(None)
    }

    /// Reserves a padded blob for the file on our relay and records the upload before any
    /// data moves.
    async fn start_upload(
        &self,
        contact: &str,
        key: &StoreKey,
        src: &Source,
    ) -> Result<UploadRecord, ClientError> {
        let (write_cap, read_cap) = (random_cap(), random_cap());
        let total = layout_of(src, NEW_PADDING)?.blob_len();
        // Hello first: it presents our create token, and a relay that announces its blob
        // limit lets a file too large for it be refused before anything is reserved.
        let created = self
            .pool
            .run(&self.relay, |conn| {
                let (w, r) = (write_cap.clone(), read_cap.clone());
                async move {
                    let info = conn.hello().await?;
                    match info.map(|i| i.blob_max_bytes).filter(|&max| total > max) {
                        Some(max) => Ok(Err(max)),
                        None => conn.client().blob_create(&w, &r, total, 0).await.map(Ok),
                    }
                }
            })
            .await;
        let (blob_id, expires_at) = match created {
            Ok(Ok(v)) => v,
            Ok(Err(max)) => {
                // The limit counts the padded ciphertext: name it only when the file alone is
                // larger, so the message never calls a file under the limit too large.
                let size = src.stamp.size;
                let max = (size > max).then_some(max);
                return Err(ClientError::FileTooLarge { size, max });
            }
            Err(NetError::Refused {
                code: ErrorCode::TooLarge,
                ..
            }) => {
                return Err(ClientError::FileTooLarge {
                    size: src.stamp.size,
                    max: None,
                })
            }
            Err(NetError::Refused {
                code: ErrorCode::NoSpace,
                relay,
            }) => return Err(ClientError::RelayFull { relay }),
            Err(e) => return Err(e.into()),
        };
        let up = UploadRecord {
            contact: Some(contact.to_owned()),
            relay: self.relay.clone(),
            blob_id,
            write_cap,
            read_cap,
            key: FileKey::random(&mut OsRng),
            prefix: NoncePrefix::random(&mut OsRng),
            stamp: src.stamp,
            padding: NEW_PADDING,
            expires_at,
            path: src.path.to_string_lossy().into_owned(),
            legacy: false,
        };
        self.store.put(key, &up.encode())?;
        Ok(up)
    }

    /// Uploads what the relay does not hold yet, retrying after cuts, with the source checked
    /// before every attempt and once all is sent. Returns the digest of the whole blob, or
    /// `None` if the blob is gone from the relay.
    async fn push_blob(
        &self,
        blob: &Blob<'_>,
        seals: &mut SealLog,
    ) -> Result<Option<[u8; FILE_DIGEST_LEN]>, ClientError> {
        let mut sent = Sent {
            seals,
            pieces: 0,
            hasher: Sha256::new(),
        };
        let mut stalls = Stalls::default();
        loop {
            blob.src.check()?;
            let pause = match self.push_attempt(blob, &mut sent).await {
                Ok(()) => {
                    blob.src.check()?;
                    return Ok(Some(sent.hasher.finalize().into()));
                }
                Err(Interrupt::Gone) => return Ok(None),
                Err(Interrupt::Fatal(e)) => return Err(e),
                Err(Interrupt::Retry { pause, .. }) => pause,
            };
            stalls
                .retry_after(sent.pieces, pause, &blob.up.relay)
                .await?;
        }
    }

    /// One pass: asks where the blob stands, brings the digest up to that point, then writes
    /// the rest. `sent` always covers exactly the pieces the relay confirmed. A relay that
    /// claims to hold pieces never sent breaks the protocol.
    async fn push_attempt(&self, blob: &Blob<'_>, sent: &mut Sent<'_>) -> Result<(), Interrupt> {
        let (up, layout) = (blob.up, blob.cipher.layout());
        let conn = self.connection(&up.relay).await?;
        let status = match conn.client().blob_status(up.blob_id, &up.write_cap).await {
            Ok(s) => s,
            Err(e) => return Err(self.interrupt(&conn, e).await),
        };
        let start = match layout.piece_at(status.committed) {
            Some(i) if status.total_len == layout.blob_len() => i,
            _ => return Err(Interrupt::Gone),
        };
        if start > sent.seals.len() {
            return Err(Interrupt::Fatal(ClientError::RelayProtocol {
                relay: up.relay.clone(),
            }));
        }
        sent.catch_up(blob, start)?;
        blob.report(status.committed);
        self.write_rest(&conn, blob, sent).await
    }

    /// Seals pieces `from..` (at most [`IN_FLIGHT`]), each checked against or added to the
    /// hashes of what was sent, and makes the new hashes durable before any of them leaves.
    fn seal_batch(
        &self,
        blob: &Blob<'_>,
        seals: &mut SealLog,
        from: u64,
    ) -> Result<VecDeque<(u64, Vec<u8>)>, Interrupt> {
        let to = blob
            .cipher
            .layout()
            .pieces()
            .min(from.saturating_add(IN_FLIGHT as u64));
        let mut batch = VecDeque::with_capacity(IN_FLIGHT);
        for i in from..to {
            batch.push_back((i, blob.piece(seals, i)?));
        }
        seals.persist(&self.store).map_err(Interrupt::Fatal)?;
        Ok(batch)
    }

    /// Writes every piece from `sent.pieces` on, [`IN_FLIGHT`] at a time, moving `sent` along
    /// as the relay confirms them.
    async fn write_rest(
        &self,
        conn: &Connection,
        blob: &Blob<'_>,
        sent: &mut Sent<'_>,
    ) -> Result<(), Interrupt> {
        let (up, layout) = (blob.up, blob.cipher.layout());
        let client = conn.client();
        let mut hasher = sent.hasher.clone();
        let mut window = Window::new();
        let mut ready = VecDeque::new();
        let mut next = sent.pieces;
        loop {
            if ready.is_empty() && window.len() < IN_FLIGHT && next < layout.pieces() {
                match self.seal_batch(blob, sent.seals, next) {
                    Ok(batch) => ready = batch,
                    Err(e) => {
                        window.drain().await;
                        return Err(e);
                    }
                }
                next += ready.len() as u64;
            }
            while window.len() < IN_FLIGHT {
                let Some((i, buf)) = ready.pop_front() else {
                    break;
                };
                hasher.update(&buf);
                let after = (i + 1, hasher.clone());
                let write =
                    client.blob_write(up.blob_id, &up.write_cap, layout.piece_offset(i), buf);
                window.push(async move { (after, write.await) }).await;
            }
            match window.next().await {
                None => return Ok(()),
                Some(((pieces, state), Ok(c))) => {
                    sent.pieces = pieces;
                    sent.hasher = state;
                    blob.report(c);
                }
                Some((_, Err(e))) => {
                    // Let the requests already made finish: one dropped halfway would close
                    // the connection.
                    window.drain().await;
                    return Err(self.interrupt(conn, e).await);
                }
            }
        }
    }
}
