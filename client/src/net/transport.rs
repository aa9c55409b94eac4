//! Transport isolation: which relay connection a request goes on, so that a relay cannot join
//! our subscriptions to the queues we send to.
//!
//! In [`TransportMode::PerContact`] (the default) the pool keeps, per relay, one connection for
//! the queues we own ([`Lane::Own`]: create, subscribe, ack, delete), one connection per contact
//! queue we send to ([`Lane::Contact`], keyed by that queue's sender id: sends, retracts),
//! opened when first needed and closed after [`CONTACT_IDLE`] without use, and a fresh
//! connection for each file transfer ([`Lane::Transfer`]: blob uploads, downloads and
//! deletions), closed as soon as the transfer lets go of it. Each connection has its own QUIC
//! endpoint, so its own UDP source port. In [`TransportMode::PerRelay`] every lane to a relay is
//! the one connection to it: fewer handshakes, for constrained links, and no isolation.
//!
//! What it does not do: hide our IP address (every connection comes from the same one) or the
//! timing of our requests; `docs/client.md` says what isolation does and does not hide.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use hush_protocol::SenderId;

/// How long a contact's connection stays open without use before the pool closes it. Long
/// enough for the back and forth of one conversation to reuse it, short enough that a client
/// left running does not keep a connection per contact open for good (the relay's own idle
/// timeout would close it later anyway).
pub const CONTACT_IDLE: Duration = Duration::from_secs(30);

/// How requests are spread over connections to a relay.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransportMode {
    /// One connection for our own queues, one per contact we send to, one per file transfer.
    #[default]
    PerContact,
    /// One connection per relay for everything (fewer connections; the relay can link sends to
    /// subscriptions).
    PerRelay,
}

impl TransportMode {
    /// The setting's spelling: `per-contact` or `per-relay`.
    pub fn as_str(self) -> &'static str {
        match self {
            TransportMode::PerContact => "per-contact",
            TransportMode::PerRelay => "per-relay",
        }
    }
}

impl fmt::Display for TransportMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A transport mode that is neither `per-contact` nor `per-relay`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown transport mode `{given}`: use per-contact or per-relay")]
pub struct TransportModeError {
    /// What was given.
    pub given: String,
}

impl FromStr for TransportMode {
    type Err = TransportModeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "per-contact" => Ok(TransportMode::PerContact),
            "per-relay" => Ok(TransportMode::PerRelay),
            other => Err(TransportModeError {
                given: other.to_owned(),
            }),
        }
    }
}

/// What a request is about, which decides the connection it goes on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Lane {
    /// Our own queues on the relay: create, subscribe, ack, resecure, delete.
    Own,
    /// The contact queue with this sender id: sends and retracts.
    Contact(SenderId),
    /// A file transfer: blob create, write, read, status, delete.
    Transfer,
}

/// Which kept connection a lane uses, or none (a connection of its own).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Keep {
    /// The relay's connection for our own queues (in per-relay mode: for everything).
    Own,
    /// A contact's connection.
    Contact(SenderId),
    /// Not kept: a fresh connection, closed when its last handle is dropped.
    Fresh,
}

impl TransportMode {
    /// Where `lane` goes in this mode.
    pub(super) fn keep(self, lane: Lane) -> Keep {
        match (self, lane) {
            (TransportMode::PerRelay, _) | (_, Lane::Own) => Keep::Own,
            (TransportMode::PerContact, Lane::Contact(sid)) => Keep::Contact(sid),
            (TransportMode::PerContact, Lane::Transfer) => Keep::Fresh,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_and_print_and_a_bad_one_is_named() {
        for mode in [TransportMode::PerContact, TransportMode::PerRelay] {
            assert_eq!(mode.as_str().parse::<TransportMode>(), Ok(mode));
        }
        assert_eq!(TransportMode::default(), TransportMode::PerContact);
        let err = "per-host".parse::<TransportMode>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown transport mode `per-host`: use per-contact or per-relay"
        );
    }

    #[test]
    fn per_relay_puts_every_lane_on_one_connection() {
        let sid = SenderId::from_bytes([7; 16]);
        let lanes = [Lane::Own, Lane::Contact(sid), Lane::Transfer];
        for lane in lanes {
            assert_eq!(TransportMode::PerRelay.keep(lane), Keep::Own);
        }
        let per_contact: Vec<Keep> = lanes
            .iter()
            .map(|l| TransportMode::PerContact.keep(*l))
            .collect();
        assert_eq!(per_contact, [Keep::Own, Keep::Contact(sid), Keep::Fresh]);
    }
}
