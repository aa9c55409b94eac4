//! QR codes for the terminal: invitations and safety numbers as unicode half blocks on stderr.
//!
//! Codes are printed only when stderr is a terminal, so that scripts and pipes see only the
//! text on stdout.
//!
//! What it does not do: scan codes, or print anything that is not also given as text.

use std::io::{self, IsTerminal, Write};

use qrcode::render::unicode::Dense1x2;
use qrcode::{EcLevel, QrCode};

/// `data` as a QR code drawn in half blocks, light modules in the foreground colour so that it
/// scans on the usual light-on-dark terminal. `None` if it is too long for a QR code.
pub(crate) fn render(data: &[u8]) -> Option<String> {
    let code = QrCode::with_error_correction_level(data, EcLevel::L).ok()?;
    Some(
        code.render::<Dense1x2>()
            .dark_color(Dense1x2::Light)
            .light_color(Dense1x2::Dark)
            .quiet_zone(true)
            .build(),
    )
}

/// Prints `data` as a QR code on stderr when stderr is a terminal, under `caption`.
pub(crate) fn print_on_terminal(caption: &str, data: &[u8]) {
    let stderr = io::stderr();
    if !stderr.is_terminal() {
        return;
    }
    let mut err = stderr.lock();
    // Best effort: the code is a convenience beside the text, which is printed regardless.
    let columns = crossterm::terminal::size().map_or(u16::MAX, |(cols, _)| cols);
    let _ = match render(data) {
        Some(code) if fits(&code, columns) => writeln!(err, "{caption}\n{code}"),
        Some(code) => writeln!(
            err,
            "({caption} the QR code needs a terminal {} columns wide; widen it or copy the text instead)",
            width(&code)
        ),
        None => writeln!(err, "({caption} too long for a QR code; copy the text instead)"),
    };
}

fn width(code: &str) -> usize {
    code.lines().next().map_or(0, |l| l.chars().count())
}

fn fits(code: &str, columns: u16) -> bool {
    width(code) <= usize::from(columns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_square_half_block_codes() {
        let code = render(b"123456 789012 345678").unwrap();
        let rows: Vec<&str> = code.lines().collect();
        let width = rows[0].chars().count();
        assert!(width >= 21 + 8, "{width}");
        assert!(rows.iter().all(|r| r.chars().count() == width));
        // Two modules per character row.
        assert_eq!(rows.len(), width.div_ceil(2));
        assert!(code
            .chars()
            .all(|c| " \n\u{2580}\u{2584}\u{2588}".contains(c)));
        assert!(fits(&code, 200));
        assert!(!fits(&code, 20));
    }

    #[test]
    fn an_invitation_sized_string_fits() {
        assert!(render("A".repeat(2_000).as_bytes()).is_some());
        assert!(render("A".repeat(10_000).as_bytes()).is_none());
    }
}
