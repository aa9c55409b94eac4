//! Who may create on a relay: an open relay, a relay closed by a create token (with it, without
//! it, with a wrong or revoked one), a partner sending into a closed relay's queue without the
//! token, and older clients (no `Hello`) against a closed relay. Real relays and real clients
//! over loopback QUIC.

use std::sync::Arc;

use hush_client::crypto::{Invitation, INVITATION_PREFIX};
use hush_client::net::RelayCallError;
use hush_client::store::KeySource;
use hush_client::{Client, ClientError, ClientEvent};
use hush_protocol::{BlobCapability, CreateToken, ErrorCode, HomeRelay, RelayAddress};
use hush_server::config::RelayConfig;
use hush_server::store::memory::MemoryStore;
use hush_tests::clients::{message_from, options, relay, reopen, until, TestRelay};
use hush_tests::{cap, key};

const TOKEN: &str = "staff-token-0123456789";
const WRONG: &str = "guess-token-0123456789";

fn token(s: &str) -> CreateToken {
    s.parse().unwrap()
}

/// A relay on the wall clock, configured by `tune`.
fn relay_with(tune: impl FnOnce(&mut RelayConfig)) -> TestRelay {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    TestRelay::wall_clock_on(MemoryStore::new(), dir, tune)
}

/// A relay that requires [`TOKEN`].
fn closed_relay() -> TestRelay {
    relay_with(|c| c.create_token = Some(token(TOKEN)))
}

fn home(address: RelayAddress, t: Option<&str>) -> HomeRelay {
    HomeRelay {
        address,
        token: t.map(token),
    }
}

