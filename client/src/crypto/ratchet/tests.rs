//! Unit tests that need the ratchet's internals.
