//! Saving a received file: download its ciphertext from the sender's relay into the home,
//! check it, and only then decrypt it next to the destination (see `decrypt`).
//!
//! The ciphertext is staged in `<home>/files/` (see `staging`), [`IN_FLIGHT`] reads at a
//! time: the whole blob, its padding too (see `crate::files::padding`). A download that is cut
//! off keeps what it staged, and the next download goes on from there. The ciphertext is hashed as it is staged (the digest the message carries); once the
//! whole blob is staged its length and digest are checked before any plaintext is written.
//! After a successful save the blob is deleted on the relay with the read capability
//! ("download done").
//!
//! What it does not do: upload (see `upload`), keep plaintext anywhere but the destination, or
//! delete a view-once file message (the client does, once this returns).

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::decrypt::{decrypt_into, hash_prefix, Sink, WRITE_BUFFER};
use super::disk::{ensure_files_dir, io_error};
use super::owed::owe_deletion;
use super::staging::staged_path;
use super::state::{forget_download, record_download};
use super::upload::ProgressFn;
use super::{Interrupt, Stalls, TransferProgress, Transfers, IN_FLIGHT};
use crate::client::error::ClientError;
use crate::conversation::{FileRef, MessageId};
use crate::files::window::Window;
use crate::files::Layout;
use crate::net::Connection;

/// Where a file suggested as `name` goes when the user asks for `to`: inside `to` if it is a
/// directory, else `to` itself. Fails if that file exists.
fn destination(to: &Path, name: &str) -> Result<PathBuf, ClientError> {
    let dest = if to.is_dir() {
        to.join(name)
    } else {
        to.to_path_buf()
    };
    if fs::symlink_metadata(&dest).is_ok() {
        return Err(ClientError::FileExists { path: dest });
    }
    if let Some(dir) = dest.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.is_dir() {
            return Err(ClientError::FileIo {
                path: dir.to_path_buf(),
                source: io::Error::new(io::ErrorKind::NotFound, "no such directory"),
            });
        }
    }
    Ok(dest)
}

/// Sets its flag when dropped: a save whose future is dropped stops decrypting.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// The staged ciphertext while chunks are appended to it, and the digest of all it holds.
struct Staged<'a> {
    path: &'a Path,
    out: BufWriter<File>,
    hasher: Sha256,
    /// The next chunk to append.
    next: u64,
}

impl<'a> Staged<'a> {
    /// Opens the staged file at `path`, cut back to its last whole chunk, with the digest of
    /// what it holds.
    fn open(path: &'a Path, layout: &Layout) -> io::Result<Staged<'a>> {
        let have = fs::metadata(path).map_or(0, |m| m.len());
        let next = layout.whole_pieces(have.min(layout.blob_len()));
        let out = OpenOptions::new()
            .create(true)
            .read(true)
            .write(true)
            .truncate(false)
            .mode(0o600)
            .open(path)?;
        out.set_len(layout.piece_offset(next))?;
        let mut hasher = Sha256::new();
        hash_prefix(&out, layout.piece_offset(next), &mut hasher)?;
        let mut out = BufWriter::with_capacity(WRITE_BUFFER, out);
        io::Seek::seek(&mut out, io::SeekFrom::End(0))?;
        Ok(Staged {
            path,
            out,
            hasher,
            next,
        })
    }

    fn fatal(&self, e: io::Error) -> Interrupt {
        Interrupt::Fatal(io_error(self.path)(e))
    }

    /// Appends one piece.
    fn append(&mut self, data: &[u8]) -> Result<(), Interrupt> {
        self.out.write_all(data).map_err(|e| self.fatal(e))?;
        self.hasher.update(data);
        Ok(())
    }

    /// Writes out what is buffered, so a retry goes on from there.
    fn flush(&mut self) -> Result<(), Interrupt> {
        self.out.flush().map_err(|e| self.fatal(e))
    }

    /// Syncs the whole staged file and returns its digest.
    fn finish(self) -> Result<[u8; 32], Interrupt> {
        let path = self.path;
        let fatal = |e| Interrupt::Fatal(io_error(path)(e));
        let out = self.out.into_inner().map_err(|e| fatal(e.into_error()))?;
        out.sync_all().map_err(fatal)?;
        Ok(self.hasher.finalize().into())
    }
}

impl Transfers {
    /// Saves the file of `contact`'s (store key `key`) file message `id` to `to` (see
    /// [`crate::Client::save_file`]) and returns the path written. The blob stays at the relay
    /// ([`Transfers::done_with_blob`] deletes it). The staged ciphertext is on record (with
    /// its contact and the blob's expiry) before its first byte. Dropping the returned future
    /// while it decrypts stops the decryption, which removes what it wrote.
    pub(crate) async fn download(
        &self,
        contact: &str,
        key: &crate::store::ContactKey,
        id: MessageId,
        file: &FileRef,
        to: &Path,
        progress: ProgressFn<'_>,
    ) -> Result<PathBuf, ClientError> {
        let dest = destination(to, &file.name)?;
        let layout = file.layout().map_err(|_| ClientError::FileTampered)?;
        let home = self.store.home().to_path_buf();
        ensure_files_dir(&home).map_err(io_error(&home))?;
        let staged = staged_path(&home, key, id);
        record_download(&self.store, contact, &staged, file.expires_at)?;
        let fetched = self.fetch_blob(file, &layout, &staged, progress).await?;
        let cancel = Arc::new(AtomicBool::new(false));
        let _stop = CancelOnDrop(cancel.clone());
        let opened = {
            let (f, from, to) = (file.clone(), staged.clone(), dest.clone());
            let parts = self.parts.clone();
            let task = tokio::task::spawn_blocking(move || {
                let sink = Sink {
                    dest: &to,
                    parts: &parts,
                    cancel: &cancel,
                };
                decrypt_into(&f, layout, &from, &sink, fetched)
            });
            task.await.unwrap_or_else(|e| {
                Err(ClientError::FileIo {
                    path: dest.clone(),
                    source: io::Error::other(e.to_string()),
                })
            })
        };
        if let Err(e) = opened {
            if matches!(e, ClientError::FileTampered) {
                forget_download(&self.store, &staged)?;
            }
            return Err(e);
        }
        Ok(dest)
    }

