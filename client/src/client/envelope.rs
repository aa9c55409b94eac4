//! Opening an envelope that arrived on one of our queues, as plain function calls: decrypt it
//! with what the queue belongs to, decode its payload. No relay, no store and no lock: the inbox
//! calls these with the invitation secrets or the contact's session, and acts on the verdict.
//!
//! A current wire message carries no clear type: a first message and a ratchet message look
//! alike. What the queue belongs to says which to try, and both are authenticated, so a message
//! of the other kind (or a forgery) simply fails to open. A first message delivered again on the
//! queue it created opens its ratchet header under the contact's session as a duplicate, and is
//! dropped quietly. Version 1 messages still carry their clear tag and are sorted by it.
//!
//! What it does not do: store anything, ack anything, or feed the conversation (see `inbox`).

use hush_protocol::{RelayAddress, SendCapability, SenderId};

use super::error::ClientError;
use crate::conversation::Payload;
use crate::crypto::{
    self, wire_format, DecryptError, Identity, InvitationSecrets, PublicIdentity, Session,
    WireFormat,
};

/// What an envelope turned out to be.
#[derive(Debug)]
pub(crate) enum Opened<T> {
    /// Authentic, and decoded.
    Ok(T),
    /// To drop without a word: a copy already seen, or a kind of message this queue no longer
    /// expects (a handshake delivered again).
    Ignore,
    /// To drop and report: not a hush message, not authentic, or an authentic payload that does
    /// not decode. `advanced` says the session moved on (save it).
    Tampered {
        /// Whether the session decrypted it (and so advanced).
        advanced: bool,
    },
    /// Further ahead than the session keeps keys for.
    OutOfStep,
}

/// A handshake that completes one of our invitations: the new session, who answered, and the
/// queue they introduced for us to send to.
pub(crate) struct Joined {
    pub(crate) session: Session,
    pub(crate) peer: PublicIdentity,
    pub(crate) relay: RelayAddress,
    pub(crate) sender_id: SenderId,
    pub(crate) send_cap: SendCapability,
}

impl std::fmt::Debug for Joined {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Joined")
            .field("relay", &self.relay)
            .finish_non_exhaustive()
    }
}

/// Opens `body`, which arrived on the queue of a pending invitation with these stored
/// `secrets`: a handshake first message whose payload introduces the answerer's queue. Fails
/// only if the secrets are unreadable.
pub(crate) fn open_handshake(
    identity: &Identity,
    secrets: &[u8],
    body: &[u8],
    now: u64,
) -> Result<Opened<Joined>, ClientError> {
    match wire_format(body) {
        // Only opening tells whether a current message is a first message.
        Some(WireFormat::Current | WireFormat::V1Handshake) => {}
        // Not a hush message at all: damaged or forged on the way.
        None => return Ok(Opened::Tampered { advanced: false }),
        // A version 1 ratchet message: not for an invitation.
        Some(_) => return Ok(Opened::Ignore),
    }
    let secrets = InvitationSecrets::from_bytes(secrets).map_err(|_| ClientError::Corrupt {
        what: "invitation secrets are unreadable",
    })?;
    let Ok((session, peer, plaintext)) = crypto::respond(identity, &secrets, body, now) else {
        return Ok(Opened::Tampered { advanced: false });
    };
    Ok(match Payload::decode(&plaintext) {
        Ok(Payload::Introduce {
            relay,
            sender_id,
            send_cap,
        }) => Opened::Ok(Joined {
            session,
            peer,
            relay,
            sender_id,
            send_cap,
        }),
        _ => Opened::Tampered { advanced: false },
    })
}

