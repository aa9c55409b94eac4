//! The checks behind the fuzz targets in `fuzz/`, shared with the corpus-replay test.
//!
//! Each public function takes arbitrary bytes and panics if, and only if, a decoder or the
//! conversation logic misbehaves: a panic inside a decoder, an accepted input that does not
//! re-encode to itself, a session that changes state on a failed decryption, a message shown
//! twice, or a forged message shown. The fuzz targets call these functions and so does
//! `tests/fuzz_corpus_replay.rs`, over every file kept in `fuzz/corpus/`, so what the fuzzer
//! checks and what CI replays are the same code.
//!
//! Fixed material (identities, an invitation, an established pair of sessions) comes from a
//! seeded RNG, so that [`seed_corpus`] produces real frames, a real invitation and real messages
//! that match it on every run.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use hush_client::conversation::{
    Conversation, ConversationMeta, Effect, Event, MessageId, MessageRecord, Payload, Status,
};
use hush_client::crypto::{
    accept, respond, Identity, Invitation, InvitationSecrets, PublicIdentity, Session,
};
use hush_protocol::address::Fingerprint;
use hush_protocol::ids::{EnvelopeId, RecipientId, SenderId};
use hush_protocol::{
    ErrorCode, FrameDecoder, Push, PushedEnvelope, RelayAddress, Reply, Request, SendCapability,
    ServerFrame,
};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

/// The fuzz targets, by name: the directory names under `fuzz/corpus/`.
pub const TARGETS: [&str; 7] = [
    "frame",
    "invitation",
    "first_message",
    "ratchet",
    "conversation_codec",
    "stored_secrets",
    "interaction",
];

/// Runs the check of `target` (one of [`TARGETS`]) on `data`.
pub fn run(target: &str, data: &[u8]) {
    match target {
        "frame" => frame(data),
        "invitation" => invitation(data),
        "first_message" => first_message(data),
        "ratchet" => ratchet(data),
        "conversation_codec" => conversation_codec(data),
        "stored_secrets" => stored_secrets(data),
        "interaction" => interaction(data),
        other => panic!("unknown fuzz target {other}"),
    }
}

/// The clock of the fixtures (unix seconds).
const T0: u64 = 1_800_000_000;
/// The relay TTL of the conversations in [`interaction`].
const RELAY_TTL: u64 = 2 * 86_400;

/// Identities, an invitation and an established pair of sessions, from a fixed seed.
struct Fixture {
    inviter: Identity,
    joiner_public: PublicIdentity,
    invitation_token: String,
    secrets_bytes: Vec<u8>,
    /// First messages the joiner made for the invitation, each with its plaintext.
    first_messages: Vec<(Vec<u8>, Vec<u8>)>,
    /// The inviter's session after the handshake and some traffic, serialized.
    inviter_session: Vec<u8>,
    /// The joiner's session at the same point, serialized.
    joiner_session: Vec<u8>,
    /// Messages from the joiner the inviter has not decrypted yet, with their plaintexts.
    pending: Vec<(Vec<u8>, Vec<u8>)>,
}

fn relay_address() -> RelayAddress {
    RelayAddress::new("relay.example", 4433, Fingerprint([7; 32]))
}

