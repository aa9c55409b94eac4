//! Certificate rotation for the generated self-signed certificate: `hush-server rotate-cert`.
//!
//! `rotate-cert` makes a next certificate and key beside the current ones in the data directory
//! (`relay-cert.next.der`, `relay-key.next.der`) and writes, last, the switch time
//! (`relay-cert.switch`, Unix seconds): that file is what makes a rotation pending. Until the
//! switch time the relay keeps serving the current certificate and announces the next
//! fingerprint and the switch time to every client that asks (`NextCert`), over a connection
//! the client already pinned. From the switch time on it serves the next certificate: a running
//! relay swaps it in at its next sweep tick (see `relay.rs`), and a relay started after the
//! switch time promotes it before binding. Promotion renames the next files over the current
//! ones and then removes the switch file; each step can be repeated, so a crash half-way is
//! finished by the next start.
//!
//! What it does not do: rotate an operator-supplied certificate (`--tls-cert`; the operator
//! replaces those files and hands out the new address), tell clients anything itself (the
//! router answers `NextCert` from [`CertState`]), or allow two pending rotations at once.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hush_protocol::{CertRotation, Fingerprint, RelayAddress};

use crate::tls::{self, TlsError, TlsIdentity, CERT_FILE, KEY_FILE};

/// File name of the next certificate (DER) during a rotation.
pub const NEXT_CERT_FILE: &str = "relay-cert.next.der";
/// File name of the next private key (PKCS#8 DER, mode 0600) during a rotation.
pub const NEXT_KEY_FILE: &str = "relay-key.next.der";
/// File name of the switch time (decimal Unix seconds); its presence makes a rotation pending.
pub const SWITCH_FILE: &str = "relay-cert.switch";
/// Default grace period: how long the current certificate keeps being served after
/// `rotate-cert`, while connecting clients learn the next one.
pub const DEFAULT_GRACE: &str = "7d";
/// The port the printed address uses when `--public-addr` is not given (the relay's default).
const DEFAULT_PORT: u16 = 4433;

/// Why a rotation could not be made or applied.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RotateError {
    /// The data directory has no generated certificate to rotate.
    #[error(
        "{dir} holds no relay certificate ({CERT_FILE}); start the relay once with this data \
         directory first (a relay given --tls-cert rotates by replacing those files)"
    )]
    NoCertificate {
        /// The data directory.
        dir: String,
    },
    /// A rotation is pending already.
    #[error(
        "a rotation is already pending: the relay switches to certificate {} at {}; run \
         rotate-cert again after that", .0.fingerprint, when(.0.switch_at)
    )]
    AlreadyPending(CertRotation),
    /// The switch file does not hold a time.
    #[error("{path} does not hold a switch time (Unix seconds); remove the {NEXT_CERT_FILE}, {NEXT_KEY_FILE} and {SWITCH_FILE} files to cancel the rotation")]
    BadSwitchTime {
        /// The file.
        path: String,
    },
    /// The grace period is not a duration.
    #[error("invalid --grace {given}: {message} (for example 7d, 12h or 0s)")]
    BadGrace {
        /// What was given.
        given: String,
        /// What the parser said.
        message: String,
    },
    /// `--public-addr` is not HOST:PORT.
    #[error("invalid --public-addr {given}: use HOST:PORT")]
    BadPublicAddr {
        /// What was given.
        given: String,
    },
    /// Reading, writing or making a certificate failed.
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// `hush-server rotate-cert`: its flags.
#[derive(clap::Args, Debug, Clone)]
pub struct RotateArgs {
    /// The relay's data directory (the relay may be running)
    #[arg(long = "data", env = "HUSH_DATA")]
    pub data: PathBuf,
    /// How long the current certificate stays in use while clients learn the new one
    #[arg(long, default_value = DEFAULT_GRACE)]
    pub grace: String,
    /// HOST:PORT for the printed address [default: this machine's host name, port 4433]
    #[arg(long, env = "HUSH_PUBLIC_ADDR")]
    pub public_addr: Option<String>,
}

/// The switch time as an RFC 3339 UTC time, for messages.
fn when(secs: u64) -> String {
    let t = UNIX_EPOCH + Duration::from_secs(secs);
    humantime::format_rfc3339_seconds(t).to_string()
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> TlsError + '_ {
    move |source| TlsError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// The rotation pending in `data_dir`, if any.
pub fn pending(data_dir: &Path) -> Result<Option<CertRotation>, RotateError> {
    let switch_path = data_dir.join(SWITCH_FILE);
    let text = match fs::read_to_string(&switch_path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(&switch_path)(e).into()),
    };
    let switch_at = text
        .trim()
        .parse()
        .map_err(|_| RotateError::BadSwitchTime {
            path: switch_path.display().to_string(),
        })?;
    let cert_path = data_dir.join(NEXT_CERT_FILE);
    let cert = match fs::read(&cert_path) {
        Ok(c) => c,
        // Promotion moved the next certificate already; finishing it removes the switch file.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let cert = data_dir.join(CERT_FILE);
            fs::read(&cert).map_err(io_err(&cert))?
        }
        Err(e) => return Err(io_err(&cert_path)(e).into()),
    };
    Ok(Some(CertRotation {
        fingerprint: tls::fingerprint(&cert),
        switch_at,
    }))
}

