//! Opening a home: finding out how its store is locked, asking for the passphrase if needed,
//! and starting the client with the patience the command calls for.
//!
//! What it does not do: print (see `output.rs`), turn the library's values into records (see
//! `present.rs`), or decide what a command does (see `commands.rs`).

use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use hush_client::net::{RetryPolicy, Socks5Proxy, TransportMode};
use hush_client::store::{KeyKind, KeySource, LocalStore, Passphrase, StoreError};
use hush_client::{Client, ClientOptions};

use crate::passphrase;

/// Connection attempts per relay operation for a one-shot command.
const ONE_SHOT_ATTEMPTS: u32 = 2;

/// How long one connection attempt of a one-shot command may take.
const ONE_SHOT_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// How patient the client is with relays: a one-shot command reports an unreachable relay after
/// a few seconds; the chat keeps the library's interactive defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Patience {
    /// Give up soon, so that a script learns of the problem.
    OneShot,
    /// Keep trying, as an interactive session should.
    Interactive,
}

/// Opens the home in `home`, reading the passphrase if its store has one. With `proxy`, the
/// client reaches relays only through it; relay connections are shared as `transport` says.
pub(crate) async fn open_home(
    home: &Path,
    patience: Patience,
    proxy: Option<Socks5Proxy>,
    transport: TransportMode,
) -> Result<Client> {
    let kind = match LocalStore::key_kind(home) {
        Ok(kind) => kind,
        Err(StoreError::NotInitialised { .. }) => bail!(not_initialised(home)),
        Err(err) => return Err(err.into()),
    };
    let key = match kind {
        KeyKind::Passphrase => key_from_passphrase(false)?,
        _ => KeySource::KeyFile,
    };
    Client::open_with(home, key, options(patience, proxy, transport))
        .await
        .map_err(|err| match err {
            hush_client::ClientError::NotInitialised { .. } => anyhow!(not_initialised(home)),
            other => other.into(),
        })
}

/// The client options for `patience`, reaching relays through `proxy` (if set) as `transport`
/// says.
pub(crate) fn options(
    patience: Patience,
    proxy: Option<Socks5Proxy>,
    transport: TransportMode,
) -> ClientOptions {
    let options = match patience {
        Patience::OneShot => ClientOptions::with_retry(RetryPolicy::new(
            ONE_SHOT_ATTEMPTS,
            ONE_SHOT_CONNECT_TIMEOUT,
        )),
        Patience::Interactive => ClientOptions::default(),
    }
    .with_transport(transport);
    match proxy {
        Some(proxy) => options.with_proxy(proxy),
        None => options,
    }
}

fn not_initialised(home: &Path) -> String {
    format!(
        "no hush home at {}; run `hush init --name NAME --relay hush://HOST:PORT#FINGERPRINT` first, or pass --home DIR",
        home.display()
    )
}

/// A key source from a passphrase read from the terminal or `HUSH_PASSPHRASE`.
pub(crate) fn key_from_passphrase(confirm: bool) -> Result<KeySource> {
    let secret = passphrase::read(confirm)?;
    Ok(KeySource::Passphrase(Passphrase::new(
        secret.as_bytes().to_vec(),
    )))
}