fn introduce() -> Payload {
    Payload::Introduce {
        relay: relay_address(),
        sender_id: SenderId::from_bytes([9; 16]),
        send_cap: SendCapability::from_bytes([10; 32]),
    }
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let mut rng = ChaCha20Rng::seed_from_u64(0x6875_7368);
        let inviter = Identity::generate(&mut rng);
        let joiner = Identity::generate(&mut rng);
        let (invitation, secrets) = Invitation::create(
            &inviter,
            relay_address(),
            SenderId::from_bytes([1; 16]),
            SendCapability::from_bytes([2; 32]),
            u64::MAX,
            &mut rng,
        );
        let mut first_messages = Vec::new();
        for plaintext in [introduce().encode().to_vec(), b"hello".to_vec()] {
            let (_, wire) = accept(&joiner, &invitation, &plaintext, &mut rng).expect("accept");
            first_messages.push((wire, plaintext));
        }
        let intro = introduce().encode();
        let (mut j, first) = accept(&joiner, &invitation, &intro, &mut rng).expect("accept");
        let (mut i, _, _) = respond(&inviter, &secrets, &first, T0).expect("respond");
        // A few round trips, so that both sides hold receiving chains.
        for round in 0..3u8 {
            let w = i.encrypt(&[b'i', round], &mut rng).expect("encrypt");
            j.decrypt(&w, T0).expect("decrypt");
            let w = j.encrypt(&[b'j', round], &mut rng).expect("encrypt");
            i.decrypt(&w, T0).expect("decrypt");
        }
        // Left in flight: the inviter has not seen these, so they decrypt in any order.
        let mut pending = Vec::new();
        for n in 0..4u8 {
            let plaintext = Payload::Unsend {
                id: MessageId([n; 16]),
            }
            .encode()
            .to_vec();
            let wire = j.encrypt(&plaintext, &mut rng).expect("encrypt");
            pending.push((wire, plaintext));
        }
        Fixture {
            inviter,
            joiner_public: joiner.public(),
            invitation_token: invitation.encode(),
            secrets_bytes: secrets.to_bytes().to_vec(),
            first_messages,
            inviter_session: i.to_bytes().to_vec(),
            joiner_session: j.to_bytes().to_vec(),
            pending,
        }
    })
}

/// Relay framing: a stream cut into chunks, each complete frame decoded as a client request
/// and as a relay frame. An accepted frame must re-encode to exactly its bytes.
pub fn frame(data: &[u8]) {
    let Some((&chunk, stream)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk).max(1);
    let mut decoder = FrameDecoder::default();
    'feed: for piece in stream.chunks(chunk) {
        decoder.feed(piece);
        loop {
            let body = match decoder.pop() {
                Ok(Some(body)) => body.to_vec(),
                Ok(None) => break,
                // The connection is closed after a framing error.
                Err(_) => break 'feed,
            };
            check_body(&body);
        }
    }
    // A body alone, without framing, reaches the decoders directly.
    check_body(stream);
}

fn check_body(body: &[u8]) {
    if let Ok((id, request)) = Request::decode_frame(body) {
        let mut out = Vec::new();
        request.encode_frame(id, &mut out);
        assert_eq!(&out[4..], body, "request does not re-encode to itself");
        let _ = (request.kind(), request.signed_part(), request.signature());
    }
    if let Ok(frame) = ServerFrame::decode(body) {
        let mut out = Vec::new();
        frame.encode_frame(&mut out);
        assert_eq!(&out[4..], body, "relay frame does not re-encode to itself");
    }
}

/// Invitation tokens: parsing must not panic, and an accepted token must re-encode to a token
/// that parses to the same invitation. Nothing but the fixture's invitation (however wrapped
/// in whitespace) can carry a valid signature.
pub fn invitation(data: &[u8]) {
    let token = String::from_utf8_lossy(data);
    if let Ok(inv) = Invitation::parse(&token) {
        let again = inv.encode();
        let reparsed = Invitation::parse(&again).expect("a re-encoded invitation parses");
        assert_eq!(
            reparsed.encode(),
            again,
            "invitation encoding is not stable"
        );
        let _ = (inv.relay(), inv.sender_id(), inv.send_capability());
    }
}

/// Handshake first messages, answered with the fixture's invitation secrets. Only the
/// fixture's joiner can complete a handshake, and only with the plaintext it sent.
pub fn first_message(data: &[u8]) {
    let fx = fixture();
    let secrets = InvitationSecrets::from_bytes(&fx.secrets_bytes).expect("fixture secrets");
    let _ = hush_client::crypto::wire_format(data);
    if let Ok((_session, peer, plaintext)) = respond(&fx.inviter, &secrets, data, T0) {
        assert!(
            peer == fx.joiner_public,
            "a handshake from a forged identity"
        );
        assert!(
            fx.first_messages
                .iter()
                .any(|(_, p)| p.as_slice() == plaintext.as_slice()),
            "a handshake yielded a plaintext nobody sent"
        );
    }
}

