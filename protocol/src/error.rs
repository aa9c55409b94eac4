//! Error codes the relay returns to clients, in responses and in connection-close frames.
//!
//! Codes are stable `u16` values on the wire. A sender-side failure never says whether the
//! queue exists: a wrong capability and a missing queue are both [`ErrorCode::Auth`].

/// Why the relay refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
#[repr(u16)]
pub enum ErrorCode {
    /// The request did not decode; the client and relay disagree about the protocol.
    #[error("malformed request; update the client")]
    Malformed = 1,
    /// Not authorised: a wrong or replayed signature, or (for senders) a wrong send capability
    /// or a queue that does not exist.
    #[error("not authorised; the queue may be gone or the credentials stale")]
    Auth = 2,
    /// The recipient id names no queue (it was deleted or removed for being idle).
    #[error("no such queue; it was deleted or expired, create a new one")]
    NoQueue = 3,
    /// The queue holds as many pending envelopes or bytes as the relay allows.
    #[error("the queue is full; wait for the recipient to read it")]
    QueueFull = 4,
    /// The envelope is larger than the relay accepts.
    #[error("envelope too large for this relay")]
    TooLarge = 5,
    /// This connection sent requests faster than the relay allows.
    #[error("too many requests; slow down and retry")]
    RateLimited = 6,
    /// This connection created as many queues as the relay allows per connection.
    #[error("too many queues created on this connection; reconnect and retry")]
    TooManyQueues = 7,
    /// This connection holds as many subscriptions as the relay allows.
    #[error("too many subscriptions on this connection; open another connection")]
    TooManySubscriptions = 8,
    /// An ack named a queue this connection has not subscribed to.
    #[error("not subscribed to that queue on this connection; subscribe first")]
    NotSubscribed = 9,
    /// The relay's storage failed; nothing was changed. Retry later.
    #[error("relay storage failure; retry later")]
    Storage = 10,
    /// The relay is shutting down; reconnect later.
    #[error("relay shutting down; reconnect later")]
    ShuttingDown = 11,
    /// The relay has no room for the blob (its blob budget or its disk is full). Nothing was
    /// stored; retry later or use another relay.
    #[error("the relay has no space left for this file; retry later")]
    NoSpace = 12,
    /// No blob has that id, or the capability does not match: it was deleted, retracted or
    /// has expired. The two are not distinguished, so a guesser learns nothing.
    #[error("no such file on the relay; it expired or was deleted")]
    NoBlob = 13,
    /// A blob write did not start where the stored data ends. Ask for the blob's status and
    /// resume from its `committed` length.
    #[error("file upload out of step with the relay; resume from the relay's length")]
    BlobOffset = 14,
    /// The blob cannot be read yet: its upload has not finished.
    #[error("the file upload has not finished yet")]
    BlobIncomplete = 15,
    /// Close code only: a request frame started but did not arrive whole within the relay's
    /// deadline (a stalled or very slow client). Reconnect; check the network.
    #[error("a request did not arrive whole in time; reconnect")]
    RequestTimeout = 16,
    /// Creating queues and blobs on this relay needs a create token, and this connection
    /// presented none. Sent only to connections that said `Hello` (others get `Auth`).
    #[error("this relay requires a create token to create queues and files; ask its operator for the relay address with a token (hush://TOKEN@HOST:PORT#FINGERPRINT)")]
    TokenRequired = 17,
    /// The create token presented in `Hello` is not one this relay accepts (wrong, or revoked
    /// by the operator).
    #[error("this relay does not accept the create token (wrong or revoked); ask its operator for a current relay address with a token")]
    Forbidden = 18,
}

impl ErrorCode {
    /// Every code, in wire order.
    pub const ALL: [ErrorCode; 18] = [
        ErrorCode::Malformed,
        ErrorCode::Auth,
        ErrorCode::NoQueue,
        ErrorCode::QueueFull,
        ErrorCode::TooLarge,
        ErrorCode::RateLimited,
        ErrorCode::TooManyQueues,
        ErrorCode::TooManySubscriptions,
        ErrorCode::NotSubscribed,
        ErrorCode::Storage,
        ErrorCode::ShuttingDown,
        ErrorCode::NoSpace,
        ErrorCode::NoBlob,
        ErrorCode::BlobOffset,
        ErrorCode::BlobIncomplete,
        ErrorCode::RequestTimeout,
        ErrorCode::TokenRequired,
        ErrorCode::Forbidden,
    ];

    /// The wire value.
    pub const fn to_u16(self) -> u16 {
        self as u16
    }

    /// The code for a wire value, if it is known.
    pub fn from_u16(v: u16) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.to_u16() == v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_distinct() {
        for (i, c) in ErrorCode::ALL.iter().enumerate() {
            assert_eq!(c.to_u16() as usize, i + 1);
            assert_eq!(ErrorCode::from_u16(c.to_u16()), Some(*c));
        }
        assert_eq!(ErrorCode::from_u16(0), None);
        assert_eq!(ErrorCode::from_u16(999), None);
    }
}
