//! `hush-server stats --data DIR`: what a relay's data directory holds, read while the relay
//! is stopped.
//!
//! It counts queues, pending envelopes and their bytes, the earliest envelope expiry, blobs
//! and the bytes of their files, and the size of the two key vaults, and prints them as plain
//! text or, with `--json`, one JSON object. Counts only: no id, name or address is printed.
//!
//! It refuses a directory a running relay holds (the store's lock is taken), a directory with
//! no relay store in it, and one of store format 1 (the relay upgrades it on start). Opening
//! the store repairs what a crash left half-written, exactly as a relay start would; nothing
//! else is changed. Blobs are counted from their files without opening them.
//!
//! What it does not do: read a live relay (use the metrics, `--metrics`), give an envelope's
//! age (the relay keeps no send time, only the expiry), or show anything per queue.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::store::sled_store::SledStore;
use crate::store::{QueueStore, StoreError, StoreStats};

/// The sled database directory of the current store format.
const DB_DIR: &str = "db.v2";
/// The sled database directory of store format 1.
const OLD_DB_DIR: &str = "db";
/// sled's log file, which it locks while a process has the database open.
const DB_LOCK_FILE: &str = "db";
/// The queue store's key vault.
const VAULT_FILE: &str = "keys.vault";
/// The blob directory, and the blob key vault in it.
const BLOB_DIR: &str = "blobs";
/// How blob files end.
const BLOB_SUFFIX: &str = ".blob";

/// Flags of `hush-server stats`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct StatsArgs {
    /// The relay's data directory (the relay must be stopped)
    #[arg(long = "data", env = "HUSH_DATA")]
    pub data: PathBuf,
    /// Print one JSON object instead of text
    #[arg(long)]
    pub json: bool,
}

/// Why the data directory could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StatsError {
    /// No relay store in the directory.
    #[error(
        "no relay store in {0} (no {DB_DIR}/ in it); name the relay's data directory with --data"
    )]
    NotAStore(PathBuf),
    /// The store is of format 1.
    #[error("the store in {0} is of format 1; start the relay once to upgrade it, then retry")]
    OldFormat(PathBuf),
    /// A running relay holds the store.
    #[error("a running relay holds the store in {0}; stop it first, or read its metrics (--metrics) instead")]
    Locked(PathBuf),
    /// The store could not be opened or read.
    #[error("cannot read the store in {path}: {source}")]
    Store {
        /// The data directory.
        path: PathBuf,
        /// What failed.
        source: StoreError,
    },
    /// A file of the directory could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// What a data directory holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DataStats {
    /// Queues.
    pub queues: u64,
    /// Envelopes waiting for their recipient (expired ones not yet swept included).
    pub envelopes: u64,
    /// Their body bytes.
    pub envelope_bytes: u64,
    /// The earliest expiry of a waiting envelope, in Unix seconds.
    pub earliest_expiry: Option<u64>,
    /// Blob files, complete or not.
    pub blobs: u64,
    /// Bytes of the blob files on disk (headers included).
    pub blob_bytes: u64,
    /// Bytes of the queue store's key vault (`keys.vault`).
    pub vault_bytes: u64,
    /// Bytes of the blob key vault (`blobs/keys.vault`).
    pub blob_vault_bytes: u64,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StatsError + '_ {
    move |source| StatsError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Fails with [`StatsError::Locked`] if another process has the sled database in `dir` open.
fn check_unlocked(dir: &Path) -> Result<(), StatsError> {
    use rustix::fs::{flock, FlockOperation};
    let path = dir.join(DB_DIR).join(DB_LOCK_FILE);
    let file = std::fs::File::open(&path).map_err(io_err(&path))?;
    match flock(&file, FlockOperation::NonBlockingLockExclusive) {
        // Dropping the file releases the lock.
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::WOULDBLOCK) => Err(StatsError::Locked(dir.to_owned())),
        Err(e) => Err(io_err(&path)(e.into())),
    }
}

