//! One queue as the JetStream store reads it: the messages on its subject, in stream order.
//!
//! A queue's subject holds its envelopes and its send capability. The capability in force is
//! the one in the newest message that carries one: a capability message (written at creation
//! and by a recipient's re-secure), or an envelope whose send replaced it. Because both live on
//! one subject, a send that checks the capability, the quota and the order, and then publishes
//! with the subject's expected last sequence, is atomic without a lock: a concurrent write to
//! the queue makes the publish fail, and the send reads the queue again.
//!
//! Removing the envelope that carries the capability in force, or the last message of the
//! subject, first writes a capability message with the same sealed capability (copied, no key
//! needed), so the capability survives its envelope and the subject's last message is never
//! erased (see [`View::remove`]); older capability messages are then erased.
//!
//! What this module does not do: know about records, sender ids or wake-ups (`mod.rs`).

use chacha20poly1305::Key;

use super::api::{Api, Get, Published};
use super::codec::{self, Kind, RawQueueMsg};
use crate::store::{StoreError, StoredEnvelope};

/// The messages on one queue's subject, oldest first.
#[derive(Debug)]
pub(super) struct View {
    /// The queue's subject.
    pub subject: String,
    /// Its messages, oldest first.
    pub msgs: Vec<RawQueueMsg>,
}

/// Whether a conditional write went through, or must be tried again on a fresh [`View`].
pub(super) enum Outcome<T> {
    /// Done, with this result.
    Done(T),
    /// Another write to the queue came first.
    Retry,
}

impl View {
    /// Reads every message on `subject` from `from` on (0 or 1: all of them).
    pub(super) async fn load(
        api: &Api,
        stream: &str,
        subject: &str,
        from: u64,
    ) -> Result<View, StoreError> {
        Self::load_until(api, stream, subject, from, |_| false).await
    }

    /// Reads the messages on `subject` from `from` on, stopping early after the message for
    /// which `enough` (called on each in turn) says the messages read suffice.
    pub(super) async fn load_until(
        api: &Api,
        stream: &str,
        subject: &str,
        from: u64,
        mut enough: impl FnMut(&RawQueueMsg) -> bool,
    ) -> Result<View, StoreError> {
        let mut msgs = Vec::new();
        let mut next = from;
        loop {
            let Some(m) = api
                .get(
                    stream,
                    Get::Next {
                        from: next,
                        filter: subject,
                    },
                )
                .await?
            else {
                break;
            };
            next = m.seq + 1;
            let msg = RawQueueMsg::decode(m.seq, &m.data)?;
            let done = enough(&msg);
            msgs.push(msg);
            if done {
                break;
            }
        }
        Ok(View {
            subject: subject.to_owned(),
            msgs,
        })
    }

    /// The subject's last sequence, for a conditional publish (0 when empty).
    pub(super) fn last_seq(&self) -> u64 {
        self.msgs.last().map_or(0, |m| m.seq)
    }

    /// The message that carries the capability in force, if any.
    pub(super) fn cap_carrier(&self) -> Option<&RawQueueMsg> {
        self.msgs.iter().rev().find(|m| m.kind.has_cap())
    }

    /// Up to `limit` unexpired envelopes, opened, in order.
    pub(super) fn pending(
        &self,
        key: &Key,
        limit: usize,
        now: u64,
    ) -> Result<Vec<StoredEnvelope>, StoreError> {
        self.msgs
            .iter()
            .filter(|m| m.kind.has_envelope() && m.expires_at > now)
            .take(limit)
            .map(|m| {
                let (id, body) = codec::open_envelope(key, &self.subject, &m.sealed_envelope)?;
                Ok(StoredEnvelope {
                    seq: m.seq,
                    id,
                    body,
                    expires_at: m.expires_at,
                })
            })
            .collect()
    }

    /// Erases the message at `seq`, keeping the capability in force if it carried it. Returns
    /// whether this call erased it (`false`: another node did first).
    ///
    /// The last message on a subject is never erased as it stands: a capability message
    /// copying the capability in force is written after it first. Conditional publishes compare
    /// with the subject's last sequence, and nats-server 2.9 loses track of that sequence when
    /// the last message of a subject is removed; with a capability message always last, it
    /// never is.
    pub(super) async fn remove(
        &self,
        api: &Api,
        stream: &str,
        seq: u64,
    ) -> Result<Outcome<bool>, StoreError> {
        if !self.msgs.iter().any(|m| m.seq == seq) {
            return Ok(Outcome::Done(false));
        }
        let carrier = self.cap_carrier();
        let carries_cap = carrier.is_some_and(|c| c.seq == seq);
        let (Some(carrier), true) = (carrier, carries_cap || seq == self.last_seq()) else {
            return Ok(Outcome::Done(api.erase(stream, seq).await?));
        };
        let copy = carrier.cap_copy().encode();
        let published = api
            .publish(&self.subject, copy, Some(self.last_seq()), None)
            .await?;
        let Published::Stored(new_seq) = published else {
            return Ok(Outcome::Retry);
        };
        let (erased, ()) = tokio::join!(
            api.erase(stream, seq),
            self.erase_caps_before(api, stream, new_seq)
        );
        Ok(Outcome::Done(erased?))
    }

    /// Erases the capability messages older than `seq`, which a newer carrier superseded.
    /// Failures are logged only: a stale capability message is never the one in force.
    pub(super) async fn erase_caps_before(&self, api: &Api, stream: &str, seq: u64) {
        for m in self
            .msgs
            .iter()
            .filter(|m| m.kind == Kind::Cap && m.seq < seq)
        {
            if let Err(e) = api.erase(stream, m.seq).await {
                tracing::debug!(error = %e, "superseded capability not erased yet");
            }
        }
    }
}
