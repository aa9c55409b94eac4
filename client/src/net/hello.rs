//! The `Hello` call: presents the create token (if the client has one for this relay) and
//! learns the relay's limits. Also the `NextCert` call, which learns a pending certificate
//! rotation.
//!
//! A relay from before `Hello` answers it `Malformed` (an unknown request) and keeps the
//! connection; that is reported as `Ok(None)`, and callers fall back to the protocol's
//! defaults (`hush_protocol::limits`), as clients did before.
//!
//! What it does not do: decide whether to say hello (the pool's [`super::Connection`] says it
//! once per connection, before the first create) or what to do with the limits.

use hush_protocol::{CertRotation, CreateToken, ErrorCode, RelayInfo, Reply, Request};

use super::relay_client::{RelayCallError, RelayClient};

impl RelayClient {
    /// Says `Hello` with `token`: the relay's limits, `Ok(None)` from a relay too old to know
    /// `Hello`, or [`RelayCallError::Relay`] with `Forbidden` when the relay does not accept
    /// the token.
    pub async fn hello(
        &self,
        token: Option<&CreateToken>,
    ) -> Result<Option<RelayInfo>, RelayCallError> {
        let req = Request::Hello {
            token: token.cloned(),
        };
        match self.call(req).await {
            Ok(Reply::Welcome(info)) => Ok(Some(info)),
            Ok(_) => Err(RelayCallError::Protocol),
            Err(RelayCallError::Relay(ErrorCode::Malformed)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Asks `NextCert`: the certificate rotation the relay announces, if any. A relay too old
    /// to know `NextCert` (`Malformed`) announces none.
    pub async fn next_cert(&self) -> Result<Option<CertRotation>, RelayCallError> {
        match self.call(Request::NextCert).await {
            Ok(Reply::NextCert(next)) => Ok(next),
            Ok(_) => Err(RelayCallError::Protocol),
            Err(RelayCallError::Relay(ErrorCode::Malformed)) => Ok(None),
            Err(e) => Err(e),
        }
    }
}
