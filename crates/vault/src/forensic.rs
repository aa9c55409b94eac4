//! Forensic search for tests (feature `testing`): does any file under a directory still hold
//! bytes that must be gone, or that must never be stored in the clear?
//!
//! [`search`] reads every file under a directory and reports how many it searched, which it
//! could not read, and which hold the [`Pattern`]. It fails if the directory cannot be listed or
//! no file in it could be read, so a search of the wrong place never passes as "not found".
//! [`assert_can_see`] plants the pattern in a file under the directory and checks that a search
//! finds it there: the proof that a later "not found" means something. [`assert_gone`] does
//! both.
//!
//! What it does not do: decrypt anything (a test holding keys tries them itself), search
//! memory, or look at free disk blocks. It is for tests only, and panics in its `assert_*`
//! helpers as tests expect.

#![allow(clippy::panic, clippy::expect_used)]

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// What a search looks for.
#[derive(Clone, Debug)]
pub struct Pattern<'a> {
    /// The bytes a probe file holds to match.
    sample: &'a [u8],
    /// What matches.
    kind: Kind<'a>,
}

#[derive(Clone, Debug)]
enum Kind<'a> {
    /// The needle itself, whole.
    Whole(&'a [u8]),
    /// Any of these parts, `len` bytes each.
    Parts { len: usize, set: HashSet<&'a [u8]> },
}

impl<'a> Pattern<'a> {
    /// `needle` itself, whole. Panics if it is empty.
    pub fn bytes(needle: &'a [u8]) -> Self {
        assert!(!needle.is_empty(), "an empty needle matches everything");
        Self {
            sample: needle,
            kind: Kind::Whole(needle),
        }
    }

    /// Any `len` consecutive bytes of `secret`, wherever they start: a surviving copy of any
    /// part of it that long is found. Panics if `secret` is shorter than `len` or `len` is 0.
    pub fn windows(secret: &'a [u8], len: usize) -> Self {
        Self::parts(secret, len, secret.windows(len.max(1)).collect())
    }

    /// Any `len`-byte piece of `secret` that starts at a multiple of `len`: a surviving copy of
    /// any `2 * len - 1` consecutive bytes of it is found, at a fraction of the cost of
    /// [`Pattern::windows`]. Panics if `secret` is shorter than `len` or `len` is 0.
    pub fn pieces(secret: &'a [u8], len: usize) -> Self {
        Self::parts(secret, len, secret.chunks_exact(len.max(1)).collect())
    }

    fn parts(secret: &'a [u8], len: usize, set: HashSet<&'a [u8]>) -> Self {
        assert!(
            len > 0 && secret.len() >= len,
            "a pattern of {len}-byte parts needs a secret of at least {len} bytes"
        );
        Self {
            sample: &secret[..len],
            kind: Kind::Parts { len, set },
        }
    }

    /// Whether `hay` holds the pattern.
    pub fn found_in(&self, hay: &[u8]) -> bool {
        self.offset_in(hay).is_some()
    }

    /// The offset in `hay` of the first match.
    pub fn offset_in(&self, hay: &[u8]) -> Option<usize> {
        match &self.kind {
            Kind::Whole(needle) => find(hay, needle),
            Kind::Parts { len, set } => hay.windows(*len).position(|w| set.contains(w)),
        }
    }
}

/// The offset of the first occurrence of `needle` in `hay`: a scan for its first byte, then a
/// compare, so long needles cost no more than short ones.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let (&first, rest) = needle.split_first()?;
    let last = hay.len().checked_sub(needle.len())?;
    let mut at = 0;
    while at <= last {
        let start = at + hay[at..=last].iter().position(|&b| b == first)?;
        if &hay[start + 1..start + needle.len()] == rest {
            return Some(start);
        }
        at = start + 1;
    }
    None
}

/// What a search of a directory found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// How many files were read and searched.
    pub searched: usize,
    /// Files (or directories) that could not be read, so were not searched.
    pub unreadable: Vec<PathBuf>,
    /// The files that hold the pattern.
    pub found: Vec<PathBuf>,
}

impl Report {
    /// Whether every file was read and none holds the pattern.
    pub fn is_clean(&self) -> bool {
        self.found.is_empty() && self.unreadable.is_empty()
    }
}

/// Why a search could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SearchError {
    /// The directory does not exist or cannot be listed.
    #[error("cannot list {path}: {source}")]
    Unlisted {
        /// The directory searched.
        path: PathBuf,
        /// What listing it returned.
        source: io::Error,
    },
    /// The directory holds no file that could be read: nothing was searched.
    #[error("no readable file under {0}")]
    NothingReadable(PathBuf),
}

