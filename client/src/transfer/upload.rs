//! Sending a file: encrypt it chunk by chunk as it is read from disk and upload the chunks to
//! a blob on our own relay with [`IN_FLIGHT`] writes in flight.
//!
//! The upload is resumable. Its state (contact, blob, capabilities, file key, source size and
//! time, the blob's expiry) is a record in the encrypted store, written before the first byte
//! leaves (see `state`: it ends when the message is sent, the blob expires or the contact goes). Running the same send
//! again (same contact, same path, file unchanged) asks the relay how much it holds and goes on
//! from there; a connection cut or a relay restart during the upload is retried the same way.
//! The ciphertext digest of what the relay already holds is recomputed from the source, so the
//! whole file is never in memory and never stored in plaintext.
//!
//! What it does not do: send the file message (the client does, with the [`Upload`] this
//! returns), download (see `download`), or keep the source: the sender's copy is the file it
//! sent from.

use std::fs::{File, Metadata};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use hush_protocol::ids::{BlobCapability, BLOB_CAP_LEN};
use hush_protocol::ErrorCode;
use rand::rngs::OsRng;
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::disk::io_error;
use super::owed::owe_deletion;
use super::state::{random_key, UploadRecord, UPLOAD_TAG};
use super::{Interrupt, Stalls, TransferProgress, Transfers, IN_FLIGHT};
use crate::client::error::ClientError;
use crate::conversation::{FileRef, FILE_DIGEST_LEN};
use crate::files::window::Window;
use crate::files::{sanitise_name, ChunkCipher, FileKey, Layout, NoncePrefix};
use crate::net::{Connection, NetError};
use crate::store::StoreKey;

/// A progress callback: called with the bytes moved so far.
pub type ProgressFn<'a> = &'a (dyn Fn(TransferProgress) + Send + Sync);

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

fn mtime(meta: &Metadata) -> (u64, u32) {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or((0, 0), |d| (d.as_secs(), d.subsec_nanos()))
}

/// The source file, opened, with what identifies its version.
struct Source {
    path: PathBuf,
    file: File,
    size: u64,
    mtime: (u64, u32),
}

impl Source {
    fn open(path: &Path) -> Result<Source, ClientError> {
        let path = std::fs::canonicalize(path).map_err(io_error(path))?;
        let file = File::open(&path).map_err(io_error(&path))?;
        let meta = file.metadata().map_err(io_error(&path))?;
        if !meta.is_file() {
            let e = io::Error::new(io::ErrorKind::InvalidInput, "not a regular file");
            return Err(ClientError::FileIo { path, source: e });
        }
        Ok(Source {
            size: meta.len(),
            mtime: mtime(&meta),
            path,
            file,
        })
    }

    /// Reads plaintext chunk `index` (the file position must be at its start).
    fn read_chunk(&mut self, layout: &Layout, index: u64) -> Result<Vec<u8>, ClientError> {
        let mut buf = vec![0u8; layout.plain_len_of(index)];
        self.file
            .read_exact(&mut buf)
            .map_err(io_error(&self.path))?;
        Ok(buf)
    }

    /// Reads and seals chunk `index` (the file position must be at its start).
    fn sealed_chunk(&mut self, cipher: &ChunkCipher, index: u64) -> Result<Vec<u8>, Interrupt> {
        let mut buf = self
            .read_chunk(cipher.layout(), index)
            .map_err(Interrupt::Fatal)?;
        cipher
            .seal(index, &mut buf)
            .map_err(|_| Interrupt::Fatal(ClientError::FileTampered))?;
        Ok(buf)
    }

    /// The name the file message suggests.
    fn file_name(&self) -> String {
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        sanitise_name(&name)
    }
}

/// The blob an upload fills: its record, the cipher that seals its chunks, and whom to tell
/// how far it got.
struct Blob<'a> {
    up: &'a UploadRecord,
    cipher: &'a ChunkCipher,
    progress: ProgressFn<'a>,
}

/// The digest of the chunks the relay confirmed so far.
struct Hashed {
    chunks: u64,
    hasher: Sha256,
}

impl Hashed {
    fn new() -> Hashed {
        Hashed {
            chunks: 0,
            hasher: Sha256::new(),
        }
    }

