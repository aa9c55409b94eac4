//! Draws the conversation list: a header, one row per contact or group with its unread count
//! (the selected row highlighted), the last notice, and the keys.
//!
//! What it does not do: change the list or read the client.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph};
use ratatui::Frame;

use super::list::{Conversations, Kind, ListEntry};

/// The keys of the list, as its bottom line shows them.
pub(crate) const LIST_KEYS: &str = " Up/Down choose | Enter open | q, Esc or Ctrl-C quit ";

/// Draws the list into `frame`.
pub(crate) fn render(frame: &mut Frame<'_>, list: &Conversations) {
    let [header, body, notice, keys] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    let total: usize = list.entries.iter().map(ListEntry::unread).sum();
    frame.render_widget(
        Paragraph::new(format!(" hush chat: conversations | {total} unread"))
            .style(Style::default().add_modifier(Modifier::REVERSED | Modifier::BOLD)),
        header,
    );
    render_rows(frame, list, body);
    let text = list.notice.as_deref().unwrap_or_default();
    frame.render_widget(
        Paragraph::new(format!("-- {text}")).style(
            Style::default()
                .fg(Color::DarkGray)
                .add_modifier(Modifier::ITALIC),
        ),
        notice,
    );
    frame.render_widget(
        Block::default().borders(Borders::TOP).title(LIST_KEYS),
        keys,
    );
}

/// One row: the name, what it is, and how many messages wait unread.
pub(crate) fn row_text(entry: &ListEntry) -> String {
    let kind = match entry.kind {
        Kind::Contact => "contact",
        Kind::Group => "group",
    };
    let unread = match entry.unread() {
        0 => String::new(),
        n => format!("{n} unread"),
    };
    format!("{:<24} {kind:<8} {unread}", entry.name)
}

fn render_rows(frame: &mut Frame<'_>, list: &Conversations, area: Rect) {
    let height = usize::from(area.height.max(1));
    // Keep the selected row in sight.
    let start = list.selected.saturating_sub(height - 1);
    let lines: Vec<Line<'static>> = list
        .entries
        .iter()
        .enumerate()
        .skip(start)
        .take(height)
        .map(|(i, entry)| {
            let marker = if i == list.selected { ">" } else { " " };
            let text = format!("{marker} {}", row_text(entry));
            let style = match (i == list.selected, entry.unread() > 0) {
                (true, _) => Style::default().add_modifier(Modifier::REVERSED),
                (false, true) => Style::default().add_modifier(Modifier::BOLD),
                (false, false) => Style::default(),
            };
            Line::styled(text, style)
        })
        .collect();
    let lines = if lines.is_empty() {
        vec![Line::raw(
            "  no contacts or groups yet: `hush invite` or `hush group create` first",
        )]
    } else {
        lines
    };
    frame.render_widget(Paragraph::new(lines), area);
}

#[cfg(test)]
mod tests {
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;

    use super::*;

    fn screen(list: &Conversations) -> String {
        let mut terminal = Terminal::new(TestBackend::new(60, 8)).unwrap();
        terminal.draw(|f| render(f, list)).unwrap();
        let buffer = terminal.backend().buffer();
        let width = usize::from(buffer.area.width);
        buffer
            .content()
            .chunks(width)
            .map(|row| row.iter().map(|c| c.symbol()).collect::<String>())
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn rows_show_kind_and_unread_count_and_the_selection() {
        let mut list = Conversations::default();
        list.sync(vec![
            ("bob".into(), Kind::Contact),
            ("team".into(), Kind::Group),
        ]);
        list.add_unread("team", "t1");
        list.add_unread("team", "t2");
        list.select("team");
        let all = screen(&list);
        assert!(all.contains("2 unread"), "{all}");
        let bob = all.lines().find(|l| l.contains("bob")).unwrap();
        assert!(bob.contains("contact") && !bob.contains("unread"), "{all}");
        let team = all.lines().find(|l| l.contains("team")).unwrap();
        assert!(
            team.starts_with("> team") && team.contains("group"),
            "{all}"
        );
        assert!(team.contains("2 unread"), "{all}");
        assert!(all.contains("Enter open"), "{all}");
    }

    #[test]
    fn an_empty_list_says_how_to_start() {
        let all = screen(&Conversations::default());
        assert!(all.contains("hush invite"), "{all}");
    }
}
