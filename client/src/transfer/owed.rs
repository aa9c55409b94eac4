//! Deletions owed to relays, kept in the encrypted store (`Transfer` namespace) until a relay
//! confirms them: a blob's (the sender's retract, the recipient's "download done", an upload
//! that expired or whose contact is gone) and a queue's (an invitation that expired unanswered).
//!
//! Each is written before whatever held its capability or key is shredded, and removed once the
//! relay confirms (or says the blob or queue is already gone). A relay out of reach keeps it
//! for the next run. A record that does not decode is removed. None of them holds a contact's
//! name: only the relay, the object's id and what authorises deleting it.
//!
//! What it does not do: decide what is owed (the callers do), or retry on a timer of its own
//! (the client runs [`Transfers::run_deletions`] after its actions and ticks).

use ed25519_dalek::SigningKey;
use hush_protocol::ids::{BlobCapability, BlobId, BLOB_CAP_LEN, ID_LEN};
use hush_protocol::{ErrorCode, RecipientId, RelayAddress};
use zeroize::Zeroizing;

use super::Transfers;
use crate::client::error::ClientError;
use crate::conversation::codec::{
    read_relay, versioned_reader, versioned_writer, write_relay, DecodeError,
};
use crate::net::NetError;
use crate::store::{LocalStore, Namespace, StoreKey};

/// First byte of an owed blob deletion's id.
pub(super) const DELETION_TAG: u8 = b'd';
/// First byte of an owed queue deletion's id.
pub(super) const QUEUE_DELETION_TAG: u8 = b'q';

/// What is owed a deletion.
enum Owed {
    /// Blob `blob_id`, deleted with `cap`.
    Blob {
        blob_id: BlobId,
        cap: BlobCapability,
    },
    /// Queue `recipient_id`, deleted with its recipient key.
    Queue {
        recipient_id: RecipientId,
        key: SigningKey,
    },
}

/// A deletion owed to `relay`.
struct Deletion {
    relay: RelayAddress,
    what: Owed,
}

impl Deletion {
    fn key(&self) -> StoreKey {
        let id = match &self.what {
            Owed::Blob { blob_id, .. } => [&[DELETION_TAG][..], blob_id.as_bytes()].concat(),
            Owed::Queue { recipient_id, .. } => {
                [&[QUEUE_DELETION_TAG][..], recipient_id.as_bytes()].concat()
            }
        };
        StoreKey::Transfer(id)
    }

    fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut w = versioned_writer(128);
        write_relay(&mut w, &self.relay);
        match &self.what {
            Owed::Blob { blob_id, cap } => {
                w.raw(blob_id.as_bytes());
                w.raw(cap.as_bytes());
            }
            Owed::Queue { recipient_id, key } => {
                w.raw(recipient_id.as_bytes());
                w.raw(&Zeroizing::new(key.to_bytes())[..]);
            }
        }
        Zeroizing::new(w.finish())
    }

    /// Decodes the record stored under an id starting with `tag`.
    fn decode(tag: u8, bytes: &[u8]) -> Result<Deletion, DecodeError> {
        let mut r = versioned_reader(bytes)?;
        let relay = read_relay(&mut r)?;
        let what = match tag {
            DELETION_TAG => Owed::Blob {
                blob_id: BlobId::from_bytes(r.array::<ID_LEN>()?),
                cap: BlobCapability::from_bytes(r.array::<BLOB_CAP_LEN>()?),
            },
            QUEUE_DELETION_TAG => Owed::Queue {
                recipient_id: RecipientId(r.array()?),
                key: SigningKey::from_bytes(&Zeroizing::new(r.array::<32>()?)),
            },
            other => return Err(DecodeError::UnknownTag(other)),
        };
        r.finish()?;
        Ok(Deletion { relay, what })
    }
}

