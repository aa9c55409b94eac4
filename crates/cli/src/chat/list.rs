//! The conversation list of `hush chat`: every contact and group, with how many messages in
//! each wait unread, and which one is selected.
//!
//! Unread messages are kept by id, so a message that expires or is unsent before it is read no
//! longer counts. Plain data, tested without a terminal or a client.
//!
//! What it does not do: read the client (the event loop feeds it) or draw (see `list_view.rs`).

use std::collections::BTreeSet;

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

/// Whether a conversation is with a contact or in a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Kind {
    /// A contact.
    Contact,
    /// A group.
    Group,
}

/// One conversation in the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ListEntry {
    /// The contact's or the group's local name.
    pub(crate) name: String,
    /// Contact or group.
    pub(crate) kind: Kind,
    /// The ids (hex) of the messages not yet shown.
    unread: BTreeSet<String>,
}

impl ListEntry {
    /// How many messages wait unread.
    pub(crate) fn unread(&self) -> usize {
        self.unread.len()
    }
}

/// What a key press in the list asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ListOutcome {
    /// Nothing beyond redrawing.
    None,
    /// Open this conversation.
    Open(String),
    /// Leave `hush chat`.
    Quit,
}

/// The conversation list.
#[derive(Debug, Clone, Default)]
pub(crate) struct Conversations {
    /// Contacts first, then groups, each by name.
    pub(crate) entries: Vec<ListEntry>,
    /// The index of the selected entry.
    pub(crate) selected: usize,
    /// The last thing worth saying (a relay trouble, a group change), shown under the list.
    pub(crate) notice: Option<String>,
}

impl Conversations {
    /// Makes the list hold exactly `known` (names and kinds), keeping the unread messages of
    /// those already listed and the selection on the same name where it still is.
    pub(crate) fn sync(&mut self, known: Vec<(String, Kind)>) {
        let selected = self.selected_name().map(str::to_owned);
        let mut entries: Vec<ListEntry> = known
            .into_iter()
            .map(|(name, kind)| {
                let unread = self
                    .entries
                    .iter()
                    .find(|e| e.name == name && e.kind == kind)
                    .map(|e| e.unread.clone())
                    .unwrap_or_default();
                ListEntry { name, kind, unread }
            })
            .collect();
        entries.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
        entries.dedup_by(|a, b| a.name == b.name);
        self.entries = entries;
        self.selected = selected
            .and_then(|name| self.position(&name))
            .unwrap_or(0)
            .min(self.entries.len().saturating_sub(1));
    }

    /// Records message `id` in conversation `name` as unread. Returns `false` if `name` is not
    /// listed (the caller syncs the list and tries again).
    pub(crate) fn add_unread(&mut self, name: &str, id: &str) -> bool {
        match self.entries.iter_mut().find(|e| e.name == name) {
            Some(entry) => {
                entry.unread.insert(id.to_owned());
                true
            }
            None => false,
        }
    }

    /// Forgets message `id` wherever it was unread (it expired or was unsent).
    pub(crate) fn forget_message(&mut self, id: &str) {
        for entry in &mut self.entries {
            entry.unread.remove(id);
        }
    }

    /// Marks every message of `name` read (its conversation is on screen).
    pub(crate) fn mark_read(&mut self, name: &str) {
        if let Some(entry) = self.entries.iter_mut().find(|e| e.name == name) {
            entry.unread.clear();
        }
    }

    /// How many messages of `name` wait unread.
    #[cfg(test)]
    pub(crate) fn unread(&self, name: &str) -> usize {
        self.entries
            .iter()
            .find(|e| e.name == name)
            .map_or(0, ListEntry::unread)
    }

    /// How many messages wait unread outside conversation `name`.
    pub(crate) fn unread_except(&self, name: &str) -> usize {
        self.entries
            .iter()
            .filter(|e| e.name != name)
            .map(ListEntry::unread)
            .sum()
    }

    /// The name of the selected conversation.
    pub(crate) fn selected_name(&self) -> Option<&str> {
        self.entries.get(self.selected).map(|e| e.name.as_str())
    }

    /// Selects `name`, if listed.
    pub(crate) fn select(&mut self, name: &str) {
        if let Some(i) = self.position(name) {
            self.selected = i;
        }
    }

    fn position(&self, name: &str) -> Option<usize> {
        self.entries.iter().position(|e| e.name == name)
    }