    /// Brings the digest up to chunk `start` (which the relay holds), re-encrypting from the
    /// source. The relay may hold more than we saw confirmed (answers lost in a cut), or less
    /// (it restarted and dropped what was not yet durable).
    fn catch_up(
        &mut self,
        cipher: &ChunkCipher,
        src: &mut Source,
        start: u64,
    ) -> Result<(), Interrupt> {
        if self.chunks > start {
            *self = Hashed::new();
        }
        src.file
            .seek(SeekFrom::Start(cipher.layout().plain_offset(self.chunks)))
            .map_err(|e| Interrupt::Fatal(io_error(&src.path)(e)))?;
        for i in self.chunks..start {
            self.hasher.update(src.sealed_chunk(cipher, i)?);
            self.chunks = i + 1;
        }
        Ok(())
    }
}

impl Transfers {
    /// Uploads the file at `path` (for `contact`) to a blob on our relay, resuming an upload of
    /// the same file that was cut off. `progress` is called as chunks land.
    pub(crate) async fn upload(
        &self,
        contact: &str,
        path: &Path,
        progress: ProgressFn<'_>,
    ) -> Result<Upload, ClientError> {
        let mut src = Source::open(path)?;
        let layout = Layout::standard(src.size).map_err(|_| ClientError::FileTooLarge {
            size: src.size,
            max: None,
        })?;
        let (key, mut stored) = match self.find_upload(contact, &src.path)? {
            Some((key, up)) => (key, Some(up)),
            None => (random_key(UPLOAD_TAG), None),
        };
        let mut fresh_tries = 0;
        let (up, digest) = loop {
            let up = match self.resumable_upload(&key, stored.take(), &src)? {
                Some(up) => up,
                None => self.start_upload(contact, &key, &src, &layout).await?,
            };
            let cipher = ChunkCipher::new(&up.key, up.prefix, layout);
            match self.push_blob(&up, &cipher, &mut src, progress).await? {
                Some(digest) => break (up, digest),
                // The blob is gone (expired or lost by the relay): start over, once.
                None if fresh_tries == 0 => {
                    fresh_tries += 1;
                    self.store.delete(&key)?;
                }
                None => return Err(ClientError::FileExpired),
            }
        };
        let file = FileRef {
            relay: up.relay.clone(),
            blob_id: up.blob_id,
            read_cap: up.read_cap.clone(),
            key: up.key.clone(),
            nonce_prefix: up.prefix,
            digest,
            size: src.size,
            chunk: layout.chunk(),
            name: src.file_name(),
            expires_at: up.expires_at,
            write_cap: Some(up.write_cap.clone()),
        };
        Ok(Upload { file, key })
    }

    /// Drops the record of an upload whose file message is sent. (Had the message failed, the
    /// record would let the next run send it without uploading again.)
    pub(crate) fn finish_upload(&self, upload: &Upload) -> Result<(), ClientError> {
        self.store.delete(&upload.key)?;
        Ok(())
    }

    /// The stored upload of this source (`stored`, under `key`), if it is for this very
    /// version of the file and its blob has not expired; a stale one is dropped and its blob
    /// owed a deletion.
    fn resumable_upload(
        &self,
        key: &StoreKey,
        stored: Option<UploadRecord>,
        src: &Source,
    ) -> Result<Option<UploadRecord>, ClientError> {
        let Some(up) = stored else {
            return Ok(None);
        };
        let fresh = up.size == src.size
            && up.mtime == src.mtime
            && up.relay == self.relay
            && up.expires_at > self.clock.now_secs();
        if fresh {
            return Ok(Some(up));
        }
        owe_deletion(&self.store, &up.relay, up.blob_id, &up.write_cap)?;
        self.store.delete(key)?;
        Ok(None)
    }

