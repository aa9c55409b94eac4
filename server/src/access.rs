//! Who may create queues and blobs: the relay's create tokens, held only as SHA-256 hashes,
//! and each connection's standing after its `Hello`.
//!
//! A relay with no token configured is open: anyone who knows its address may create. With
//! tokens (`create_token`, and the lines of `create_tokens_file`), creating needs a `Hello`
//! that presented one of them on the same connection. The tokens file is read at start and
//! again on [`Access::reload`] (the binary calls it on SIGHUP); a token deleted from the file
//! stops working for new creates at once, also on connections that presented it earlier.
//! Sending to a queue, reading it and every blob transfer need no token.
//!
//! Comparison runs over every stored hash with `subtle`, so its time does not depend on how
//! much of a guess matches. Tokens are never logged: errors name the file and line only.
//!
//! What it does not do: parse flags (`config.rs`) or decide which requests create
//! (`router.rs` asks [`Access::may_create`] for `CreateQueue` and `BlobCreate`).

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use hush_protocol::{CreateToken, ErrorCode, RelayAddress, RelayInfo};
use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};

use crate::config::RelayConfig;

/// SHA-256 of a create token: all the relay keeps of it.
type TokenHash = [u8; 32];

fn hash(token: &CreateToken) -> TokenHash {
    Sha256::digest(token.as_bytes()).into()
}

/// Why the create tokens could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AccessError {
    /// The tokens file could not be read.
    #[error("cannot read the create tokens file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A line of the tokens file is not a valid token (the line is not repeated here).
    #[error("the create tokens file {path}, line {line}: a token is 16 to 128 characters of A-Z a-z 0-9 . _ ~ -")]
    BadToken {
        /// The file.
        path: PathBuf,
        /// The line number, from 1.
        line: usize,
    },
}

/// What one connection said in its `Hello`, if it said one.
#[derive(Debug, Default)]
pub(crate) enum Standing {
    /// No `Hello` yet: an older client, which knows no token error codes.
    #[default]
    Unknown,
    /// Said `Hello`; holds the hash of the token it presented, if any.
    Hello(Option<TokenHash>),
}

/// The relay's create tokens.
#[derive(Debug)]
pub struct Access {
    /// The token given by flag, environment or the TOML file, if any.
    fixed: Option<TokenHash>,
    /// The file to read tokens from, one per line, if any.
    file: Option<PathBuf>,
    /// Every accepted token: `fixed` and the file's, as last loaded.
    hashes: RwLock<Vec<TokenHash>>,
}

impl Access {
    /// The tokens `config` names, the file read now.
    pub fn load(config: &RelayConfig) -> Result<Access, AccessError> {
        let access = Access {
            fixed: config.create_token.as_ref().map(hash),
            file: config.create_tokens_file.clone(),
            hashes: RwLock::new(Vec::new()),
        };
        access.reload()?;
        Ok(access)
    }

    /// Reads the tokens file again; returns how many tokens are accepted now. On an error the
    /// tokens loaded before stay in force.
    pub fn reload(&self) -> Result<usize, AccessError> {
        let mut hashes: Vec<TokenHash> = self.fixed.into_iter().collect();
        if let Some(path) = &self.file {
            hashes.extend(read_tokens(path)?);
        }
        let n = hashes.len();
        *self.hashes.write().unwrap_or_else(PoisonError::into_inner) = hashes;
        Ok(n)
    }

    /// Whether anyone may create: no token is configured (an empty tokens file, with no other
    /// token, still closes the relay: every token was revoked).
    pub fn is_open(&self) -> bool {
        self.fixed.is_none() && self.file.is_none()
    }

    /// Whether `h` is one of the accepted tokens, compared in constant time against each.
    fn accepts(&self, h: &TokenHash) -> bool {
        let hashes = self.hashes.read().unwrap_or_else(PoisonError::into_inner);
        let found = hashes
            .iter()
            .fold(Choice::from(0), |found, known| found | known.ct_eq(h));
        found.into()
    }

