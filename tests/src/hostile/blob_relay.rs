//! A relay that lies about blobs: it speaks only the blob requests, keeps blobs in memory,
//! records every `BlobWrite` it receives (accepted or not), and lets the test decide what each
//! `BlobStatus` reports as `committed` and which writes fail, running the test's code at those
//! moments (to change a file between, or during, an upload's attempts).
//!
//! It takes the TLS identity of a real relay's data directory, so a client that knows that
//! relay's address (its fingerprint) talks to it unawares: stop the real relay, and start this
//! one on the same address.
//!
//! What it does not do: queues, subscriptions or anything signed (those are answered
//! `Malformed`), or enforce capabilities and limits: it accepts a write at any offset up to
//! what it holds, overwriting, as a relay that "forgot" what it acknowledged would.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use hush_protocol::{BlobId, ErrorCode, FrameDecoder, Reply, Request, ServerFrame};

/// A write the relay received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    /// The blob.
    pub blob: BlobId,
    /// Where it was to go.
    pub offset: u64,
    /// Its bytes.
    pub data: Vec<u8>,
}

/// What the test decides. `write` sees the number of the write (from 0, over all blobs) and
/// its offset, and may fail it with a code (the relay then keeps nothing of it); `status` sees
/// the number of the status request and the committed length the relay holds, and returns the
/// length to report.
pub struct Script {
    /// Before each write is answered.
    pub write: Box<dyn Fn(usize, u64) -> Option<ErrorCode> + Send + Sync>,
    /// Before each status is answered.
    pub status: Box<dyn Fn(usize, u64) -> u64 + Send + Sync>,
}

impl Default for Script {
    fn default() -> Self {
        Script {
            write: Box::new(|_, _| None),
            status: Box::new(|_, committed| committed),
        }
    }
}

struct Blob {
    total: u64,
    data: Vec<u8>,
}

#[derive(Default)]
struct State {
    blobs: HashMap<BlobId, Blob>,
    received: Vec<Received>,
    statuses: usize,
    deleted: Vec<BlobId>,
}

/// The lying relay, serving until dropped.
pub struct LyingBlobRelay {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

/// Far in the future, for `expires_at`.
const EXPIRES_AT: u64 = 4_000_000_000;

impl LyingBlobRelay {
    /// Serves on `listen` with the identity kept in the real relay's `data_dir`.
    pub fn start(data_dir: &Path, listen: SocketAddr, script: Script) -> LyingBlobRelay {
        let identity = hush_server::tls::load_or_generate(data_dir, &["localhost".into()])
            .expect("the relay's identity");
        let crypto = hush_server::tls::server_crypto(identity).expect("tls config");
        let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(crypto).expect("quic tls");
        let config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
        let endpoint = quinn::Endpoint::server(config, listen).expect("bind the lying relay");
        let addr = endpoint.local_addr().expect("address");
        let state: Arc<Mutex<State>> = Arc::default();
        let (shared, script) = (state.clone(), Arc::new(script));
        let task = tokio::spawn(async move {
            while let Some(incoming) = endpoint.accept().await {
                let (state, script) = (shared.clone(), script.clone());
                tokio::spawn(async move {
                    if let Ok(conn) = incoming.await {
                        serve(conn, state, script).await;
                    }
                });
            }
        });
        LyingBlobRelay { addr, state, task }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every write received so far, in order.
    pub fn received(&self) -> Vec<Received> {
        self.state().received.clone()
    }

    /// How many status requests it answered.
    pub fn statuses(&self) -> usize {
        self.state().statuses
    }

    /// The blobs deleted so far.
    pub fn deleted(&self) -> Vec<BlobId> {
        self.state().deleted.clone()
    }

    /// The relay-visible size of every blob created, by id.
    pub fn sizes(&self) -> HashMap<BlobId, u64> {
        self.state()
            .blobs
            .iter()
            .map(|(id, b)| (*id, b.total))
            .collect()
    }
}

impl Drop for LyingBlobRelay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Pairs of writes that put different bytes at the same offset of the same blob: under a
/// chunked AEAD whose nonce is the position, two ciphertexts under one (key, nonce).
pub fn conflicting_writes(writes: &[Received]) -> Vec<(Received, Received)> {
    let mut first: HashMap<(BlobId, u64), &Received> = HashMap::new();
    let mut out = Vec::new();
    for w in writes {
        match first.get(&(w.blob, w.offset)) {
            Some(f) if f.data != w.data => out.push(((*f).clone(), w.clone())),
            Some(_) => {}
            None => {
                first.insert((w.blob, w.offset), w);
            }
        }
    }
    out
}

async fn serve(conn: quinn::Connection, state: Arc<Mutex<State>>, script: Arc<Script>) {
    let Ok((mut send, mut recv)) = conn.accept_bi().await else {
        return;
    };
    let mut decoder = FrameDecoder::default();
    loop {
        let Ok(Some(chunk)) = recv.read_chunk(64 * 1024, true).await else {
            return;
        };
        decoder.feed(&chunk.bytes);
        let mut out = Vec::new();
        while let Ok(Some(body)) = decoder.pop() {
            let Ok((request_id, req)) = Request::decode_frame(body) else {
                return;
            };
            let result = answer(&state, &script, req);
            ServerFrame::Response { request_id, result }.encode_frame(&mut out);
        }
        if send.write_all(&out).await.is_err() {
            return;
        }
    }
}

fn answer(state: &Mutex<State>, script: &Script, req: Request) -> Result<Reply, ErrorCode> {
    let mut st = state.lock().unwrap_or_else(PoisonError::into_inner);
    match req {
        Request::BlobCreate { total_len, .. } => {
            let mut id = [0u8; 16];
            rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut id);
            let blob_id = BlobId::from_bytes(id);
            let blob = Blob {
                total: total_len,
                data: Vec::new(),
            };
            st.blobs.insert(blob_id, blob);
            Ok(Reply::BlobCreated {
                blob_id,
                expires_at: EXPIRES_AT,
            })
        }
        Request::BlobWrite {
            blob_id,
            offset,
            data,
            ..
        } => {
            let n = st.received.len();
            st.received.push(Received {
                blob: blob_id,
                offset,
                data: data.clone(),
            });
            if let Some(code) = (script.write)(n, offset) {
                return Err(code);
            }
            let blob = st.blobs.get_mut(&blob_id).ok_or(ErrorCode::NoBlob)?;
            let at = usize::try_from(offset).map_err(|_| ErrorCode::BlobOffset)?;
            if at > blob.data.len() || offset + data.len() as u64 > blob.total {
                return Err(ErrorCode::BlobOffset);
            }
            blob.data.truncate(at);
            blob.data.extend_from_slice(&data);
            Ok(Reply::BlobWritten {
                committed: blob.data.len() as u64,
            })
        }
        Request::BlobStatus { blob_id, .. } => {
            let n = st.statuses;
            st.statuses += 1;
            let blob = st.blobs.get(&blob_id).ok_or(ErrorCode::NoBlob)?;
            let (total_len, held) = (blob.total, blob.data.len() as u64);
            // The test's code runs without the lock: it may take its time.
            drop(st);
            let committed = (script.status)(n, held).min(held);
            Ok(Reply::BlobStatus {
                total_len,
                committed,
                expires_at: EXPIRES_AT,
            })
        }
        Request::BlobDelete { blob_id, .. } => {
            st.blobs.remove(&blob_id);
            st.deleted.push(blob_id);
            Ok(Reply::Done)
        }
        _ => Err(ErrorCode::Malformed),
    }
}
