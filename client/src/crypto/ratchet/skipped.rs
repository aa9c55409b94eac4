//! The bounded store of skipped message keys, for messages that arrive out of order.
//!
//! Keys are grouped by the header key of their chain, so finding the key for an incoming
//! message costs one header decryption per stored chain, not one per key. The store never holds
//! more than [`MAX_SKIPPED_TOTAL`] keys (the oldest are dropped first), and each key expires
//! [`SKIPPED_KEY_LIFETIME_SECS`] after it was stored. This module does not derive keys; the
//! session hands it keys it already derived.

use std::collections::BTreeMap;

use hush_protocol::codec::{DecodeError, Reader};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::super::kdf::Key32;
use super::super::limits::{MAX_SKIPPED_TOTAL, SKIPPED_KEY_LIFETIME_SECS};

/// One stored message key.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct SkippedKey {
    pub(crate) mk: Key32,
    pub(crate) expires_at: u64,
    /// Insertion order, used to drop the oldest key first.
    pub(crate) seq: u64,
}

/// The skipped keys of one receiving chain.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct SkippedChain {
    pub(crate) hk: Key32,
    #[zeroize(skip)]
    pub(crate) keys: BTreeMap<u64, SkippedKey>,
}

/// A key derived while decrypting, to be stored only if the message authenticates.
pub(crate) struct NewSkipped {
    pub(crate) hk: Key32,
    pub(crate) n: u64,
    pub(crate) mk: Key32,
}

impl Drop for NewSkipped {
    fn drop(&mut self) {
        self.hk.zeroize();
        self.mk.zeroize();
    }
}

/// All skipped keys of a session.
#[derive(Clone, Default)]
pub(crate) struct SkippedKeys {
    chains: Vec<SkippedChain>,
    next_seq: u64,
}

impl SkippedKeys {
    /// Number of stored keys.
    pub(crate) fn len(&self) -> usize {
        self.chains.iter().map(|c| c.keys.len()).sum()
    }

    /// The stored chains, for trying each header key in turn.
    pub(crate) fn chains(&self) -> &[SkippedChain] {
        &self.chains
    }

    /// A live (unexpired) key for message `n` of chain `chain`, if stored.
    pub(crate) fn get(&self, chain: usize, n: u64, now: u64) -> Option<&Key32> {
        let key = self.chains.get(chain)?.keys.get(&n)?;
        (key.expires_at > now).then_some(&key.mk)
    }

    /// Removes a used key.
    pub(crate) fn remove(&mut self, chain: usize, n: u64) {
        if let Some(c) = self.chains.get_mut(chain) {
            c.keys.remove(&n);
        }
        self.chains.retain(|c| !c.keys.is_empty());
    }

    /// Stores newly derived keys, then drops expired keys and the oldest past the cap.
    pub(crate) fn commit(&mut self, new: Vec<NewSkipped>, now: u64) {
        let expires_at = now.saturating_add(SKIPPED_KEY_LIFETIME_SECS);
        for k in new {
            let seq = self.next_seq;
            self.next_seq += 1;
            let entry = SkippedKey {
                mk: k.mk.clone(),
                expires_at,
                seq,
            };
            match self
                .chains
                .iter_mut()
                .find(|c| bool::from(c.hk.ct_eq(&k.hk[..])))
            {
                Some(chain) => {
                    chain.keys.insert(k.n, entry);
                }
                None => {
                    let mut keys = BTreeMap::new();
                    keys.insert(k.n, entry);
                    self.chains.push(SkippedChain {
                        hk: k.hk.clone(),
                        keys,
                    });
                }
            }
        }
        self.expire(now);
        self.enforce_cap();
    }

    /// Drops every key whose lifetime has passed.
    pub(crate) fn expire(&mut self, now: u64) {
        for c in &mut self.chains {
            c.keys.retain(|_, k| k.expires_at > now);
        }
        self.chains.retain(|c| !c.keys.is_empty());
    }

