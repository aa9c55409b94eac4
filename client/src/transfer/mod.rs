//! File transfer: the [`Transfers`] value the client owns, which moves encrypted files to and
//! from blobs on relays and keeps what a transfer needs between calls.
//!
//! - `upload`: encrypt a file chunk by chunk as it is read and push it, padded, to a blob on
//!   our relay, resumably; `source` reads the file and notices when it changes, and `seals`
//!   keeps the hashes of what was sent, so that no position is ever sent with other bytes.
//! - `download`: stage a received file's ciphertext in the home, resumably, check it, and only
//!   then decrypt it into place (`decrypt`).
//! - `state`: the records kept in the encrypted store, each with its contact and its end:
//!   uploads in progress and staged downloads ([`Transfers::expire_records`],
//!   `forget_contact_records`, called when a contact is erased).
//! - `owed`: deletions still owed to a relay (blobs, and the queues of expired invitations).
//! - `parts`: the names of decrypted temporary files, where a file cannot be unnamed.
//! - `staging`: where downloaded ciphertext is staged, and what to forget when a file message is
//!   shredded.
//! - `hooks`: switches for the crash tests (debug builds only).
//!
//! What it does not do: compose or send the file message, or decide when a message is deleted.
//! The client does that with the conversation, and calls [`staging::forget_file`] before it
//! shreds a file message's record.

mod decrypt;
pub(crate) mod disk;
mod download;
mod hooks;
pub(crate) mod owed;
mod parts;
mod seals;
mod source;
pub(crate) mod staging;
mod state;
mod tags;
mod upload;

use std::sync::Arc;
use std::time::Duration;

use hush_protocol::{ErrorCode, RelayAddress};

use crate::client::error::ClientError;
use crate::clock::Clock;
use crate::net::{Connection, RelayCallError, RelayPool};
use crate::store::LocalStore;

pub(crate) use state::forget_contact as forget_contact_records;
pub use upload::ProgressFn;

/// Relay requests a transfer keeps in flight on its connection.
const IN_FLIGHT: usize = 16;
/// Retries in a row without progress before a transfer gives up as interrupted.
const MAX_STALLS: u32 = 5;
/// How long a transfer waits after the relay said it sends too fast.
const RATE_PAUSE: Duration = Duration::from_millis(200);

/// How far a transfer got, for a progress bar: bytes of the file's ciphertext moved of the
/// total. The blob's padding counts pro rata: `done` reaches `total` with the last padding byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TransferProgress {
    /// Bytes moved so far (including what an earlier, interrupted run moved).
    pub done: u64,
    /// Bytes in all.
    pub total: u64,
}

impl TransferProgress {
    /// The progress of a transfer of a blob with `layout` that moved `done` bytes of it.
    fn of(layout: &crate::files::Layout, done: u64) -> TransferProgress {
        let (total, blob) = (layout.cipher_len(), layout.blob_len().max(1));
        let scaled = u128::from(done.min(blob)) * u128::from(total) / u128::from(blob);
        TransferProgress {
            done: u64::try_from(scaled).unwrap_or(total),
            total,
        }
    }
}

/// The client's file transfers: uploads to our relay, downloads from the sender's relay, and
/// the deletions owed to relays. A clone shares the same store, pool and records.
#[derive(Clone)]
pub(crate) struct Transfers {
    store: Arc<LocalStore>,
    pool: RelayPool,
    /// Our relay, where uploads go.
    relay: RelayAddress,
    clock: Clock,
    /// Decrypted temporary files on record.
    parts: parts::Parts,
}

impl Transfers {
    /// Transfers over `pool`, recording their state in `store`, uploading to `relay`.
    pub(crate) fn new(
        store: Arc<LocalStore>,
        pool: RelayPool,
        relay: RelayAddress,
        clock: Clock,
    ) -> Transfers {
        Transfers {
            parts: parts::Parts::new(store.clone()),
            store,
            pool,
            relay,
            clock,
        }
    }

    /// Removes the decrypted temporary files that a save cut off (by a crash, a kill or a
    /// power loss) left on record, except those a save in this process is writing.
    pub(crate) fn clean_parts(&self) -> Result<(), ClientError> {
        self.parts.clean()
    }

    /// What a failed relay call in a transfer means, forgetting a dead connection.
    async fn interrupt(&self, conn: &Connection, e: RelayCallError) -> Interrupt {
        let i = classify(conn.relay(), e);
        if matches!(
            i,
            Interrupt::Retry {
                reconnect: true,
                ..
            }
        ) {
            self.pool.forget(conn).await;
        }
        i
    }

    /// The live connection to `relay`, or the error of a transfer cut off from it.
    async fn connection(&self, relay: &RelayAddress) -> Result<Connection, Interrupt> {
        self.pool
            .connection(relay)
            .await
            .map_err(|_| Interrupt::Fatal(interrupted(relay)))
    }
}

/// The error of a transfer cut off from `relay`.
fn interrupted(relay: &RelayAddress) -> ClientError {
    ClientError::TransferInterrupted {
        relay: relay.clone(),
    }
}

/// What one failed relay call means for a transfer.
enum Interrupt {
    /// Ask the relay where the blob stands and go on from there (after `pause`, and on a new
    /// connection if `reconnect`).
    Retry {
        pause: Option<Duration>,
        reconnect: bool,
    },
    /// The blob is gone from the relay.
    Gone,
    /// Stop with this error.
    Fatal(ClientError),
}

/// Classifies a failed blob call on `relay`.
fn classify(relay: &RelayAddress, e: RelayCallError) -> Interrupt {
    use RelayCallError as E;
    match e {
        E::Relay(ErrorCode::RateLimited) => Interrupt::Retry {
            pause: Some(RATE_PAUSE),
            reconnect: false,
        },
        E::Relay(ErrorCode::BlobOffset) => Interrupt::Retry {
            pause: None,
            reconnect: false,
        },
        E::Relay(ErrorCode::ShuttingDown) => Interrupt::Retry {
            pause: None,
            reconnect: true,
        },
        E::Relay(ErrorCode::NoBlob) => Interrupt::Gone,
        E::Relay(ErrorCode::NoSpace) => Interrupt::Fatal(ClientError::RelayFull {
            relay: relay.clone(),
        }),
        E::Relay(code) => Interrupt::Fatal(ClientError::Relay {
            relay: relay.clone(),
            code,
        }),
        E::Protocol => Interrupt::Fatal(ClientError::RelayProtocol {
            relay: relay.clone(),
        }),
        _ => Interrupt::Retry {
            pause: None,
            reconnect: true,
        },
    }
}

/// Counts the retries of a transfer that made no progress, and gives up after
/// [`MAX_STALLS`] in a row.
#[derive(Default)]
struct Stalls {
    best: u64,
    count: u32,
}

impl Stalls {
    /// After an interrupted attempt that got as far as `reached`: fails with
    /// [`ClientError::TransferInterrupted`] if it is the last straw, else waits `pause`.
    async fn retry_after(
        &mut self,
        reached: u64,
        pause: Option<Duration>,
        relay: &RelayAddress,
    ) -> Result<(), ClientError> {
        if reached > self.best {
            self.best = reached;
            self.count = 0;
        } else {
            self.count += 1;
        }
        if self.count >= MAX_STALLS {
            return Err(interrupted(relay));
        }
        if let Some(pause) = pause {
            tokio::time::sleep(pause).await;
        }
        Ok(())
    }
}

#[cfg(test)]
mod state_tests;
