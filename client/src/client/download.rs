//! Saving a received file: download its ciphertext from the sender's relay into the home,
//! check it, and only then decrypt it next to the destination and move it into place.
//!
//! The ciphertext is staged in `<home>/files/` (see `transfer`), [`IN_FLIGHT`] reads at a
//! time. A download that is cut off keeps what it staged, and the next `save_file` goes on from
//! there. The ciphertext is hashed as it is staged (the digest the message carries); once the
//! whole blob is staged its length and digest are checked before any plaintext is written.
//! Then every chunk is opened, on two threads, into a temporary file beside the destination;
//! the temporary file is linked into place only if every chunk opened, and is removed on any
//! error. The destination is never overwritten. After a successful save the
//! blob is deleted on the relay with the read capability ("download done"), and a view-once
//! file is deleted here too.
//!
//! What it does not do: upload (see `upload`) or keep plaintext anywhere but the destination.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rand::rngs::OsRng;
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::transfer::{
    ensure_files_dir, io_error, owe_deletion, remove_if_there, staged_path, Interrupt,
    TransferProgress, IN_FLIGHT, MAX_STALLS,
};
use super::upload::ProgressFn;
use super::{driver, Client, ClientError, Inner};
use crate::conversation::{ConversationError, FileRef, MessageId};
use crate::files::window::Window;
use crate::files::{ChunkCipher, Layout};

/// Size of the buffer the plaintext is written through.
const WRITE_BUFFER: usize = 256 * 1024;

/// Where a file suggested as `name` goes when the user asks for `to`: inside `to` if it is a
/// directory, else `to` itself. Fails if that file exists.
pub(crate) fn destination(to: &Path, name: &str) -> Result<PathBuf, ClientError> {
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

impl Client {
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
        let (contact, file) = inner.received_file(id).await?;
        let dest = destination(to, &file.name)?;
        let layout = file.layout().map_err(|_| ClientError::FileTampered)?;
        let home = inner.store.home().to_path_buf();
        ensure_files_dir(&home).map_err(io_error(&home))?;
        let staged = staged_path(&home, &contact, id);
        let fetched = inner.fetch_blob(&file, &layout, &staged, progress).await?;
        let opened = {
            let (f, from, to) = (file.clone(), staged.clone(), dest.clone());
            let task =
                tokio::task::spawn_blocking(move || decrypt_into(&f, layout, &from, &to, fetched));
            task.await.unwrap_or_else(|e| {
                Err(ClientError::FileIo {
                    path: dest.clone(),
                    source: io::Error::other(e.to_string()),
                })
            })
        };
        if let Err(e) = opened {
            if matches!(e, ClientError::FileTampered) {
                remove_if_there(&staged).map_err(io_error(&staged))?;
            }
            return Err(e);
        }
        owe_deletion(&inner.store, &file.relay, file.blob_id, &file.read_cap)?;
        inner.run_blob_deletions().await;
        let mut st = inner.state.lock().await;
        if let Some(conv) = st.contacts.get_mut(&contact).and_then(|c| c.conv.as_mut()) {
            if let Ok(effects) = conv.file_saved(id, inner.now()) {
                driver::apply_local(&inner.store, &contact, conv, effects)?;
            }
        }
        inner.yield_inbox.notify_one();
        Ok(dest)
    }
}

