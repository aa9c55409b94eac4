//! The byte layout of one stored record: which vault slot holds its key, and the sealed body.
//!
//! A sled value is `version || slot index (u64 BE) || sealed`, where `sealed` is
//! `RecordKey::seal` of the plaintext. A record's plaintext is `key length (u16 BE) || encoded
//! StoreKey || value`; the index record's is the index key alone. The associated data binds the
//! body to its sled key and its slot, so a value moved under another sled key, or pointed at
//! another slot, fails to open.
//!
//! What it does not do: touch sled or the vault file; callers fetch the key and store the bytes.

use hush_vault::{RecordKey, SlotId};
use zeroize::Zeroizing;

use super::key::StoreKey;
use super::StoreError;

/// Format version of a sled value.
const VALUE_VERSION: u8 = 1;
/// Bytes before the sealed body: version and slot index.
const HEAD_LEN: usize = 1 + 8;
/// Domain label at the start of every record's associated data.
const AAD_LABEL: &[u8] = b"hush-client store v1";

/// A sled value split into its slot and sealed body, not yet authenticated.
pub(crate) struct RawRecord<'a> {
    pub(crate) slot: SlotId,
    pub(crate) sealed: &'a [u8],
}

impl<'a> RawRecord<'a> {
    /// Splits a sled value; [`StoreError::Corrupt`] if it is not one.
    pub(crate) fn parse(value: &'a [u8]) -> Result<RawRecord<'a>, StoreError> {
        if value.len() < HEAD_LEN || value[0] != VALUE_VERSION {
            return Err(StoreError::corrupt("record header"));
        }
        let mut slot = [0u8; 8];
        slot.copy_from_slice(&value[1..HEAD_LEN]);
        Ok(RawRecord {
            slot: SlotId::from_index(u64::from_be_bytes(slot)),
            sealed: &value[HEAD_LEN..],
        })
    }

    /// Decrypts the body with `key`, which must be the key in [`RawRecord::slot`].
    pub(crate) fn open(
        &self,
        key: &RecordKey,
        sled_key: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        key.open(&aad(sled_key, self.slot), self.sealed)
            .map(Zeroizing::new)
            .map_err(|_| StoreError::corrupt("record"))
    }
}

/// Seals `plaintext` under `key` (the key in `slot`) as the value of `sled_key`.
pub(crate) fn seal(key: &RecordKey, slot: SlotId, sled_key: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let sealed = key.seal(&aad(sled_key, slot), plaintext);
    let mut out = Vec::with_capacity(HEAD_LEN + sealed.len());
    out.push(VALUE_VERSION);
    out.extend_from_slice(&slot.index().to_be_bytes());
    out.extend_from_slice(&sealed);
    out
}

/// The plaintext of a record: the real key, then the value.
pub(crate) fn encode_body(store_key: &StoreKey, value: &[u8]) -> Zeroizing<Vec<u8>> {
    let encoded = store_key.encode();
    // A validated key is at most a few hundred bytes, far below u16::MAX.
    let key_len = u16::try_from(encoded.len()).unwrap_or(u16::MAX);
    let mut plain = Zeroizing::new(Vec::with_capacity(2 + encoded.len() + value.len()));
    plain.extend_from_slice(&key_len.to_be_bytes());
    plain.extend_from_slice(&encoded);
    plain.extend_from_slice(value);
    plain
}

/// Splits a record's plaintext into its real key and its value.
pub(crate) fn decode_body(plain: &[u8]) -> Result<(StoreKey, Zeroizing<Vec<u8>>), StoreError> {
    let bad = || StoreError::corrupt("record body");
    let (len_bytes, rest) = plain.split_first_chunk::<2>().ok_or_else(bad)?;
    let key_len = usize::from(u16::from_be_bytes(*len_bytes));
    let key_bytes = rest.get(..key_len).ok_or_else(bad)?;
    let store_key = StoreKey::decode(key_bytes).ok_or_else(bad)?;
    Ok((store_key, Zeroizing::new(rest[key_len..].to_vec())))
}

/// Associated data binding a body to its sled key and slot.
fn aad(sled_key: &[u8], slot: SlotId) -> Vec<u8> {
    let mut aad = Vec::with_capacity(AAD_LABEL.len() + 8 + sled_key.len());
    aad.extend_from_slice(AAD_LABEL);
    aad.extend_from_slice(&slot.index().to_be_bytes());
    aad.extend_from_slice(sled_key);
    aad
}
