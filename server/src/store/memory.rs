//! In-memory [`super::QueueStore`], for tests.
