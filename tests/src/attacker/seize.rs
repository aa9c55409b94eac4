//! [`Seizure`]: a copy of a home or a relay data directory, read the way an attacker with its
//! keys reads it.
//!
//! What it does: copies the directory to a temporary one, keeps the raw bytes and the name of
//! every file and directory, opens the copy's store (see `stores`), keeps every plaintext and
//! every live sled key and unsealed value, notes the vault slots no live record needs, and
//! deletes the copy.
//!
//! What it does not do: search (see `markers`), follow symbolic links, or touch the original.

use std::fmt;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::stores::{read_store, Layout, StoreImage, Unlock};

/// Where a marker was found.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Place {
    /// The plaintext of a live record, opened with the key in vault slot `slot`.
    Record {
        /// The seized directory.
        source: PathBuf,
        /// The record: its kind and sled key.
        record: String,
        /// The vault slot whose key opened it.
        slot: u64,
    },
    /// A live sled key, or a value the format stores unsealed.
    Entry {
        /// The seized directory.
        source: PathBuf,
        /// The record and which part of it.
        record: String,
    },
    /// The raw bytes of a file.
    File {
        /// The seized directory.
        source: PathBuf,
        /// The file, relative to `source`.
        path: PathBuf,
    },
    /// The name of a file, directory or link, or a link's target.
    Name {
        /// The seized directory.
        source: PathBuf,
        /// The entry, relative to `source`.
        path: PathBuf,
    },
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place::Record {
                source,
                record,
                slot,
            } => write!(
                f,
                "plaintext of {record} (key in slot {slot}) in {}",
                source.display()
            ),
            Place::Entry { source, record } => write!(f, "{record} in {}", source.display()),
            Place::File { source, path } => {
                write!(
                    f,
                    "bytes of file {} in {}",
                    path.display(),
                    source.display()
                )
            }
            Place::Name { source, path } => {
                write!(f, "name {} in {}", path.display(), source.display())
            }
        }
    }
}

/// A vault slot that holds a key no live record needs: a key that outlived its record, which
/// could decrypt an old copy of it in sled's log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Orphan {
    /// The seized directory.
    pub source: PathBuf,
    /// The slot's index.
    pub slot: u64,
    /// Whether a live record's header names the slot (its key then fails to open that record).
    pub named_by_live_record: bool,
}

/// Something searchable, and where it came from.
pub(super) struct Haystack {
    pub(super) place: Place,
    pub(super) bytes: Vec<u8>,
}

/// One seized directory.
struct Source {
    original: PathBuf,
    files: usize,
    bytes: u64,
    live_records: usize,
    unopened: Vec<String>,
    orphans: Vec<Orphan>,
    haystacks: Vec<Haystack>,
}

/// What an attacker holding copies of one or more directories, and their keys, can read.
pub struct Seizure {
    sources: Vec<Source>,
}

impl Seizure {
    /// Seizes a client home whose vault is locked by the key file `device.key` inside it.
    /// Panics if the directory is missing, holds no readable file, or is not such a home.
    pub fn home(dir: &Path) -> Seizure {
        Self::seize(dir, Some((Layout::Client, Unlock::KeyFile)))
    }

    /// Seizes a client home locked by `passphrase`.
    pub fn home_with_passphrase(dir: &Path, passphrase: &str) -> Seizure {
        Self::seize(dir, Some((Layout::Client, Unlock::Passphrase(passphrase))))
    }

    /// Seizes a relay's data directory: its `device.key`, and the queue store (`keys.vault`
    /// and `db.v2/`) beside it. The blob files are searched as raw bytes only.
    pub fn relay(dir: &Path) -> Seizure {
        Self::seize(dir, Some((Layout::Relay, Unlock::KeyFile)))
    }

    /// Seizes a directory that holds no store (a download directory, say): raw bytes and
    /// names only.
    pub fn files(dir: &Path) -> Seizure {
        Self::seize(dir, None)
    }

