//! Stored sessions, identities and invitation secrets.
//!
//! The check is `hush_tests::fuzzing::stored_secrets`; `tests/fuzz_corpus_replay.rs` replays the corpus
//! through the same function.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| hush_tests::fuzzing::stored_secrets(data));
