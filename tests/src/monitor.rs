//! The relay's monitoring listener as a scraper sees it: one HTTP/1.1 request per connection
//! ([`get`]), and reading one sample out of an OpenMetrics text ([`sample`]).
//!
//! What it does not do: parse OpenMetrics beyond `name{labels} value` lines, or speak HTTP
//! beyond a `GET` and a response read to its end (the relay closes after each answer).

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::DEADLINE;

/// An HTTP response: its status code and body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The body.
    pub body: String,
}

/// Sends `request` (a whole request head) to `addr` and reads the response, failing the test
/// at the deadline.
pub async fn request(addr: SocketAddr, request: &str) -> Response {
    tokio::time::timeout(DEADLINE, async {
        let mut stream = TcpStream::connect(addr).await.expect("connect to metrics");
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.expect("read response");
        let text = String::from_utf8(raw).expect("a UTF-8 response");
        let (head, body) = text.split_once("\r\n\r\n").expect("a response head");
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("a status code");
        Response {
            status,
            body: body.to_owned(),
        }
    })
    .await
    .expect("a response before the deadline")
}

/// `GET path` on the monitoring listener at `addr`.
pub async fn get(addr: SocketAddr, path: &str) -> Response {
    request(addr, &format!("GET {path} HTTP/1.1\r\nHost: relay\r\n\r\n")).await
}

/// The scrape of `/metrics`, which must answer 200.
pub async fn scrape(addr: SocketAddr) -> String {
    let r = get(addr, "/metrics").await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

/// The value of the sample `series` (a metric name with its labels, as written in the text:
/// `hush_sends_total`, `hush_request_errors_total{code="auth"}`), if the text has it.
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let value = line.strip_prefix(series)?.strip_prefix(' ')?;
        value.trim().parse().ok()
    })
}

/// Polls `/metrics` until `series` reaches at least `want`, failing the test at the deadline.
/// Returns the scrape.
pub async fn until_at_least(addr: SocketAddr, series: &str, want: f64) -> String {
    let end = tokio::time::Instant::now() + DEADLINE;
    loop {
        let text = scrape(addr).await;
        if sample(&text, series).is_some_and(|v| v >= want) {
            return text;
        }
        assert!(
            tokio::time::Instant::now() < end,
            "{series} never reached {want}:\n{text}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
