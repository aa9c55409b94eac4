//! The bounded store of skipped message keys, for messages that arrive out of order.
//!
//! Keys are grouped by the header key of their chain, so finding the key for an incoming
//! message costs one header decryption per stored chain, not one per key. The store never holds
//! more than [`MAX_SKIPPED_TOTAL`] keys (the oldest are dropped first), and each key expires
//! [`SKIPPED_KEY_LIFETIME_SECS`] after it was stored. This module does not derive keys; the
//! session hands it keys it already derived.
//!
//! Keys sit in fixed slabs allocated whole, at their largest, when the first key is stored:
//! they are written and wiped in place and never move, so no growth or rebalancing leaves a
//! copy of a key in freed memory (a `BTreeMap` or a growing `Vec` moves its entries with a bare
//! memory copy and frees the old node unwiped).
use hush_protocol::codec::{DecodeError, Reader};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::super::kdf::Key32;
use super::super::limits::{MAX_SKIPPED_TOTAL, SKIPPED_KEY_LIFETIME_SECS};

/// One place for a stored message key.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct SkippedKey {
    used: bool,
    /// The slot of its chain in the chain slab.
    chain: usize,
    n: u64,
    pub(crate) mk: Key32,
    pub(crate) expires_at: u64,
    /// Insertion order, used to drop the oldest key first.
    pub(crate) seq: u64,
}

impl SkippedKey {
    fn free() -> SkippedKey {
        SkippedKey {
            used: false,
            chain: 0,
            n: 0,
            mk: Key32::from_bytes([0; 32]),
            expires_at: 0,
            seq: 0,
        }
    }
}

/// One place for the header key of a receiving chain with stored keys.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct SkippedChain {
    used: bool,
    pub(crate) hk: Key32,
    /// How many stored keys belong to it; the chain's place is freed at zero.
    keys: usize,
}

impl SkippedChain {
    fn free() -> SkippedChain {
        SkippedChain {
            used: false,
            hk: Key32::from_bytes([0; 32]),
            keys: 0,
        }
    }
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

/// All skipped keys of a session. Both slabs are empty until the first key is stored, then
/// hold [`MAX_SKIPPED_TOTAL`] places each, for good.
#[derive(Clone, Default)]
pub(crate) struct SkippedKeys {
    keys: Box<[SkippedKey]>,
    chains: Box<[SkippedChain]>,
    next_seq: u64,
}

impl SkippedKeys {
    /// Number of stored keys.
    pub(crate) fn len(&self) -> usize {
        self.keys.iter().filter(|k| k.used).count()
    }

    /// The stored chains, each with its place, for trying each header key in turn.
    pub(crate) fn chains(&self) -> impl Iterator<Item = (usize, &SkippedChain)> {
        self.chains.iter().enumerate().filter(|(_, c)| c.used)
    }

    /// The stored chain in place `i`.
    pub(crate) fn chain(&self, i: usize) -> Option<&SkippedChain> {
        self.chains.get(i).filter(|c| c.used)
    }

    /// A live (unexpired) key for message `n` of the chain in place `chain`, if stored.
    pub(crate) fn get(&self, chain: usize, n: u64, now: u64) -> Option<&Key32> {
        let key = self.find(chain, n)?;
        let key = &self.keys[key];
        (key.expires_at > now).then_some(&key.mk)
    }

    /// Removes a used key.
    pub(crate) fn remove(&mut self, chain: usize, n: u64) {
        if let Some(i) = self.find(chain, n) {
            self.wipe(i);
        }
    }

    /// Stores newly derived keys, then drops expired keys and the oldest past the cap.
    pub(crate) fn commit(&mut self, new: Vec<NewSkipped>, now: u64) {
        if new.is_empty() {
            self.expire(now);
            return;
        }
        self.allocate();
        let expires_at = now.saturating_add(SKIPPED_KEY_LIFETIME_SECS);
        for k in &new {
            // Room first, so that a new chain finds a free place too: fewer chains than keys.
            if !self.keys.iter().any(|k| !k.used) {
                if let Some(oldest) = self.oldest() {
                    self.wipe(oldest);
                }
            }
            let chain = self.chain_for(&k.hk);
            let seq = self.next_seq;
            self.next_seq += 1;
            self.put(chain, k.n, &k.mk, expires_at, seq);
        }
        self.expire(now);
    }