/// Reads every file under `dir`, recursively, and reports which hold `pattern`.
pub fn search(dir: &Path, pattern: &Pattern<'_>) -> Result<Report, SearchError> {
    let top = fs::read_dir(dir).map_err(|source| SearchError::Unlisted {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut report = Report::default();
    let mut listings = vec![Ok(top)];
    let mut dirs = Vec::new();
    while let Some(listing) = listings.pop() {
        let entries = match listing {
            Ok(entries) => entries,
            Err(path) => {
                report.unreadable.push(path);
                continue;
            }
        };
        for entry in entries {
            let Ok(entry) = entry else { continue };
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                dirs.push(path);
            } else {
                search_file(&path, pattern, &mut report);
            }
        }
        listings.extend(dirs.drain(..).map(|d| fs::read_dir(&d).map_err(|_| d)));
    }
    if report.searched == 0 {
        return Err(SearchError::NothingReadable(dir.to_path_buf()));
    }
    Ok(report)
}

fn search_file(path: &Path, pattern: &Pattern<'_>, report: &mut Report) {
    match fs::read(path) {
        Ok(bytes) => {
            report.searched += 1;
            if pattern.found_in(&bytes) {
                report.found.push(path.to_path_buf());
            }
        }
        Err(_) => report.unreadable.push(path.to_path_buf()),
    }
}

/// The files under `dir` that hold `pattern`. Panics if the search cannot be made or a file
/// could not be read.
#[track_caller]
pub fn files_holding(dir: &Path, pattern: &Pattern<'_>) -> Vec<PathBuf> {
    let report = search(dir, pattern).unwrap_or_else(|e| panic!("forensic search: {e}"));
    assert!(
        report.unreadable.is_empty(),
        "forensic search of {}: could not read {:?}",
        dir.display(),
        report.unreadable
    );
    report.found
}

/// Checks that no file under `dir` holds `pattern`, and returns the report. Panics if one does,
/// if the search cannot be made, or if a file could not be read.
#[track_caller]
pub fn assert_absent(dir: &Path, pattern: &Pattern<'_>) -> Report {
    let report = search(dir, pattern).unwrap_or_else(|e| panic!("forensic search: {e}"));
    assert!(
        report.is_clean(),
        "forensic search of {} ({} files): found in {:?}, could not read {:?}",
        dir.display(),
        report.searched,
        report.found,
        report.unreadable
    );
    report
}

/// Shows that a search of `dir` sees `pattern`: writes a file holding it (between other bytes)
/// under `dir`, checks that [`search`] finds it in that file, and removes the file. Panics if
/// the search misses it. Returns how many files the search read.
#[track_caller]
pub fn assert_can_see(dir: &Path, pattern: &Pattern<'_>) -> usize {
    static PROBES: AtomicU64 = AtomicU64::new(0);
    let n = PROBES.fetch_add(1, Ordering::Relaxed);
    let probe = dir.join(format!("forensic-probe-{}-{n}", std::process::id()));
    let mut bytes = vec![0xA5; 37];
    bytes.extend_from_slice(pattern.sample);
    bytes.extend_from_slice(&[0x5A; 41]);
    fs::write(&probe, bytes).expect("write the probe file");
    let report = search(dir, pattern);
    fs::remove_file(&probe).expect("remove the probe file");
    let report = report.unwrap_or_else(|e| panic!("forensic search: {e}"));
    assert!(
        report.found.contains(&probe),
        "forensic search of {} ({} files) missed the planted pattern",
        dir.display(),
        report.searched
    );
    report.searched
}

/// [`assert_can_see`], then [`assert_absent`]: the search sees `pattern` under `dir` when it is
/// there, and it is not there. Returns the report of the second search.
#[track_caller]
pub fn assert_gone(dir: &Path, pattern: &Pattern<'_>) -> Report {
    assert_can_see(dir, pattern);
    assert_absent(dir, pattern)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_reports_and_refuses_to_search_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        let needle = Pattern::bytes(b"needle");
        assert!(matches!(
            search(&missing, &needle),
            Err(SearchError::Unlisted { .. })
        ));
        assert!(matches!(
            search(dir.path(), &needle),
            Err(SearchError::NothingReadable(_))
        ));
        fs::create_dir(dir.path().join("sub")).unwrap();
        fs::write(dir.path().join("a"), b"hay").unwrap();
        fs::write(dir.path().join("sub/b"), b"hay needle hay").unwrap();
        let report = search(dir.path(), &needle).unwrap();
        assert_eq!(report.searched, 2);
        assert_eq!(report.found, vec![dir.path().join("sub/b")]);
        assert_eq!(assert_can_see(dir.path(), &needle), 3);
        assert_eq!(
            assert_absent(dir.path(), &Pattern::bytes(b"gone")).searched,
            2
        );
    }

    #[test]
    fn whole_needles_are_found_at_their_first_offset() {
        let at = |hay: &[u8], needle: &[u8]| Pattern::bytes(needle).offset_in(hay);
        assert_eq!(at(b"abcabc", b"cab"), Some(2));
        assert_eq!(at(b"abc", b"abc"), Some(0));
        assert_eq!(at(b"xxabc", b"abc"), Some(2));
        assert_eq!(at(b"ab", b"abc"), None);
        assert_eq!(at(b"aaab", b"aab"), Some(1));
        assert_eq!(at(b"", b"a"), None);
    }

    #[test]
    fn windows_and_pieces_find_parts() {
        let secret: Vec<u8> = (0..=255).collect();
        let hay = [&[1u8, 2][..], &secret[100..140], &[3u8][..]].concat();
        assert!(Pattern::windows(&secret, 32).found_in(&hay));
        assert!(!Pattern::pieces(&secret, 32).found_in(&hay));
        assert!(Pattern::pieces(&secret, 32).found_in(&secret[90..160]));
        assert!(!Pattern::windows(&secret, 32).found_in(&secret[..31]));
    }
}
