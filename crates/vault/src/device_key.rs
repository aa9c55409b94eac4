//! The device key that encrypts a vault: from a passphrase (Argon2id) or from a 0600 key file.
//!
//! What it does not do: prompt for passphrases, or keep the key anywhere but in memory. The
//! subkeys that actually encrypt slots and the vault's check block are derived from the device
//! key with HKDF-SHA256, so the raw device key itself never encrypts anything.

use std::fmt;
use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use hkdf::Hkdf;
use rand::RngCore;
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::VaultError;

/// Length of a device key in bytes.
pub const DEVICE_KEY_LEN: usize = 32;
/// Length of the Argon2id salt kept in the vault header.
pub const SALT_LEN: usize = 16;
/// Largest Argon2id memory cost accepted, in KiB (1 GiB). The header is read from disk before
/// it is authenticated, so this cap keeps a doctored header from exhausting memory.
pub const MAX_KDF_MEMORY_KIB: u32 = 1 << 20;
/// Largest Argon2id time cost (passes) accepted.
pub const MAX_KDF_TIME_COST: u32 = 64;
/// Largest Argon2id parallelism (lanes) accepted.
pub const MAX_KDF_LANES: u32 = 16;

/// Magic prefix of a key file, so that a wrong file is recognised instead of used.
const KEY_FILE_MAGIC: &[u8; 8] = b"HUSHKEY1";
/// Total size of a key file: magic plus key.
const KEY_FILE_LEN: usize = KEY_FILE_MAGIC.len() + DEVICE_KEY_LEN;

/// Argon2id cost parameters. Stored in the vault header so that opening re-derives the same key.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct KdfParams {
    /// Memory cost in KiB.
    pub memory_kib: u32,
    /// Number of passes.
    pub time_cost: u32,
    /// Degree of parallelism (lanes).
    pub lanes: u32,
}

impl KdfParams {
    /// The default for interactive unlock: 64 MiB, 3 passes, 1 lane (RFC 9106, second choice).
    pub const RECOMMENDED: KdfParams = KdfParams {
        memory_kib: 64 * 1024,
        time_cost: 3,
        lanes: 1,
    };

    pub(crate) fn to_argon2(self) -> Result<argon2::Params, VaultError> {
        let invalid = VaultError::InvalidKdfParams {
            max_kib: MAX_KDF_MEMORY_KIB,
        };
        if self.memory_kib > MAX_KDF_MEMORY_KIB
            || self.time_cost > MAX_KDF_TIME_COST
            || self.lanes > MAX_KDF_LANES
        {
            return Err(invalid);
        }
        argon2::Params::new(
            self.memory_kib,
            self.time_cost,
            self.lanes,
            Some(DEVICE_KEY_LEN),
        )
        .map_err(|_| invalid)
    }
}

/// Where a device key came from; recorded in a new vault's header.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum KeyOrigin {
    /// A random key from a key file.
    KeyFile,
    /// Argon2id over a passphrase with this salt and these costs.
    Passphrase {
        salt: [u8; SALT_LEN],
        params: KdfParams,
    },
}

/// The secret that unlocks a vault. Zeroized on drop; its `Debug` never shows the key.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct DeviceKey {
    key: [u8; DEVICE_KEY_LEN],
    #[zeroize(skip)]
    origin: KeyOrigin,
}