/// Splits `data` into messages: a big-endian `u16` length, then that many bytes (or the rest).
fn split_messages(data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    while rest.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        let take = len.min(rest.len() - 2);
        out.push(&rest[2..2 + take]);
        rest = &rest[2 + take..];
    }
    out
}

/// Joins messages in the format [`split_messages`] reads.
fn join_messages(messages: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for m in messages {
        let len = u16::try_from(m.len()).expect("message fits a u16 length");
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(m);
    }
    out
}

/// Ratchet messages (header and body) fed to an established session: a failed decryption
/// must leave the session unchanged, a success must yield a plaintext the peer sent, and no
/// plaintext may come out twice. The first byte moves the clock up to 255 hours ahead.
pub fn ratchet(data: &[u8]) {
    ratchet_opened(data);
}

/// [`ratchet`], returning how many messages decrypted.
pub fn ratchet_opened(data: &[u8]) -> usize {
    let fx = fixture();
    let Some((&hours, rest)) = data.split_first() else {
        return 0;
    };
    let now = T0 + u64::from(hours) * 3600;
    let mut session = Session::from_bytes(&fx.inviter_session).expect("fixture session");
    let mut opened: HashSet<Vec<u8>> = HashSet::new();
    for wire in split_messages(rest) {
        let before = session.to_bytes();
        match session.decrypt(wire, now) {
            Ok(plaintext) => {
                assert!(
                    fx.pending.iter().any(|(_, p)| *p == plaintext),
                    "decrypted a message the peer never sent"
                );
                // What the conversation layer does next.
                let _ = Payload::decode(&plaintext);
                assert!(opened.insert(plaintext), "a message decrypted twice");
            }
            Err(_) => assert!(
                *before == *session.to_bytes(),
                "a failed decryption changed the session"
            ),
        }
    }
    opened.len()
}

/// The conversation's payload, message record and metadata decoders: no panic, and what
/// decodes re-encodes to something that decodes to the same encoding.
pub fn conversation_codec(data: &[u8]) {
    if let Ok(p) = Payload::decode(data) {
        let enc = p.encode();
        let again = Payload::decode(&enc).expect("re-encoded payload decodes");
        assert!(again == p, "payload changed in a round trip");
        let _ = (p.tag(), p.message_id());
    }
    if let Ok(r) = MessageRecord::decode(data) {
        let enc = r.encode();
        let again = MessageRecord::decode(&enc).expect("re-encoded record decodes");
        assert_eq!(
            again.encode(),
            enc,
            "message record changed in a round trip"
        );
        let _ = (r.expires_at(RELAY_TTL), r.is_expired(T0, RELAY_TTL));
    }
    if let Ok(m) = ConversationMeta::decode(data) {
        let enc = m.encode();
        let again = ConversationMeta::decode(&enc).expect("re-encoded meta decodes");
        assert_eq!(
            again.encode(),
            enc,
            "conversation meta changed in a round trip"
        );
        // A restored conversation must survive a tick.
        let mut c = Conversation::restore(m, MessageRecord::decode(data).ok());
        let _ = c.tick(T0);
        let _ = c.next_deadline();
    }
}

/// The secret storage encodings the client keeps in its local store: ratchet sessions,
/// identities, public identities and invitation secrets. What decodes must re-encode stably.
pub fn stored_secrets(data: &[u8]) {
    if let Ok(s) = Session::from_bytes(data) {
        let enc = s.to_bytes();
        let again = Session::from_bytes(&enc).expect("re-encoded session decodes");
        assert!(*again.to_bytes() == *enc, "session changed in a round trip");
        let mut s = s;
        // A restored session must not panic on use.
        let before = s.to_bytes();
        if s.decrypt(data, T0).is_err() {
            assert!(
                *before == *s.to_bytes(),
                "a failed decryption changed the session"
            );
        }
    }
    if let Ok(id) = Identity::from_bytes(data) {
        let enc = id.to_bytes();
        let again = Identity::from_bytes(&enc).expect("re-encoded identity decodes");
        assert!(
            again.public() == id.public(),
            "identity changed in a round trip"
        );
    }
    if let Ok(p) = PublicIdentity::from_bytes(data) {
        let again = PublicIdentity::from_bytes(&p.to_bytes()).expect("re-encoded public identity");
        assert!(again == p, "public identity changed in a round trip");
    }
    if let Ok(s) = InvitationSecrets::from_bytes(data) {
        let enc = s.to_bytes();
        let again = InvitationSecrets::from_bytes(&enc).expect("re-encoded secrets decode");
        assert!(
            *again.to_bytes() == *enc,
            "invitation secrets changed in a round trip"
        );
    }
}

