//! A relay that stops answering holds up only what goes to it: while a message to Bob hangs in
//! a call to Bob's relay, a message from Carol (on another relay) still arrives and is shown,
//! and once Bob's relay answers again the held-up message goes out.
//!
//! Bob's relay sits behind a UDP forwarder on loopback that the test can pause: paused, it
//! drops every datagram, as a relay that hangs would leave them unanswered.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hush_client::net::RetryPolicy;
use hush_client::store::KeySource;
use hush_client::{Client, ClientEvent, ClientOptions};
use hush_protocol::RelayAddress;
use hush_tests::{TestRelay, DEADLINE};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, Notify};

/// A UDP forwarder to one relay, with a pause switch.
struct Forwarder {
    addr: SocketAddr,
    paused: Arc<AtomicBool>,
    /// Datagrams from clients dropped while paused.
    dropped: Arc<AtomicU64>,
    dropped_one: Arc<Notify>,
}

impl Forwarder {
    /// Forwards datagrams between clients and `relay`, one upstream socket per client.
    async fn start(relay: SocketAddr) -> Forwarder {
        let front = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let addr = front.local_addr().unwrap();
        let paused = Arc::new(AtomicBool::new(false));
        let dropped = Arc::new(AtomicU64::new(0));
        let dropped_one = Arc::new(Notify::new());
        let (f, p, d, n) = (front, paused.clone(), dropped.clone(), dropped_one.clone());
        tokio::spawn(async move {
            let mut upstreams: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
            let mut buf = vec![0u8; 65_536];
            while let Ok((len, client)) = f.recv_from(&mut buf).await {
                if p.load(Ordering::SeqCst) {
                    d.fetch_add(1, Ordering::SeqCst);
                    n.notify_waiters();
                    continue;
                }
                let up = match upstreams.get(&client) {
                    Some(up) => up.clone(),
                    None => {
                        let up = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
                        up.connect(relay).await.unwrap();
                        tokio::spawn(back(up.clone(), f.clone(), client, p.clone()));
                        upstreams.insert(client, up.clone());
                        up
                    }
                };
                let _ = up.send(&buf[..len]).await;
            }
        });
        Forwarder {
            addr,
            paused,
            dropped,
            dropped_one,
        }
    }

    /// `relay` as reached through this forwarder.
    fn address_of(&self, relay: &RelayAddress) -> RelayAddress {
        let mut through = relay.clone();
        through.port = self.addr.port();
        through
    }

    fn pause(&self, paused: bool) {
        self.paused.store(paused, Ordering::SeqCst);
    }

    /// Waits until a client's datagram has been dropped since the pause.
    async fn until_dropped(&self) {
        let wait = async {
            loop {
                let notified = self.dropped_one.notified();
                if self.dropped.load(Ordering::SeqCst) > 0 {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(DEADLINE, wait)
            .await
            .expect("nothing was sent to the paused relay");
    }
}

/// Carries the relay's datagrams back to `client`, unless paused.
async fn back(up: Arc<UdpSocket>, front: Arc<UdpSocket>, client: SocketAddr, p: Arc<AtomicBool>) {
    let mut buf = vec![0u8; 65_536];
    while let Ok(len) = up.recv(&mut buf).await {
        if !p.load(Ordering::SeqCst) {
            let _ = front.send_to(&buf[..len], client).await;
        }
    }
}

async fn init(dir: &std::path::Path, name: &str, relay: RelayAddress) -> Client {
    // Patient enough that a hanging relay is still being waited for when the test looks.
    let retry = RetryPolicy::new(2, Duration::from_secs(30))
        .with_delays(Duration::from_millis(50), Duration::from_millis(100));
    Client::init_with(
        &dir.join(name),
        name,
        relay,
        KeySource::KeyFile,
        ClientOptions::with_retry(retry),
    )
    .await
    .unwrap()
}

/// Receives on `client` until an event matches, failing at the deadline.
async fn until(client: &Client, want: impl Fn(&ClientEvent) -> bool) {
    let end = tokio::time::Instant::now() + DEADLINE;
    loop {
        let left = end.saturating_duration_since(tokio::time::Instant::now());
        assert!(!left.is_zero(), "deadline passed");
        let events = client.receive(None, Some(left)).await.unwrap();
        if events.iter().any(&want) {
            return;
        }
    }
}

/// `inviter` invites `invitee`, who accepts: they call each other by these names.
async fn introduce(inviter: &Client, as_name: &str, invitee: &Client, inviter_name: &str) {
    let token = inviter.invite(as_name).await.unwrap();
    invitee.accept(&token, inviter_name).await.unwrap();
    until(
        inviter,
        |e| matches!(e, ClientEvent::ContactJoined { contact } if contact == as_name),
    )
    .await;
}

/// The text of the next message from `from` on the event stream, failing at the deadline.
async fn next_text_from(events: &mut mpsc::UnboundedReceiver<ClientEvent>, from: &str) -> String {
    let wait = async {
        loop {
            match events.recv().await.expect("the event stream ended") {
                ClientEvent::Message { contact, message } if contact == from => {
                    return message.body.expect("a text").as_str().to_owned();
                }
                _ => {}
            }
        }
    };
    tokio::time::timeout(DEADLINE, wait)
        .await
        .expect("no message arrived before the deadline")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_relay_does_not_hold_up_messages_from_other_contacts() {
    let (ra, rb) = (TestRelay::start(|_| {}), TestRelay::start(|_| {}));
    let forwarder = Forwarder::start(rb.handle.local_addr()).await;
    let dir = tempfile::tempdir().unwrap();
    let alice = Arc::new(init(dir.path(), "alice", ra.handle.address().clone()).await);
    let bob = init(dir.path(), "bob", forwarder.address_of(rb.handle.address())).await;
    let carol = init(dir.path(), "carol", ra.handle.address().clone()).await;
    introduce(&alice, "bob", &bob, "alice").await;
    introduce(&alice, "carol", &carol, "alice").await;
    // Alice's connection to Bob's relay is up.
    alice.send_text("bob", "first", None, false).await.unwrap();
    until(&bob, |e| matches!(e, ClientEvent::Message { .. })).await;
    let mut events = alice.subscribe_events();

    // Bob's relay stops answering while Alice sends to Bob.
    forwarder.pause(true);
    let send = tokio::spawn({
        let alice = alice.clone();
        async move { alice.send_text("bob", "held up", None, false).await }
    });
    forwarder.until_dropped().await;

    // Carol's message still arrives and is shown, while the send to Bob still hangs.
    carol
        .send_text("alice", "from carol", None, false)
        .await
        .unwrap();
    assert_eq!(next_text_from(&mut events, "carol").await, "from carol");
    assert!(!send.is_finished(), "the send to Bob did not hang");
    let history = alice.history("carol").await.unwrap();
    assert_eq!(history.len(), 1);

    // Bob's relay answers again: the held-up message goes out and arrives.
    forwarder.pause(false);
    let sent = tokio::time::timeout(DEADLINE, send)
        .await
        .expect("the send never finished")
        .unwrap()
        .unwrap();
    assert!(sent.outgoing);
    let shown = alice.history("bob").await.unwrap();
    assert!(shown.iter().any(|m| m.id == sent.id));
    until(
        &bob,
        |e| matches!(e, ClientEvent::Message { message, .. } if message.id == sent.id),
    )
    .await;
}
