//! The certificate pins of each relay, across certificate rotations.
//!
//! A relay is known by the address the client was given, whose fingerprint is the first pin.
//! When a relay announces a rotation (`NextCert`, asked on connections already pinned), the
//! announced fingerprint becomes a second pin for that relay: either certificate is accepted
//! until the relay is seen presenting the new one, which then becomes the only pin. A relay that
//! announces no rotation any more (its operator cancelled it) loses the second pin. So a client
//! that connects at least once during the grace period keeps working after the switch, with
//! the same address; one that does not gets [`super::NetError::CertificateChanged`].
//!
//! The book is kept in memory and handed, encoded, to a persistence hook after every change
//! (the `Client` stores it in the home), so what was learned survives a restart.
//!
//! [`learn_rotation`] is what the pool runs for each new connection: it asks and records.
//!
//! What it does not do: open connections (the pool does, see `pool.rs`), or trust an announcement
//! that did not come over a pinned connection (only the pool's connections, all pinned, feed
//! it).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use hush_protocol::{CertRotation, Fingerprint, RelayAddress};

use super::relay_client::RelayClient;

/// The fingerprints accepted for one relay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pins {
    /// The certificate the relay is known to serve.
    pub current: Fingerprint,
    /// The certificate it announced it will serve next, also accepted until seen.
    pub next: Option<Fingerprint>,
}

impl Pins {
    /// The pins of a relay nothing was learned about: its address's fingerprint.
    fn of(relay: &RelayAddress) -> Pins {
        Pins {
            current: relay.fingerprint,
            next: None,
        }
    }

    /// Every accepted fingerprint, the current one first.
    pub fn accepted(&self) -> Vec<Fingerprint> {
        std::iter::once(self.current).chain(self.next).collect()
    }
}

/// A stored pin book that does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the stored relay certificate pins are unreadable")]
pub struct PinBookError;

type Persist = Arc<dyn Fn(&[u8]) + Send + Sync>;

#[derive(Default)]
struct Book {
    pins: HashMap<RelayAddress, Pins>,
    persist: Option<Persist>,
}

/// The pins of every relay the client learned something about. Clones share the book.
#[derive(Clone, Default)]
pub struct PinBook {
    inner: Arc<Mutex<Book>>,
}

impl std::fmt::Debug for PinBook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PinBook")
            .field("relays", &self.lock().pins.len())
            .finish_non_exhaustive()
    }
}

impl PinBook {
    fn lock(&self) -> std::sync::MutexGuard<'_, Book> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Calls `persist` with the encoded book after every change.
    pub fn set_persist(&self, persist: impl Fn(&[u8]) + Send + Sync + 'static) {
        self.lock().persist = Some(Arc::new(persist));
    }

    /// The pins of `relay`.
    pub fn pins(&self, relay: &RelayAddress) -> Pins {
        self.lock()
            .pins
            .get(relay)
            .copied()
            .unwrap_or_else(|| Pins::of(relay))
    }

    /// `relay` with the fingerprint of the certificate it is known to serve now: the address
    /// to give others after a rotation.
    pub fn current_address(&self, relay: &RelayAddress) -> RelayAddress {
        RelayAddress {
            fingerprint: self.pins(relay).current,
            ..relay.clone()
        }
    }

    /// Records what `relay` announced on a pinned connection.
    pub fn announced(&self, relay: &RelayAddress, rotation: Option<CertRotation>) {
        self.update(relay, |p| Pins {
            next: rotation
                .map(|r| r.fingerprint)
                .filter(|fp| *fp != p.current),
            ..p
        });
    }

    /// Records that `relay` presented the certificate `fingerprint` (one of its pins): the
    /// announced one replaces the old.
    pub fn presented(&self, relay: &RelayAddress, fingerprint: Fingerprint) {
        self.update(relay, |p| match p.next {
            Some(next) if next == fingerprint => Pins {
                current: next,
                next: None,
            },
            _ => p,
        });
    }

    fn update(&self, relay: &RelayAddress, change: impl FnOnce(Pins) -> Pins) {
        let (encoded, persist) = {
            let mut book = self.lock();
            let before = book.pins.get(relay).copied().unwrap_or(Pins::of(relay));
            let after = change(before);
            if after == before {
                return;
            }
            if after == Pins::of(relay) {
                book.pins.remove(relay);
            } else {
                book.pins.insert(relay.clone(), after);
            }
            (encode(&book.pins), book.persist.clone())
        };
        if let Some(persist) = persist {
            persist(&encoded);
        }
    }

