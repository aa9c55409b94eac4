//! `hush chat`: the interactive conversations on the terminal's alternate screen: one with a
//! contact or in a group, and the list of every conversation with its unread count, switched
//! between without leaving.
//!
//! What it does: keeps a view model of the open conversation ([`model`]) and of the list
//! ([`list`], both held by [`session`]), parses what the user types ([`command`]), draws them
//! with ratatui ([`view`], [`list_view`]) and restores the terminal on exit and on panic
//! ([`terminal`]).
//!
//! What it does not do: any protocol work; the event loop drives the client library.

mod act;
mod app;
#[cfg(test)]
mod app_tests;
pub(crate) mod command;
mod incoming;
pub(crate) mod list;
pub(crate) mod list_view;
mod load;
pub(crate) mod model;
#[cfg(test)]
mod model_tests;
pub(crate) mod session;
pub(crate) mod terminal;
pub(crate) mod view;

pub(crate) use app::run;