/// Makes a next certificate in `data_dir`, to be served from `now_secs + grace` on.
pub fn rotate(
    data_dir: &Path,
    grace: Duration,
    now_secs: u64,
    names: &[String],
) -> Result<CertRotation, RotateError> {
    if !data_dir.join(CERT_FILE).exists() || !data_dir.join(KEY_FILE).exists() {
        return Err(RotateError::NoCertificate {
            dir: data_dir.display().to_string(),
        });
    }
    if let Some(p) = pending(data_dir)? {
        return Err(RotateError::AlreadyPending(p));
    }
    let (cert, key) = tls::generate(names)?;
    tls::write_private(&data_dir.join(NEXT_KEY_FILE), &key)?;
    tls::write_private(&data_dir.join(NEXT_CERT_FILE), &cert)?;
    let switch_at = now_secs.saturating_add(grace.as_secs());
    tls::write_private(
        &data_dir.join(SWITCH_FILE),
        switch_at.to_string().as_bytes(),
    )?;
    Ok(CertRotation {
        fingerprint: tls::fingerprint(&cert),
        switch_at,
    })
}

/// If the rotation pending in `data_dir` is due at `now_secs`, makes the next certificate the
/// current one and returns its fingerprint. Safe to repeat after a crash half-way.
pub fn promote_if_due(data_dir: &Path, now_secs: u64) -> Result<Option<Fingerprint>, RotateError> {
    let Some(p) = pending(data_dir)? else {
        return Ok(None);
    };
    if now_secs < p.switch_at {
        return Ok(None);
    }
    for (from, to) in [(NEXT_KEY_FILE, KEY_FILE), (NEXT_CERT_FILE, CERT_FILE)] {
        let from = data_dir.join(from);
        if from.exists() {
            fs::rename(&from, data_dir.join(to)).map_err(io_err(&from))?;
        }
    }
    let switch_path = data_dir.join(SWITCH_FILE);
    fs::remove_file(&switch_path).map_err(io_err(&switch_path))?;
    tls::sync_dir(data_dir)?;
    Ok(Some(p.fingerprint))
}

/// The generated identity in `data_dir` as it should be served at `now_secs`: a due rotation is
/// promoted first. Also returns the rotation still pending, if any.
pub fn load_current(
    data_dir: &Path,
    now_secs: u64,
    names: &[String],
) -> Result<(TlsIdentity, Option<CertRotation>), RotateError> {
    promote_if_due(data_dir, now_secs)?;
    let identity = tls::load_or_generate(data_dir, names)?;
    Ok((identity, pending(data_dir)?))
}

/// One check of a running relay (every sweep interval): promotes a due rotation in `data_dir`
/// and hands the new identity to `serve`, then records what is served and announced in
/// `certs`. Failures are logged; the current certificate then stays in use.
pub(crate) fn tick(
    data_dir: &Path,
    now_secs: u64,
    certs: &CertState,
    serve: impl FnOnce(TlsIdentity) -> Result<(), TlsError>,
) {
    let serving = match promote_if_due(data_dir, now_secs) {
        Ok(None) => certs.serving(),
        Ok(Some(_)) => {
            let switched = tls::load_or_generate(data_dir, &tls::names()).and_then(|identity| {
                let fingerprint = identity.fingerprint;
                serve(identity).map(|()| fingerprint)
            });
            match switched {
                Ok(fingerprint) => {
                    tracing::info!(%fingerprint, "serving the rotated certificate");
                    fingerprint
                }
                Err(error) => {
                    tracing::error!(%error, "cannot serve the rotated certificate");
                    return;
                }
            }
        }
        Err(error) => {
            tracing::warn!(%error, "cannot read the pending certificate rotation");
            return;
        }
    };
    match pending(data_dir) {
        Ok(next) => certs.set(serving, next),
        Err(error) => tracing::warn!(%error, "cannot read the pending certificate rotation"),
    }
}

/// What the running relay serves and announces.
#[derive(Debug)]
pub struct CertState {
    inner: Mutex<(Fingerprint, Option<CertRotation>)>,
}