/// An envelope in flight between the two parties of [`interaction`].
#[derive(Clone)]
struct Packet {
    to: usize,
    envelope_id: EnvelopeId,
    wire: Vec<u8>,
    accepted_at: u64,
}

/// What the oracle knows about a text message when it is composed.
struct SentText {
    from: usize,
    body: String,
    view_once: bool,
}

/// Two parties with established sessions and fresh conversations, a lossy relay between
/// them, and an oracle.
struct World {
    now: u64,
    rng: ChaCha20Rng,
    sessions: [Option<Session>; 2],
    convs: [Conversation; 2],
    queue_gone: [bool; 2],
    net: Vec<Packet>,
    next_envelope: u64,
    texts: HashMap<MessageId, SentText>,
    own: [Vec<MessageId>; 2],
    shown: [HashSet<MessageId>; 2],
    unsent_by_contact: [HashSet<MessageId>; 2],
}

const TIMERS: [Option<u64>; 4] = [None, Some(30), Some(3600), Some(86_400)];
const ADVANCES: [u64; 4] = [1, 60, 3600, 3 * 86_400];

impl World {
    fn new(seed: u64) -> Self {
        let fx = fixture();
        Self {
            now: T0,
            rng: ChaCha20Rng::seed_from_u64(seed),
            sessions: [
                Some(Session::from_bytes(&fx.inviter_session).expect("fixture session")),
                Some(Session::from_bytes(&fx.joiner_session).expect("fixture session")),
            ],
            convs: [
                Conversation::new(RELAY_TTL, &mut rand::rngs::OsRng).expect("ttl"),
                Conversation::new(RELAY_TTL, &mut rand::rngs::OsRng).expect("ttl"),
            ],
            queue_gone: [false; 2],
            net: Vec::new(),
            next_envelope: 0,
            texts: HashMap::new(),
            own: [Vec::new(), Vec::new()],
            shown: [HashSet::new(), HashSet::new()],
            unsent_by_contact: [HashSet::new(), HashSet::new()],
        }
    }

    /// Carries out `side`'s effects; returns the envelope id of the last send.
    fn apply(&mut self, side: usize, effects: Vec<Effect>) -> Option<EnvelopeId> {
        let mut last = None;
        for e in effects {
            match e {
                Effect::SendPayload(p) => {
                    let session = self.sessions[side]
                        .as_mut()
                        .expect("a send after the session was erased");
                    let wire = session
                        .encrypt(&p.encode(), &mut self.rng)
                        .expect("an established session encrypts");
                    self.next_envelope += 1;
                    let mut raw = [0u8; 16];
                    raw[..8].copy_from_slice(&self.next_envelope.to_be_bytes());
                    let envelope_id = EnvelopeId::from_bytes(raw);
                    if !self.queue_gone[1 - side] {
                        self.net.push(Packet {
                            to: 1 - side,
                            envelope_id,
                            wire,
                            accepted_at: self.now,
                        });
                    }
                    last = Some(envelope_id);
                }
                Effect::Retract { envelope_id } => {
                    self.net.retain(|p| p.envelope_id != envelope_id);
                }
                Effect::DeleteOwnQueue => {
                    self.queue_gone[side] = true;
                    self.net.retain(|p| p.to != side);
                }
                Effect::EraseConversation => self.sessions[side] = None,
                Effect::Notify(Event::MessageShown { id, body, .. }) => {
                    let sent = self
                        .texts
                        .get(&id)
                        .expect("a message shown that nobody composed");
                    assert_eq!(sent.from, 1 - side, "a message shown to its own sender");
                    if let Some(body) = body {
                        assert_eq!(
                            body.as_str(),
                            sent.body,
                            "a shown body differs from the sent"
                        );
                    }
                    assert!(self.shown[side].insert(id), "a message shown twice");
                    assert!(
                        !self.unsent_by_contact[side].contains(&id),
                        "a message shown after its unsend arrived"
                    );
                }
                Effect::Notify(Event::Unsent {
                    id,
                    by_contact: true,
                }) => {
                    self.unsent_by_contact[side].insert(id);
                }
                _ => {}
            }
        }
        last
    }

