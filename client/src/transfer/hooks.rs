//! Switches for the crash tests of `hush save`, read from the environment, in debug builds
//! only: a release build ignores them.
//!
//! - `HUSH_TEST_SAVE_NAMED_TEMP` (any value): decrypt into a temporary name on record, as on
//!   a file system without unnamed files.
//! - `HUSH_TEST_SAVE_PAUSE=<path>`: once the first chunk is decrypted, create `<path>` and wait
//!   (at most a minute) until the save is cancelled, so a test can kill or interrupt it there.
//!
//! What it does not do: anything when they are not set.

use std::sync::atomic::{AtomicBool, Ordering};

/// Whether a save must use a temporary name on record.
pub(super) fn named_temp_forced() -> bool {
    cfg!(debug_assertions) && std::env::var_os("HUSH_TEST_SAVE_NAMED_TEMP").is_some()
}

/// The pause point of `HUSH_TEST_SAVE_PAUSE`, if set: returns when `cancel` is set.
pub(super) fn pause_point(cancel: &AtomicBool) {
    if !cfg!(debug_assertions) {
        return;
    }
    let Some(flag) = std::env::var_os("HUSH_TEST_SAVE_PAUSE") else {
        return;
    };
    if std::fs::write(&flag, b"paused").is_err() {
        return;
    }
    let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !cancel.load(Ordering::Relaxed) && std::time::Instant::now() < until {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}