    /// Replaces the book with a stored one (from [`PinBook::encode`]).
    pub fn load(&self, bytes: &[u8]) -> Result<(), PinBookError> {
        let pins = decode(bytes)?;
        self.lock().pins = pins;
        Ok(())
    }

    /// The book, encoded for storage.
    pub fn encode(&self) -> Vec<u8> {
        encode(&self.lock().pins)
    }
}

/// One line per relay: `ADDRESS CURRENT NEXT`, NEXT `-` when none.
fn encode(pins: &HashMap<RelayAddress, Pins>) -> Vec<u8> {
    let mut lines: Vec<String> = pins
        .iter()
        .map(|(relay, p)| {
            let next = p.next.map_or_else(|| "-".to_owned(), |n| n.to_hex());
            format!("{relay} {} {next}\n", p.current)
        })
        .collect();
    lines.sort();
    lines.concat().into_bytes()
}

fn decode(bytes: &[u8]) -> Result<HashMap<RelayAddress, Pins>, PinBookError> {
    let text = std::str::from_utf8(bytes).map_err(|_| PinBookError)?;
    text.lines()
        .map(|line| {
            let mut parts = line.split(' ');
            let (Some(relay), Some(current), Some(next), None) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                return Err(PinBookError);
            };
            let relay: RelayAddress = relay.parse().map_err(|_| PinBookError)?;
            let current = Fingerprint::from_hex(current).map_err(|_| PinBookError)?;
            let next = match next {
                "-" => None,
                hex => Some(Fingerprint::from_hex(hex).map_err(|_| PinBookError)?),
            };
            Ok((relay, Pins { current, next }))
        })
        .collect()
}

/// Asks the relay on `client` whether it will rotate its certificate and records the answer
/// in `pins`; with `every`, asks again at that interval for as long as the connection lives.
/// The connection is pinned, so the answer comes from the relay and no one else.
pub(super) async fn learn_rotation(
    client: Weak<RelayClient>,
    relay: RelayAddress,
    pins: PinBook,
    every: Option<Duration>,
) {
    loop {
        let Some(c) = client.upgrade().filter(|c| !c.is_closed()) else {
            return;
        };
        match c.next_cert().await {
            Ok(next) => pins.announced(&relay, next),
            Err(error) => {
                tracing::debug!(%error, "asking the relay for its next certificate failed")
            }
        }
        drop(c);
        let Some(every) = every else { return };
        tokio::time::sleep(every).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relay(fp: u8) -> RelayAddress {
        RelayAddress::new("relay.example", 4433, Fingerprint([fp; 32]))
    }

    fn rotation(fp: u8) -> Option<CertRotation> {
        Some(CertRotation {
            fingerprint: Fingerprint([fp; 32]),
            switch_at: 100,
        })
    }

    #[test]
    fn an_announced_pin_is_accepted_until_seen_then_replaces_the_old() {
        let book = PinBook::default();
        let saved = Arc::new(Mutex::new(Vec::new()));
        let sink = saved.clone();
        book.set_persist(move |b| *sink.lock().unwrap() = b.to_vec());
        let r = relay(1);
        assert_eq!(book.pins(&r).accepted(), [Fingerprint([1; 32])]);
        book.announced(&r, rotation(2));
        assert_eq!(
            book.pins(&r).accepted(),
            [Fingerprint([1; 32]), Fingerprint([2; 32])]
        );
        // Seeing the old one changes nothing; seeing the new one drops the old.
        book.presented(&r, Fingerprint([1; 32]));
        assert_eq!(book.pins(&r).next, Some(Fingerprint([2; 32])));
        book.presented(&r, Fingerprint([2; 32]));
        assert_eq!(book.pins(&r).accepted(), [Fingerprint([2; 32])]);
        assert_eq!(book.current_address(&r).fingerprint, Fingerprint([2; 32]));

        let stored = PinBook::default();
        stored.load(&saved.lock().unwrap()).unwrap();
        assert_eq!(stored.pins(&r), book.pins(&r));
        assert_eq!(stored.encode(), book.encode());
    }

    #[test]
    fn a_cancelled_rotation_drops_the_second_pin() {
        let book = PinBook::default();
        let r = relay(1);
        book.announced(&r, rotation(2));
        book.announced(&r, None);
        assert_eq!(book.pins(&r).accepted(), [Fingerprint([1; 32])]);
        assert!(book.encode().is_empty());
    }

    #[test]
    fn a_damaged_book_is_refused() {
        let book = PinBook::default();
        for bad in [&b"hush://h:1#00 x -\n"[..], b"one two", &[0xff, 0xfe]] {
            assert_eq!(book.load(bad), Err(PinBookError));
        }
    }
}
