//! The relay's metrics: counters and gauges in a `prometheus-client` registry, encoded as
//! OpenMetrics text for `GET /metrics` (see `monitor.rs`).
//!
//! Every metric is a relay-wide total. Labels name only a fixed set of causes and error codes,
//! never a queue, envelope, blob or sender id, an IP address or a port, so a scrape says how
//! busy the relay is and never who uses it (`tests/tests/relay_metrics.rs` checks a scrape
//! taken during a conversation for every id and client address). Counters move as requests are
//! answered; what the relay holds (queues, envelopes, blobs, free disk) is read at each scrape.
//!
//! What it does not do: serve HTTP (`monitor.rs`), probe the store (`health.rs`), or log.

use std::path::Path;

use hush_protocol::ErrorCode;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

use crate::store::{CommitLatency, StoreStats};

/// One label: its name and a value from a fixed set.
type Label = [(&'static str, &'static str); 1];

/// Counters by one label.
type ByLabel = Family<Label, Counter>;

/// Why a connection attempt was refused or failed before it was served.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Refusal {
    /// `max_connections` connections were open.
    ConnectionLimit,
    /// `max_handshakes` handshakes were in progress.
    HandshakeLimit,
    /// The TLS handshake failed: a wrong ALPN, a client that rejected the certificate, or one
    /// that went away half-way.
    HandshakeFailed,
}

impl Refusal {
    /// The label value, also used in the log.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Refusal::ConnectionLimit => "connection_limit",
            Refusal::HandshakeLimit => "handshake_limit",
            Refusal::HandshakeFailed => "handshake_failed",
        }
    }
}

/// The label value of an error code.
pub(crate) fn code_name(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::Malformed => "malformed",
        ErrorCode::Auth => "auth",
        ErrorCode::NoQueue => "no_queue",
        ErrorCode::QueueFull => "queue_full",
        ErrorCode::TooLarge => "too_large",
        ErrorCode::RateLimited => "rate_limited",
        ErrorCode::TooManyQueues => "too_many_queues",
        ErrorCode::TooManySubscriptions => "too_many_subscriptions",
        ErrorCode::NotSubscribed => "not_subscribed",
        ErrorCode::Storage => "storage",
        ErrorCode::ShuttingDown => "shutting_down",
        ErrorCode::NoSpace => "no_space",
        ErrorCode::NoBlob => "no_blob",
        ErrorCode::BlobOffset => "blob_offset",
        ErrorCode::BlobIncomplete => "blob_incomplete",
        ErrorCode::RequestTimeout => "request_timeout",
        ErrorCode::TokenRequired => "token_required",
        ErrorCode::Forbidden => "forbidden",
        _ => "other",
    }
}

/// Counts error answers by code. Cheap to clone; clones count into the same family.
#[derive(Clone, Debug, Default)]
pub(crate) struct ErrorCounter(ByLabel);

impl ErrorCounter {
    /// Counts one error answer.
    pub(crate) fn note(&self, code: ErrorCode) {
        self.0.get_or_create(&[("code", code_name(code))]).inc();
    }
}

/// What the relay holds at a scrape.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Holdings {
    /// The queue store's counts, if it can count.
    pub(crate) store: Option<StoreStats>,
    /// Blobs stored, complete or not.
    pub(crate) blobs: u64,
    /// Bytes the blobs reserve (their declared sizes).
    pub(crate) blob_bytes: u64,
    /// Free bytes of the data directory's file system, if it could be read.
    pub(crate) disk_free: Option<u64>,
}

/// Gauges set from [`Holdings`] at each scrape.
#[derive(Default)]
struct HoldingGauges {
    queues: Gauge,
    envelopes: Gauge,
    envelope_bytes: Gauge,
    blobs: Gauge,
    blob_bytes: Gauge,
    disk_free: Gauge,
}