    fn compose(&mut self, side: usize, view_once: bool, n: u8) {
        let body = format!("message {n} from {side}");
        let Ok((id, effects)) =
            self.convs[side].compose_text(body.clone(), view_once, self.now, &mut self.rng)
        else {
            return;
        };
        self.texts.insert(
            id,
            SentText {
                from: side,
                body,
                view_once,
            },
        );
        self.own[side].push(id);
        if let Some(envelope_id) = self.apply(side, effects) {
            let effects = self.convs[side].mark_sent(id, envelope_id);
            self.apply(side, effects);
        }
    }

    /// Delivers one packet: decrypt with the receiver's session, decode, receive.
    fn deliver(&mut self, packet: Packet) {
        let to = packet.to;
        if self.now >= packet.accepted_at + RELAY_TTL {
            return;
        }
        let Some(session) = self.sessions[to].as_mut() else {
            return;
        };
        let before = session.to_bytes();
        let plaintext = match session.decrypt(&packet.wire, self.now) {
            Ok(p) => p,
            Err(_) => {
                assert!(
                    *before == *session.to_bytes(),
                    "a failed decryption changed the session"
                );
                return;
            }
        };
        let payload = Payload::decode(&plaintext).expect("an authentic payload decodes");
        if let Ok(effects) = self.convs[to].receive(payload, self.now) {
            self.apply(to, effects);
        }
    }

    /// A corrupted or made-up envelope: it must never decrypt, nor change the session.
    fn forge(&mut self, to: usize, pick: usize, flip: u8, garbage: &[u8]) {
        let wire = match self.net.get(pick % self.net.len().max(1)) {
            Some(p) if flip != 0 => {
                let mut w = p.wire.clone();
                let i = usize::from(flip) % w.len().max(1);
                if let Some(b) = w.get_mut(i) {
                    *b ^= flip;
                }
                w
            }
            _ => garbage.to_vec(),
        };
        let Some(session) = self.sessions[to].as_mut() else {
            return;
        };
        let before = session.to_bytes();
        match session.decrypt(&wire, self.now) {
            Ok(_) => panic!("a forged envelope decrypted"),
            Err(_) => assert!(
                *before == *session.to_bytes(),
                "a failed decryption changed the session"
            ),
        }
    }

    fn display(&mut self, side: usize, pick: usize) {
        let ids: Vec<MessageId> = self.convs[side].messages().iter().map(|r| r.id).collect();
        let Some(&id) = ids.get(pick % ids.len().max(1)) else {
            return;
        };
        let Ok(shown) = self.convs[side].display(id, self.now) else {
            return;
        };
        let sent = self
            .texts
            .get(&id)
            .expect("a displayed message nobody composed");
        if let Some(body) = &shown.body {
            assert_eq!(
                body.as_str(),
                sent.body,
                "a displayed body differs from the sent"
            );
        }
        assert!(
            !self.unsent_by_contact[side].contains(&id),
            "a message displayed after its unsend arrived"
        );
        if sent.view_once && sent.from != side {
            assert!(
                self.convs[side].message(&id).is_none(),
                "a view-once message survived its display"
            );
        }
        self.apply(side, shown.effects);
    }
}

/// Two clients through a whole conversation, scripted by `data`: the first eight bytes seed
/// the RNG, then each pair of bytes is one operation (compose, timer change, deliver,
/// duplicate, drop, reorder, unsend, burn, block, display, tick, advance time, forge).
/// Checks that every message is shown at most once, only to its recipient, with the body its
/// sender wrote, never after its unsend arrived, and that no forged envelope is ever accepted.
pub fn interaction(data: &[u8]) {
    interaction_shown(data);
}