    /// Reserves a blob for the file on our relay and records the upload before any data moves.
    async fn start_upload(
        &self,
        contact: &str,
        key: &StoreKey,
        src: &Source,
        layout: &Layout,
    ) -> Result<UploadRecord, ClientError> {
        let (write_cap, read_cap) = (random_cap(), random_cap());
        let total = layout.cipher_len();
        let created = self
            .pool
            .run(&self.relay, |conn| {
                let (w, r) = (write_cap.clone(), read_cap.clone());
                async move { conn.client().blob_create(&w, &r, total, 0).await }
            })
            .await;
        let (blob_id, expires_at) = match created {
            Ok(v) => v,
            Err(NetError::Refused {
                code: ErrorCode::TooLarge,
                ..
            }) => {
                return Err(ClientError::FileTooLarge {
                    size: src.size,
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
            size: src.size,
            mtime: src.mtime,
            expires_at,
            path: src.path.to_string_lossy().into_owned(),
        };
        self.store.put(key, &up.encode())?;
        Ok(up)
    }

    /// Uploads what the relay does not hold yet, retrying after cuts. Returns the digest of
    /// the whole ciphertext, or `None` if the blob is gone from the relay.
    async fn push_blob(
        &self,
        up: &UploadRecord,
        cipher: &ChunkCipher,
        src: &mut Source,
        progress: ProgressFn<'_>,
    ) -> Result<Option<[u8; FILE_DIGEST_LEN]>, ClientError> {
        let blob = Blob {
            up,
            cipher,
            progress,
        };
        let mut hashed = Hashed::new();
        let mut stalls = Stalls::default();
        loop {
            let pause = match self.push_attempt(&blob, src, &mut hashed).await {
                Ok(()) => return Ok(Some(hashed.hasher.finalize().into())),
                Err(Interrupt::Gone) => return Ok(None),
                Err(Interrupt::Fatal(e)) => return Err(e),
                Err(Interrupt::Retry { pause, .. }) => pause,
            };
            stalls.retry_after(hashed.chunks, pause, &up.relay).await?;
        }
    }

    /// One pass: asks where the blob stands, brings the digest up to that point, then writes
    /// the rest. `hashed` always covers exactly the chunks the relay confirmed.
    async fn push_attempt(
        &self,
        blob: &Blob<'_>,
        src: &mut Source,
        hashed: &mut Hashed,
    ) -> Result<(), Interrupt> {
        let (up, layout) = (blob.up, blob.cipher.layout());
        let total = layout.cipher_len();
        let conn = self.connection(&up.relay).await?;
        let status = match conn.client().blob_status(up.blob_id, &up.write_cap).await {
            Ok(s) => s,
            Err(e) => return Err(self.interrupt(&conn, e).await),
        };
        let start = match layout.chunk_at(status.committed) {
            Some(i) if status.total_len == total => i,
            _ => return Err(Interrupt::Gone),
        };
        hashed.catch_up(blob.cipher, src, start)?;
        (blob.progress)(TransferProgress {
            done: status.committed,
            total,
        });
        self.write_rest(&conn, blob, src, hashed).await
    }

    /// Writes every chunk from `hashed.chunks` on, [`IN_FLIGHT`] at a time, moving `hashed`
    /// along as the relay confirms them.
    async fn write_rest(
        &self,
        conn: &Connection,
        blob: &Blob<'_>,
        src: &mut Source,
        hashed: &mut Hashed,
    ) -> Result<(), Interrupt> {
        let (up, cipher, progress) = (blob.up, blob.cipher, blob.progress);
        let layout = cipher.layout();
        let total = layout.cipher_len();
        let client = conn.client();
        let mut hasher = hashed.hasher.clone();
        let mut window = Window::new();
        let mut next = hashed.chunks;
        loop {
            while window.len() < IN_FLIGHT && next < layout.chunks() {
                let buf = match src.sealed_chunk(cipher, next) {
                    Ok(buf) => buf,
                    Err(e) => {
                        window.drain().await;
                        return Err(e);
                    }
                };
                hasher.update(&buf);
                let after = (next + 1, hasher.clone());
                let write =
                    client.blob_write(up.blob_id, &up.write_cap, layout.cipher_offset(next), buf);
                window.push(async move { (after, write.await) }).await;
                next += 1;
            }
            match window.next().await {
                None => return Ok(()),
                Some(((chunks, state), Ok(c))) => {
                    hashed.chunks = chunks;
                    hashed.hasher = state;
                    progress(TransferProgress { done: c, total });
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
