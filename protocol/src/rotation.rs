//! A relay's announced certificate rotation: the fingerprint of the certificate it will serve
//! from a given time on, told over a connection the client already pinned.
//!
//! The relay answers [`Request::NextCert`](crate::Request::NextCert) with
//! [`Reply::NextCert`](crate::Reply::NextCert), which carries a [`CertRotation`] while one is
//! pending and nothing otherwise.
//!
//! What it does not do: decide whether to trust the announcement (the client does, because it
//! arrived on a connection whose certificate matched a pin), or make certificates (the relay's
//! `hush-server rotate-cert` does).

use crate::address::Fingerprint;

/// A pending certificate rotation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CertRotation {
    /// SHA-256 of the certificate the relay serves from `switch_at` on.
    pub fingerprint: Fingerprint,
    /// Unix seconds from which the relay serves the new certificate instead of the current one.
    pub switch_at: u64,
}
