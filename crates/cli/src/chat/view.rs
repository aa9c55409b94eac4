//! Draws the chat: a header (for a group, with a line of its members and their roles), the
//! conversation (newest at the bottom, each line with its author and a live countdown) and the
//! input line with the keys.
//!
//! What it does not do: change the model or read a clock; `now` comes in as an argument.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};
use ratatui::Frame;
use unicode_width::UnicodeWidthChar;

use super::model::{ChatMessage, ChatModel, Confirm, Direction, Entry, GroupPane};

/// The keys and commands, as the input line's title shows them.
pub(crate) const KEYS_HELP: &str =
    " Enter sends | Ctrl-O list | /switch NAME | /help | /timer DUR | /unsend ID | /burn | /leave | /verify | /quit ";

/// A duration in seconds as a short countdown: `42s`, `4m05s`, `3h12m`, `2d03h`.
pub(crate) fn countdown(secs: u64) -> String {
    match secs {
        0..=59 => format!("{secs}s"),
        60..=3_599 => format!("{}m{:02}s", secs / 60, secs % 60),
        3_600..=86_399 => format!("{}h{:02}m", secs / 3_600, secs % 3_600 / 60),
        _ => format!("{}d{:02}h", secs / 86_400, secs % 86_400 / 3_600),
    }
}

/// A timer setting as the header shows it.
pub(crate) fn timer_label(timer: Option<u64>) -> String {
    match timer {
        Some(secs) => humantime::format_duration(std::time::Duration::from_secs(secs)).to_string(),
        None => "off".into(),
    }
}

/// Draws the whole chat into `frame`.
pub(crate) fn render(frame: &mut Frame<'_>, model: &ChatModel, now: u64) {
    let header_height = if model.is_group() { 2 } else { 1 };
    let [header, body, input] = Layout::vertical([
        Constraint::Length(header_height),
        Constraint::Min(1),
        Constraint::Length(2),
    ])
    .areas(frame.area());
    render_header(frame, model, header);
    render_conversation(frame, model, now, body);
    render_input(frame, model, input);
}

fn render_header(frame: &mut Frame<'_>, model: &ChatModel, area: Rect) {
    let mut spans = match &model.group {
        Some(_) => vec![Span::styled(
            format!(" hush chat in group {} ", model.name),
            Style::default().add_modifier(Modifier::BOLD),
        )],
        None => vec![Span::styled(
            format!(" hush chat with {} ", model.name),
            Style::default().add_modifier(Modifier::BOLD),
        )],
    };
    spans.push(Span::raw(format!("| timer {} ", timer_label(model.timer))));
    if model.group.is_none() {
        spans.push(Span::raw("| "));
        spans.push(if model.verified {
            Span::styled("verified ", Style::default().fg(Color::Green))
        } else {
            Span::styled(
                "not verified (/verify) ",
                Style::default().fg(Color::Yellow),
            )
        });
    }
    if model.unread_elsewhere > 0 {
        spans.push(Span::styled(
            format!("| {} unread elsewhere (Ctrl-O)", model.unread_elsewhere),
            Style::default().fg(Color::Yellow),
        ));
    }
    let mut lines = vec![Line::from(spans)];
    if let Some(pane) = &model.group {
        lines.push(Line::raw(members_line(pane)));
    }
    frame.render_widget(
        Paragraph::new(lines).style(Style::default().add_modifier(Modifier::REVERSED)),
        area,
    );
}

/// The members as the header lists them: `members: alice (owner, you), bob (admin), carol`.
pub(crate) fn members_line(pane: &GroupPane) -> String {
    let members: Vec<String> = pane
        .members
        .iter()
        .map(|m| match (m.role, m.you) {
            ("member", false) => m.name.clone(),
            ("member", true) => format!("{} (you)", m.name),
            (role, false) => format!("{} ({role})", m.name),
            (role, true) => format!("{} ({role}, you)", m.name),
        })
        .collect();
    format!(" members: {}", members.join(", "))
}

fn render_conversation(frame: &mut Frame<'_>, model: &ChatModel, now: u64, area: Rect) {
    let width = usize::from(area.width.max(1));
    let mut lines: Vec<Line<'static>> = Vec::new();
    for entry in &model.entries {
        match entry {
            Entry::Message(m) => lines.extend(message_lines(m, &model.name, now, width)),
            Entry::Status(text) => {
                let style = Style::default()
                    .fg(Color::DarkGray)
                    .add_modifier(Modifier::ITALIC);
                for piece in wrap(&format!("-- {text}"), width) {
                    lines.push(Line::styled(piece, style));
                }
            }
        }
    }
    let height = usize::from(area.height);
    let start = lines.len().saturating_sub(height);
    let visible: Vec<Line<'static>> = lines.drain(start..).collect();
    frame.render_widget(Paragraph::new(visible), area);
}

