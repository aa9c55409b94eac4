//! The terminal for the chat: raw mode on the alternate screen, restored on exit and on panic.
//!
//! The alternate screen keeps the conversation out of the terminal's scrollback, so a message
//! that expires is gone from the screen and from what the user can scroll back to.
//!
//! What it does not do: draw (see `view.rs`) or read input.

use std::io::{self, Stdout};
use std::sync::Once;

use anyhow::{Context, Result};
use crossterm::cursor::Show;
use crossterm::execute;
use crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, Clear, ClearType, EnterAlternateScreen, LeaveAlternateScreen,
};
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;

/// The chat's terminal. Dropping it restores the terminal.
pub(crate) struct ChatTerminal {
    /// The ratatui terminal on stdout.
    pub(crate) terminal: Terminal<CrosstermBackend<Stdout>>,
}

impl ChatTerminal {
    /// Switches to raw mode on the alternate screen, and makes sure a panic restores it.
    pub(crate) fn enter() -> Result<Self> {
        install_panic_hook();
        enable_raw_mode().context("cannot switch the terminal to raw mode")?;
        if let Err(err) = execute!(io::stdout(), EnterAlternateScreen) {
            restore();
            return Err(err).context("cannot switch to the terminal's alternate screen");
        }
        match Terminal::new(CrosstermBackend::new(io::stdout())) {
            Ok(terminal) => Ok(Self { terminal }),
            Err(err) => {
                restore();
                Err(err).context("cannot set up the terminal for drawing")
            }
        }
    }
}

impl Drop for ChatTerminal {
    fn drop(&mut self) {
        restore();
    }
}

/// Clears the alternate screen, leaves it, and turns raw mode off. Safe to call twice.
fn restore() {
    // Best effort: there is nowhere to report a failure while restoring the terminal.
    let _ = execute!(
        io::stdout(),
        Clear(ClearType::All),
        LeaveAlternateScreen,
        Show
    );
    let _ = disable_raw_mode();
}

/// Restores the terminal before the default panic message is printed.
fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
    });
}