    /// Drops every key whose lifetime has passed.
    pub(crate) fn expire(&mut self, now: u64) {
        for i in 0..self.keys.len() {
            if self.keys[i].used && self.keys[i].expires_at <= now {
                self.wipe(i);
            }
        }
    }

    /// Allocates both slabs at their full size, once.
    fn allocate(&mut self) {
        if self.keys.is_empty() {
            self.keys = (0..MAX_SKIPPED_TOTAL).map(|_| SkippedKey::free()).collect();
            self.chains = (0..MAX_SKIPPED_TOTAL)
                .map(|_| SkippedChain::free())
                .collect();
        }
    }

    /// The place of `n` in chain `chain`, if stored.
    fn find(&self, chain: usize, n: u64) -> Option<usize> {
        self.keys
            .iter()
            .position(|k| k.used && k.chain == chain && k.n == n)
    }

    /// The place of the chain with header key `hk`, taking a free one if it is new. A free
    /// place always exists: there are as many as keys, and every used chain holds a key.
    fn chain_for(&mut self, hk: &Key32) -> usize {
        if let Some((i, _)) = self.chains().find(|(_, c)| bool::from(c.hk.ct_eq(&hk[..]))) {
            return i;
        }
        let i = self.chains.iter().position(|c| !c.used).unwrap_or(0);
        let c = &mut self.chains[i];
        c.used = true;
        c.hk.copy_from(hk);
        c.keys = 0;
        i
    }

    /// Writes a key in place: over the same message's old key if stored, else in a free place
    /// (the caller leaves one).
    fn put(&mut self, chain: usize, n: u64, mk: &Key32, expires_at: u64, seq: u64) {
        let i = match self.find(chain, n) {
            Some(i) => {
                self.wipe(i);
                i
            }
            None => match self.keys.iter().position(|k| !k.used) {
                Some(i) => i,
                None => return,
            },
        };
        let k = &mut self.keys[i];
        k.used = true;
        k.chain = chain;
        k.n = n;
        k.mk.copy_from(mk);
        k.expires_at = expires_at;
        k.seq = seq;
        self.chains[chain].keys += 1;
    }

    /// The place of the key stored first.
    fn oldest(&self) -> Option<usize> {
        (0..self.keys.len())
            .filter(|&i| self.keys[i].used)
            .min_by_key(|&i| self.keys[i].seq)
    }

    /// Wipes the key in place `i`, and its chain's header key once the chain holds no key.
    fn wipe(&mut self, i: usize) {
        let chain = self.keys[i].chain;
        self.keys[i].zeroize();
        let c = &mut self.chains[chain];
        c.keys = c.keys.saturating_sub(1);
        if c.keys == 0 {
            c.zeroize();
        }
    }