    /// This seizure and `other` together: searches cover both.
    pub fn and(mut self, other: Seizure) -> Seizure {
        self.sources.extend(other.sources);
        self
    }

    /// Files read, over every seized directory.
    pub fn files_searched(&self) -> usize {
        self.sources.iter().map(|s| s.files).sum()
    }

    /// Bytes read, over every seized directory.
    pub fn bytes_searched(&self) -> u64 {
        self.sources.iter().map(|s| s.bytes).sum()
    }

    /// Live sled entries, over every seized store.
    pub fn live_records(&self) -> usize {
        self.sources.iter().map(|s| s.live_records).sum()
    }

    /// Sealed live records that no remaining key opens.
    pub fn unopened_records(&self) -> Vec<String> {
        self.sources
            .iter()
            .flat_map(|s| s.unopened.iter().cloned())
            .collect()
    }

    /// Occupied vault slots whose key opens no live record.
    pub fn orphans(&self) -> Vec<Orphan> {
        self.sources
            .iter()
            .flat_map(|s| s.orphans.iter().cloned())
            .collect()
    }

    /// Panics, naming each slot, if a vault holds a key that opens no live record.
    pub fn assert_no_orphan_keys(&self) {
        let orphans = self.orphans();
        assert!(
            orphans.is_empty(),
            "vault keys that outlived their records (each could open an old copy in sled's \
             log): {}",
            orphans
                .iter()
                .map(|o| format!(
                    "slot {} in {}{}",
                    o.slot,
                    o.source.display(),
                    if o.named_by_live_record {
                        " (named by a live record it does not open)"
                    } else {
                        ""
                    }
                ))
                .collect::<Vec<_>>()
                .join("; ")
        );
    }

    /// The original directories, in order.
    pub fn sources(&self) -> Vec<&Path> {
        self.sources.iter().map(|s| s.original.as_path()).collect()
    }

    pub(super) fn haystacks(&self) -> impl Iterator<Item = &Haystack> {
        self.sources.iter().flat_map(|s| s.haystacks.iter())
    }

    fn seize(dir: &Path, store: Option<(Layout, Unlock<'_>)>) -> Seizure {
        let meta = fs::symlink_metadata(dir)
            .unwrap_or_else(|e| panic!("cannot seize {}: it does not exist ({e})", dir.display()));
        assert!(
            meta.is_dir(),
            "cannot seize {}: not a directory",
            dir.display()
        );
        let copy = tempfile::tempdir().expect("temporary directory for the copy");
        let mut source = Source {
            original: dir.to_path_buf(),
            files: 0,
            bytes: 0,
            live_records: 0,
            unopened: Vec::new(),
            orphans: Vec::new(),
            haystacks: Vec::new(),
        };
        copy_tree(dir, copy.path(), Path::new(""), &mut source);
        assert!(
            source.files > 0,
            "no file could be read under {}: nothing was searched",
            dir.display()
        );
        if let Some((layout, unlock)) = store {
            if layout == Layout::Client {
                check_marker(copy.path(), &unlock);
            }
            let image = read_store(copy.path(), layout, unlock);
            add_store(&mut source, &image);
        }
        Seizure {
            sources: vec![source],
        }
    }
}

impl fmt::Display for Seizure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for s in &self.sources {
            writeln!(
                f,
                "{}: {} files, {} bytes, {} live records, {} unopened, {} orphan keys",
                s.original.display(),
                s.files,
                s.bytes,
                s.live_records,
                s.unopened.len(),
                s.orphans.len()
            )?;
        }
        Ok(())
    }
}