/// Records that blob `blob_id` on `relay` must be deleted with `cap`.
pub(crate) fn owe_deletion(
    store: &LocalStore,
    relay: &RelayAddress,
    blob_id: BlobId,
    cap: &BlobCapability,
) -> Result<(), ClientError> {
    let d = Deletion {
        relay: relay.clone(),
        what: Owed::Blob {
            blob_id,
            cap: cap.clone(),
        },
    };
    store.put(&d.key(), &d.encode())?;
    Ok(())
}

/// Records that queue `recipient_id` on `relay` must be deleted with its recipient `key`.
pub(crate) fn owe_queue_deletion(
    store: &LocalStore,
    relay: &RelayAddress,
    recipient_id: RecipientId,
    key: &SigningKey,
) -> Result<(), ClientError> {
    let d = Deletion {
        relay: relay.clone(),
        what: Owed::Queue {
            recipient_id,
            key: key.clone(),
        },
    };
    store.put(&d.key(), &d.encode())?;
    Ok(())
}

/// The deletions still owed to relays (blobs and queues): how many, and to which relays. A
/// record that does not decode is counted, without a relay.
pub(crate) fn owed_summary(store: &LocalStore) -> Result<(usize, Vec<RelayAddress>), ClientError> {
    let mut count = 0;
    let mut relays: Vec<RelayAddress> = Vec::new();
    for (key, value) in store.list(Namespace::Transfer, None)? {
        let StoreKey::Transfer(id) = &key else {
            continue;
        };
        let Some(&tag) = id
            .first()
            .filter(|&&t| t == DELETION_TAG || t == QUEUE_DELETION_TAG)
        else {
            continue;
        };
        count += 1;
        if let Ok(d) = Deletion::decode(tag, &value) {
            if !relays.contains(&d.relay) {
                relays.push(d.relay);
            }
        }
    }
    Ok((count, relays))
}

impl Transfers {
    /// Carries out the deletions owed to relays. A relay out of reach keeps its deletion for
    /// the next call; a record that does not decode is dropped; nothing else fails this.
    pub(crate) async fn run_deletions(&self) {
        let owed = match self.store.list(Namespace::Transfer, None) {
            Ok(all) => all,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list owed deletions");
                return;
            }
        };
        for (key, value) in owed {
            let StoreKey::Transfer(id) = &key else {
                continue;
            };
            let tag = match id.first() {
                Some(&t) if t == DELETION_TAG || t == QUEUE_DELETION_TAG => t,
                _ => continue,
            };
            let done = match Deletion::decode(tag, &value) {
                Ok(d) => self.delete_at_relay(&d).await,
                Err(e) => {
                    tracing::warn!(error = %e, "dropping a damaged owed deletion");
                    true
                }
            };
            if done {
                if let Err(e) = self.store.delete(&key) {
                    tracing::warn!(error = %e, "cannot drop a done deletion");
                }
            }
        }
    }

    /// Asks the relay to carry out `d`; whether it is done (deleted, or already gone).
    async fn delete_at_relay(&self, d: &Deletion) -> bool {
        let r = match &d.what {
            Owed::Blob { blob_id, cap } => {
                self.pool
                    .run(&d.relay, |conn| {
                        let (id, cap) = (*blob_id, cap.clone());
                        async move { conn.client().blob_delete(id, &cap).await }
                    })
                    .await
            }
            Owed::Queue { recipient_id, key } => {
                self.pool
                    .run(&d.relay, |conn| {
                        let (rid, key) = (*recipient_id, key.clone());
                        async move { conn.client().delete_queue(&key, rid).await }
                    })
                    .await
            }
        };
        match r {
            Ok(()) => true,
            Err(e) if gone(&e) => true,
            Err(e) => {
                tracing::debug!(error = %e, "relay deletion deferred");
                false
            }
        }
    }
}

/// Whether the relay says the blob or queue is already gone.
fn gone(e: &NetError) -> bool {
    matches!(e.code(), Some(ErrorCode::NoBlob | ErrorCode::NoQueue))
}