    /// Appends the storage encoding.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.next_seq.to_be_bytes());
        // Both counts are bounded by MAX_SKIPPED_TOTAL, below u16::MAX.
        let chains: Vec<(usize, &SkippedChain)> = self.chains().collect();
        out.extend_from_slice(&(chains.len() as u16).to_be_bytes());
        for (place, c) in chains {
            out.extend_from_slice(&c.hk[..]);
            let mut keys: Vec<&SkippedKey> = self
                .keys
                .iter()
                .filter(|k| k.used && k.chain == place)
                .collect();
            keys.sort_unstable_by_key(|k| k.n);
            out.extend_from_slice(&(keys.len() as u16).to_be_bytes());
            for k in keys {
                out.extend_from_slice(&k.n.to_be_bytes());
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
        let mut out = SkippedKeys {
            next_seq,
            ..SkippedKeys::default()
        };
        if n_chains > 0 {
            out.allocate();
        }
        let mut total = 0usize;
        for chain in 0..n_chains {
            let hk = Key32::from_bytes(r.array::<32>()?);
            let n_keys = usize::from(r.u16()?);
            total += n_keys;
            if total > MAX_SKIPPED_TOTAL || n_keys == 0 {
                return Err(DecodeError::InvalidValue);
            }
            if out.chains().any(|(_, c)| bool::from(c.hk.ct_eq(&hk[..]))) {
                return Err(DecodeError::InvalidValue);
            }
            let c = &mut out.chains[chain];
            c.used = true;
            c.hk.copy_from(&hk);
            for _ in 0..n_keys {
                let n = r.u64()?;
                let mk = Key32::from_bytes(r.array::<32>()?);
                let expires_at = r.u64()?;
                let seq = r.u64()?;
                if out.find(chain, n).is_some() {
                    return Err(DecodeError::InvalidValue);
                }
                out.put(chain, n, &mk, expires_at, seq);
            }
        }
        Ok(out)
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
        assert_eq!(s.chains().count(), 2);
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

    /// A message key with a pattern of its own, unlike any other test key.
    fn marked(hk: u8, n: u64) -> NewSkipped {
        let mut mk = [0xA5; 32];
        mk[..8].copy_from_slice(&n.to_be_bytes());
        mk[8] = hk;
        NewSkipped {
            hk: Key32::from_bytes([hk; 32]),
            n,
            mk: Key32::from_bytes(mk),
        }
    }

    /// Whether any place of either slab, used or free, holds `bytes`.
    fn holds(s: &SkippedKeys, bytes: &[u8; 32]) -> bool {
        s.keys.iter().any(|k| *k.mk == *bytes) || s.chains.iter().any(|c| *c.hk == *bytes)
    }

    #[test]
    fn the_slabs_are_allocated_whole_once_and_never_move() {
        let mut s = SkippedKeys::default();
        assert!(
            s.keys.is_empty(),
            "nothing is allocated before the first key"
        );
        s.commit(vec![marked(1, 0)], 0);
        assert_eq!(s.keys.len(), MAX_SKIPPED_TOTAL);
        assert_eq!(s.chains.len(), MAX_SKIPPED_TOTAL);
        let (keys, chains) = (s.keys.as_ptr(), s.chains.as_ptr());
        for chain in 2..5u8 {
            s.commit((0..700).map(|n| marked(chain, n)).collect(), 10);
            s.remove(1, 3);
        }
        s.expire(10 + SKIPPED_KEY_LIFETIME_SECS);
        assert_eq!(s.len(), 0);
        s.commit(vec![marked(9, 1)], 20);
        assert_eq!((s.keys.as_ptr(), s.chains.as_ptr()), (keys, chains));
    }

    #[test]
    fn removed_evicted_and_expired_keys_leave_no_copy_in_the_store() {
        let mut s = SkippedKeys::default();
        s.commit(vec![marked(1, 0), marked(1, 1)], 0);
        s.commit(vec![marked(2, 0)], 5);
        let (used, evicted, expired) = (marked(1, 1), marked(1, 0), marked(2, 0));
        // The search sees the keys while they are stored.
        for k in [&used, &evicted, &expired] {
            assert!(holds(&s, &k.mk), "a stored key is found");
        }
        assert!(holds(&s, &expired.hk));
        s.remove(0, 1);
        // Filling the store evicts the oldest key left, (chain 1, n 0).
        s.commit(
            (0..MAX_SKIPPED_TOTAL as u64 - 1)
                .map(|n| marked(3, 100 + n))
                .collect(),
            5,
        );
        assert!(!holds(&s, &used.mk), "a used key is wiped in place");
        assert!(!holds(&s, &evicted.mk), "an evicted key is wiped in place");
        assert!(!holds(&s, &evicted.hk), "a chain left empty is wiped");
        assert!(holds(&s, &expired.mk));
        s.expire(5 + SKIPPED_KEY_LIFETIME_SECS);
        assert!(!holds(&s, &expired.mk), "an expired key is wiped in place");
        assert!(!holds(&s, &expired.hk));
    }
}
