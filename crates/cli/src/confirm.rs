//! Asking the user to confirm something destructive on the terminal.
//!
//! What it does not do: decide what needs confirming (the commands do).

use std::io::{self, BufRead, IsTerminal, Write};

use anyhow::{bail, Result};

/// Asks `question` on the terminal; true if the answer is yes. Fails with `refusal` when stdin
/// is not a terminal.
pub(crate) fn confirm(question: &str, refusal: &str) -> Result<bool> {
    let stdin = io::stdin();
    if !stdin.is_terminal() {
        bail!("{refusal}");
    }
    eprint!("{question}");
    io::stderr().flush()?;
    let mut answer = String::new();
    stdin.lock().read_line(&mut answer)?;
    Ok(answer.trim().eq_ignore_ascii_case("yes"))
}