    /// Handles a `Hello`: records the connection's token and answers the relay's limits, or
    /// `Forbidden` for a token this relay does not accept (the standing is then "no token").
    pub(crate) fn hello(
        &self,
        standing: &mut Standing,
        token: Option<CreateToken>,
        config: &RelayConfig,
    ) -> Result<RelayInfo, ErrorCode> {
        let presented = token.as_ref().map(hash);
        *standing = Standing::Hello(None);
        if let Some(h) = presented.filter(|_| !self.is_open()) {
            if !self.accepts(&h) {
                tracing::debug!("hello with a create token this relay does not accept");
                return Err(ErrorCode::Forbidden);
            }
            *standing = Standing::Hello(Some(h));
        }
        Ok(info(config, self.may_create(standing).is_ok()))
    }

    /// Whether a connection of this standing may create a queue or a blob now: `Auth` for a
    /// connection that never said `Hello` (an older client knows no newer code),
    /// `TokenRequired` for one that presented no token, `Forbidden` for one whose token was
    /// revoked since.
    pub(crate) fn may_create(&self, standing: &Standing) -> Result<(), ErrorCode> {
        if self.is_open() {
            return Ok(());
        }
        match standing {
            Standing::Hello(Some(h)) if self.accepts(h) => Ok(()),
            Standing::Hello(Some(_)) => Err(ErrorCode::Forbidden),
            Standing::Hello(None) => Err(ErrorCode::TokenRequired),
            Standing::Unknown => Err(ErrorCode::Auth),
        }
    }
}

impl Access {
    /// Logs at start who may create: a warning when the relay is open to anyone, else how
    /// many tokens are accepted and the address form users need (never a token).
    pub fn announce(&self, address: &RelayAddress) {
        if self.is_open() {
            tracing::warn!(
                "no create token is set: anyone who knows this relay's address can create \
                 queues and upload files; set --create-token or --create-tokens-file to restrict it"
            );
            return;
        }
        let tokens = self.count();
        let form = address.to_string().replacen("hush://", "hush://TOKEN@", 1);
        tracing::info!(
            tokens,
            "creating queues and files needs a create token; give users {form}"
        );
    }

    fn count(&self) -> usize {
        self.hashes
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// Re-reads the tokens file each time the process gets SIGHUP, on a task of its own, logging
/// how many tokens are accepted (or why the file was not read, keeping the previous tokens).
#[cfg(unix)]
pub fn reload_on_sighup(access: Arc<Access>) -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hup = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            match access.reload() {
                Ok(tokens) => tracing::info!(tokens, "create tokens reloaded"),
                Err(e) => {
                    tracing::warn!(error = %e, "create tokens not reloaded; the previous ones stay in force")
                }
            }
        }
    });
    Ok(())
}

/// Nothing to do without SIGHUP: the tokens file is read at start only.
#[cfg(not(unix))]
pub fn reload_on_sighup(_: Arc<Access>) -> std::io::Result<()> {
    Ok(())
}

/// The relay's limits as a `Welcome` announces them.
fn info(config: &RelayConfig, may_create: bool) -> RelayInfo {
    RelayInfo {
        max_ttl_secs: config.max_ttl.as_secs(),
        max_envelope_len: u32::try_from(config.max_envelope_len).unwrap_or(u32::MAX),
        queue_max_messages: config.queue_max_messages,
        queue_max_bytes: config.queue_max_bytes,
        blob_max_bytes: config.blob_max_bytes,
        blob_ttl_secs: config.blob_ttl.as_secs(),
        may_create,
    }
}