    /// Owes the blob of received `file` its "download done" deletion, with the read capability,
    /// and carries it out.
    pub(crate) async fn done_with_blob(&self, file: &FileRef) -> Result<(), ClientError> {
        owe_deletion(&self.store, &file.relay, file.blob_id, &file.read_cap)?;
        self.run_deletions().await;
        Ok(())
    }

    /// Makes `staged` hold the whole ciphertext, downloading what is missing. Returns the
    /// SHA-256 of the staged ciphertext if it was computed on the way (a download that ran to
    /// its end), or `None` if the blob was already staged.
    async fn fetch_blob(
        &self,
        file: &FileRef,
        layout: &Layout,
        staged: &Path,
        progress: ProgressFn<'_>,
    ) -> Result<Option<[u8; 32]>, ClientError> {
        let total = layout.blob_len();
        let done = TransferProgress::of(layout, total);
        let mut stalls = Stalls::default();
        loop {
            let have = fs::metadata(staged).map_or(0, |m| m.len());
            if have == total {
                progress(done);
                return Ok(None);
            }
            if self.clock.now_secs() >= file.expires_at {
                return Err(ClientError::FileExpired);
            }
            let pause = match self.fetch_attempt(file, layout, staged, progress).await {
                Ok(digest) => {
                    progress(done);
                    return Ok(Some(digest));
                }
                Err(Interrupt::Gone) => return Err(ClientError::FileExpired),
                Err(Interrupt::Fatal(e)) => return Err(e),
                Err(Interrupt::Retry { pause, .. }) => pause,
            };
            let now_have = fs::metadata(staged).map_or(0, |m| m.len());
            stalls.retry_after(now_have, pause, &file.relay).await?;
        }
    }

    /// One pass: checks the blob, then appends the missing chunks to the staged file. Returns
    /// the SHA-256 of the whole staged ciphertext: the prefix already staged is hashed again
    /// from the file, each new chunk as it is appended, in order.
    async fn fetch_attempt(
        &self,
        file: &FileRef,
        layout: &Layout,
        staged: &Path,
        progress: ProgressFn<'_>,
    ) -> Result<[u8; 32], Interrupt> {
        let total = layout.blob_len();
        let conn = self.connection(&file.relay).await?;
        let status = match conn
            .client()
            .blob_status(file.blob_id, &file.read_cap)
            .await
        {
            Ok(s) => s,
            Err(e) => return Err(self.interrupt(&conn, e).await),
        };
        if status.total_len != total {
            return Err(Interrupt::Fatal(ClientError::FileTampered));
        }
        if status.committed < total {
            return Err(Interrupt::Fatal(ClientError::Relay {
                relay: file.relay.clone(),
                code: hush_protocol::ErrorCode::BlobIncomplete,
            }));
        }
        // Go on from the last whole piece staged.
        let mut out =
            Staged::open(staged, layout).map_err(|e| Interrupt::Fatal(io_error(staged)(e)))?;
        self.read_rest(&conn, file, layout, progress, &mut out)
            .await?;
        out.finish()
    }

    /// Reads every piece of the blob (chunks, then padding) from `out.next` on, [`IN_FLIGHT`]
    /// at a time, appending each to `out` in order.
    async fn read_rest(
        &self,
        conn: &Connection,
        file: &FileRef,
        layout: &Layout,
        progress: ProgressFn<'_>,
        out: &mut Staged<'_>,
    ) -> Result<(), Interrupt> {
        let client = conn.client();
        let mut window = Window::new();
        let mut next = out.next;
        let mut done = layout.piece_offset(next);
        loop {
            while window.len() < IN_FLIGHT && next < layout.pieces() {
                let (offset, len) = (layout.piece_offset(next), layout.piece_len(next));
                let len32 = u32::try_from(len).unwrap_or(u32::MAX);
                let len = usize::try_from(len).unwrap_or(usize::MAX);
                let read = client.blob_read(file.blob_id, &file.read_cap, offset, len32);
                window.push(async move { (len, read.await) }).await;
                next += 1;
            }
            match window.next().await {
                None => return Ok(()),
                Some((len, Ok(data))) if data.len() == len => {
                    if let Err(e) = out.append(&data) {
                        window.drain().await;
                        return Err(e);
                    }
                    done += len as u64;
                    progress(TransferProgress::of(layout, done));
                }
                Some((_, Ok(_))) => {
                    window.drain().await;
                    return Err(Interrupt::Fatal(ClientError::FileTampered));
                }
                Some((_, Err(e))) => {
                    // Let the requests already made finish: one dropped halfway would close
                    // the connection.
                    window.drain().await;
                    out.flush()?;
                    return Err(self.interrupt(conn, e).await);
                }
            }
        }
    }
}
