//! Which host of a relay to connect to: a relay address may list several hosts (the nodes of one
//! relay, sharing its certificate), tried in order.
//!
//! [`try_hosts`] makes one attempt at each host, in order from the preferred one, each within
//! the policy's connect timeout. [`HostChoice`] remembers, per relay, the host to try first:
//! the last one that connected, or the one after a host whose connection died, so a client
//! moves to another node when its node dies.
//!
//! What it does not do: wait between rounds or decide how many to make (the pool's back-off
//! does), or keep connections (the pool does).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use hush_protocol::{Fingerprint, RelayAddress};

use super::backoff::RetryPolicy;
use super::error::NetError;
use super::relay_client::{RelayCallError, RelayClient};
use super::socks5::{ProxyError, Socks5Proxy};

/// How one round over a relay's hosts went.
pub(super) enum Round {
    /// This host (an index into [`RelayAddress::hosts`]) connected.
    Connected(Box<RelayClient>, usize),
    /// None did; `permanent` when a later round cannot help either.
    Failed {
        /// The last proxy failure, if the proxy failed.
        proxy: Option<ProxyError>,
        /// Whether to stop trying.
        permanent: bool,
    },
    /// None did, and retrying cannot help.
    Fatal(NetError),
}

/// One attempt at each of `relay`'s hosts, in order from host `first`, accepting `pins`.
pub(super) async fn try_hosts(
    relay: &RelayAddress,
    first: usize,
    pins: &[Fingerprint],
    proxy: Option<&Socks5Proxy>,
    policy: RetryPolicy,
) -> Round {
    let hosts = relay.hosts();
    let n = hosts.len();
    let (mut proxy_error, mut mismatched) = (None, false);
    for i in (0..n).map(|k| (first + k) % n) {
        let attempt = RelayClient::connect_host(&hosts[i], pins, proxy, policy.idle_timeout);
        match tokio::time::timeout(policy.connect_timeout, attempt).await {
            Ok(Ok(client)) => return Round::Connected(Box::new(client), i),
            Ok(Err(RelayCallError::Proxy(error))) => {
                tracing::debug!(%error, "relay connection through the proxy failed");
                let permanent = error.is_permanent();
                proxy_error = Some(error);
                if permanent {
                    return Round::Failed {
                        proxy: proxy_error,
                        permanent,
                    };
                }
            }
            // Trying again cannot help: the versions stay what they are.
            Ok(Err(RelayCallError::Version)) => {
                return Round::Fatal(NetError::Version {
                    relay: relay.clone(),
                })
            }
            Ok(Err(RelayCallError::CertificateMismatch)) => mismatched = true,
            Ok(Err(e)) => tracing::debug!(error = %e, "relay connection attempt failed"),
            Err(_) => tracing::debug!("relay connection attempt timed out"),
        }
    }
    if mismatched {
        // Not retried: the relay (or whoever answers) keeps presenting it.
        return Round::Fatal(NetError::CertificateChanged {
            relay: relay.clone(),
        });
    }
    Round::Failed {
        proxy: proxy_error,
        permanent: false,
    }
}

/// The host of each relay with several hosts to try first.
#[derive(Debug, Default)]
pub(super) struct HostChoice {
    first: Mutex<HashMap<RelayAddress, usize>>,
}

impl HostChoice {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<RelayAddress, usize>> {
        self.first.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The host of `relay` to try first.
    pub(super) fn preferred(&self, relay: &RelayAddress) -> usize {
        self.lock().get(relay).copied().unwrap_or(0)
    }

    /// Tries `host` of `relay` first from now on.
    pub(super) fn prefer(&self, relay: &RelayAddress, host: usize) {
        if !relay.more_hosts.is_empty() {
            self.lock().insert(relay.clone(), host);
        }
    }

    /// A connection to `host` of `relay` died: unless another host is preferred already, the
    /// next connection tries the host after it first.
    pub(super) fn failed(&self, relay: &RelayAddress, host: usize) {
        let n = relay.more_hosts.len() + 1;
        if n > 1 {
            let mut first = self.lock();
            let preferred = first.entry(relay.clone()).or_insert(0);
            if *preferred == host {
                *preferred = (host + 1) % n;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_host_moves_the_choice_to_the_next_and_a_success_keeps_it() {
        let fp = "ab".repeat(32);
        let relay: RelayAddress = format!("hush://a:1,b:2,c:3#{fp}").parse().unwrap();
        let single: RelayAddress = format!("hush://a:1#{fp}").parse().unwrap();
        let choice = HostChoice::default();
        assert_eq!(choice.preferred(&relay), 0);
        choice.failed(&relay, 0);
        assert_eq!(choice.preferred(&relay), 1);
        // A late report about a host no longer preferred changes nothing.
        choice.failed(&relay, 0);
        assert_eq!(choice.preferred(&relay), 1);
        choice.failed(&relay, 1);
        choice.failed(&relay, 2);
        assert_eq!(choice.preferred(&relay), 0, "wraps around");
        choice.prefer(&relay, 2);
        assert_eq!(choice.preferred(&relay), 2);
        choice.failed(&single, 0);
        choice.prefer(&single, 0);
        assert_eq!(choice.preferred(&single), 0);
    }
}
