//! `hush chat`: the interactive conversation on the terminal's alternate screen.
//!
//! What it does: keeps a view model of the conversation ([`model`]), parses what the user types
//! ([`command`]), draws it with ratatui ([`view`]) and restores the terminal on exit and on
//! panic ([`terminal`]).
//!
//! What it does not do: any protocol work; the event loop drives the client library.

mod app;
#[cfg(test)]
mod app_tests;
pub(crate) mod command;
pub(crate) mod model;
pub(crate) mod terminal;
pub(crate) mod view;

pub(crate) use app::run;
