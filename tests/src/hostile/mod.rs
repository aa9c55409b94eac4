//! Fixtures for hostile-input and fault tests: the relay as a process that can be killed and
//! measured ([`process`]), raw connections that misbehave on purpose ([`raw`]), and a relay
//! that lies about blobs ([`blob_relay`]).

pub mod blob_relay;
pub mod process;
pub mod raw;
