//! `hush-server --check-config`: what a configuration needs beyond parsing to start a relay.
//!
//! What it does not do: parse the configuration (see `config`) or start anything.

use crate::access::Access;
use crate::config::{ConfigError, RelayConfig};
use crate::tls;

impl RelayConfig {
    /// What `--check-config` checks beyond parsing: the create tokens file reads, and the
    /// operator's certificate and key load and make a TLS configuration.
    pub fn check(&self) -> Result<(), ConfigError> {
        Access::load(self).map_err(|e| ConfigError::Invalid {
            name: "create-tokens-file",
            message: e.to_string(),
        })?;
        if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            let identity = tls::load_pem(cert, key).map_err(|e| ConfigError::Invalid {
                name: "tls-cert",
                message: e.to_string(),
            })?;
            tls::server_crypto(identity).map_err(|e| ConfigError::Invalid {
                name: "tls-key",
                message: e.to_string(),
            })?;
        }
        Ok(())
    }
}