impl Inner {
    /// The contact and the file of received file message `id`.
    async fn received_file(&self, id: MessageId) -> Result<(String, FileRef), ClientError> {
        let now = self.now();
        let st = self.state.lock().await;
        for (name, c) in &st.contacts {
            if let Some(conv) = &c.conv {
                if conv.message(&id).is_some() {
                    let file = conv.received_file(id, now)?;
                    return Ok((name.clone(), file.clone()));
                }
            }
        }
        Err(ConversationError::UnknownMessage.into())
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
        let total = layout.cipher_len();
        let mut stalls = 0;
        let mut best = 0;
        loop {
            let have = fs::metadata(staged).map_or(0, |m| m.len());
            if have == total {
                progress(TransferProgress { done: total, total });
                return Ok(None);
            }
            if self.now() >= file.expires_at {
                return Err(ClientError::FileExpired);
            }
            let pause = match self.fetch_attempt(file, layout, staged, progress).await {
                Ok(digest) => {
                    progress(TransferProgress { done: total, total });
                    return Ok(Some(digest));
                }
                Err(Interrupt::Gone) => return Err(ClientError::FileExpired),
                Err(Interrupt::Fatal(e)) => return Err(e),
                Err(Interrupt::Retry { pause, .. }) => pause,
            };
            let now_have = fs::metadata(staged).map_or(0, |m| m.len());
            if now_have > best {
                best = now_have;
                stalls = 0;
            } else {
                stalls += 1;
            }
            if stalls >= MAX_STALLS {
                return Err(self.interrupted(&file.relay));
            }
            if let Some(pause) = pause {
                tokio::time::sleep(pause).await;
            }
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
        let total = layout.cipher_len();
        let fatal_io = |e| Interrupt::Fatal(io_error(staged)(e));
        let conn = self
            .pool
            .connection(&file.relay)
            .await
            .map_err(|_| Interrupt::Fatal(self.interrupted(&file.relay)))?;
        let client = conn.client();
        let status = match client.blob_status(file.blob_id, &file.read_cap).await {
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
        // Go on from the last whole chunk staged.
        let have = fs::metadata(staged).map_or(0, |m| m.len()).min(total);
        let start = have / layout.cipher_chunk();
        let out = OpenOptions::new()
            .create(true)
            .read(true)
            .write(true)
            .truncate(false)
            .mode(0o600)
            .open(staged)
            .map_err(fatal_io)?;
        out.set_len(layout.cipher_offset(start)).map_err(fatal_io)?;
        let mut hasher = Sha256::new();
        hash_prefix(&out, layout.cipher_offset(start), &mut hasher).map_err(fatal_io)?;
        let mut out = BufWriter::with_capacity(WRITE_BUFFER, out);
        io::Seek::seek(&mut out, io::SeekFrom::End(0)).map_err(fatal_io)?;
        let mut window = Window::new();
        let mut next = start;
        let mut done = layout.cipher_offset(start);
        loop {
            while window.len() < IN_FLIGHT && next < layout.chunks() {
                let (offset, len) = (layout.cipher_offset(next), layout.cipher_len_of(next));
                let len32 = u32::try_from(len).unwrap_or(u32::MAX);
                let read = client.blob_read(file.blob_id, &file.read_cap, offset, len32);
                window.push(async move { (len, read.await) }).await;
                next += 1;
            }
            match window.next().await {
                None => break,
                Some((len, Ok(data))) if data.len() == len => {
                    if let Err(e) = out.write_all(&data) {
                        window.drain().await;
                        return Err(fatal_io(e));
                    }
                    hasher.update(&data);
                    done += len as u64;
                    progress(TransferProgress { done, total });
                }
                Some((_, Ok(_))) => {
                    window.drain().await;
                    return Err(Interrupt::Fatal(ClientError::FileTampered));
                }
                Some((_, Err(e))) => {
                    // Let the requests already made finish: one dropped halfway would close
                    // the connection.
                    window.drain().await;
                    out.flush().map_err(fatal_io)?;
                    return Err(self.interrupt(&conn, e).await);
                }
            }
        }
        let out = out.into_inner().map_err(|e| fatal_io(e.into_error()))?;
        out.sync_all().map_err(fatal_io)?;
        Ok(hasher.finalize().into())
    }
}

/// Feeds the first `len` bytes of `file` to `hasher`.
fn hash_prefix(file: &File, len: u64, hasher: &mut Sha256) -> io::Result<()> {
    let mut buf = vec![0u8; WRITE_BUFFER];
    let mut at = 0u64;
    while at < len {
        let n = usize::try_from(len - at).map_or(buf.len(), |r| r.min(buf.len()));
        file.read_exact_at(&mut buf[..n], at)?;
        hasher.update(&buf[..n]);
        at += n as u64;
    }
    Ok(())
}

/// Checks the staged ciphertext (its length and digest) and only then opens every chunk into
/// a temporary file beside `dest` and links the result into place. `fetched` is the digest of
/// the staged bytes if the download computed it, else it is computed here. On any error the
/// temporary file is removed; a wrong length or digest fails before it is created.
fn decrypt_into(
    file: &FileRef,
    layout: Layout,
    staged: &Path,
    dest: &Path,
    fetched: Option<[u8; 32]>,
) -> Result<(), ClientError> {
    let input = File::open(staged).map_err(io_error(staged))?;
    let len = input.metadata().map_err(io_error(staged))?.len();
    if len != layout.cipher_len() {
        return Err(ClientError::FileTampered);
    }
    let digest = match fetched {
        Some(d) => d,
        None => {
            let mut hasher = Sha256::new();
            hash_prefix(&input, len, &mut hasher).map_err(io_error(staged))?;
            hasher.finalize().into()
        }
    };
    if digest != file.digest {
        return Err(ClientError::FileTampered);
    }
    let dir = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let tmp = dir.join(format!(".hush-{:016x}.part", OsRng.next_u64()));
    let out = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io_error(&tmp))?;
    let result =
        decrypt_stream(file, layout, staged, &input, out, &tmp).and_then(|()| place(&tmp, dest));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// How many threads open chunks at once.
const DECRYPT_THREADS: u64 = 2;

/// Opens every chunk of `input` (already checked: its length and digest) into `out`, the
/// chunks split into [`DECRYPT_THREADS`] contiguous ranges opened side by side, each chunk
/// written at its own plaintext offset, then syncs `out`.
fn decrypt_stream(
    file: &FileRef,
    layout: Layout,
    staged: &Path,
    input: &File,
    out: File,
    tmp: &Path,
) -> Result<(), ClientError> {
    let cipher = ChunkCipher::new(&file.key, file.nonce_prefix, layout);
    let chunks = layout.chunks();
    let per = chunks.div_ceil(DECRYPT_THREADS).max(1);
    let open_range = |from: u64, to: u64| -> Result<(), ClientError> {
        let mut buf = Vec::with_capacity(layout.cipher_chunk() as usize);
        for i in from..to {
            buf.resize(layout.cipher_len_of(i), 0);
            input
                .read_exact_at(&mut buf, layout.cipher_offset(i))
                .map_err(io_error(staged))?;
            cipher
                .open(i, &mut buf)
                .map_err(|_| ClientError::FileTampered)?;
            out.write_all_at(&buf, layout.plain_offset(i))
                .map_err(io_error(tmp))?;
        }
        Ok(())
    };
    let results: Vec<Result<(), ClientError>> = std::thread::scope(|s| {
        let handles: Vec<_> = (1..DECRYPT_THREADS)
            .map(|t| {
                let (from, to) = ((t * per).min(chunks), ((t + 1) * per).min(chunks));
                let open_range = &open_range;
                s.spawn(move || open_range(from, to))
            })
            .collect();
        let mut results = vec![open_range(0, per.min(chunks))];
        for h in handles {
            results.push(h.join().unwrap_or_else(|_| {
                Err(ClientError::FileIo {
                    path: tmp.to_path_buf(),
                    source: io::Error::other("a decryption thread panicked"),
                })
            }));
        }
        results
    });
    for r in results {
        r?;
    }
    out.sync_all().map_err(io_error(tmp))
}

/// Moves `tmp` to `dest` without ever replacing an existing file.
fn place(tmp: &Path, dest: &Path) -> Result<(), ClientError> {
    match fs::hard_link(tmp, dest) {
        Ok(()) => fs::remove_file(tmp).map_err(io_error(tmp)),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(ClientError::FileExists {
            path: dest.to_path_buf(),
        }),
        // A file system without hard links: check, then rename.
        Err(_) if fs::symlink_metadata(dest).is_ok() => Err(ClientError::FileExists {
            path: dest.to_path_buf(),
        }),
        Err(_) => fs::rename(tmp, dest).map_err(io_error(dest)),
    }
}
