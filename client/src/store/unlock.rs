//! Unlocking a store: the device key from a passphrase or the key file, and the key vault.
//!
//! What it does not do: prompt for a passphrase (front ends do), or keep the passphrase once
//! the vault is open.

use std::fmt;
use std::fs;
use std::io;

use hush_vault::{DeviceKey, KdfParams, Vault, VaultError, VaultOptions};
use zeroize::Zeroizing;

use super::home::{Home, KeyKind};
use super::limits::MAX_RECORDS;
use super::StoreError;

/// A passphrase, and the Argon2id cost used if it creates a new store. Zeroized on drop; its
/// `Debug` never shows it.
pub struct Passphrase {
    secret: Zeroizing<Vec<u8>>,
    kdf: KdfParams,
}

impl Passphrase {
    /// A passphrase with the recommended cost ([`KdfParams::RECOMMENDED`]: 64 MiB, 3 passes).
    pub fn new(secret: impl Into<Vec<u8>>) -> Passphrase {
        Passphrase {
            secret: Zeroizing::new(secret.into()),
            kdf: KdfParams::RECOMMENDED,
        }
    }

    /// The same passphrase with another cost for a new store. Opening an existing store always
    /// uses the cost it was created with.
    pub fn with_kdf(mut self, kdf: KdfParams) -> Passphrase {
        self.kdf = kdf;
        self
    }
}

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Passphrase")
            .field("kdf", &self.kdf)
            .finish_non_exhaustive()
    }
}

/// Where the device key that encrypts the key vault comes from.
#[derive(Debug)]
#[non_exhaustive]
pub enum KeySource {
    /// Derived from a passphrase with Argon2id.
    Passphrase(Passphrase),
    /// A random key in the 0600 file `device.key` in the home directory.
    KeyFile,
}

impl KeySource {
    /// The kind recorded in the marker file.
    pub fn kind(&self) -> KeyKind {
        match self {
            KeySource::Passphrase(_) => KeyKind::Passphrase,
            KeySource::KeyFile => KeyKind::KeyFile,
        }
    }
}

fn vault_options() -> VaultOptions {
    VaultOptions {
        max_slots: MAX_RECORDS,
    }
}

/// Creates the device key and an empty vault for a new store.
pub(crate) fn create_vault(home: &Home, source: &KeySource) -> Result<Vault, StoreError> {
    let key = match source {
        KeySource::KeyFile => {
            DeviceKey::load_or_create_key_file(&home.key_file()).map_err(StoreError::KeyFile)?
        }
        KeySource::Passphrase(p) => {
            DeviceKey::from_passphrase(&p.secret, &DeviceKey::random_salt(), p.kdf)
                .map_err(StoreError::KdfParams)?
        }
    };
    Ok(Vault::open(&home.vault_file(), &key, vault_options())?)
}

/// Opens the vault of an existing store whose marker says `kind`.
pub(crate) fn open_vault(
    home: &Home,
    kind: KeyKind,
    source: &KeySource,
) -> Result<Vault, StoreError> {
    // The vault creates a file that is missing or empty; here that would hide damage.
    match fs::metadata(home.vault_file()) {
        Ok(meta) if meta.is_file() && meta.len() > 0 => {}
        Ok(_) => return Err(StoreError::corrupt("key vault is empty")),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(StoreError::corrupt("key vault is missing"))
        }
        Err(e) => return Err(e.into()),
    }
    match (kind, source) {
        (KeyKind::Passphrase, KeySource::Passphrase(p)) => {
            Vault::open_with_passphrase(&home.vault_file(), &p.secret, p.kdf, vault_options())
                .map_err(|e| match e {
                    VaultError::WrongKey => StoreError::WrongPassphrase,
                    // The costs come from the vault header here, so bad ones mean damage.
                    VaultError::InvalidKdfParams { .. } => StoreError::corrupt("key vault header"),
                    other => other.into(),
                })
        }
        (KeyKind::KeyFile, KeySource::KeyFile) => {
            let path = home.key_file();
            match fs::symlink_metadata(&path) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Err(StoreError::KeyFileMissing { path })
                }
                Err(e) => return Err(e.into()),
                Ok(_) => {}
            }
            let key = DeviceKey::load_or_create_key_file(&path).map_err(StoreError::KeyFile)?;
            Vault::open(&home.vault_file(), &key, vault_options()).map_err(|e| match e {
                VaultError::WrongKey => StoreError::KeyFile(e),
                other => other.into(),
            })
        }
        (KeyKind::Passphrase, _) => Err(StoreError::PassphraseRequired),
        (KeyKind::KeyFile, _) => Err(StoreError::KeyFileStore),
    }
}
