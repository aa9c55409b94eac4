//! Replays the fuzz corpora as ordinary tests, so that a regression fails CI.
//!
//! Every file in `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/` goes through the
//! same check the fuzz target runs (`hush_tests::fuzzing`). The generated seed inputs run
//! directly too, so a change that breaks the fixtures shows here before the corpus drifts.
//! `cargo test -p hush-tests --test fuzz_corpus_replay -- --ignored write_seed_corpus`
//! rewrites the seed files.

use std::fs;
use std::path::{Path, PathBuf};

use hush_tests::fuzzing::{self, run, seed_corpus, TARGETS};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// Every file under `fuzz/<kind>/<target>/`, sorted.
fn files(kind: &str, target: &str) -> Vec<PathBuf> {
    let Ok(dir) = fs::read_dir(fuzz_dir().join(kind).join(target)) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = dir
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}

fn replay(target: &str) {
    let corpus = files("corpus", target);
    assert!(
        !corpus.is_empty(),
        "fuzz/corpus/{target} is empty; run write_seed_corpus"
    );
    for path in corpus.iter().chain(&files("regressions", target)) {
        let data = fs::read(path).expect("read corpus file");
        let outcome = std::panic::catch_unwind(|| run(target, &data));
        assert!(outcome.is_ok(), "{target}: {} fails", path.display());
    }
}

#[test]
fn corpus_frame() {
    replay("frame");
}

#[test]
fn corpus_invitation() {
    replay("invitation");
}

#[test]
fn corpus_first_message() {
    replay("first_message");
}

#[test]
fn corpus_ratchet() {
    replay("ratchet");
}

#[test]
fn corpus_conversation_codec() {
    replay("conversation_codec");
}

#[test]
fn corpus_stored_secrets() {
    replay("stored_secrets");
}

#[test]
fn corpus_interaction() {
    replay("interaction");
}

#[test]
fn every_target_has_a_test() {
    assert_eq!(
        TARGETS.len(),
        7,
        "add a corpus_<target> test for the new target"
    );
}

#[test]
fn seed_inputs_pass() {
    for (target, inputs) in seed_corpus() {
        for data in inputs {
            run(target, &data);
        }
    }
}

/// The oracles are not vacuous: the seed inputs really decrypt and really show messages.
#[test]
fn seed_inputs_reach_the_checks() {
    let seeds = seed_corpus();
    let inputs = |name: &str| {
        seeds
            .iter()
            .find(|(t, _)| *t == name)
            .map(|(_, i)| i.clone())
            .expect("target in the seed corpus")
    };
    assert_eq!(fuzzing::ratchet_opened(&inputs("ratchet")[0]), 4);
    assert_eq!(fuzzing::ratchet_opened(&inputs("ratchet")[1]), 3);
    let scripted = inputs("interaction");
    let plain = scripted.last().expect("the plain exchange");
    assert!(fuzzing::interaction_shown(plain) >= 2);
}

/// Rewrites `fuzz/corpus/<target>/seed-<n>` from the generator.
#[test]
#[ignore = "writes files: run by hand to regenerate the seed corpus"]
fn write_seed_corpus() {
    for (target, inputs) in seed_corpus() {
        let dir = fuzz_dir().join("corpus").join(target);
        fs::create_dir_all(&dir).expect("create corpus directory");
        for (n, data) in inputs.iter().enumerate() {
            fs::write(dir.join(format!("seed-{n}")), data).expect("write seed");
        }
    }
}
