//! The relay's TLS identity: a self-signed certificate made on first start and kept in the data
//! directory, or an operator-supplied (for example CA-issued) PEM certificate and key.
//!
//! The relay address carries [`fingerprint`] of the end-entity certificate, which clients pin.
//!
//! What it does not do: verify certificates (clients do, in `hush_client::net`), or rotate them
//! (`rotate.rs` does, with the files and helpers here).

use std::fs;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use hush_protocol::auth::ALPNS;
use hush_protocol::Fingerprint;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::{Digest, Sha256};

/// File name of the generated certificate (DER) in the data directory.
pub const CERT_FILE: &str = "relay-cert.der";
/// File name of the generated private key (PKCS#8 DER, mode 0600) in the data directory.
pub const KEY_FILE: &str = "relay-key.der";

/// Why the TLS identity could not be loaded or made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// Reading or writing a certificate or key file failed.
    #[error("certificate file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A PEM file holds no certificate or no key.
    #[error("{0}: no usable certificate or key in PEM file")]
    Pem(String),
    /// Generating the certificate failed.
    #[error("cannot generate certificate: {0}")]
    Generate(String),
    /// rustls rejected the certificate or key.
    #[error("TLS configuration rejected: {0}")]
    Rustls(String),
}

/// A certificate chain, its key and the end-entity fingerprint.
pub struct TlsIdentity {
    /// End-entity certificate first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The private key. Never logged.
    pub key: PrivateKeyDer<'static>,
    /// SHA-256 of `chain[0]`.
    pub fingerprint: Fingerprint,
}

impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsIdentity")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

/// The machine's host name, for the printed address when listening on every interface.
pub(crate) fn hostname() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// The names a generated certificate carries: `localhost` and the machine's host name.
pub(crate) fn names() -> Vec<String> {
    vec!["localhost".to_owned(), hostname()]
}

/// SHA-256 of a DER certificate.
pub fn fingerprint(cert: &[u8]) -> Fingerprint {
    Fingerprint(Sha256::digest(cert).into())
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> TlsError + '_ {
    move |source| TlsError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Loads the self-signed identity from `data_dir`, generating and saving it on first use.
pub fn load_or_generate(data_dir: &Path, names: &[String]) -> Result<TlsIdentity, TlsError> {
    fs::create_dir_all(data_dir).map_err(io_err(data_dir))?;
    let cert_path = data_dir.join(CERT_FILE);
    let key_path = data_dir.join(KEY_FILE);
    if cert_path.exists() && key_path.exists() {
        let cert = fs::read(&cert_path).map_err(io_err(&cert_path))?;
        let key = fs::read(&key_path).map_err(io_err(&key_path))?;
        return Ok(identity(cert, key));
    }
    let (cert, key) = generate(names)?;
    write_private(&key_path, &key)?;
    write_private(&cert_path, &cert)?;
    Ok(identity(cert, key))
}

/// A new self-signed certificate for `names` and its PKCS#8 key, both DER.
pub(crate) fn generate(names: &[String]) -> Result<(Vec<u8>, Vec<u8>), TlsError> {
    let ck = rcgen::generate_simple_self_signed(names.to_vec())
        .map_err(|e| TlsError::Generate(e.to_string()))?;
    Ok((ck.cert.der().to_vec(), ck.key_pair.serialize_der()))
}

/// Makes the renames and removals in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), TlsError> {
    #[cfg(unix)]
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))?;
    Ok(())
}

fn identity(cert: Vec<u8>, key: Vec<u8>) -> TlsIdentity {
    TlsIdentity {
        fingerprint: fingerprint(&cert),
        chain: vec![CertificateDer::from(cert)],
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)),
    }
}

/// Writes a file readable only by its owner, via a temporary file and a rename.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> Result<(), TlsError> {
    let tmp = path.with_extension("tmp");
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(&tmp).map_err(io_err(&tmp))?;
    f.write_all(bytes).map_err(io_err(&tmp))?;
    f.sync_all().map_err(io_err(&tmp))?;
    fs::rename(&tmp, path).map_err(io_err(path))
}

/// Loads an operator-supplied PEM certificate chain and private key.
pub fn load_pem(cert: &Path, key: &Path) -> Result<TlsIdentity, TlsError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|_| TlsError::Pem(cert.display().to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|_| TlsError::Pem(cert.display().to_string()))?;
    let first = chain
        .first()
        .ok_or_else(|| TlsError::Pem(cert.display().to_string()))?;
    let fingerprint = fingerprint(first);
    let key =
        PrivateKeyDer::from_pem_file(key).map_err(|_| TlsError::Pem(key.display().to_string()))?;
    Ok(TlsIdentity {
        chain,
        key,
        fingerprint,
    })
}

/// The rustls provider the relay and client use (ring).
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A TLS 1.3-only rustls server configuration offering ALPN `hush/2` and `hush/1` (the
/// client's preference picks; current clients prefer `hush/2`).
pub fn server_crypto(id: TlsIdentity) -> Result<rustls::ServerConfig, TlsError> {
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsError::Rustls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(id.chain, id.key)
        .map_err(|e| TlsError::Rustls(e.to_string()))?;
    cfg.alpn_protocols = ALPNS.iter().map(|a| a.to_vec()).collect();
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_is_generated_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_generate(dir.path(), &["localhost".into()]).unwrap();
        let b = load_or_generate(dir.path(), &["localhost".into()]).unwrap();
        assert_eq!(a.fingerprint, b.fingerprint);
        assert_eq!(a.fingerprint, fingerprint(&a.chain[0]));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.path().join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0);
        }
        server_crypto(b).unwrap();
    }
}
