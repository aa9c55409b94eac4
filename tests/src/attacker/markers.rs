//! [`Markers`]: what the attacker looks for, and the two-step search that first proves it can
//! see ([`Markers::seen_in`]) and only then checks that the markers are gone
//! ([`Seen::gone_from`]).
//!
//! Each needle is matched with the shared `hush_vault::forensic` search.
//!
//! What it does not do: decide what a marker is worth (the test does), or search anything but
//! what a [`Seizure`] holds.

use std::fmt;
use std::path::PathBuf;

use crate::forensic::Pattern;

use super::seize::{Place, Seizure};
use super::stores::hex;

/// The shortest needle searched for: shorter ones turn up by chance in random bytes.
const MIN_NEEDLE_LEN: usize = 6;

/// One thing to look for, under one or more spellings.
#[derive(Clone, Debug)]
struct Marker {
    what: String,
    needles: Vec<(&'static str, Vec<u8>)>,
}

/// A hit: which marker, under which spelling, where, and at which byte offset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    /// The marker, as [`Markers`] named it.
    pub marker: String,
    /// The spelling found ("raw", "hex", "HEX", "utf-8").
    pub spelling: &'static str,
    /// Where.
    pub place: Place,
    /// The offset of the first hit in that place.
    pub offset: usize,
}

impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}) at offset {} of the {}",
            self.marker, self.spelling, self.offset, self.place
        )
    }
}

/// What the attacker looks for. Build it, then prove the search sees every marker with
/// [`Markers::seen_in`].
#[derive(Clone, Debug, Default)]
#[must_use = "markers do nothing until seen_in searches for them"]
pub struct Markers {
    list: Vec<Marker>,
}

impl Markers {
    /// No markers yet.
    pub fn new() -> Markers {
        Markers::default()
    }

    /// A message's text.
    pub fn text(self, text: &str) -> Markers {
        self.push(format!("message text {text:?}"), [("utf-8", text.into())])
    }

    /// A contact's name.
    pub fn contact(self, name: &str) -> Markers {
        self.push(format!("contact name {name:?}"), [("utf-8", name.into())])
    }

    /// A message id, found in raw bytes or in hex (either case).
    pub fn message_id(self, id: &[u8]) -> Markers {
        self.id("message", id)
    }

    /// An id of some `kind` ("queue", "sender", "envelope"), found in raw bytes or in hex
    /// (either case).
    pub fn id(self, kind: &str, id: &[u8]) -> Markers {
        let h = hex(id);
        self.push(
            format!("{kind} id {h}"),
            [
                ("raw", id.to_vec()),
                ("hex", h.clone().into_bytes()),
                ("HEX", h.to_uppercase().into_bytes()),
            ],
        )
    }

    /// A file's contents (searched as one needle: pass a distinctive part of a large file).
    pub fn file_content(self, label: &str, bytes: &[u8]) -> Markers {
        self.push(format!("file content {label:?}"), [("raw", bytes.to_vec())])
    }

    /// A file's name.
    pub fn file_name(self, name: &str) -> Markers {
        self.push(format!("file name {name:?}"), [("utf-8", name.into())])
    }

    /// Any other bytes (an envelope body, say), named by `label`.
    pub fn bytes(self, label: &str, bytes: &[u8]) -> Markers {
        self.push(label.to_owned(), [("raw", bytes.to_vec())])
    }

    fn push<const N: usize>(
        mut self,
        what: String,
        needles: [(&'static str, Vec<u8>); N],
    ) -> Markers {
        for (_, n) in &needles {
            assert!(
                n.len() >= MIN_NEEDLE_LEN,
                "marker {what} is shorter than {MIN_NEEDLE_LEN} bytes: it could turn up by \
                 chance; use a longer, distinctive one"
            );
        }
        self.list.push(Marker {
            what,
            needles: needles.into(),
        });
        self
    }

    /// Every place each marker occurs in `seizure`.
    pub fn search(&self, seizure: &Seizure) -> Vec<Found> {
        let mut out = Vec::new();
        for m in &self.list {
            for (spelling, needle) in &m.needles {
                for h in seizure.haystacks() {
                    if let Some(offset) = Pattern::bytes(needle).offset_in(&h.bytes) {
                        out.push(Found {
                            marker: m.what.clone(),
                            spelling,
                            place: h.place.clone(),
                            offset,
                        });
                    }
                }
            }
        }
        out
    }

    /// Searches a seizure taken while the markers must still be there. Panics, naming each
    /// marker it did not find, unless every one is found (so the later check can fail).
    pub fn seen_in(self, seizure: &Seizure) -> Seen {
        assert!(!self.list.is_empty(), "no markers to search for");
        let found = self.search(seizure);
        let missing: Vec<&str> = self
            .list
            .iter()
            .filter(|m| !found.iter().any(|f| f.marker == m.what))
            .map(|m| m.what.as_str())
            .collect();
        assert!(
            missing.is_empty(),
            "the search cannot see {} (so it could not tell that they are gone):\n  {}\n\
             searched: {seizure}",
            if missing.len() == 1 {
                "this marker"
            } else {
                "these markers"
            },
            missing.join("\n  "),
        );
        Seen {
            markers: self,
            sources: seizure.sources().iter().map(|p| p.to_path_buf()).collect(),
            before: found,
        }
    }
}

/// Markers the search has been shown to find. The only way to check that markers are gone.
#[must_use = "check that the markers are gone with gone_from"]
#[derive(Debug)]
pub struct Seen {
    markers: Markers,
    sources: Vec<PathBuf>,
    before: Vec<Found>,
}

impl Seen {
    /// Where each marker was found before.
    pub fn found_before(&self) -> &[Found] {
        &self.before
    }

    /// Panics, naming each marker still found and where, unless none is in `after`. `after`
    /// must cover every directory the markers were seen in.
    pub fn gone_from(&self, after: &Seizure) {
        let now = after.sources();
        for s in &self.sources {
            assert!(
                now.contains(&s.as_path()),
                "{} was searched before but is not part of this seizure",
                s.display()
            );
        }
        let found = self.markers.search(after);
        assert!(
            found.is_empty(),
            "{} marker hit(s) remain after the deletion:\n  {}\nsearched: {after}",
            found.len(),
            found
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n  ")
        );
    }
}