    /// Applies a key press: arrows move, Enter opens, `q`, Esc or Ctrl-C leave.
    pub(crate) fn on_key(&mut self, key: KeyEvent) -> ListOutcome {
        if key.kind == KeyEventKind::Release {
            return ListOutcome::None;
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let last = self.entries.len().saturating_sub(1);
        match key.code {
            KeyCode::Char('c' | 'd') if ctrl => ListOutcome::Quit,
            KeyCode::Char('q') | KeyCode::Esc => ListOutcome::Quit,
            KeyCode::Up | KeyCode::Char('k') => {
                self.selected = self.selected.saturating_sub(1);
                ListOutcome::None
            }
            KeyCode::Down | KeyCode::Char('j') => {
                self.selected = (self.selected + 1).min(last);
                ListOutcome::None
            }
            KeyCode::Home => {
                self.selected = 0;
                ListOutcome::None
            }
            KeyCode::End => {
                self.selected = last;
                ListOutcome::None
            }
            KeyCode::Enter => match self.selected_name() {
                Some(name) => ListOutcome::Open(name.to_owned()),
                None => {
                    self.notice = Some(
                        "no contacts or groups yet: `hush invite` or `hush group create` first"
                            .into(),
                    );
                    ListOutcome::None
                }
            },
            _ => ListOutcome::None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list() -> Conversations {
        let mut list = Conversations::default();
        list.sync(vec![
            ("team".into(), Kind::Group),
            ("carol".into(), Kind::Contact),
            ("bob".into(), Kind::Contact),
        ]);
        list
    }

    fn names(list: &Conversations) -> Vec<&str> {
        list.entries.iter().map(|e| e.name.as_str()).collect()
    }

    #[test]
    fn contacts_come_first_then_groups_each_by_name() {
        assert_eq!(names(&list()), ["bob", "carol", "team"]);
    }

    #[test]
    fn unread_counts_follow_arrivals_reads_expiry_and_unsend() {
        let mut list = list();
        assert!(list.add_unread("team", "a1"));
        assert!(list.add_unread("team", "a2"));
        assert!(list.add_unread("team", "a2"), "a redelivery");
        assert!(list.add_unread("bob", "b1"));
        assert!(!list.add_unread("dave", "d1"), "dave is not listed");
        assert_eq!(list.unread("team"), 2);
        assert_eq!(list.unread("bob"), 1);
        assert_eq!(list.unread_except("bob"), 2);

        list.forget_message("a1");
        assert_eq!(list.unread("team"), 1);
        list.mark_read("team");
        assert_eq!(list.unread("team"), 0);
        assert_eq!(list.unread_except("carol"), 1);
    }

    #[test]
    fn a_sync_keeps_unread_counts_and_the_selection() {
        let mut list = list();
        list.add_unread("carol", "c1");
        list.select("carol");
        list.sync(vec![
            ("carol".into(), Kind::Contact),
            ("dave".into(), Kind::Contact),
            ("team".into(), Kind::Group),
        ]);
        assert_eq!(names(&list), ["carol", "dave", "team"]);
        assert_eq!(list.unread("carol"), 1);
        assert_eq!(list.selected_name(), Some("carol"));
        // The selected conversation is gone: the selection stays inside the list.
        list.select("team");
        list.sync(vec![("carol".into(), Kind::Contact)]);
        assert_eq!(list.selected_name(), Some("carol"));
        list.sync(Vec::new());
        assert_eq!(list.selected_name(), None);
    }

    #[test]
    fn arrows_choose_and_enter_opens() {
        let mut list = list();
        let key = |code| KeyEvent::from(code);
        assert_eq!(list.on_key(key(KeyCode::Up)), ListOutcome::None);
        assert_eq!(list.selected_name(), Some("bob"));
        list.on_key(key(KeyCode::Down));
        list.on_key(key(KeyCode::Down));
        list.on_key(key(KeyCode::Down));
        assert_eq!(list.selected_name(), Some("team"));
        assert_eq!(
            list.on_key(key(KeyCode::Enter)),
            ListOutcome::Open("team".into())
        );
        assert_eq!(list.on_key(key(KeyCode::Char('q'))), ListOutcome::Quit);
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(list.on_key(ctrl_c), ListOutcome::Quit);
    }

    #[test]
    fn enter_on_an_empty_list_explains() {
        let mut list = Conversations::default();
        assert_eq!(
            list.on_key(KeyEvent::from(KeyCode::Enter)),
            ListOutcome::None
        );
        assert!(list.notice.as_deref().unwrap_or("").contains("hush invite"));
    }
}