/// The lines of one message: a styled prefix (id, author, countdown) and the wrapped text.
fn message_lines(m: &ChatMessage, contact: &str, now: u64, width: usize) -> Vec<Line<'static>> {
    let (who, colour) = match m.direction {
        Direction::Sent => ("you".to_owned(), Color::Cyan),
        Direction::Received => (
            m.author.clone().unwrap_or_else(|| contact.to_owned()),
            Color::Green,
        ),
    };
    let mut prefix = vec![
        Span::styled(
            format!("{} ", m.short_id()),
            Style::default().fg(Color::DarkGray),
        ),
        Span::styled(
            who,
            Style::default().fg(colour).add_modifier(Modifier::BOLD),
        ),
    ];
    if let Some(at) = m.expires_at {
        prefix.push(Span::styled(
            format!(" ({} left)", countdown(at.saturating_sub(now))),
            Style::default().fg(Color::Yellow),
        ));
    }
    if m.view_once {
        prefix.push(Span::styled(
            " (view once)",
            Style::default().fg(Color::Magenta),
        ));
    }
    prefix.push(Span::raw(": "));
    let prefix_width: usize = prefix.iter().map(Span::width).sum();
    let first_room = width.saturating_sub(prefix_width).max(8);
    let mut pieces = wrap(&m.text, first_room).into_iter();
    let mut out = vec![Line::from(
        prefix
            .into_iter()
            .chain(pieces.next().map(Span::raw))
            .collect::<Vec<_>>(),
    )];
    let rest: Vec<String> = pieces.collect();
    if !rest.is_empty() {
        let joined = rest.join(" ");
        for piece in wrap(&joined, width.saturating_sub(2).max(8)) {
            out.push(Line::raw(format!("  {piece}")));
        }
    }
    out
}

fn render_input(frame: &mut Frame<'_>, model: &ChatModel, area: Rect) {
    let title = match (model.confirming, model.is_group()) {
        (Some(Confirm::Burn), false) => {
            " type yes to burn the conversation on both sides, anything else to cancel "
        }
        (Some(Confirm::Burn), true) => {
            " type yes to burn the group for every member, anything else to cancel "
        }
        (Some(Confirm::Leave), _) => " type yes to leave the group, anything else to cancel ",
        (None, _) if model.closed => " conversation closed: Ctrl-O for the list, /quit to leave ",
        (None, _) => KEYS_HELP,
    };
    let block = Block::default().borders(Borders::TOP).title(title);
    let inner = block.inner(area);
    let room = usize::from(inner.width.saturating_sub(3));
    let shown = tail_fitting(&model.input, room);
    let input_width: usize = shown.chars().filter_map(UnicodeWidthChar::width).sum();
    frame.render_widget(Paragraph::new(format!("> {shown}")).block(block), area);
    let x = inner.x + 2 + u16::try_from(input_width).unwrap_or(u16::MAX);
    frame.set_cursor_position((x.min(inner.right().saturating_sub(1)), inner.y));
}

/// The end of `text` that fits in `room` columns.
fn tail_fitting(text: &str, room: usize) -> &str {
    let mut used = 0;
    for (i, c) in text.char_indices().rev() {
        used += c.width().unwrap_or(0);
        if used > room {
            return &text[i + c.len_utf8()..];
        }
    }
    text
}

