//! [`Vault`]: a file of fixed-size slots, each holding one record key sealed under the device key.
//!
//! Slot `i` lives at a fixed offset and holds `nonce || sealed key || tag`, encrypted with
//! XChaCha20-Poly1305 under a subkey of the device key, with the vault's id and `i` as
//! associated data, so a slot copied to another position (or another vault) fails to open. An
//! all-zero slot is free. Shredding overwrites the whole slot with zeros in place; once that is
//! durable, whatever was encrypted under the key is unreadable even if copies of the ciphertext
//! survive elsewhere (a database log, a backup).
//!
//! What it does not do: encrypt records (see [`RecordKey`]), or defeat copy-on-write file
//! systems and SSD wear levelling, which may keep the old slot bytes in blocks the file no longer
//! references. Keep the vault on a file system that overwrites in place (ext4, xfs).

use std::fs::{DirBuilder, File, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};

use rand::RngCore;
use zeroize::Zeroizing;

use crate::device_key::{sync_parent_dir, DeviceKey, KdfParams, KeyOrigin};
use crate::header::{Header, HEADER_LEN, VAULT_ID_LEN};
use crate::record::{open_with, seal_with, RecordKey, RECORD_KEY_LEN, SEAL_OVERHEAD};
use crate::VaultError;

/// Size of one slot on disk: nonce, sealed 32-byte key, tag.
pub const SLOT_LEN: usize = RECORD_KEY_LEN + SEAL_OVERHEAD;
/// Hard cap on the slots in one vault (about 300 GB of slots).
pub const MAX_SLOTS: u64 = 1 << 32;
/// Default cap on the slots in one vault (4 Mi slots, 288 MiB).
pub const DEFAULT_MAX_SLOTS: u64 = 1 << 22;
/// Slots added each time the file grows.
pub const GROW_SLOTS: u64 = 4096;
/// HKDF label of the subkey that seals slots.
const SLOT_LABEL: &[u8] = b"hush-vault v1 slot";
/// Slots read per I/O call when scanning for free slots on open.
const SCAN_BATCH: usize = 1024;

/// The position of one key in the vault.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct SlotId(u64);

impl SlotId {
    /// Rebuilds a slot id from the index that [`SlotId::index`] returned.
    pub const fn from_index(index: u64) -> SlotId {
        SlotId(index)
    }

    /// The slot's index, for storing alongside the record it encrypts.
    pub const fn index(self) -> u64 {
        self.0
    }
}

/// How a vault is opened.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct VaultOptions {
    /// Most slots the vault may hold; allocation past it fails with [`VaultError::Full`].
    /// Clamped to [`MAX_SLOTS`].
    pub max_slots: u64,
}

impl Default for VaultOptions {
    fn default() -> Self {
        VaultOptions {
            max_slots: DEFAULT_MAX_SLOTS,
        }
    }
}

/// In-memory bookkeeping of which slots are free.
struct SlotTable {
    /// Slots that exist in the file.
    capacity: u64,
    /// Free slot indices; the lowest is popped first.
    free: Vec<u64>,
    /// One bit per slot: set while the slot holds a key.
    used: Vec<u64>,
}

impl SlotTable {
    fn is_used(&self, i: u64) -> bool {
        self.used
            .get((i / 64) as usize)
            .is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    fn set_used(&mut self, i: u64, used: bool) {
        let word = (i / 64) as usize;
        if self.used.len() <= word {
            self.used.resize(word + 1, 0);
        }
        if used {
            self.used[word] |= 1 << (i % 64);
        } else {
            self.used[word] &= !(1 << (i % 64));
        }
    }
}

/// A key vault file. All methods take `&self`; it is safe to share between threads.
pub struct Vault {
    file: File,
    slot_key: Zeroizing<[u8; 32]>,
    vault_id: [u8; VAULT_ID_LEN],
    max_slots: u64,
    table: Mutex<SlotTable>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("max_slots", &self.max_slots)
            .finish_non_exhaustive()
    }
}

fn slot_offset(i: u64) -> u64 {
    HEADER_LEN as u64 + i * SLOT_LEN as u64
}

