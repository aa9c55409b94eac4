//! hush-tests: end-to-end tests that run real relays and real clients over loopback QUIC.
