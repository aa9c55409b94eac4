//! Certificate pinning: accept exactly the relay certificates whose SHA-256 is a pinned
//! fingerprint, whoever issued them: the one from the relay's `hush://` address, and during a
//! certificate rotation the next one the relay announced (see `pins.rs`).
//!
//! A certificate that matches no pin is refused, and the verifier records that it saw one, so
//! the caller can tell a changed certificate from an unreachable relay.
//!
//! The handshake signature is still verified against that certificate's key, so a peer that
//! merely replays the certificate without its private key fails.
//!
//! What it does not do: consult CAs, names or expiry dates; the pin is the whole trust decision.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use hush_protocol::Fingerprint;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use subtle::ConstantTimeEq;

use sha2::{Digest, Sha256};

/// A verifier that pins one or more certificate fingerprints.
#[derive(Debug)]
pub struct PinnedCertVerifier {
    pins: Vec<Fingerprint>,
    provider: Arc<CryptoProvider>,
    /// Set when a certificate matching no pin was presented.
    mismatch: Arc<AtomicBool>,
}

impl PinnedCertVerifier {
    /// Pins `pin`, verifying handshake signatures with `provider`'s algorithms.
    pub fn new(pin: Fingerprint, provider: Arc<CryptoProvider>) -> Self {
        Self::with_pins(vec![pin], provider, Arc::default())
    }

    /// Accepts any of `pins`; sets `mismatch` when a certificate matching none is presented.
    pub fn with_pins(
        pins: Vec<Fingerprint>,
        provider: Arc<CryptoProvider>,
        mismatch: Arc<AtomicBool>,
    ) -> Self {
        Self {
            pins,
            provider,
            mismatch,
        }
    }
}

impl ServerCertVerifier for PinnedCertVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let got: [u8; 32] = Sha256::digest(end_entity.as_ref()).into();
        let matched = self
            .pins
            .iter()
            .fold(0u8, |any, pin| any | got.ct_eq(&pin.0).unwrap_u8());
        if matched == 1 {
            Ok(ServerCertVerified::assertion())
        } else {
            self.mismatch.store(true, Ordering::Release);
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