/// Splits `text` into lines of at most `width` columns, breaking at a space where one is near.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut lines = Vec::new();
    for paragraph in text.split('\n') {
        let mut line = String::new();
        let mut line_width = 0;
        for c in paragraph.chars() {
            let c = if c.is_control() { ' ' } else { c };
            let w = c.width().unwrap_or(0);
            if line_width + w > width && !line.is_empty() {
                let (head, tail) = match line.rfind(' ') {
                    Some(i) if i > 0 => (line[..i].to_owned(), line[i + 1..].to_owned()),
                    _ => (std::mem::take(&mut line), String::new()),
                };
                lines.push(head);
                line_width = tail.chars().filter_map(UnicodeWidthChar::width).sum();
                line = tail;
            }
            line.push(c);
            line_width += w;
        }
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;

    use super::*;
    use crate::chat::model::ChatMessage;

    fn screen(model: &ChatModel, now: u64) -> Vec<String> {
        let mut terminal = Terminal::new(TestBackend::new(60, 12)).unwrap();
        terminal.draw(|f| render(f, model, now)).unwrap();
        let buffer = terminal.backend().buffer();
        let width = usize::from(buffer.area.width);
        buffer
            .content()
            .chunks(width)
            .map(|row| row.iter().map(|c| c.symbol()).collect::<String>())
            .collect()
    }

    fn text(screen: &[String]) -> String {
        screen.join("\n")
    }

    fn msg(id: &str, direction: Direction, text: &str, expires_at: Option<u64>) -> ChatMessage {
        ChatMessage {
            id: id.into(),
            direction,
            text: text.into(),
            sent_at: 1_000,
            expires_at,
            view_once: false,
            author: None,
        }
    }

    #[test]
    fn countdowns_are_short_and_exact() {
        assert_eq!(countdown(0), "0s");
        assert_eq!(countdown(59), "59s");
        assert_eq!(countdown(61), "1m01s");
        assert_eq!(countdown(3_600 * 3 + 60 * 12 + 5), "3h12m");
        assert_eq!(countdown(86_400 * 2 + 3_600 * 3), "2d03h");
    }

    #[test]
    fn shows_messages_with_live_countdowns_and_drops_expired_ones() {
        let mut model = ChatModel::new("bob");
        model.timer = Some(300);
        model.add_message(msg(
            "0123456789abcdef",
            Direction::Sent,
            "the vault code",
            Some(1_300),
        ));
        model.add_message(msg(
            "fedcba9876543210",
            Direction::Received,
            "got it",
            Some(1_030),
        ));
        let at_start = text(&screen(&model, 1_000));
        assert!(at_start.contains("hush chat with bob"), "{at_start}");
        assert!(at_start.contains("timer 5m"), "{at_start}");
        assert!(
            at_start.contains("01234567 you (5m00s left): the vault code"),
            "{at_start}"
        );
        assert!(
            at_start.contains("fedcba98 bob (30s left): got it"),
            "{at_start}"
        );

        let later = text(&screen(&model, 1_029));
        assert!(later.contains("(4m31s left)"), "{later}");
        assert!(later.contains("(1s left): got it"), "{later}");

        model.expire(1_030);
        let after = text(&screen(&model, 1_030));
        assert!(!after.contains("got it"), "{after}");
        assert!(after.contains("the vault code"), "{after}");
    }

    #[test]
    fn an_incoming_message_appears_at_the_bottom() {
        let mut model = ChatModel::new("bob");
        for i in 0..20 {
            model.add_message(msg(
                &format!("{i:016x}"),
                Direction::Received,
                &format!("old {i}"),
                None,
            ));
        }
        model.add_message(msg("aaaaaaaaaaaaaaaa", Direction::Received, "newest", None));
        let rows = screen(&model, 0);
        // The conversation ends just above the two input rows.
        assert!(
            rows[rows.len() - 3].contains("aaaaaaaa bob: newest"),
            "{rows:?}"
        );
        assert!(!text(&rows).contains("old 0 "), "{rows:?}");
    }

    #[test]
    fn long_text_wraps_and_status_lines_show() {
        let mut model = ChatModel::new("bob");
        let long = "word ".repeat(30);
        model.add_message(msg("1111111111111111", Direction::Sent, long.trim(), None));
        model.status("bob set the timer to 1h");
        model.input = "draft".into();
        let all = text(&screen(&model, 0));
        assert_eq!(all.matches("word").count(), 30, "{all}");
        assert!(all.contains("-- bob set the timer to 1h"), "{all}");
        assert!(all.contains("> draft"), "{all}");
    }

    #[test]
    fn view_once_and_verified_are_marked() {
        let mut model = ChatModel::new("bob");
        model.verified = true;
        let mut once = msg("2222222222222222", Direction::Received, "secret", None);
        once.view_once = true;
        model.add_message(once);
        let all = text(&screen(&model, 0));
        assert!(
            all.contains("verified") && !all.contains("not verified"),
            "{all}"
        );
        assert!(all.contains("(view once): secret"), "{all}");
    }

    #[test]
    fn a_group_shows_its_members_with_roles_and_each_author() {
        use crate::chat::model::Member;
        let member = |name: &str, role, you| Member {
            name: name.into(),
            role,
            you,
        };
        let pane = GroupPane {
            members: vec![
                member("alice", "owner", true),
                member("bob", "admin", false),
                member("carol", "member", false),
            ],
        };
        let mut model = ChatModel::new_group("team", pane);
        let mut from_bob = msg("3333333333333333", Direction::Received, "from bob", None);
        from_bob.author = Some("bob".into());
        let mut from_carol = msg("4444444444444444", Direction::Received, "from carol", None);
        from_carol.author = Some("carol".into());
        model.add_message(from_bob);
        model.add_message(from_carol);
        model.add_message(msg("5555555555555555", Direction::Sent, "mine", None));
        model.unread_elsewhere = 3;
        let all = text(&screen(&model, 0));
        assert!(all.contains("hush chat in group team"), "{all}");
        assert!(
            all.contains("members: alice (owner, you), bob (admin), carol"),
            "{all}"
        );
        assert!(all.contains("33333333 bob: from bob"), "{all}");
        assert!(all.contains("44444444 carol: from carol"), "{all}");
        assert!(all.contains("55555555 you: mine"), "{all}");
        assert!(!all.contains("team: "), "{all}");
        assert!(all.contains("3 unread elsewhere"), "{all}");
    }

    #[test]
    fn wrap_keeps_every_character() {
        let text = "a bb ccc dddd eeeee ffffff";
        let lines = wrap(text, 7);
        assert!(lines.iter().all(|l| l.chars().count() <= 7), "{lines:?}");
        assert_eq!(lines.join(" "), text);
        assert_eq!(wrap("x\ny", 10), ["x", "y"]);
        assert_eq!(tail_fitting("abcdef", 3), "def");
    }
}