/// [`interaction`], returning how many messages were shown, on both sides together.
pub fn interaction_shown(data: &[u8]) -> usize {
    let (seed, script) = data.split_at(data.len().min(8));
    let mut seed_bytes = [0u8; 8];
    seed_bytes[..seed.len()].copy_from_slice(seed);
    let mut w = World::new(u64::from_le_bytes(seed_bytes));
    // Bounded so that one input stays fast.
    for (step, op) in script.chunks(2).take(512).enumerate() {
        let code = op[0];
        let arg = op.get(1).copied().unwrap_or(0);
        let side = usize::from(code & 1);
        let pick = usize::from(arg);
        let n = w.net.len();
        match (code >> 1) % 14 {
            0 | 1 => w.compose(side, arg & 1 == 1, step as u8),
            2 => {
                let timer = TIMERS[pick % TIMERS.len()];
                if let Ok(effects) = w.convs[side].set_timer(timer, w.now) {
                    w.apply(side, effects);
                }
            }
            3..=5 if n > 0 => {
                let packet = w.net.remove(pick % n);
                w.deliver(packet);
            }
            6 if n > 0 => {
                let copy = w.net[pick % n].clone();
                w.net.push(copy);
            }
            7 if n > 0 => {
                w.net.remove(pick % n);
            }
            8 if n > 1 => {
                let (a, b) = (pick % n, (pick / n) % n);
                w.net.swap(a, b);
            }
            9 => {
                let own = &w.own[side];
                if let Some(&id) = own.get(pick % own.len().max(1)) {
                    if let Ok(effects) = w.convs[side].unsend(id, w.now) {
                        w.apply(side, effects);
                    }
                }
            }
            10 => match arg % 8 {
                0 => {
                    if let Ok(effects) = w.convs[side].burn() {
                        w.apply(side, effects);
                    }
                }
                1 => {
                    if let Ok(effects) = w.convs[side].block() {
                        w.apply(side, effects);
                    }
                }
                _ => w.display(side, pick),
            },
            11 => {
                let effects = w.convs[side].tick(w.now);
                w.apply(side, effects);
            }
            12 => w.now += ADVANCES[pick % ADVANCES.len()],
            13 => w.forge(side, pick, arg, op),
            _ => {}
        }
        for s in 0..2 {
            if w.convs[s].status() == Status::Burned {
                assert!(
                    w.convs[s].messages().is_empty(),
                    "a burned conversation kept messages"
                );
            }
        }
    }
    w.shown[0].len() + w.shown[1].len()
}