impl Vault {
    /// Opens the vault at `path` with `key`, creating it (mode 0600, and its directory 0700 if
    /// missing) when it does not exist. A key that does not match fails with
    /// [`VaultError::WrongKey`].
    pub fn open(path: &Path, key: &DeviceKey, options: VaultOptions) -> Result<Vault, VaultError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.exists() {
                DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
            }
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)?;
        let len = file.metadata()?.len();
        let header = if len == 0 {
            let mut vault_id = [0u8; VAULT_ID_LEN];
            rand::rngs::OsRng.fill_bytes(&mut vault_id);
            let header = Header::new(key, vault_id);
            file.write_all_at(header.bytes(), 0)?;
            file.sync_all()?;
            sync_parent_dir(path)?;
            header
        } else {
            let header = read_header(&file, len)?;
            header.verify(key)?;
            header
        };
        let max_slots = options.max_slots.min(MAX_SLOTS);
        let capacity = len.saturating_sub(HEADER_LEN as u64) / SLOT_LEN as u64;
        let vault = Vault {
            file,
            slot_key: Zeroizing::new(key.subkey(SLOT_LABEL)),
            vault_id: header.vault_id,
            max_slots,
            table: Mutex::new(SlotTable {
                capacity,
                free: Vec::new(),
                used: Vec::new(),
            }),
        };
        vault.scan()?;
        Ok(vault)
    }

    /// Opens the vault at `path` with a passphrase. An existing vault re-derives the device key
    /// with the salt and costs in its header; a new one uses a random salt and `new_params`.
    pub fn open_with_passphrase(
        path: &Path,
        passphrase: &[u8],
        new_params: KdfParams,
        options: VaultOptions,
    ) -> Result<Vault, VaultError> {
        let existing = match File::open(path) {
            Ok(file) => {
                let len = file.metadata()?.len();
                (len > 0).then(|| read_header(&file, len)).transpose()?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e.into()),
        };
        let key = match existing.map(|h| h.origin) {
            Some(KeyOrigin::Passphrase { salt, params }) => {
                DeviceKey::from_passphrase(passphrase, &salt, params)?
            }
            // A vault locked by a key file cannot be opened with a passphrase.
            Some(KeyOrigin::KeyFile) => return Err(VaultError::WrongKey),
            None => DeviceKey::from_passphrase(passphrase, &DeviceKey::random_salt(), new_params)?,
        };
        Vault::open(path, &key, options)
    }

    /// Rebuilds the free list from the slots on disk.
    fn scan(&self) -> Result<(), VaultError> {
        let mut table = self.lock();
        let capacity = table.capacity;
        let mut buf = vec![0u8; SCAN_BATCH * SLOT_LEN];
        let mut free = Vec::new();
        let mut first = 0u64;
        while first < capacity {
            let n = (capacity - first).min(SCAN_BATCH as u64) as usize;
            let chunk = &mut buf[..n * SLOT_LEN];
            self.file.read_exact_at(chunk, slot_offset(first))?;
            for (k, slot) in chunk.chunks_exact(SLOT_LEN).enumerate() {
                let i = first + k as u64;
                if slot.iter().all(|&b| b == 0) {
                    if i < self.max_slots {
                        free.push(i);
                    }
                } else {
                    table.set_used(i, true);
                }
            }
            first += n as u64;
        }
        free.reverse();
        table.free = free;
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, SlotTable> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn slot_aad(&self, i: u64) -> [u8; VAULT_ID_LEN + 8] {
        let mut aad = [0u8; VAULT_ID_LEN + 8];
        aad[..VAULT_ID_LEN].copy_from_slice(&self.vault_id);
        aad[VAULT_ID_LEN..].copy_from_slice(&i.to_be_bytes());
        aad
    }

    /// Puts a fresh random key in a free slot. Durable after the next [`Vault::sync`].
    pub fn allocate(&self) -> Result<(SlotId, RecordKey), VaultError> {
        let i = {
            let mut table = self.lock();
            if table.free.is_empty() {
                self.grow(&mut table)?;
            }
            let i = table.free.pop().ok_or(VaultError::Full {
                max_slots: self.max_slots,
            })?;
            table.set_used(i, true);
            i
        };
        let key = RecordKey::generate();
        let sealed = seal_with(&self.slot_key, &self.slot_aad(i), key.as_bytes());
        if let Err(e) = self.file.write_all_at(&sealed, slot_offset(i)) {
            // The slot may hold a partial write: zero it before handing it out again.
            self.shred_deferred(SlotId(i))?;
            return Err(e.into());
        }
        Ok((SlotId(i), key))
    }

    /// Puts fresh random keys in up to `n` free slots, fewer if the vault fills up, writing
    /// each run of adjacent slots with one write. Durable after the next [`Vault::sync`].
    pub fn allocate_many(&self, n: usize) -> Result<Vec<(SlotId, RecordKey)>, VaultError> {
        let mut slots = Vec::with_capacity(n);
        {
            let mut table = self.lock();
            while slots.len() < n {
                if table.free.is_empty() && self.grow(&mut table).is_err() {
                    break;
                }
                let Some(i) = table.free.pop() else { break };
                table.set_used(i, true);
                slots.push(i);
            }
        }
        slots.sort_unstable();
        let keys: Vec<(SlotId, RecordKey)> = slots
            .iter()
            .map(|&i| (SlotId(i), RecordKey::generate()))
            .collect();
        let mut buf = Vec::with_capacity(SLOT_LEN * keys.len());
        let mut start = 0;
        for (k, (slot, key)) in keys.iter().enumerate() {
            buf.extend_from_slice(&seal_with(
                &self.slot_key,
                &self.slot_aad(slot.0),
                key.as_bytes(),
            ));
            let run_ends = keys.get(k + 1).is_none_or(|(next, _)| next.0 != slot.0 + 1);
            if run_ends {
                let first = keys[start].0 .0;
                if let Err(e) = self.file.write_all_at(&buf, slot_offset(first)) {
                    // Some slots may hold a partial write: zero them all before reuse.
                    for (slot, _) in &keys {
                        self.shred_deferred(*slot)?;
                    }
                    return Err(e.into());
                }
                buf.clear();
                start = k + 1;
            }
        }
        Ok(keys)
    }

    /// Overwrites every slot of `slots` with zeros in place, each run of adjacent slots with
    /// one write; durable after the next [`Vault::sync`]. Shredding a free slot is harmless.
    pub fn shred_many(&self, slots: &[SlotId]) -> Result<(), VaultError> {
        let mut sorted: Vec<u64> = slots.iter().map(|s| s.0).collect();
        sorted.sort_unstable();
        sorted.dedup();
        let mut table = self.lock();
        if let Some(&last) = sorted.last().filter(|&&i| i >= table.capacity) {
            return Err(VaultError::SlotOutOfRange(last));
        }
        let mut start = 0;
        for k in 0..sorted.len() {
            let run_ends = sorted.get(k + 1).is_none_or(|&next| next != sorted[k] + 1);
            if run_ends {
                let zeros = vec![0u8; SLOT_LEN * (k + 1 - start)];
                // Written under the lock, as in `shred_deferred`.
                self.file.write_all_at(&zeros, slot_offset(sorted[start]))?;
                for &i in &sorted[start..=k] {
                    if table.is_used(i) {
                        table.set_used(i, false);
                        if i < self.max_slots {
                            table.free.push(i);
                        }
                    }
                }
                start = k + 1;
            }
        }
        Ok(())
    }

    fn grow(&self, table: &mut SlotTable) -> Result<(), VaultError> {
        if table.capacity >= self.max_slots {
            return Err(VaultError::Full {
                max_slots: self.max_slots,
            });
        }
        let new_capacity = (table.capacity + GROW_SLOTS).min(self.max_slots);
        self.file.set_len(slot_offset(new_capacity))?;
        table.free.extend((table.capacity..new_capacity).rev());
        table.capacity = new_capacity;
        Ok(())
    }

    /// The key in `slot`.
    pub fn get(&self, slot: SlotId) -> Result<RecordKey, VaultError> {
        let i = slot.0;
        if i >= self.lock().capacity {
            return Err(VaultError::SlotOutOfRange(i));
        }
        let mut raw = [0u8; SLOT_LEN];
        self.file.read_exact_at(&mut raw, slot_offset(i))?;
        if raw.iter().all(|&b| b == 0) {
            return Err(VaultError::EmptySlot(i));
        }
        let plain = Zeroizing::new(
            open_with(&self.slot_key, &self.slot_aad(i), &raw)
                .map_err(|_| VaultError::CorruptSlot(i))?,
        );
        let bytes: [u8; RECORD_KEY_LEN] = plain
            .as_slice()
            .try_into()
            .map_err(|_| VaultError::CorruptSlot(i))?;
        Ok(RecordKey::from_bytes(bytes))
    }

    /// Overwrites `slot` with zeros in place and makes that durable before returning.
    pub fn shred(&self, slot: SlotId) -> Result<(), VaultError> {
        self.shred_deferred(slot)?;
        self.sync()
    }

    /// Overwrites `slot` with zeros in place; durable after the next [`Vault::sync`]. Lets a
    /// caller shred many slots with one flush. Shredding a free slot is harmless.
    pub fn shred_deferred(&self, slot: SlotId) -> Result<(), VaultError> {
        let i = slot.0;
        let mut table = self.lock();
        if i >= table.capacity {
            return Err(VaultError::SlotOutOfRange(i));
        }
        // Written under the lock, so that the slot cannot be handed out (and refilled) before
        // the zeros land.
        self.file.write_all_at(&[0u8; SLOT_LEN], slot_offset(i))?;
        if table.is_used(i) {
            table.set_used(i, false);
            if i < self.max_slots {
                table.free.push(i);
            }
        }
        Ok(())
    }

    /// Makes every allocation and shred so far durable (fdatasync).
    pub fn sync(&self) -> Result<(), VaultError> {
        Ok(self.file.sync_data()?)
    }

    /// The slots that currently hold a key, lowest first.
    pub fn occupied_slots(&self) -> Vec<SlotId> {
        let table = self.lock();
        (0..table.capacity)
            .filter(|&i| table.is_used(i))
            .map(SlotId)
            .collect()
    }

    /// How many slots hold a key.
    pub fn slots_in_use(&self) -> u64 {
        self.lock()
            .used
            .iter()
            .map(|w| u64::from(w.count_ones()))
            .sum()
    }
}

fn read_header(file: &File, len: u64) -> Result<Header, VaultError> {
    if len < HEADER_LEN as u64 {
        return Err(VaultError::NotAVault);
    }
    let mut bytes = [0u8; HEADER_LEN];
    file.read_exact_at(&mut bytes, 0)?;
    Header::parse(bytes)
}
