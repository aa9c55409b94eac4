//! Testing only (the `testing` feature): a record of which requests each connection carried, so
//! that a test can check, from the relay's side, what a client lets the relay link together.
//!
//! [`ConnectionLog`] numbers connections in the order they are served and keeps, per
//! connection, the set of what it carried: each request's kind and the queue or blob id it names
//! (never capabilities, signatures or bodies). It records nothing until
//! [`ConnectionLog::start`] is called, so relays that no test observes keep nothing.
//!
//! What it does not do: exist in a relay built without the `testing` feature, or change how a
//! request is handled.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use hush_protocol::Request;

/// One thing a connection carried: a request kind ([`Request::kind`]) and the id it names, if
/// any (a sender id for sends and retracts, a recipient id for queue requests, a blob id for
/// blob requests).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Carried {
    /// The request kind.
    pub kind: &'static str,
    /// The raw id it names.
    pub id: Option<[u8; 16]>,
}

impl Carried {
    /// What `req` names.
    pub fn of(req: &Request) -> Carried {
        let id = match req {
            Request::Send { sender_id, .. } | Request::Retract { sender_id, .. } => {
                Some(sender_id.0)
            }
            Request::Subscribe { recipient_id, .. }
            | Request::Ack { recipient_id, .. }
            | Request::Resecure { recipient_id, .. }
            | Request::DeleteQueue { recipient_id, .. } => Some(recipient_id.0),
            Request::BlobWrite { blob_id, .. }
            | Request::BlobStatus { blob_id, .. }
            | Request::BlobRead { blob_id, .. }
            | Request::BlobDelete { blob_id, .. } => Some(blob_id.0),
            _ => None,
        };
        Carried {
            kind: req.kind(),
            id,
        }
    }
}

/// What one connection carried.
#[derive(Clone, Debug, Default)]
pub struct ConnectionRecord {
    /// The client's address (its UDP source port tells its endpoints apart).
    pub remote: Option<SocketAddr>,
    /// Everything it carried.
    pub carried: BTreeSet<Carried>,
    /// Whether it has ended (the client left or the relay closed it).
    pub ended: bool,
}

/// Per connection, what it carried.
#[derive(Debug, Default)]
pub struct ConnectionLog {
    on: AtomicBool,
    next: AtomicU64,
    conns: Mutex<BTreeMap<u64, ConnectionRecord>>,
}

impl ConnectionLog {
    /// Starts recording (connections already open are recorded from their next request).
    pub fn start(&self) {
        self.on.store(true, Ordering::Release);
    }

    /// A number for a new connection.
    pub(crate) fn number(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed)
    }

    /// Notes that connection `conn` from `remote` carried `req`.
    pub(crate) fn note(&self, conn: u64, remote: SocketAddr, req: &Request) {
        if !self.on.load(Ordering::Acquire) {
            return;
        }
        let mut conns = self.conns.lock().unwrap_or_else(PoisonError::into_inner);
        let record = conns.entry(conn).or_default();
        record.remote = Some(remote);
        record.carried.insert(Carried::of(req));
    }

    /// Notes that connection `conn` has ended, if it carried anything recorded.
    pub(crate) fn end(&self, conn: u64) {
        let mut conns = self.conns.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(record) = conns.get_mut(&conn) {
            record.ended = true;
        }
    }

    /// Every connection recorded so far, by number.
    pub fn snapshot(&self) -> BTreeMap<u64, ConnectionRecord> {
        self.conns
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The connections that carried a request of `kind` naming `id`.
    pub fn carrying(&self, kind: &str, id: [u8; 16]) -> BTreeSet<u64> {
        let conns = self.conns.lock().unwrap_or_else(PoisonError::into_inner);
        conns
            .iter()
            .filter(|(_, r)| r.carried.iter().any(|c| c.kind == kind && c.id == Some(id)))
            .map(|(n, _)| *n)
            .collect()
    }

    /// Forgets everything recorded so far (recording goes on).
    pub fn clear(&self) {
        self.conns
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}