/// Panics unless `dir` holds a home marker that agrees with how it is being unlocked.
fn check_marker(dir: &Path, unlock: &Unlock<'_>) {
    let marker = fs::read(dir.join("store.marker"))
        .unwrap_or_else(|e| panic!("not a hush home (no readable store.marker): {e}"));
    assert!(
        marker.len() == 9 && marker.starts_with(b"HUSHSTO1"),
        "not a hush home (store.marker is {marker:?})"
    );
    match (marker[8], unlock) {
        (0, Unlock::KeyFile) | (1, Unlock::Passphrase(_)) => {}
        (0, _) => panic!("this home is locked by its key file: use Seizure::home"),
        (1, _) => panic!("this home is locked by a passphrase: use Seizure::home_with_passphrase"),
        (b, _) => panic!("store.marker names an unknown key kind {b}"),
    }
}

/// Copies `from` into `to`, recording every name and every file's bytes; panics on any error.
fn copy_tree(from: &Path, to: &Path, rel: &Path, source: &mut Source) {
    let entries =
        fs::read_dir(from).unwrap_or_else(|e| panic!("cannot list {}: {e}", from.display()));
    for entry in entries {
        let entry = entry.unwrap_or_else(|e| panic!("cannot list {}: {e}", from.display()));
        let name = entry.file_name();
        let (src, dst, rel) = (entry.path(), to.join(&name), rel.join(&name));
        source.haystacks.push(Haystack {
            place: Place::Name {
                source: source.original.clone(),
                path: rel.clone(),
            },
            bytes: name.as_bytes().to_vec(),
        });
        let meta = fs::symlink_metadata(&src)
            .unwrap_or_else(|e| panic!("cannot stat {}: {e}", src.display()));
        if meta.is_dir() {
            fs::create_dir(&dst).unwrap_or_else(|e| panic!("cannot copy {}: {e}", src.display()));
            copy_tree(&src, &dst, &rel, source);
        } else if meta.is_symlink() {
            let target = fs::read_link(&src)
                .unwrap_or_else(|e| panic!("cannot read link {}: {e}", src.display()));
            source.haystacks.push(Haystack {
                place: Place::Name {
                    source: source.original.clone(),
                    path: rel,
                },
                bytes: target.as_os_str().as_bytes().to_vec(),
            });
        } else if meta.is_file() {
            let bytes =
                fs::read(&src).unwrap_or_else(|e| panic!("cannot read {}: {e}", src.display()));
            fs::write(&dst, &bytes)
                .unwrap_or_else(|e| panic!("cannot copy {}: {e}", src.display()));
            let mode = meta.permissions().mode() & 0o777;
            fs::set_permissions(&dst, fs::Permissions::from_mode(mode))
                .unwrap_or_else(|e| panic!("cannot copy {}: {e}", src.display()));
            source.files += 1;
            source.bytes += bytes.len() as u64;
            source.haystacks.push(Haystack {
                place: Place::File {
                    source: source.original.clone(),
                    path: rel,
                },
                bytes,
            });
        }
    }
}

/// Adds a store's plaintexts, keys, unsealed values and orphan slots to `source`.
fn add_store(source: &mut Source, image: &StoreImage) {
    let at = || source.original.clone();
    let mut found = Vec::new();
    for e in &image.entries {
        found.push(Haystack {
            place: Place::Entry {
                source: at(),
                record: format!("sled key of {}", e.label),
            },
            bytes: e.key.clone(),
        });
        if !e.sealed {
            found.push(Haystack {
                place: Place::Entry {
                    source: at(),
                    record: format!("unsealed value of {}", e.label),
                },
                bytes: e.value.clone(),
            });
        } else if e.opened.is_empty() {
            source
                .unopened
                .push(format!("{} in {}", e.label, source.original.display()));
        }
        for (slot, plain) in &e.opened {
            found.push(Haystack {
                place: Place::Record {
                    source: at(),
                    record: e.label.clone(),
                    slot: *slot,
                },
                bytes: plain.clone(),
            });
        }
    }
    source.live_records += image.entries.len();
    source.haystacks.extend(found);
    source.orphans = image
        .orphans()
        .into_iter()
        .map(|(slot, named)| Orphan {
            source: source.original.clone(),
            slot,
            named_by_live_record: named,
        })
        .collect();
}