    fn enforce_cap(&mut self) {
        let excess = self.len().saturating_sub(MAX_SKIPPED_TOTAL);
        if excess == 0 {
            return;
        }
        let mut seqs: Vec<u64> = self
            .chains
            .iter()
            .flat_map(|c| c.keys.values().map(|k| k.seq))
            .collect();
        seqs.sort_unstable();
        let cutoff = seqs[excess - 1];
        for c in &mut self.chains {
            c.keys.retain(|_, k| k.seq > cutoff);
        }
        self.chains.retain(|c| !c.keys.is_empty());
    }

    /// Appends the storage encoding.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.next_seq.to_be_bytes());
        // Both counts are bounded by MAX_SKIPPED_TOTAL, below u16::MAX.
        out.extend_from_slice(&(self.chains.len() as u16).to_be_bytes());
        for c in &self.chains {
            out.extend_from_slice(&c.hk[..]);
            out.extend_from_slice(&(c.keys.len() as u16).to_be_bytes());
            for (n, k) in &c.keys {
                out.extend_from_slice(&n.to_be_bytes());
                out.extend_from_slice(&k.mk[..]);
                out.extend_from_slice(&k.expires_at.to_be_bytes());
                out.extend_from_slice(&k.seq.to_be_bytes());
            }
        }
    }

    /// Reads the storage encoding, refusing more keys than the cap.
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let next_seq = r.u64()?;
        let n_chains = usize::from(r.u16()?);
        if n_chains > MAX_SKIPPED_TOTAL {
            return Err(DecodeError::InvalidValue);
        }
        let mut chains = Vec::with_capacity(n_chains);
        let mut total = 0usize;
        for _ in 0..n_chains {
            let hk = r.array::<32>()?;
            let n_keys = usize::from(r.u16()?);
            total += n_keys;
            if total > MAX_SKIPPED_TOTAL || n_keys == 0 {
                return Err(DecodeError::InvalidValue);
            }
            let mut keys = BTreeMap::new();
            for _ in 0..n_keys {
                let n = r.u64()?;
                let mk = Key32::from_bytes(r.array::<32>()?);
                let expires_at = r.u64()?;
                let seq = r.u64()?;
                keys.insert(
                    n,
                    SkippedKey {
                        mk,
                        expires_at,
                        seq,
                    },
                );
            }
            chains.push(SkippedChain {
                hk: Key32::from_bytes(hk),
                keys,
            });
        }
        Ok(Self { chains, next_seq })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(hk: u8, n: u64) -> NewSkipped {
        NewSkipped {
            hk: Key32::from_bytes([hk; 32]),
            n,
            mk: Key32::from_bytes([n as u8; 32]),
        }
    }

    #[test]
    fn cap_drops_oldest_first() {
        let mut s = SkippedKeys::default();
        s.commit(
            (0..MAX_SKIPPED_TOTAL as u64).map(|n| new(1, n)).collect(),
            0,
        );
        s.commit((0..10).map(|n| new(2, n)).collect(), 0);
        assert_eq!(s.len(), MAX_SKIPPED_TOTAL);
        assert!(s.get(0, 9, 0).is_none());
        assert!(s.get(0, 10, 0).is_some());
        assert_eq!(s.chains().len(), 2);
    }

    #[test]
    fn keys_expire() {
        let mut s = SkippedKeys::default();
        s.commit(vec![new(1, 0)], 100);
        assert!(s.get(0, 0, 100 + SKIPPED_KEY_LIFETIME_SECS - 1).is_some());
        assert!(s.get(0, 0, 100 + SKIPPED_KEY_LIFETIME_SECS).is_none());
        s.expire(100 + SKIPPED_KEY_LIFETIME_SECS);
        assert_eq!(s.len(), 0);
    }

    #[test]
    fn encoding_round_trips() {
        let mut s = SkippedKeys::default();
        s.commit(vec![new(1, 0), new(1, 5), new(2, 3)], 7);
        let mut out = Vec::new();
        s.encode(&mut out);
        let back = SkippedKeys::decode(&mut Reader::new(&out)).unwrap();
        let mut again = Vec::new();
        back.encode(&mut again);
        assert_eq!(out, again);
    }
}