/// Every metric of one relay.
pub(crate) struct Metrics {
    registry: Registry,
    /// Connections being served now.
    pub(crate) connections_open: Gauge,
    /// Connections established since start.
    pub(crate) connections: Counter,
    refused: ByLabel,
    closed: ByLabel,
    errors: ErrorCounter,
    /// Sends answered `Sent`.
    pub(crate) sends: Counter,
    /// Acks answered `Done`.
    pub(crate) acks: Counter,
    /// Retracts answered (whether or not the envelope was still pending).
    pub(crate) retracts: Counter,
    holdings: HoldingGauges,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn gauge_value(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Metrics {
    /// A registry with every metric at zero. `counts` says whether the store can count what
    /// it holds (otherwise its gauges are left out rather than shown as zero); `commit` is its
    /// group-commit latency histogram, if it has one.
    pub(crate) fn new(counts: bool, commit: Option<CommitLatency>) -> Metrics {
        let mut registry = Registry::with_prefix("hush");
        let m = Metrics {
            registry: Registry::default(),
            connections_open: Gauge::default(),
            connections: Counter::default(),
            refused: ByLabel::default(),
            closed: ByLabel::default(),
            errors: ErrorCounter::default(),
            sends: Counter::default(),
            acks: Counter::default(),
            retracts: Counter::default(),
            holdings: HoldingGauges::default(),
        };
        let build = Info::new([("version", env!("CARGO_PKG_VERSION"))]);
        registry.register("build", "The relay's version", build);
        m.register_traffic(&mut registry);
        m.register_holdings(&mut registry, counts);
        if let Some(h) = commit {
            let help = "Time each group commit (one flush of the store and its key vault) took";
            registry.register_with_unit("store_commit", help, Unit::Seconds, h);
        }
        Metrics { registry, ..m }
    }

    fn register_traffic(&self, r: &mut Registry) {
        let open = self.connections_open.clone();
        r.register("connections_open", "Connections being served", open);
        let all = self.connections.clone();
        r.register("connections", "Connections established", all);
        let refused = self.refused.clone();
        let help = "Connection attempts refused or failed before being served, by cause";
        r.register("connections_refused", help, refused);
        let closed = self.closed.clone();
        let help = "Connections the relay closed with an error code, by code";
        r.register("connections_closed", help, closed);
        let errors = self.errors.0.clone();
        r.register(
            "request_errors",
            "Requests answered with an error, by code",
            errors,
        );
        r.register("sends", "Envelopes accepted", self.sends.clone());
        r.register("acks", "Envelopes acknowledged", self.acks.clone());
        r.register(
            "retracts",
            "Retract requests answered",
            self.retracts.clone(),
        );
    }

    fn register_holdings(&self, r: &mut Registry, counts: bool) {
        let h = &self.holdings;
        if counts {
            r.register("queues", "Queues stored", h.queues.clone());
            let help = "Envelopes waiting for their recipient";
            r.register("envelopes_pending", help, h.envelopes.clone());
            let help = "Body bytes of the envelopes waiting";
            r.register("envelope_bytes_pending", help, h.envelope_bytes.clone());
        }
        r.register("blobs", "Blobs stored, complete or not", h.blobs.clone());
        let help = "Bytes reserved by the blobs stored (their declared sizes)";
        r.register("blob_reserved_bytes", help, h.blob_bytes.clone());
        let help = "Free bytes on the data directory's file system";
        r.register("data_disk_free_bytes", help, h.disk_free.clone());
    }

    /// Counts a connection attempt refused or failed for `why`.
    pub(crate) fn refused(&self, why: Refusal) {
        self.refused.get_or_create(&[("cause", why.name())]).inc();
    }

    /// Counts a connection the relay closed with `code`.
    pub(crate) fn closed(&self, code: ErrorCode) {
        self.closed
            .get_or_create(&[("code", code_name(code))])
            .inc();
    }

    /// The counter of error answers, for a connection's writer.
    pub(crate) fn errors(&self) -> ErrorCounter {
        self.errors.clone()
    }

    /// The whole registry as OpenMetrics text, its gauges first set from `now`.
    pub(crate) fn encode(&self, now: &Holdings) -> String {
        let h = &self.holdings;
        if let Some(s) = now.store {
            h.queues.set(gauge_value(s.queues));
            h.envelopes.set(gauge_value(s.envelopes));
            h.envelope_bytes.set(gauge_value(s.envelope_bytes));
        }
        h.blobs.set(gauge_value(now.blobs));
        h.blob_bytes.set(gauge_value(now.blob_bytes));
        h.disk_free.set(now.disk_free.map_or(-1, gauge_value));
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// Free bytes (for an unprivileged user) on the file system holding `dir`.
pub(crate) fn disk_free(dir: &Path) -> Option<u64> {
    let s = rustix::fs::statvfs(dir).ok()?;
    Some(s.f_bavail.saturating_mul(s.f_frsize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scrape_names_every_metric_with_its_labels() {
        let m = Metrics::new(true, Some(CommitLatency::new([0.001, 0.01])));
        m.connections.inc();
        m.refused(Refusal::HandshakeFailed);
        m.closed(ErrorCode::RequestTimeout);
        m.errors().note(ErrorCode::QueueFull);
        let holdings = Holdings {
            store: Some(StoreStats {
                queues: 2,
                envelopes: 3,
                envelope_bytes: 40,
                earliest_expiry: None,
            }),
            blobs: 1,
            blob_bytes: 4096,
            disk_free: Some(5),
        };
        let text = m.encode(&holdings);
        let build = format!(
            "hush_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        for line in [
            build.as_str(),
            "hush_connections_total 1",
            "hush_connections_refused_total{cause=\"handshake_failed\"} 1",
            "hush_connections_closed_total{code=\"request_timeout\"} 1",
            "hush_request_errors_total{code=\"queue_full\"} 1",
            "hush_queues 2",
            "hush_envelopes_pending 3",
            "hush_envelope_bytes_pending 40",
            "hush_blob_reserved_bytes 4096",
            "hush_data_disk_free_bytes 5",
            "hush_store_commit_seconds_count 0",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing from\n{text}"
            );
        }
        assert!(text.ends_with("# EOF\n"));
        let without = Metrics::new(false, None).encode(&Holdings::default());
        assert!(!without.contains("hush_queues") && !without.contains("commit"));
    }
}
