//! The monitoring listener (`--metrics ADDR`): a minimal HTTP/1.1 responder on its own TCP
//! port, apart from the relay's QUIC port.
//!
//! `GET /metrics` answers the relay's metrics as OpenMetrics text (`metrics.rs`); `GET /healthz`
//! answers 200 when the storage accepts writes and 503 when it does not (`health.rs`); anything
//! else is 404. Each connection gets one answer and is closed. A request head must arrive
//! within [`REQUEST_TIMEOUT`] and fit in [`MAX_HEAD`] bytes, and at most
//! [`MAX_MONITOR_CONNECTIONS`] are served at once, so a slow or hostile scraper costs little.
//! Bind it to loopback or a private network: it has no authentication.
//!
//! What it does not do: speak HTTP beyond that (no keep-alive, no bodies, no TLS), or
//! compute the metrics.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::metrics::{disk_free, Holdings};
use crate::ops::Shared;
use crate::shutdown::Shutdown;
use crate::store::QueueStore;

/// Longest a request head may take to arrive, and a response to be written.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest request head read.
pub(crate) const MAX_HEAD: usize = 8 * 1024;
/// Most monitoring connections served at once; more wait to be accepted.
pub(crate) const MAX_MONITOR_CONNECTIONS: usize = 16;

/// Binds the monitoring listener on `addr`. Must be called inside a tokio runtime.
pub(crate) fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    TcpListener::from_std(listener)
}

/// Serves monitoring requests until the relay stops.
pub(crate) async fn serve<S: QueueStore>(
    listener: TcpListener,
    shared: Arc<Shared<S>>,
    mut stop: Shutdown,
) {
    let slots = Arc::new(Semaphore::new(MAX_MONITOR_CONNECTIONS));
    let mut tasks = JoinSet::new();
    loop {
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let accepted = tokio::select! {
            _ = stop.stopped() => break,
            a = listener.accept() => a,
        };
        while tasks.try_join_next().is_some() {}
        let Ok((stream, _)) = accepted else { continue };
        let shared = Arc::clone(&shared);
        tasks.spawn(async move {
            let _ = tokio::time::timeout(REQUEST_TIMEOUT, answer(stream, &shared)).await;
            drop(slot);
        });
    }
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
}

/// Reads one request head and writes its answer.
async fn answer<S: QueueStore>(mut stream: TcpStream, shared: &Shared<S>) {
    let Some(head) = read_head(&mut stream).await else {
        let _ = respond(&mut stream, 400, "bad request\n", TEXT).await;
        return;
    };
    let (status, body, kind) = match request_target(&head) {
        Some("/metrics") => (200, shared.metrics.encode(&holdings(shared)), OPENMETRICS),
        Some("/healthz") => health(shared).await,
        _ => (404, "not found\n".to_owned(), TEXT),
    };
    let _ = respond(&mut stream, status, &body, kind).await;
}

const TEXT: &str = "text/plain; charset=utf-8";
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

async fn health<S: QueueStore>(shared: &Shared<S>) -> (u16, String, &'static str) {
    match crate::health::probe(&shared.config.data_dir, &shared.store).await {
        Ok(()) => (200, "ok\n".to_owned(), TEXT),
        Err(e) => {
            tracing::warn!(error = %e, "health check failed");
            (503, "storage does not accept writes\n".to_owned(), TEXT)
        }
    }
}

fn holdings<S: QueueStore>(shared: &Shared<S>) -> Holdings {
    Holdings {
        store: shared.store.stats(),
        // Blobs on JetStream are not counted (it would read every blob's meta message).
        blobs: shared.blobs.counts().map_or(0, |c| c.0),
        blob_bytes: shared.blobs.counts().map_or(0, |c| c.1),
        disk_free: disk_free(&shared.config.data_dir),
    }
}

/// Reads until the end of the request head (an empty line), or `None` if the stream ends
/// first or the head is too long.
async fn read_head(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 || head.len() + n > MAX_HEAD {
            return None;
        }
        head.extend_from_slice(&buf[..n]);
    }
    Some(head)
}

/// The path of a `GET` request head (its query, if any, cut off), or `None` for any other
/// method or a head that does not parse.
fn request_target(head: &[u8]) -> Option<&str> {
    let line = head.split(|&b| b == b'\r').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.split(' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    if method != "GET" || !version.starts_with("HTTP/1.") || parts.next().is_some() {
        return None;
    }
    target.split('?').next()
}

async fn respond(
    stream: &mut TcpStream,
    status: u16,
    body: &str,
    kind: &str,
) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        _ => "Service Unavailable",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\n\
         Connection: close\r\nCache-Control: no-store\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_get_requests_name_a_path() {
        assert_eq!(
            request_target(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Some("/metrics")
        );
        assert_eq!(
            request_target(b"GET /healthz?x=1 HTTP/1.0\r\n\r\n"),
            Some("/healthz")
        );
        assert_eq!(request_target(b"POST /metrics HTTP/1.1\r\n\r\n"), None);
        assert_eq!(request_target(b"GET /metrics\r\n\r\n"), None);
        assert_eq!(request_target(b"\xff\xfe\r\n\r\n"), None);
    }
}
