//! The relay's health check: does its storage still accept writes?
//!
//! [`probe`] makes a real write: it writes a small file ([`PROBE_FILE`]) in the data directory,
//! syncs it to disk and removes it (a full or read-only file system fails here), then asks the
//! queue store to prove it can still make writes durable ([`QueueStore::probe`]: for the sled
//! store, a group commit, which flushes sled and syncs the key vault). `GET /healthz` answers
//! 200 only when both succeed within [`PROBE_TIMEOUT`] (`monitor.rs`).
//!
//! What it does not do: check the network side (a relay that answers `/healthz` may still be
//! unreachable on its UDP port), or repair anything.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::store::{QueueStore, StoreError};

/// The file the probe writes, syncs and removes in the data directory.
pub const PROBE_FILE: &str = ".health-probe";

/// Longest a probe may take: a store whose flush hangs (as sled's can after the disk filled
/// up) is unhealthy, not a health check that never answers.
pub const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// Why the relay is not healthy.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HealthError {
    /// The data directory did not take a small write and sync.
    #[error("cannot write to the data directory {path}: {source}")]
    Disk {
        /// The probe file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The queue store could not make writes durable.
    #[error("the queue store cannot make writes durable: {0}")]
    Store(#[from] StoreError),
    /// The probe did not finish within [`PROBE_TIMEOUT`].
    #[error("the storage did not finish a small write within {PROBE_TIMEOUT:?}")]
    TimedOut,
}

/// Writes, syncs and removes the probe file in `dir`.
fn write_probe(dir: &Path) -> Result<(), HealthError> {
    let path = dir.join(PROBE_FILE);
    let disk = |source| HealthError::Disk {
        path: path.clone(),
        source,
    };
    let written = std::fs::File::create(&path).and_then(|mut f| {
        f.write_all(b"hush relay health probe\n")?;
        f.sync_data()
    });
    // Removed whether or not the write worked, so a failure leaves nothing behind.
    let removed = std::fs::remove_file(&path);
    written.map_err(disk)?;
    removed.map_err(disk)
}

/// Whether the data directory `dir` and `store` accept writes now, within [`PROBE_TIMEOUT`].
pub(crate) async fn probe<S: QueueStore>(dir: &Path, store: &S) -> Result<(), HealthError> {
    tokio::time::timeout(PROBE_TIMEOUT, probe_writes(dir, store))
        .await
        .map_err(|_| HealthError::TimedOut)?
}

async fn probe_writes<S: QueueStore>(dir: &Path, store: &S) -> Result<(), HealthError> {
    let owned = dir.to_owned();
    tokio::task::spawn_blocking(move || write_probe(&owned))
        .await
        .map_err(|e| HealthError::Disk {
            path: dir.join(PROBE_FILE),
            source: std::io::Error::other(e.to_string()),
        })??;
    store.probe().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_leaves_nothing_and_fails_where_it_cannot_write() {
        let dir = tempfile::tempdir().unwrap();
        write_probe(dir.path()).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        let missing = dir.path().join("gone");
        let err = write_probe(&missing).unwrap_err();
        assert!(err.to_string().contains("gone"), "{err}");
    }
}