impl DeviceKey {
    /// Derives the key from a passphrase with Argon2id.
    pub fn from_passphrase(
        passphrase: &[u8],
        salt: &[u8; SALT_LEN],
        params: KdfParams,
    ) -> Result<DeviceKey, VaultError> {
        let argon = argon2::Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            params.to_argon2()?,
        );
        let mut key = [0u8; DEVICE_KEY_LEN];
        argon
            .hash_password_into(passphrase, salt, &mut key)
            .map_err(|_| VaultError::InvalidKdfParams {
                max_kib: MAX_KDF_MEMORY_KIB,
            })?;
        Ok(DeviceKey {
            key,
            origin: KeyOrigin::Passphrase {
                salt: *salt,
                params,
            },
        })
    }

    /// A fresh random salt for [`DeviceKey::from_passphrase`].
    pub fn random_salt() -> [u8; SALT_LEN] {
        let mut salt = [0u8; SALT_LEN];
        rand::rngs::OsRng.fill_bytes(&mut salt);
        salt
    }

    /// Reads the key file at `path`, or creates it with a fresh random key.
    ///
    /// A new file is created with mode 0600, and its directory with mode 0700 if the directory
    /// did not exist. An existing file that other users may read or write is refused.
    pub fn load_or_create_key_file(path: &Path) -> Result<DeviceKey, VaultError> {
        match fs::symlink_metadata(path) {
            Ok(_) => Self::load_key_file(path),
            Err(e) if e.kind() == io::ErrorKind::NotFound => match Self::create_key_file(path) {
                // Another process created it first: use theirs.
                Err(VaultError::Io(e)) if e.kind() == io::ErrorKind::AlreadyExists => {
                    Self::load_key_file(path)
                }
                other => other,
            },
            Err(e) => Err(e.into()),
        }
    }

    fn load_key_file(path: &Path) -> Result<DeviceKey, VaultError> {
        let mut file = OpenOptions::new().read(true).open(path)?;
        let meta = file.metadata()?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(VaultError::KeyFilePermissions { mode });
        }
        if !meta.is_file() || meta.len() != KEY_FILE_LEN as u64 {
            return Err(VaultError::InvalidKeyFile);
        }
        let mut buf = [0u8; KEY_FILE_LEN];
        file.read_exact(&mut buf)?;
        if &buf[..KEY_FILE_MAGIC.len()] != KEY_FILE_MAGIC {
            buf.zeroize();
            return Err(VaultError::InvalidKeyFile);
        }
        let mut key = [0u8; DEVICE_KEY_LEN];
        key.copy_from_slice(&buf[KEY_FILE_MAGIC.len()..]);
        buf.zeroize();
        Ok(DeviceKey {
            key,
            origin: KeyOrigin::KeyFile,
        })
    }

    fn create_key_file(path: &Path) -> Result<DeviceKey, VaultError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.exists() {
                DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
            }
        }
        let mut key = [0u8; DEVICE_KEY_LEN];
        rand::rngs::OsRng.fill_bytes(&mut key);
        let mut buf = [0u8; KEY_FILE_LEN];
        buf[..KEY_FILE_MAGIC.len()].copy_from_slice(KEY_FILE_MAGIC);
        buf[KEY_FILE_MAGIC.len()..].copy_from_slice(&key);
        let written = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .and_then(|mut file| {
                file.write_all(&buf)?;
                file.sync_all()
            });
        buf.zeroize();
        // The directory entry must be durable too: a vault outliving its key file after a crash
        // could never be opened again.
        let written = written.and_then(|()| sync_parent_dir(path));
        if let Err(e) = written {
            key.zeroize();
            return Err(e.into());
        }
        Ok(DeviceKey {
            key,
            origin: KeyOrigin::KeyFile,
        })
    }

    pub(crate) fn origin(&self) -> KeyOrigin {
        self.origin
    }

    /// A 32-byte subkey for one purpose, derived with HKDF-SHA256.
    pub(crate) fn subkey(&self, info: &[u8]) -> [u8; 32] {
        let mut out = [0u8; 32];
        // 32 bytes is far below HKDF-SHA256's output limit, so expansion cannot fail.
        let _ = Hkdf::<Sha256>::new(None, &self.key).expand(info, &mut out);
        out
    }
}

/// Makes a new directory entry in `path`'s directory durable.
pub(crate) fn sync_parent_dir(path: &Path) -> io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    fs::File::open(dir.unwrap_or_else(|| Path::new(".")))?.sync_all()
}

impl fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceKey")
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHEAP: KdfParams = KdfParams {
        memory_kib: 8,
        time_cost: 1,
        lanes: 1,
    };

    #[test]
    fn passphrase_derivation_is_deterministic_and_salted() {
        let salt = [1u8; SALT_LEN];
        let a = DeviceKey::from_passphrase(b"pw", &salt, CHEAP).unwrap();
        let b = DeviceKey::from_passphrase(b"pw", &salt, CHEAP).unwrap();
        let c = DeviceKey::from_passphrase(b"pw", &[2u8; SALT_LEN], CHEAP).unwrap();
        let d = DeviceKey::from_passphrase(b"pX", &salt, CHEAP).unwrap();
        assert_eq!(a.key, b.key);
        assert_ne!(a.key, c.key);
        assert_ne!(a.key, d.key);
        assert_ne!(a.subkey(b"x"), a.subkey(b"y"));
    }

    #[test]
    fn kdf_limits_are_enforced() {
        let salt = [1u8; SALT_LEN];
        for params in [
            KdfParams {
                memory_kib: MAX_KDF_MEMORY_KIB + 1,
                ..CHEAP
            },
            KdfParams {
                time_cost: MAX_KDF_TIME_COST + 1,
                ..CHEAP
            },
            KdfParams {
                lanes: MAX_KDF_LANES + 1,
                ..CHEAP
            },
            KdfParams {
                time_cost: 0,
                ..CHEAP
            },
        ] {
            assert!(matches!(
                DeviceKey::from_passphrase(b"pw", &salt, params),
                Err(VaultError::InvalidKdfParams { .. })
            ));
        }
    }

    #[test]
    fn debug_hides_key() {
        let key = DeviceKey::from_passphrase(b"pw", &[1u8; SALT_LEN], CHEAP).unwrap();
        let shown = format!("{key:?}");
        assert!(shown.starts_with("DeviceKey"));
        assert!(!shown.contains(&format!("{:?}", key.key)));
        assert!(!shown.contains("key:"));
    }
}
