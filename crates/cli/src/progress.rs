//! A progress bar for file transfers, drawn on stderr only when stderr is a terminal.
//!
//! What it does not do: print anything when stderr is a pipe or a file (scripts and tests see
//! only the result on stdout), or slow a transfer: updates are plain atomic stores, drawn at a
//! bounded rate by `indicatif`.

use std::io::{self, IsTerminal};

use hush_client::TransferProgress;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The bar's layout.
const TEMPLATE: &str = "{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}";

/// A transfer's bar, or nothing when stderr is not a terminal.
pub(crate) struct Bar(Option<ProgressBar>);

impl Bar {
    /// A bar labelled `label`.
    pub(crate) fn new(label: &str) -> Bar {
        if !io::stderr().is_terminal() {
            return Bar(None);
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(TEMPLATE) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(label.to_owned());
        Bar(Some(bar))
    }

    /// Shows how far the transfer got.
    pub(crate) fn update(&self, p: TransferProgress) {
        if let Some(bar) = &self.0 {
            bar.set_length(p.total);
            bar.set_position(p.done);
        }
    }

    /// Removes the bar.
    pub(crate) fn finish(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}
