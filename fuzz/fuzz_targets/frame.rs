//! Relay framing: `FrameDecoder` over a chunked stream, client requests and relay replies/pushes.
//!
//! The check is `hush_tests::fuzzing::frame`; `tests/fuzz_corpus_replay.rs` replays the corpus
//! through the same function.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| hush_tests::fuzzing::frame(data));