/// Opens `body`, which arrived on a contact's queue, with the contact's `session`: a ratchet
/// message carrying a payload. The session advances only if the message is authentic.
pub(crate) fn open_message(session: &mut Session, body: &[u8], now: u64) -> Opened<Payload> {
    match wire_format(body) {
        // A current first message delivered again opens as a duplicate (see the module docs).
        Some(WireFormat::Current | WireFormat::V1Ratchet) => {}
        // Not a hush message at all: damaged or forged on the way.
        None => return Opened::Tampered { advanced: false },
        // A version 1 handshake first message again (redelivered).
        Some(_) => return Opened::Ignore,
    }
    let plaintext = match session.decrypt(body, now) {
        Ok(p) => zeroize::Zeroizing::new(p),
        Err(DecryptError::Duplicate) => return Opened::Ignore,
        Err(DecryptError::TooFarAhead) => return Opened::OutOfStep,
        Err(_) => return Opened::Tampered { advanced: false },
    };
    match Payload::decode(&plaintext) {
        Ok(payload) => Opened::Ok(payload),
        Err(_) => Opened::Tampered { advanced: true },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conversation::{MessageBody, MessageId};
    use crate::crypto::Invitation;
    use rand::rngs::OsRng;

    const NOW: u64 = 1_800_000_000;

    fn relay() -> RelayAddress {
        format!("hush://127.0.0.1:4433#{}", "ab".repeat(32))
            .parse()
            .unwrap()
    }

    fn introduce() -> Payload {
        Payload::Introduce {
            relay: relay(),
            sender_id: SenderId([7; 16]),
            send_cap: SendCapability::from_bytes([8; 32]),
        }
    }

    /// Alice invites, Bob answers: Alice's identity and secrets, Bob's session and his first
    /// message.
    fn handshake() -> (Identity, Vec<u8>, Session, Vec<u8>) {
        let alice = Identity::generate(&mut OsRng);
        let bob = Identity::generate(&mut OsRng);
        let (invitation, secrets) = Invitation::create(
            &alice,
            relay(),
            SenderId([1; 16]),
            SendCapability::from_bytes([2; 32]),
            u64::MAX,
            &mut OsRng,
        );
        let (session, wire) =
            crypto::accept(&bob, &invitation, &introduce().encode(), &mut OsRng).unwrap();
        (alice, secrets.to_bytes().to_vec(), session, wire)
    }

    fn text(id: u8) -> Payload {
        Payload::Text {
            id: MessageId([id; 16]),
            sent_at: NOW,
            timer: None,
            view_once: false,
            body: MessageBody::new("hello"),
        }
    }

    #[test]
    fn a_handshake_completes_an_invitation_and_anything_else_is_refused() {
        let (alice, secrets, _, wire) = handshake();
        assert!(matches!(
            open_handshake(&alice, &secrets, b"not hush", NOW).unwrap(),
            Opened::Tampered { advanced: false }
        ));
        let mut forged = wire.clone();
        let last = forged.len() - 1;
        forged[last] ^= 1;
        assert!(matches!(
            open_handshake(&alice, &secrets, &forged, NOW).unwrap(),
            Opened::Tampered { .. }
        ));
        let Ok(Opened::Ok(joined)) = open_handshake(&alice, &secrets, &wire, NOW) else {
            panic!("the handshake did not open");
        };
        assert_eq!(joined.relay, relay());
        assert_eq!(joined.sender_id, SenderId([7; 16]));
    }

    #[test]
    fn a_message_opens_once_and_a_forged_one_leaves_the_session_as_it_was() {
        let (alice, secrets, mut bob, wire) = handshake();
        let Ok(Opened::Ok(joined)) = open_handshake(&alice, &secrets, &wire, NOW) else {
            panic!("the handshake did not open");
        };
        let mut alice_session = joined.session;
        // The handshake again, on the contact's queue: a redelivery, dropped quietly.
        assert!(matches!(
            open_message(&mut alice_session, &wire, NOW),
            Opened::Ignore
        ));
        let first = bob.encrypt(&text(1).encode(), &mut OsRng).unwrap();
        let second = bob.encrypt(&text(2).encode(), &mut OsRng).unwrap();
        let mut forged = first.clone();
        let last = forged.len() - 1;
        forged[last] ^= 1;
        assert!(matches!(
            open_message(&mut alice_session, &forged, NOW),
            Opened::Tampered { advanced: false }
        ));
        assert!(matches!(
            open_message(&mut alice_session, &first, NOW),
            Opened::Ok(p) if p.message_id() == Some(MessageId([1; 16]))
        ));
        assert!(matches!(
            open_message(&mut alice_session, &first, NOW),
            Opened::Ignore
        ));
        assert!(matches!(
            open_message(&mut alice_session, &second, NOW),
            Opened::Ok(p) if p.message_id() == Some(MessageId([2; 16]))
        ));
        // Authentic, but not a payload: the session advanced and must be saved.
        let junk = bob.encrypt(b"\xffjunk", &mut OsRng).unwrap();
        assert!(matches!(
            open_message(&mut alice_session, &junk, NOW),
            Opened::Tampered { advanced: true }
        ));
        assert!(matches!(
            open_message(&mut alice_session, b"not hush", NOW),
            Opened::Tampered { advanced: false }
        ));
    }
}
