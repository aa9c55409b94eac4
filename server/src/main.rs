//! The `hush-server` binary.

fn main() {}