/// The size of the file at `path`, or 0 if there is none.
fn file_len(path: &Path) -> Result<u64, StatsError> {
    match std::fs::metadata(path) {
        Ok(m) => Ok(m.len()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(io_err(path)(e)),
    }
}

/// How many blob files `dir/blobs` holds and their bytes.
fn blob_files(dir: &Path) -> Result<(u64, u64), StatsError> {
    let blobs = dir.join(BLOB_DIR);
    let entries = match std::fs::read_dir(&blobs) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((0, 0)),
        Err(e) => return Err(io_err(&blobs)(e)),
    };
    let (mut count, mut bytes) = (0, 0);
    for entry in entries {
        let entry = entry.map_err(io_err(&blobs))?;
        if entry.file_name().to_string_lossy().ends_with(BLOB_SUFFIX) {
            count += 1;
            bytes += entry.metadata().map_err(io_err(&entry.path()))?.len();
        }
    }
    Ok((count, bytes))
}

/// Reads what the data directory `dir` holds. The relay must be stopped.
pub fn read(dir: &Path) -> Result<DataStats, StatsError> {
    if !dir.join(DB_DIR).is_dir() {
        if dir.join(OLD_DB_DIR).is_dir() {
            return Err(StatsError::OldFormat(dir.to_owned()));
        }
        return Err(StatsError::NotAStore(dir.to_owned()));
    }
    check_unlocked(dir)?;
    let store = SledStore::open(dir).map_err(|source| StatsError::Store {
        path: dir.to_owned(),
        source,
    })?;
    let counts: StoreStats = store.stats().unwrap_or_default();
    drop(store);
    let (blobs, blob_bytes) = blob_files(dir)?;
    Ok(DataStats {
        queues: counts.queues,
        envelopes: counts.envelopes,
        envelope_bytes: counts.envelope_bytes,
        earliest_expiry: counts.earliest_expiry,
        blobs,
        blob_bytes,
        vault_bytes: file_len(&dir.join(VAULT_FILE))?,
        blob_vault_bytes: file_len(&dir.join(BLOB_DIR).join(VAULT_FILE))?,
    })
}

/// Unix seconds now.
fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl DataStats {
    /// The plain-text report, expiry shown relative to `now` (Unix seconds).
    pub fn to_text(&self, now: u64) -> String {
        let expiry = match self.earliest_expiry {
            None => "none".to_owned(),
            Some(at) => {
                let when = humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(at));
                let left = humantime::format_duration(Duration::from_secs(at.saturating_sub(now)));
                format!("{when} (in {left})")
            }
        };
        format!(
            "queues: {}\nenvelopes pending: {} ({} bytes)\nearliest envelope expiry: {}\n\
             blobs: {} ({} bytes on disk)\nkey vault: {} bytes\nblob key vault: {} bytes\n",
            self.queues,
            self.envelopes,
            self.envelope_bytes,
            expiry,
            self.blobs,
            self.blob_bytes,
            self.vault_bytes,
            self.blob_vault_bytes,
        )
    }

    /// One JSON object, with the same fields as [`DataStats`].
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

/// Runs `hush-server stats`: the report for `args`, ready to print.
pub fn run(args: &StatsArgs) -> Result<String, StatsError> {
    let stats = read(&args.data)?;
    Ok(if args.json {
        format!("{}\n", stats.to_json())
    } else {
        stats.to_text(now_secs())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_without_a_current_store_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(read(dir.path()), Err(StatsError::NotAStore(_))));
        std::fs::create_dir(dir.path().join(OLD_DB_DIR)).unwrap();
        assert!(matches!(read(dir.path()), Err(StatsError::OldFormat(_))));
    }

    #[test]
    fn an_open_store_is_refused_as_locked_and_a_closed_one_is_counted() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let err = read(dir.path()).unwrap_err();
        assert!(matches!(err, StatsError::Locked(_)), "{err}");
        assert!(err.to_string().contains("stop it first"));
        drop(store);
        let stats = read(dir.path()).unwrap();
        assert_eq!((stats.queues, stats.envelopes, stats.blobs), (0, 0, 0));
        assert!(stats.vault_bytes > 0);
        let text = stats.to_text(0);
        assert!(
            text.contains("queues: 0\n") && text.contains("expiry: none"),
            "{text}"
        );
        let json: serde_json::Value = serde_json::from_str(&stats.to_json()).unwrap();
        assert_eq!(json["earliest_expiry"], serde_json::Value::Null);
    }
}