/// The hashes of the tokens in `path`: one per line, blank lines and `#` comments skipped.
fn read_tokens(path: &Path) -> Result<Vec<TokenHash>, AccessError> {
    let text = std::fs::read_to_string(path).map_err(|source| AccessError::Read {
        path: path.to_owned(),
        source,
    })?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let token: CreateToken = line.parse().map_err(|_| AccessError::BadToken {
            path: path.to_owned(),
            line: i + 1,
        })?;
        out.push(hash(&token));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "operator-token-0001";
    const OTHER: &str = "operator-token-0002";

    fn token(s: &str) -> CreateToken {
        s.parse().unwrap()
    }

    fn config(dir: &Path, fixed: Option<&str>, file: Option<&str>) -> RelayConfig {
        let mut c = RelayConfig::loopback(dir);
        c.create_token = fixed.map(token);
        c.create_tokens_file = file.map(|text| {
            let path = dir.join("tokens");
            std::fs::write(&path, text).unwrap();
            path
        });
        c
    }

    #[test]
    fn an_open_relay_lets_everyone_create() {
        let dir = tempfile::tempdir().unwrap();
        let c = config(dir.path(), None, None);
        let access = Access::load(&c).unwrap();
        assert!(access.is_open());
        assert_eq!(access.may_create(&Standing::Unknown), Ok(()));
        let mut s = Standing::Unknown;
        let info = access.hello(&mut s, Some(token(OTHER)), &c).unwrap();
        assert!(info.may_create);
        assert_eq!(info.max_ttl_secs, c.max_ttl.as_secs());
    }

    #[test]
    fn a_closed_relay_needs_an_accepted_token() {
        let dir = tempfile::tempdir().unwrap();
        let c = config(dir.path(), Some(GOOD), None);
        let access = Access::load(&c).unwrap();
        assert_eq!(access.may_create(&Standing::Unknown), Err(ErrorCode::Auth));
        let mut s = Standing::Unknown;
        assert!(!access.hello(&mut s, None, &c).unwrap().may_create);
        assert_eq!(access.may_create(&s), Err(ErrorCode::TokenRequired));
        assert_eq!(
            access.hello(&mut s, Some(token(OTHER)), &c),
            Err(ErrorCode::Forbidden)
        );
        assert_eq!(access.may_create(&s), Err(ErrorCode::TokenRequired));
        assert!(
            access
                .hello(&mut s, Some(token(GOOD)), &c)
                .unwrap()
                .may_create
        );
        assert_eq!(access.may_create(&s), Ok(()));
    }

    #[test]
    fn a_token_removed_from_the_file_stops_working_on_reload() {
        let dir = tempfile::tempdir().unwrap();
        let c = config(
            dir.path(),
            None,
            Some(&format!("# staff\n{GOOD}\n\n{OTHER}\n")),
        );
        let access = Access::load(&c).unwrap();
        let mut s = Standing::Unknown;
        assert!(
            access
                .hello(&mut s, Some(token(GOOD)), &c)
                .unwrap()
                .may_create
        );
        std::fs::write(dir.path().join("tokens"), format!("{OTHER}\n")).unwrap();
        assert_eq!(access.reload().unwrap(), 1);
        // The connection that presented it earlier loses it too.
        assert_eq!(access.may_create(&s), Err(ErrorCode::Forbidden));
        let mut other = Standing::Unknown;
        assert!(access.hello(&mut other, Some(token(OTHER)), &c).is_ok());
        // Every token revoked: the relay stays closed.
        std::fs::write(dir.path().join("tokens"), "").unwrap();
        assert_eq!(access.reload().unwrap(), 0);
        assert!(!access.is_open());
        assert_eq!(access.may_create(&other), Err(ErrorCode::Forbidden));
    }

    #[test]
    fn a_bad_line_names_the_line_but_not_its_text() {
        let dir = tempfile::tempdir().unwrap();
        let c = config(dir.path(), None, Some(&format!("{GOOD}\nshort-secret\n")));
        let err = Access::load(&c).unwrap_err().to_string();
        assert!(err.contains("line 2"), "{err}");
        assert!(!err.contains("short-secret"), "{err}");
        // A reload that fails keeps the tokens in force.
        std::fs::write(dir.path().join("tokens"), format!("{GOOD}\n")).unwrap();
        let access = Access::load(&c).unwrap();
        std::fs::write(dir.path().join("tokens"), "short-secret\n").unwrap();
        assert!(access.reload().is_err());
        let mut s = Standing::Unknown;
        assert!(access.hello(&mut s, Some(token(GOOD)), &c).is_ok());
    }
}
