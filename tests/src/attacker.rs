//! A forensic attacker: someone who gets, after the fact, a copy of a hush home directory with
//! its key file (or its passphrase), and of a relay's data directory with its `device.key`.
//!
//! What it does: [`Seizure`] copies a directory to a temporary one (so nothing it does can
//! change or repair the original, and a live process's sled lock does not matter), reads the raw
//! bytes and the name of every file and directory in it, then opens the copy's key vault with
//! `hush_vault` and its sled database with the `sled` crate directly, and decrypts every live
//! record with every key the vault still holds. [`Markers`] are what the attacker looks for
//! (message text, contact names, message ids in raw and hex spelling, file contents, file
//! names); they are searched for in the plaintexts, the raw bytes and the names, and each hit is
//! reported with its [`Place`].
//!
//! The search must prove it can see: [`Markers::seen_in`], run on a seizure taken before the
//! deletion, panics unless it finds every marker, and only the [`Seen`] it returns can check
//! that the markers are gone ([`Seen::gone_from`]). A seizure of a missing directory, or of one
//! where no file could be read, panics.
//!
//! sled's log keeps old values that iteration no longer shows. Rather than parse the log, the
//! attacker checks the invariant that makes those copies unreadable: every occupied vault slot
//! holds the key of a live record. A slot that does not ([`Orphan`]) is a key that outlived its
//! record and could decrypt an old copy ([`Seizure::assert_no_orphan_keys`]).
//!
//! What it does not do: open anything through `LocalStore::open` or `SledStore::open` (both
//! repair what they find), read the relay's blob files (only their raw bytes and names are
//! searched), or look at memory, swap or the blocks a file system no longer references.

mod markers;
mod seize;
mod stores;

pub use markers::{Found, Markers, Seen};
pub use seize::{Orphan, Place, Seizure};

/// A text no store would hold by chance, to plant and search for: `PREFIX-TAG-` and 16 random
/// hex digits.
pub fn unique_text(prefix: &str, tag: &str) -> String {
    use rand::RngCore;
    let mut r = [0u8; 8];
    rand::rngs::OsRng.fill_bytes(&mut r);
    let r: String = r.iter().map(|b| format!("{b:02x}")).collect();
    format!("{prefix}-{tag}-{r}")
}
