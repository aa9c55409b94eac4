//! Every record has an owner and an end, checked by the forensic attacker on the home:
//! an invitation past its signed expiry is refused by the joiner and deleted by the inviter
//! (name, secrets and queue); an unfinished upload's record (file key, capabilities, source
//! path) goes when its contact is burned and when its blob expires.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use hush_client::{ClientError, Clock, TransferProgress};
use hush_tests::attacker::{Markers, Seizure};
use hush_tests::clients::*;

fn seize(home: &Path) -> Seizure {
    let seizure = Seizure::home(home);
    seizure.assert_no_orphan_keys();
    seizure
}

/// Writes a file of several chunks.
fn make_file(dir: &Path) -> PathBuf {
    let path = dir.join("holiday-plans-7f3a.bin");
    let data: Vec<u8> = (0..40 * 65_520usize)
        .map(|i| (i * 31 % 251) as u8)
        .collect();
    std::fs::write(&path, data).unwrap();
    std::fs::canonicalize(path).unwrap()
}

/// Runs `op` until its progress passes `at` bytes, then drops it mid-transfer.
async fn cut_at<F, Fut>(at: u64, op: F)
where
    F: FnOnce(&'static (dyn Fn(TransferProgress) + Send + Sync)) -> Fut,
    Fut: std::future::Future,
{
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let tx = Mutex::new(Some(tx));
    let progress: &'static (dyn Fn(TransferProgress) + Send + Sync) =
        Box::leak(Box::new(move |p: TransferProgress| {
            if p.done >= at {
                if let Some(tx) = tx.lock().unwrap().take() {
                    let _ = tx.send(());
                }
            }
        }));
    tokio::select! {
        _ = op(progress) => panic!("the transfer finished before it was cut"),
        _ = rx => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_invitation_is_refused_and_its_name_secrets_and_queue_are_deleted() {
    let relay = relay();
    let (ha, hb, hc) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let (alice_clock, bob_clock) = (Clock::system(), Clock::system());
    let alice_home = ha.path().join("home");
    let alice = init_clocked(&alice_home, "alice", relay.address(), alice_clock.clone()).await;
    let bob = init_clocked(
        &hb.path().join("home"),
        "bob",
        relay.address(),
        bob_clock.clone(),
    )
    .await;
    let carol = init(&hc.path().join("home"), "carol", relay.address()).await;

    let token = alice
        .invite_expiring("dorothea-9c2", Duration::from_secs(3600))
        .await
        .unwrap();
    let pending = alice.pending_invitations().await;
    assert_eq!(pending.len(), 1);
    assert!(pending[0].expires_at.is_some());
    let name = Markers::new()
        .contact("dorothea-9c2")
        .seen_in(&seize(&alice_home));

    // The joiner's clock is past the signed expiry: refused, with what to do.
    bob_clock.advance(Duration::from_secs(3601));
    let err = bob.accept(&token, "alice").await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("this invitation expired on") && text.contains("ask for a new one"),
        "{text}"
    );
    assert!(bob.contacts().await.is_empty());

    // The inviter's tick deletes it, and its queue at the relay.
    alice.tick().await.unwrap();
    assert_eq!(alice.pending_invitations().await.len(), 1, "not yet due");
    alice_clock.advance(Duration::from_secs(3601));
    alice.tick().await.unwrap();
    assert!(alice.pending_invitations().await.is_empty());
    name.gone_from(&seize(&alice_home));
    // Someone whose clock is behind would accept it, but the queue is gone.
    assert!(matches!(
        carol.accept(&token, "alice").await,
        Err(ClientError::InvitationUsed)
    ));
    // The name is free again.
    alice.invite("dorothea-9c2").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unfinished_upload_is_shredded_when_its_contact_is_burned() {
    let relay = relay();
    let (alice, _bob, ha, _hb) = pair(relay.address(), relay.address()).await;
    let alice_home = ha.path().join("home");
    let src = tempfile::tempdir().unwrap();
    let path = make_file(src.path());
    cut_at(1 << 20, |progress| {
        alice.send_file("bob", &path, None, false, progress)
    })
    .await;
    let upload = Markers::new()
        .file_name(path.to_str().unwrap())
        .seen_in(&seize(&alice_home));

    alice.burn("bob").await.unwrap();
    upload.gone_from(&seize(&alice_home));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unfinished_upload_ends_when_its_blob_expires() {
    let relay = relay();
    let clock = Clock::system();
    let (alice, _bob, ha, _hb) =
        pair_clocked(relay.address(), relay.address(), clock.clone()).await;
    let alice_home = ha.path().join("home");
    let src = tempfile::tempdir().unwrap();
    let path = make_file(src.path());
    cut_at(1 << 20, |progress| {
        alice.send_file("bob", &path, None, false, progress)
    })
    .await;
    let upload = Markers::new()
        .file_name(path.to_str().unwrap())
        .seen_in(&seize(&alice_home));

    alice.tick().await.unwrap();
    let _still = Markers::new()
        .file_name(path.to_str().unwrap())
        .seen_in(&seize(&alice_home));
    // Past any blob lifetime a relay grants.
    clock.advance(Duration::from_secs(31 * 24 * 3600));
    alice.tick().await.unwrap();
    upload.gone_from(&seize(&alice_home));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_home_whose_seen_set_holds_raw_ids_opens_and_loses_them() {
    use hush_client::conversation::{ConversationMeta, META_VERSION};
    use hush_client::store::{KeySource, LocalStore, Namespace};

    let relay = relay();
    let (alice, bob, _ha, hb) = pair(relay.address(), relay.address()).await;
    let bob_home = hb.path().join("home");
    alice
        .send_text("bob", "an old one", None, false)
        .await
        .unwrap();
    let id = message_from(&bob, "alice").await.id;
    bob.close().await;

    // Write Bob's metadata back as a home of the previous version would hold it: raw ids.
    let store = LocalStore::open(&bob_home, KeySource::KeyFile).unwrap();
    // Bob has one contact, so one conversation meta record.
    let mut metas = store.list(Namespace::ConversationMeta, None).unwrap();
    assert_eq!(metas.len(), 1);
    let (key, bytes) = metas.remove(0);
    let meta = ConversationMeta::decode(&bytes).unwrap();
    let entry = *meta.seen_entry(&id).expect("the id is seen");
    let mut w = hush_protocol::codec::Writer::with_capacity(64);
    w.u8(1);
    w.u8(0);
    w.u64(meta.relay_ttl);
    w.opt_u64(meta.timer);
    w.u64(meta.timer_set_at);
    w.u32(1);
    w.raw(id.as_bytes());
    w.u64(entry.until);
    w.bool(entry.unsent);
    store.put(&key, &w.finish()).unwrap();
    drop(store);

    let bob = reopen(&bob_home).await;
    assert_eq!(bob.history("alice").await.unwrap().len(), 1);
    bob.close().await;
    let store = LocalStore::open(&bob_home, KeySource::KeyFile).unwrap();
    let bytes = store.get(&key).unwrap().unwrap();
    assert_eq!(bytes[0], META_VERSION, "rewritten on open");
    assert!(!bytes.windows(16).any(|w| w == id.as_bytes()));
    let meta = ConversationMeta::decode(&bytes).unwrap();
    assert_eq!(meta.seen_entry(&id), Some(&entry));
}
