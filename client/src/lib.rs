//! hush-client: the library every hush front end uses.

#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod conversation;
pub mod store;
