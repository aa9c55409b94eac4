//! Handshake first messages answered with a fixed invitation's secrets.
//!
//! The check is `hush_tests::fuzzing::first_message`; `tests/fuzz_corpus_replay.rs` replays the corpus
//! through the same function.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| hush_tests::fuzzing::first_message(data));