impl CertState {
    /// Serving `serving`, with `pending` announced.
    pub fn new(serving: Fingerprint, pending: Option<CertRotation>) -> Self {
        Self {
            inner: Mutex::new((serving, pending)),
        }
    }

    /// The fingerprint of the certificate served now.
    pub fn serving(&self) -> Fingerprint {
        self.lock().0
    }

    /// The rotation announced to clients, if any.
    pub fn pending(&self) -> Option<CertRotation> {
        self.lock().1
    }

    /// Records what is served and announced now.
    pub fn set(&self, serving: Fingerprint, pending: Option<CertRotation>) {
        *self.lock() = (serving, pending);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (Fingerprint, Option<CertRotation>)> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The host and port of the printed address: `--public-addr`, or this machine's host name and
/// the default port.
fn host_port(public_addr: Option<&str>) -> Result<(String, u16), RotateError> {
    let Some(p) = public_addr else {
        return Ok((tls::hostname(), DEFAULT_PORT));
    };
    let bad = || RotateError::BadPublicAddr {
        given: p.to_owned(),
    };
    let (h, port) = p.rsplit_once(':').ok_or_else(bad)?;
    let port = port.parse().map_err(|_| bad())?;
    Ok((h.trim_matches(['[', ']']).to_owned(), port))
}

/// Runs `hush-server rotate-cert`: makes the next certificate and returns what to print, the
/// new address first.
pub fn run(args: &RotateArgs) -> Result<String, RotateError> {
    let grace = humantime::parse_duration(&args.grace).map_err(|e| RotateError::BadGrace {
        given: args.grace.clone(),
        message: e.to_string(),
    })?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (host, port) = host_port(args.public_addr.as_deref())?;
    let next = rotate(&args.data, grace, now, &tls::names())?;
    let address = RelayAddress::new(host, port, next.fingerprint);
    Ok(format!(
        "{address}\n\
         The relay keeps serving its current certificate until {} and serves the new one from \
         then on (a running relay switches within one sweep interval).\n\
         Clients that connect before then learn the new certificate and keep working; give the \
         address above to new users from the switch time on (until then, the old one).\n",
        when(next.switch_at)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        vec!["localhost".to_owned()]
    }

    #[test]
    fn a_rotation_is_pending_until_due_then_promoted_once() {
        let dir = tempfile::tempdir().unwrap();
        let err = rotate(dir.path(), Duration::from_secs(60), 1_000, &names()).unwrap_err();
        assert!(matches!(err, RotateError::NoCertificate { .. }), "{err}");
        let (old, none) = load_current(dir.path(), 1_000, &names()).unwrap();
        assert_eq!(none, None);
        let next = rotate(dir.path(), Duration::from_secs(60), 1_000, &names()).unwrap();
        assert_eq!(next.switch_at, 1_060);
        assert_ne!(next.fingerprint, old.fingerprint);
        let again = rotate(dir.path(), Duration::from_secs(60), 1_000, &names()).unwrap_err();
        assert!(matches!(again, RotateError::AlreadyPending(p) if p == next));

        let (id, pend) = load_current(dir.path(), 1_059, &names()).unwrap();
        assert_eq!(id.fingerprint, old.fingerprint);
        assert_eq!(pend, Some(next));

        let (id, pend) = load_current(dir.path(), 1_060, &names()).unwrap();
        assert_eq!(id.fingerprint, next.fingerprint);
        assert_eq!(pend, None);
        assert!(!dir.path().join(NEXT_KEY_FILE).exists());
        tls::server_crypto(id).unwrap();
    }

    #[test]
    fn a_promotion_cut_short_is_finished_by_the_next_load() {
        let dir = tempfile::tempdir().unwrap();
        load_current(dir.path(), 0, &names()).unwrap();
        let next = rotate(dir.path(), Duration::ZERO, 0, &names()).unwrap();
        // As if the process died after moving the key only.
        fs::rename(dir.path().join(NEXT_KEY_FILE), dir.path().join(KEY_FILE)).unwrap();
        assert_eq!(pending(dir.path()).unwrap(), Some(next));
        let (id, pend) = load_current(dir.path(), 0, &names()).unwrap();
        assert_eq!((id.fingerprint, pend), (next.fingerprint, None));
        tls::server_crypto(id).unwrap();
    }

    #[test]
    fn a_bad_switch_file_and_a_bad_grace_are_named() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(SWITCH_FILE), "soon").unwrap();
        let err = pending(dir.path()).unwrap_err();
        assert!(err.to_string().contains(SWITCH_FILE), "{err}");
        let args = RotateArgs {
            data: dir.path().to_owned(),
            grace: "a while".to_owned(),
            public_addr: None,
        };
        assert!(matches!(run(&args), Err(RotateError::BadGrace { .. })));
    }
}