async fn init(dir: &tempfile::TempDir, name: &str, relay: HomeRelay) -> Client {
    Client::init_with(
        &dir.path().join("home"),
        name,
        relay,
        KeySource::KeyFile,
        options(),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn an_open_relay_lets_anyone_create_with_or_without_hello() {
    let relay = relay();
    let old = relay.client().await;
    // A client from before Hello creates a queue and a blob as it always did.
    old.create_queue(&key(), &cap()).await.unwrap();
    let (w, r) = (
        BlobCapability::from_bytes([1; 32]),
        BlobCapability::from_bytes([2; 32]),
    );
    old.blob_create(&w, &r, 100, 0).await.unwrap();
    let new = relay.client().await;
    let info = new
        .hello(None)
        .await
        .unwrap()
        .expect("a current relay answers Hello");
    assert!(info.may_create);
    new.create_queue(&key(), &cap()).await.unwrap();
    // A token presented to an open relay is not needed, and not refused.
    let with = relay.client().await;
    assert!(
        with.hello(Some(&token(WRONG)))
            .await
            .unwrap()
            .unwrap()
            .may_create
    );
}

#[tokio::test]
async fn a_closed_relay_creates_only_for_its_token() {
    let relay = closed_relay();
    let (d1, d2, d3) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let staff = init(&d1, "staff", home(relay.address(), Some(TOKEN))).await;
    staff.invite("partner").await.unwrap();
    assert!(staff.relay_info().await.unwrap().unwrap().may_create);

    let none = init(&d2, "none", home(relay.address(), None)).await;
    let err = none.invite("x").await.unwrap_err();
    assert!(matches!(err, ClientError::TokenRequired { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains(&relay.address().to_string()), "{text}");
    assert!(
        text.contains("operator") && text.contains("token"),
        "{text}"
    );
    assert!(none.pending_invitations().await.is_empty());

    let wrong = init(&d3, "wrong", home(relay.address(), Some(WRONG))).await;
    let err = wrong.invite("x").await.unwrap_err();
    assert!(matches!(err, ClientError::TokenRefused { .. }), "{err:?}");
    assert!(err.to_string().contains("wrong or revoked"), "{err}");
    assert!(!err.to_string().contains(WRONG), "{err}");
}

#[tokio::test]
async fn a_closed_relay_refuses_blobs_without_the_token_at_the_protocol_level() {
    let relay = closed_relay();
    let (w, r) = (
        BlobCapability::from_bytes([1; 32]),
        BlobCapability::from_bytes([2; 32]),
    );
    let c = relay.client().await;
    // Without Hello: the code an older client knows.
    assert_eq!(
        c.blob_create(&w, &r, 100, 0).await,
        Err(RelayCallError::Relay(ErrorCode::Auth))
    );
    assert_eq!(
        c.create_queue(&key(), &cap()).await.map(drop),
        Err(RelayCallError::Relay(ErrorCode::Auth))
    );
    // Hello without a token: the relay says creating is closed, and why.
    let info = c.hello(None).await.unwrap().unwrap();
    assert!(!info.may_create);
    assert_eq!(
        c.blob_create(&w, &r, 100, 0).await,
        Err(RelayCallError::Relay(ErrorCode::TokenRequired))
    );
    // A wrong token is refused at once, and leaves the connection without one.
    assert_eq!(
        c.hello(Some(&token(WRONG))).await,
        Err(RelayCallError::Relay(ErrorCode::Forbidden))
    );
    assert_eq!(
        c.create_queue(&key(), &cap()).await.map(drop),
        Err(RelayCallError::Relay(ErrorCode::TokenRequired))
    );
    // The right one opens creating on this connection.
    assert!(
        c.hello(Some(&token(TOKEN)))
            .await
            .unwrap()
            .unwrap()
            .may_create
    );
    c.create_queue(&key(), &cap()).await.unwrap();
    c.blob_create(&w, &r, 100, 0).await.unwrap();
}

#[tokio::test]
async fn a_revoked_token_stops_working_once_the_file_is_reloaded() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tokens");
    std::fs::write(&file, format!("{TOKEN}\n{WRONG}\n")).unwrap();
    let path = file.clone();
    let relay = relay_with(move |c| c.create_tokens_file = Some(path));
    let d = tempfile::tempdir().unwrap();
    let staff = init(&d, "staff", home(relay.address(), Some(TOKEN))).await;
    staff.invite("first").await.unwrap();
    // The operator deletes the token's line and reloads (what SIGHUP does).
    std::fs::write(&file, format!("{WRONG}\n")).unwrap();
    assert_eq!(relay.handle.access().reload().unwrap(), 1);
    // Refused on the connection that presented it before the reload...
    let err = staff.invite("second").await.unwrap_err();
    assert!(matches!(err, ClientError::TokenRefused { .. }), "{err:?}");
    // ...and on a new one.
    staff.close().await;
    let staff = reopen(&d.path().join("home")).await;
    let err = staff.invite("third").await.unwrap_err();
    assert!(matches!(err, ClientError::TokenRefused { .. }), "{err:?}");
    // The token still in the file works.
    let d2 = tempfile::tempdir().unwrap();
    let other = init(&d2, "other", home(relay.address(), Some(WRONG))).await;
    other.invite("fine").await.unwrap();
    // A new token for the same home: refused by the relay, nothing changes; accepted, stored.
    let refused = staff
        .set_create_token(&home(relay.address(), Some(TOKEN)))
        .await;
    assert!(
        matches!(refused, Err(ClientError::TokenRefused { .. })),
        "{refused:?}"
    );
    staff
        .set_create_token(&home(relay.address(), Some(WRONG)))
        .await
        .unwrap();
    staff.close().await;
    let staff = reopen(&d.path().join("home")).await;
    staff.invite("after rotation").await.unwrap();
}

#[tokio::test]
async fn a_partner_sends_into_a_closed_relays_queue_without_its_token() {
    let closed = closed_relay();
    let open = relay();
    let (ds, dp) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let own = home(closed.address(), Some(TOKEN));
    let staff = init(&ds, "staff", own.clone()).await;
    // The partner holds no token for the staff's relay: none was ever given to it.
    let partner = init(&dp, "partner", home(open.address(), None)).await;
    let invitation = staff.invite("partner").await.unwrap();

    // The invitation names the relay without its token. The same search finds the token in
    // the staff's own address, and the relay's address in the invitation's bytes, so its
    // finding no token there means something.
    let parsed = Invitation::parse(&invitation).unwrap();
    assert_eq!(parsed.relay(), &closed.address());
    let raw = base64_url_decode(invitation.trim_start_matches(INVITATION_PREFIX));
    assert!(holds(own.to_uri().as_bytes(), TOKEN));
    assert!(holds(&raw, &closed.address().to_string()));
    assert!(!holds(&raw, TOKEN));
    assert!(!holds(invitation.as_bytes(), TOKEN));

    partner.accept(&invitation, "staff").await.unwrap();
    until(&staff, |e| matches!(e, ClientEvent::ContactJoined { .. })).await;
    partner
        .send_text("staff", "into the closed relay", None, false)
        .await
        .unwrap();
    let got = message_from(&staff, "partner").await;
    assert_eq!(got.body.unwrap().as_str(), "into the closed relay");
    staff
        .send_text("partner", "and back", None, false)
        .await
        .unwrap();
    let got = message_from(&partner, "staff").await;
    assert_eq!(got.body.unwrap().as_str(), "and back");
}

/// Whether `needle` occurs in `hay`.
fn holds(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// Decodes unpadded base64url, as invitations are written.
fn base64_url_decode(s: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = Vec::new();
    for c in s.bytes() {
        let v = ALPHABET.iter().position(|&a| a == c).unwrap() as u32;
        bits = (bits << 6) | v;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    out
}
