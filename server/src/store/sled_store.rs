//! The embedded default [`super::QueueStore`] on sled.
