//! Fixtures for hostile-input and fault tests: the relay as a process that can be killed and
//! measured ([`process`]), and raw connections that misbehave on purpose ([`raw`]).

pub mod process;
pub mod raw;
