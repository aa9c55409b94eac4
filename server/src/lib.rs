//! hush-server: the hush relay.

pub mod store;
