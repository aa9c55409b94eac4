//! The vault file header: format magic, how the device key is derived, and a check block.
//!
//! The check block is an AEAD tag over the rest of the header under a subkey of the device key,
//! so a wrong passphrase or key file is detected when the vault is opened, not later as garbage.
//!
//! What it does not do: hold any record key; those live in the slots after the header.

use crate::device_key::{DeviceKey, KdfParams, KeyOrigin, SALT_LEN};
use crate::record::{open_with, seal_with, SEAL_OVERHEAD};
use crate::VaultError;

/// Size of the header at the start of the vault file.
pub(crate) const HEADER_LEN: usize = 128;
/// Length of the random id that binds slots to one vault file.
pub(crate) const VAULT_ID_LEN: usize = 16;

const MAGIC: &[u8; 8] = b"HUSHVLT1";
const VERSION: u8 = 1;
const ORIGIN_KEY_FILE: u8 = 0;
const ORIGIN_PASSPHRASE: u8 = 1;
/// The header bytes the check block authenticates.
const AUTHENTICATED_LEN: usize = 64;
/// HKDF label of the subkey that seals the check block.
const CHECK_LABEL: &[u8] = b"hush-vault v1 header check";

/// The parsed, not yet authenticated, header.
pub(crate) struct Header {
    pub(crate) origin: KeyOrigin,
    pub(crate) vault_id: [u8; VAULT_ID_LEN],
    bytes: [u8; HEADER_LEN],
}

impl Header {
    /// Builds and seals the header of a new vault.
    pub(crate) fn new(key: &DeviceKey, vault_id: [u8; VAULT_ID_LEN]) -> Header {
        let mut bytes = [0u8; HEADER_LEN];
        bytes[..8].copy_from_slice(MAGIC);
        bytes[8] = VERSION;
        match key.origin() {
            KeyOrigin::KeyFile => bytes[9] = ORIGIN_KEY_FILE,
            KeyOrigin::Passphrase { salt, params } => {
                bytes[9] = ORIGIN_PASSPHRASE;
                bytes[12..16].copy_from_slice(&params.memory_kib.to_le_bytes());
                bytes[16..20].copy_from_slice(&params.time_cost.to_le_bytes());
                bytes[20..24].copy_from_slice(&params.lanes.to_le_bytes());
                bytes[24..24 + SALT_LEN].copy_from_slice(&salt);
            }
        }
        bytes[40..40 + VAULT_ID_LEN].copy_from_slice(&vault_id);
        let check = seal_with(&key.subkey(CHECK_LABEL), &bytes[..AUTHENTICATED_LEN], b"");
        bytes[AUTHENTICATED_LEN..AUTHENTICATED_LEN + SEAL_OVERHEAD].copy_from_slice(&check);
        Header {
            origin: key.origin(),
            vault_id,
            bytes,
        }
    }

    /// Parses a header read from disk. Nothing in it is trusted until [`Header::verify`].
    pub(crate) fn parse(bytes: [u8; HEADER_LEN]) -> Result<Header, VaultError> {
        if &bytes[..8] != MAGIC || bytes[8] != VERSION {
            return Err(VaultError::NotAVault);
        }
        let u32_at = |at: usize| {
            let mut b = [0u8; 4];
            b.copy_from_slice(&bytes[at..at + 4]);
            u32::from_le_bytes(b)
        };
        let origin = match bytes[9] {
            ORIGIN_KEY_FILE => KeyOrigin::KeyFile,
            ORIGIN_PASSPHRASE => {
                let mut salt = [0u8; SALT_LEN];
                salt.copy_from_slice(&bytes[24..24 + SALT_LEN]);
                let params = KdfParams {
                    memory_kib: u32_at(12),
                    time_cost: u32_at(16),
                    lanes: u32_at(20),
                };
                KeyOrigin::Passphrase { salt, params }
            }
            _ => return Err(VaultError::NotAVault),
        };
        let mut vault_id = [0u8; VAULT_ID_LEN];
        vault_id.copy_from_slice(&bytes[40..40 + VAULT_ID_LEN]);
        Ok(Header {
            origin,
            vault_id,
            bytes,
        })
    }

    /// Checks that `key` is the key this vault was created with.
    pub(crate) fn verify(&self, key: &DeviceKey) -> Result<(), VaultError> {
        let check = &self.bytes[AUTHENTICATED_LEN..AUTHENTICATED_LEN + SEAL_OVERHEAD];
        open_with(
            &key.subkey(CHECK_LABEL),
            &self.bytes[..AUTHENTICATED_LEN],
            check,
        )
        .map(|_| ())
        .map_err(|_| VaultError::WrongKey)
    }

    pub(crate) fn bytes(&self) -> &[u8; HEADER_LEN] {
        &self.bytes
    }
}