/// Valid inputs for every target: real frames, a real invitation, real first messages and
/// ratchet messages, encoded payloads, records and metadata, stored secrets and a few
/// interaction scripts. Written to `fuzz/corpus/<target>/seed-<n>` by the ignored test
/// `write_seed_corpus`; the replay test also runs them directly.
pub fn seed_corpus() -> Vec<(&'static str, Vec<Vec<u8>>)> {
    let fx = fixture();
    let mut rng = ChaCha20Rng::seed_from_u64(42);

    let mut frames = Vec::new();
    let requests = [
        Request::Ping,
        Request::Send {
            sender_id: SenderId::from_bytes([3; 16]),
            send_cap: SendCapability::from_bytes([4; 32]),
            ttl_secs: 3600,
            new_send_cap: Some(SendCapability::from_bytes([5; 32])),
            body: b"sealed".to_vec(),
        },
        Request::Ack {
            recipient_id: RecipientId::from_bytes([6; 16]),
            envelope_id: EnvelopeId::from_bytes([7; 16]),
        },
        Request::Subscribe {
            recipient_id: RecipientId::from_bytes([6; 16]),
            signature: [8; 64],
        },
        Request::AckMany {
            recipient_id: RecipientId::from_bytes([6; 16]),
            envelope_ids: vec![
                EnvelopeId::from_bytes([7; 16]),
                EnvelopeId::from_bytes([9; 16]),
            ],
        },
    ];
    let mut stream = vec![3u8];
    for (i, r) in requests.iter().enumerate() {
        let mut out = vec![64u8];
        r.encode_frame(i as u32, &mut out);
        stream.extend_from_slice(&out[1..]);
        frames.push(out);
    }
    frames.push(stream);
    let server = [
        ServerFrame::Response {
            request_id: 1,
            result: Ok(Reply::Created {
                recipient_id: RecipientId::from_bytes([1; 16]),
                sender_id: SenderId::from_bytes([2; 16]),
            }),
        },
        ServerFrame::Response {
            request_id: 2,
            result: Err(ErrorCode::Malformed),
        },
        ServerFrame::Push(Push::Envelope {
            recipient_id: RecipientId::from_bytes([1; 16]),
            envelope_id: EnvelopeId::from_bytes([3; 16]),
            expires_at: T0,
            body: vec![0xaa; 40],
        }),
        ServerFrame::Push(Push::Envelopes {
            recipient_id: RecipientId::from_bytes([1; 16]),
            envelopes: vec![
                PushedEnvelope {
                    envelope_id: EnvelopeId::from_bytes([3; 16]),
                    expires_at: T0,
                    body: vec![0xaa; 40],
                },
                PushedEnvelope {
                    envelope_id: EnvelopeId::from_bytes([4; 16]),
                    expires_at: T0 + 1,
                    body: vec![0xbb; 8],
                },
            ],
        }),
        ServerFrame::Push(Push::QueueGone {
            recipient_id: RecipientId::from_bytes([1; 16]),
        }),
    ];
    for f in &server {
        let mut out = vec![255u8];
        f.encode_frame(&mut out);
        frames.push(out);
    }

    let invitations = vec![
        fx.invitation_token.clone().into_bytes(),
        format!("  {}\n", fx.invitation_token).into_bytes(),
    ];

    let first: Vec<Vec<u8>> = fx.first_messages.iter().map(|(w, _)| w.clone()).collect();

    let pending: Vec<&[u8]> = fx.pending.iter().map(|(w, _)| w.as_slice()).collect();
    let ratchet = vec![
        [&[0u8][..], &join_messages(&pending)].concat(),
        [
            &[1u8][..],
            &join_messages(&[pending[2], pending[0], pending[0], pending[3]]),
        ]
        .concat(),
    ];

    let mut codec = Vec::new();
    let mut conv = Conversation::new(RELAY_TTL, &mut rand::rngs::OsRng).expect("ttl");
    let _ = conv.set_timer(Some(3600), T0);
    let (id, effects) = conv
        .compose_text("seed", false, T0, &mut rng)
        .expect("compose");
    codec.push(conv.message(&id).expect("record").encode());
    for e in effects {
        if let Effect::SendPayload(p) = e {
            codec.push(p.encode().to_vec());
        }
    }
    let _ = conv.unsend(id, T0 + 1);
    codec.push(conv.meta().encode());
    codec.push(introduce().encode().to_vec());
    codec.push(Payload::Burn.encode().to_vec());

    let stored = vec![
        fx.inviter_session.clone(),
        fx.inviter.to_bytes().to_vec(),
        fx.joiner_public.to_bytes().to_vec(),
        fx.secrets_bytes.clone(),
    ];

    let mut scripts = Vec::new();
    for seed in 0..4u64 {
        let mut s = seed.to_le_bytes().to_vec();
        let mut r = ChaCha20Rng::seed_from_u64(seed);
        let mut bytes = vec![0u8; 160];
        rand_chacha::rand_core::RngCore::fill_bytes(&mut r, &mut bytes);
        s.extend_from_slice(&bytes);
        scripts.push(s);
    }
    // A plain exchange: compose on both sides, deliver everything, display, unsend, burn.
    scripts.push(
        [
            &[0u8; 8][..],
            &[
                0, 0, 1, 0, 6, 0, 6, 0, 20, 2, 21, 2, 18, 0, 19, 0, 20, 0, 26, 0,
            ],
        ]
        .concat(),
    );

    vec![
        ("frame", frames),
        ("invitation", invitations),
        ("first_message", first),
        ("ratchet", ratchet),
        ("conversation_codec", codec),
        ("stored_secrets", stored),
        ("interaction", scripts),
    ]
}
