//! Relay settings: [`RelayConfig`], and how the binary assembles it.
//!
//! Precedence, highest first: command-line flags, `HUSH_*` environment variables, the TOML file
//! named by `--config` (or `HUSH_CONFIG`), then the defaults in [`crate::limits`]
//! (and `hush_protocol::limits` for the envelope size and lifetime).
//! Durations are written as in `humantime` (`7d`, `90s`, `1h 30m`).
//!
//! What it does not do: validate that the listen address is free or the data directory
//! writable; binding and opening the store report those.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use hush_protocol::limits::{DEFAULT_MAX_TTL_SECS, MAX_ENVELOPE_LEN};
use hush_protocol::CreateToken;
use serde::Deserialize;

use crate::blob::{BlobLimits, MAX_BLOB_BYTES};
use crate::limits as l;
use crate::store::jetstream::JetStreamConfig;

/// Default listen address.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:4433";
/// Default data directory.
pub const DEFAULT_DATA_DIR: &str = "./hush-data";
/// Default interval between expiry sweeps.
pub const DEFAULT_SWEEP_INTERVAL: Duration = Duration::from_secs(60);
/// Default QUIC idle timeout: a connection silent this long is closed.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Default total of blob bytes the relay holds at once: 8 GiB, room for eight files of the
/// default maximum size. The free disk space is checked as well, whatever the budget.
pub const DEFAULT_BLOB_BUDGET_BYTES: u64 = 8 * 1024 * 1024 * 1024;

/// Everything a running relay needs to know.
#[derive(Clone, Debug)]
pub struct RelayConfig {
    /// UDP address to listen on.
    pub listen: SocketAddr,
    /// Directory for the certificate, key and store.
    pub data_dir: PathBuf,
    /// `HOST:PORT` to print in the relay address when listening on an unspecified address.
    pub public_addr: Option<String>,
    /// PEM certificate chain to use instead of the generated self-signed one.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// Longest envelope lifetime; requested TTLs are capped at it.
    pub max_ttl: Duration,
    /// Queues with no send, subscribe or ack for this long are deleted.
    pub queue_idle: Duration,
    /// How often the expiry sweep runs.
    pub sweep_interval: Duration,
    /// Largest envelope body accepted (at most `MAX_ENVELOPE_LEN`).
    pub max_envelope_len: usize,
    /// Most envelopes pending in one queue.
    pub queue_max_messages: u32,
    /// Most body bytes pending in one queue.
    pub queue_max_bytes: u64,
    /// Most concurrent connections.
    pub max_connections: usize,
    /// Most TLS handshakes in progress at once.
    pub max_handshakes: usize,
    /// Sustained requests per second per connection.
    pub requests_per_sec: u32,
    /// Requests a connection may send in a burst above the sustained rate.
    pub request_burst: u32,
    /// Most queues one connection may create.
    pub max_queues_per_connection: u32,
    /// Most subscriptions one connection may hold.
    pub max_subscriptions_per_connection: u32,
    /// QUIC idle timeout.
    pub idle_timeout: Duration,
    /// Longest blob lifetime; requested TTLs are capped at it.
    pub blob_ttl: Duration,
    /// Largest blob accepted (at most `blob::MAX_BLOB_BYTES`).
    pub blob_max_bytes: u64,
    /// Most bytes all blobs together may hold.
    pub blob_budget_bytes: u64,
    /// TCP address of the monitoring listener (`/metrics`, `/healthz`); none by default.
    pub metrics: Option<SocketAddr>,
    /// How long a request frame may take to arrive whole after its first byte. Not a setting
    /// of the binary (it uses [`l::REQUEST_DEADLINE`]); tests shorten it.
    pub request_deadline: Duration,
    /// A token that creating queues and blobs needs (see `access.rs`); `None` with no tokens
    /// file leaves the relay open.
    pub create_token: Option<CreateToken>,
    /// A file of create tokens, one per line, read at start and on SIGHUP.
    pub create_tokens_file: Option<PathBuf>,
    /// Where queues are kept. Only the binary reads it: a relay is given its store.
    pub store: StoreChoice,
    /// Where blobs are kept. With [`BlobChoice::JetStream`] the binary opens the blob backend
    /// on the queue store's cluster and hands it to the relay.
    pub blob_store: BlobChoice,
}

/// Where the relay keeps blobs (file transfers).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum BlobChoice {
    /// Each node's data directory (the default).
    #[default]
    Local,
    /// The NATS JetStream cluster of the queue store (needs `store = jetstream`), so any node
    /// serves any blob.
    JetStream,
}

/// Where the binary keeps queues.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreChoice {
    /// The embedded sled store in the data directory (the default).
    #[default]
    Sled,
    /// A NATS JetStream cluster shared by several relay nodes.
    JetStream(JetStreamConfig),
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 4433)),
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            public_addr: None,
            tls_cert: None,
            tls_key: None,
            max_ttl: Duration::from_secs(DEFAULT_MAX_TTL_SECS),
            queue_idle: Duration::from_secs(l::DEFAULT_QUEUE_IDLE_SECS),
            sweep_interval: DEFAULT_SWEEP_INTERVAL,
            max_envelope_len: MAX_ENVELOPE_LEN,
            queue_max_messages: l::DEFAULT_QUEUE_MAX_MESSAGES,
            queue_max_bytes: l::DEFAULT_QUEUE_MAX_BYTES,
            max_connections: l::DEFAULT_MAX_CONNECTIONS,
            max_handshakes: l::DEFAULT_MAX_HANDSHAKES,
            requests_per_sec: l::DEFAULT_REQUESTS_PER_SEC,
            request_burst: l::DEFAULT_REQUEST_BURST,
            max_queues_per_connection: l::DEFAULT_MAX_QUEUES_PER_CONNECTION,
            max_subscriptions_per_connection: l::DEFAULT_MAX_SUBSCRIPTIONS_PER_CONNECTION,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            blob_ttl: Duration::from_secs(l::DEFAULT_BLOB_TTL_SECS),
            blob_max_bytes: l::DEFAULT_BLOB_MAX_BYTES,
            blob_budget_bytes: DEFAULT_BLOB_BUDGET_BYTES,
            metrics: None,
            request_deadline: l::REQUEST_DEADLINE,
            create_token: None,
            create_tokens_file: None,
            store: StoreChoice::Sled,
            blob_store: BlobChoice::Local,
        }
    }
}

impl RelayConfig {
    /// The limits the blob store enforces.
    pub fn blob_limits(&self) -> BlobLimits {
        BlobLimits {
            max_bytes: self.blob_max_bytes,
            budget_bytes: self.blob_budget_bytes,
            max_ttl_secs: self.blob_ttl.as_secs(),
        }
    }

    /// A relay on `127.0.0.1:0` keeping its certificate in `data_dir`: for tests.
    pub fn loopback(data_dir: &Path) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: data_dir.to_owned(),
            ..Self::default()
        }
    }
}

/// Why the settings could not be assembled.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The TOML file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TOML file is not valid, or names an unknown setting.
    #[error("invalid config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        message: String,
    },
    /// A setting has an unusable value.
    #[error("invalid setting {name}: {message}")]
    Invalid {
        /// The setting.
        name: &'static str,
        /// What is wrong and how to fix it.
        message: String,
    },
}

/// Command-line flags; each also reads its `HUSH_*` environment variable.
#[derive(Parser, Debug, Default)]
#[command(name = "hush-server", version, about = "The hush relay")]
pub struct Cli {
    /// UDP address to listen on [default: 0.0.0.0:4433]
    #[arg(long, env = "HUSH_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Data directory [default: ./hush-data]
    #[arg(long = "data", env = "HUSH_DATA")]
    pub data: Option<PathBuf>,
    /// Optional TOML settings file
    #[arg(long = "config", env = "HUSH_CONFIG")]
    pub config: Option<PathBuf>,
    /// HOST:PORT to print when listening on an unspecified address
    #[arg(long, env = "HUSH_PUBLIC_ADDR")]
    pub public_addr: Option<String>,
    /// Check the settings (and the TLS files, if any), print what they resolve to, and exit
    #[arg(long)]
    pub check_config: bool,
    /// A command instead of running the relay
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub settings: Settings,
}

/// What `hush-server` does instead of running the relay.
#[derive(clap::Subcommand, Debug, Clone)]
#[non_exhaustive]
pub enum Command {
    /// Print what a stopped relay's data directory holds: queues, pending envelopes and bytes,
    /// blobs, earliest expiry, key vault sizes
    Stats(crate::stats::StatsArgs),
    /// Make a new certificate, served from the end of a grace period on, and print the new
    /// address; clients that connect during the grace period learn it and keep working
    RotateCert(crate::rotate::RotateArgs),
}

/// Settings shared by flags, environment and the TOML file (all optional; unset = default).
#[derive(clap::Args, Deserialize, Debug, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// UDP address to listen on (TOML only; the flag is --listen)
    #[arg(skip)]
    pub listen: Option<SocketAddr>,
    /// Data directory (TOML only; the flag is --data)
    #[arg(skip)]
    pub data: Option<PathBuf>,
    /// HOST:PORT to print (TOML only; the flag is --public-addr)
    #[arg(skip)]
    pub public_addr: Option<String>,
    /// PEM certificate chain to serve instead of the generated one
    #[arg(long, env = "HUSH_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert
    #[arg(long, env = "HUSH_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Longest envelope lifetime [default: 7d]
    #[arg(long, env = "HUSH_MAX_TTL")]
    pub max_ttl: Option<String>,
    /// Delete queues idle this long [default: 30d]
    #[arg(long, env = "HUSH_QUEUE_IDLE")]
    pub queue_idle: Option<String>,
    /// Interval between expiry sweeps [default: 60s]
    #[arg(long, env = "HUSH_SWEEP_INTERVAL")]
    pub sweep_interval: Option<String>,
    /// Largest envelope in bytes [default and maximum: 65536]
    #[arg(long, env = "HUSH_MAX_ENVELOPE_BYTES")]
    pub max_envelope_bytes: Option<usize>,
    /// Most pending envelopes per queue [default: 10000]
    #[arg(long, env = "HUSH_QUEUE_MAX_MESSAGES")]
    pub queue_max_messages: Option<u32>,
    /// Most pending bytes per queue [default: 67108864]
    #[arg(long, env = "HUSH_QUEUE_MAX_BYTES")]
    pub queue_max_bytes: Option<u64>,
    /// Most concurrent connections [default: 20000]
    #[arg(long, env = "HUSH_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Most concurrent TLS handshakes [default: 256]
    #[arg(long, env = "HUSH_MAX_HANDSHAKES")]
    pub max_handshakes: Option<usize>,
    /// Sustained requests per second per connection [default: 10000]
    #[arg(long, env = "HUSH_REQUESTS_PER_SEC")]
    pub requests_per_sec: Option<u32>,
    /// Request burst per connection [default: 20000]
    #[arg(long, env = "HUSH_REQUEST_BURST")]
    pub request_burst: Option<u32>,
    /// Most queues created per connection [default: 1000]
    #[arg(long, env = "HUSH_MAX_QUEUES_PER_CONNECTION")]
    pub max_queues_per_connection: Option<u32>,
    /// Most subscriptions per connection [default: 1000]
    #[arg(long, env = "HUSH_MAX_SUBSCRIPTIONS_PER_CONNECTION")]
    pub max_subscriptions_per_connection: Option<u32>,
    /// QUIC idle timeout [default: 60s]
    #[arg(long, env = "HUSH_IDLE_TIMEOUT")]
    pub idle_timeout: Option<String>,
    /// Longest blob (file transfer) lifetime [default: 48h]
    #[arg(long, env = "HUSH_BLOB_TTL")]
    pub blob_ttl: Option<String>,
    /// Largest blob in bytes [default: 1073741824]
    #[arg(long, env = "HUSH_BLOB_MAX_BYTES")]
    pub blob_max_bytes: Option<u64>,
    /// Most bytes all blobs together may hold [default: 8589934592]
    #[arg(long, env = "HUSH_BLOB_BUDGET_BYTES")]
    pub blob_budget_bytes: Option<u64>,
    /// TCP address for /metrics and /healthz, e.g. 127.0.0.1:9090 [default: off]
    #[arg(long, env = "HUSH_METRICS")]
    pub metrics: Option<SocketAddr>,
    /// Require this token to create queues and files (prefer the environment or a file: flags
    /// show in the process list) [default: none, the relay is open]
    #[arg(long, env = "HUSH_CREATE_TOKEN", hide_env_values = true)]
    #[serde(default, deserialize_with = "token")]
    pub create_token: Option<CreateToken>,
    /// Require one of the tokens in this file (one per line; re-read on SIGHUP) to create
    /// queues and files [default: none]
    #[arg(long, env = "HUSH_CREATE_TOKENS_FILE")]
    pub create_tokens_file: Option<PathBuf>,
    /// Where queues are kept: sled (embedded, in the data directory) or jetstream (a NATS
    /// cluster shared by several relay nodes; needs --nats) [default: sled]
    #[arg(long, env = "HUSH_STORE")]
    pub store: Option<String>,
    /// NATS server URLs for --store jetstream, comma-separated: nats://h1:4222,nats://h2:4222
    #[arg(long, env = "HUSH_NATS")]
    pub nats: Option<String>,
    /// NATS credentials file (JWT and NKey seed) [default: none]
    #[arg(long, env = "HUSH_NATS_CREDS")]
    pub nats_creds: Option<PathBuf>,
    /// PEM CA certificates for NATS; when set, the NATS connection requires TLS [default: none]
    #[arg(long, env = "HUSH_NATS_CA")]
    pub nats_ca: Option<PathBuf>,
    /// Copies of each JetStream stream: 1, 3 or 5 [default: 3]
    #[arg(long, env = "HUSH_NATS_REPLICAS")]
    pub nats_replicas: Option<usize>,
    /// Prefix of the JetStream stream names and subjects [default: hush]
    #[arg(long, env = "HUSH_NATS_PREFIX")]
    pub nats_prefix: Option<String>,
    /// Where blobs (file transfers) are kept: local (each node's data directory) or jetstream
    /// (the NATS cluster of --store jetstream, shared by every node) [default: local]
    #[arg(long, env = "HUSH_BLOB_STORE")]
    pub blob_store: Option<String>,
}

/// Reads `create_token` from the TOML file as a checked token; the error never repeats it.
fn token<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<CreateToken>, D::Error> {
    let s = String::deserialize(d)?;
    s.parse()
        .map(Some)
        .map_err(|e: hush_protocol::AddressError| serde::de::Error::custom(e.to_string()))
}

fn duration(
    name: &'static str,
    v: Option<String>,
    default: Duration,
) -> Result<Duration, ConfigError> {
    match v {
        None => Ok(default),
        Some(s) => humantime::parse_duration(&s).map_err(|e| ConfigError::Invalid {
            name,
            message: format!("{e}; write a duration such as 90s, 1h or 7d"),
        }),
    }
}

impl Cli {
    /// Merges flags and environment (already in `self`) over the TOML file and the defaults.
    pub fn into_config(self) -> Result<RelayConfig, ConfigError> {
        let file = match &self.config {
            Some(path) => read_file(path)?,
            None => Settings::default(),
        };
        let flags = Settings {
            listen: self.listen,
            data: self.data,
            public_addr: self.public_addr,
            ..self.settings
        };
        flags.over(file).resolve(RelayConfig::default())
    }
}

impl Settings {
    /// These settings, each one that is unset taken from `file`.
    fn over(self, file: Settings) -> Settings {
        Settings {
            listen: self.listen.or(file.listen),
            data: self.data.or(file.data),
            public_addr: self.public_addr.or(file.public_addr),
            tls_cert: self.tls_cert.or(file.tls_cert),
            tls_key: self.tls_key.or(file.tls_key),
            max_ttl: self.max_ttl.or(file.max_ttl),
            queue_idle: self.queue_idle.or(file.queue_idle),
            sweep_interval: self.sweep_interval.or(file.sweep_interval),
            max_envelope_bytes: self.max_envelope_bytes.or(file.max_envelope_bytes),
            queue_max_messages: self.queue_max_messages.or(file.queue_max_messages),
            queue_max_bytes: self.queue_max_bytes.or(file.queue_max_bytes),
            max_connections: self.max_connections.or(file.max_connections),
            max_handshakes: self.max_handshakes.or(file.max_handshakes),
            requests_per_sec: self.requests_per_sec.or(file.requests_per_sec),
            request_burst: self.request_burst.or(file.request_burst),
            max_queues_per_connection: self
                .max_queues_per_connection
                .or(file.max_queues_per_connection),
            max_subscriptions_per_connection: self
                .max_subscriptions_per_connection
                .or(file.max_subscriptions_per_connection),
            idle_timeout: self.idle_timeout.or(file.idle_timeout),
            blob_ttl: self.blob_ttl.or(file.blob_ttl),
            blob_max_bytes: self.blob_max_bytes.or(file.blob_max_bytes),
            blob_budget_bytes: self.blob_budget_bytes.or(file.blob_budget_bytes),
            metrics: self.metrics.or(file.metrics),
            create_token: self.create_token.or(file.create_token),
            create_tokens_file: self.create_tokens_file.or(file.create_tokens_file),
            store: self.store.or(file.store),
            nats: self.nats.or(file.nats),
            nats_creds: self.nats_creds.or(file.nats_creds),
            nats_ca: self.nats_ca.or(file.nats_ca),
            nats_replicas: self.nats_replicas.or(file.nats_replicas),
            nats_prefix: self.nats_prefix.or(file.nats_prefix),
            blob_store: self.blob_store.or(file.blob_store),
        }
    }

    /// The blob backend these settings choose, checked: blobs on JetStream need the queue
    /// store on JetStream, whose cluster they share.
    fn blob_choice(&self) -> Result<BlobChoice, ConfigError> {
        let invalid = |message: &str| ConfigError::Invalid {
            name: "blob-store",
            message: message.to_owned(),
        };
        match (self.blob_store.as_deref(), self.store.as_deref()) {
            (None | Some("local"), _) => Ok(BlobChoice::Local),
            (Some("jetstream"), Some("jetstream")) => Ok(BlobChoice::JetStream),
            (Some("jetstream"), _) => Err(invalid(
                "blob-store = jetstream needs store = jetstream and its NATS settings \
                 (blobs use the same cluster)",
            )),
            (Some(_), _) => Err(invalid("write local or jetstream")),
        }
    }

    /// The store these settings choose, checked: `--nats` goes with `--store jetstream` only.
    fn store_choice(&mut self) -> Result<StoreChoice, ConfigError> {
        let invalid = |name, message: &str| ConfigError::Invalid {
            name,
            message: message.to_owned(),
        };
        let nats_set = self.nats.is_some()
            || self.nats_creds.is_some()
            || self.nats_ca.is_some()
            || self.nats_replicas.is_some()
            || self.nats_prefix.is_some();
        match self.store.as_deref() {
            None | Some("sled") if nats_set => Err(invalid(
                "nats",
                "the NATS settings are used only with store = jetstream",
            )),
            None | Some("sled") => Ok(StoreChoice::Sled),
            Some("jetstream") => {
                let urls: Vec<String> = (self.nats.take().unwrap_or_default().split(','))
                    .map(|u| u.trim().to_owned())
                    .filter(|u| !u.is_empty())
                    .collect();
                if urls.is_empty() {
                    return Err(invalid(
                        "nats",
                        "store = jetstream needs the NATS server URLs, such as \
                         nats://h1:4222,nats://h2:4222",
                    ));
                }
                let mut js = JetStreamConfig::new(urls);
                js.creds_file = self.nats_creds.take();
                js.ca_file = self.nats_ca.take();
                js.replicas = self.nats_replicas.unwrap_or(js.replicas);
                js.prefix = self.nats_prefix.take().unwrap_or(js.prefix);
                Ok(StoreChoice::JetStream(js))
            }
            Some(_) => Err(invalid("store", "write sled or jetstream")),
        }
    }

    /// The configuration these settings make, each one that is unset taken from `d`; checks
    /// the sizes against their maximums and parses the durations.
    fn resolve(mut self, d: RelayConfig) -> Result<RelayConfig, ConfigError> {
        let blob_store = self.blob_choice()?;
        let store = self.store_choice()?;
        let max_envelope_len = self.max_envelope_bytes.unwrap_or(d.max_envelope_len);
        if max_envelope_len > MAX_ENVELOPE_LEN {
            return Err(ConfigError::Invalid {
                name: "max-envelope-bytes",
                message: format!("at most {MAX_ENVELOPE_LEN} (the protocol maximum)"),
            });
        }
        let blob_max_bytes = self.blob_max_bytes.unwrap_or(d.blob_max_bytes);
        if blob_max_bytes > MAX_BLOB_BYTES {
            return Err(ConfigError::Invalid {
                name: "blob-max-bytes",
                message: format!("at most {MAX_BLOB_BYTES} (128 GiB)"),
            });
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err(ConfigError::Invalid {
                name: "tls-cert",
                message:
                    "set both tls-cert and tls-key, or neither (for the generated certificate)"
                        .into(),
            });
        }
        let blob_ttl = duration("blob-ttl", self.blob_ttl, d.blob_ttl)?;
        if blob_ttl.as_secs() == 0 {
            return Err(ConfigError::Invalid {
                name: "blob-ttl",
                message: "must be at least one second, such as 48h".into(),
            });
        }
        Ok(RelayConfig {
            listen: self.listen.unwrap_or(d.listen),
            data_dir: self.data.unwrap_or(d.data_dir),
            public_addr: self.public_addr,
            tls_cert: self.tls_cert,
            tls_key: self.tls_key,
            max_ttl: duration("max-ttl", self.max_ttl, d.max_ttl)?,
            queue_idle: duration("queue-idle", self.queue_idle, d.queue_idle)?,
            sweep_interval: duration("sweep-interval", self.sweep_interval, d.sweep_interval)?,
            max_envelope_len,
            queue_max_messages: self.queue_max_messages.unwrap_or(d.queue_max_messages),
            queue_max_bytes: self.queue_max_bytes.unwrap_or(d.queue_max_bytes),
            max_connections: self.max_connections.unwrap_or(d.max_connections),
            max_handshakes: self.max_handshakes.unwrap_or(d.max_handshakes),
            requests_per_sec: self.requests_per_sec.unwrap_or(d.requests_per_sec),
            request_burst: self.request_burst.unwrap_or(d.request_burst),
            max_queues_per_connection: self
                .max_queues_per_connection
                .unwrap_or(d.max_queues_per_connection),
            max_subscriptions_per_connection: self
                .max_subscriptions_per_connection
                .unwrap_or(d.max_subscriptions_per_connection),
            idle_timeout: duration("idle-timeout", self.idle_timeout, d.idle_timeout)?,
            blob_ttl,
            blob_max_bytes,
            blob_budget_bytes: self.blob_budget_bytes.unwrap_or(d.blob_budget_bytes),
            metrics: self.metrics.or(d.metrics),
            request_deadline: d.request_deadline,
            create_token: self.create_token.or(d.create_token),
            create_tokens_file: self.create_tokens_file.or(d.create_tokens_file),
            store,
            blob_store,
        })
    }
}

fn read_file(path: &Path) -> Result<Settings, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.to_owned(),
        message: parse_message(&text, &e),
    })
}

/// The parser's complaint and the line it is about, without the parser's quote of that line:
/// the line may hold a create token.
fn parse_message(text: &str, e: &toml::de::Error) -> String {
    match e.span() {
        Some(span) => {
            let before = &text.as_bytes()[..span.start.min(text.len())];
            let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
            format!("line {line}: {}", e.message())
        }
        None => e.message().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_file_and_file_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("hush.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:5000\"\nmax_ttl = \"1d\"\nqueue_max_messages = 7\n",
        )
        .unwrap();
        let cli = Cli::try_parse_from([
            "hush-server",
            "--config",
            file.to_str().unwrap(),
            "--queue-max-messages",
            "9",
        ])
        .unwrap();
        let c = cli.into_config().unwrap();
        assert_eq!(c.listen, "127.0.0.1:5000".parse().unwrap());
        assert_eq!(c.max_ttl, Duration::from_secs(86_400));
        assert_eq!(c.queue_max_messages, 9);
        assert_eq!(c.queue_max_bytes, l::DEFAULT_QUEUE_MAX_BYTES);
        assert_eq!(c.blob_ttl, Duration::from_secs(l::DEFAULT_BLOB_TTL_SECS));
        assert_eq!(c.blob_max_bytes, l::DEFAULT_BLOB_MAX_BYTES);
        assert_eq!(c.blob_budget_bytes, DEFAULT_BLOB_BUDGET_BYTES);
    }

    #[test]
    fn blob_settings_follow_the_same_precedence() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("hush.toml");
        std::fs::write(
            &file,
            "blob_ttl = \"2h\"\nblob_max_bytes = 5000\nblob_budget_bytes = 90000\n",
        )
        .unwrap();
        let path = file.to_str().unwrap();
        let cli = Cli::try_parse_from(["hush-server", "--config", path, "--blob-ttl", "1h"]);
        let c = cli.unwrap().into_config().unwrap();
        assert_eq!(c.blob_ttl, Duration::from_secs(3600));
        assert_eq!(c.blob_max_bytes, 5000);
        assert_eq!(c.blob_budget_bytes, 90000);
        assert_eq!(c.blob_limits().max_ttl_secs, 3600);
        let too_big = (MAX_BLOB_BYTES + 1).to_string();
        let cli = Cli::try_parse_from(["hush-server", "--blob-max-bytes", &too_big]).unwrap();
        assert!(matches!(
            cli.into_config(),
            Err(ConfigError::Invalid {
                name: "blob-max-bytes",
                ..
            })
        ));
        let cli = Cli::try_parse_from(["hush-server", "--blob-ttl", "0s"]).unwrap();
        assert!(matches!(
            cli.into_config(),
            Err(ConfigError::Invalid {
                name: "blob-ttl",
                ..
            })
        ));
    }

    #[test]
    fn bad_values_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("hush.toml");
        std::fs::write(&file, "no_such_setting = 1\n").unwrap();
        let cli = Cli::try_parse_from(["hush-server", "--config", file.to_str().unwrap()]).unwrap();
        assert!(matches!(cli.into_config(), Err(ConfigError::Parse { .. })));
        let cli = Cli::try_parse_from(["hush-server", "--max-ttl", "soon"]).unwrap();
        assert!(matches!(
            cli.into_config(),
            Err(ConfigError::Invalid {
                name: "max-ttl",
                ..
            })
        ));
    }

    #[test]
    fn the_sample_file_names_every_setting_with_its_default() {
        let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("../contrib/hush.toml");
        let parsed = read_file(&sample).unwrap();
        // Destructured whole, so that a new setting fails to compile until the sample has it.
        let Settings {
            listen,
            data,
            public_addr: _,
            tls_cert: _,
            tls_key: _,
            max_ttl,
            queue_idle,
            sweep_interval,
            max_envelope_bytes,
            queue_max_messages,
            queue_max_bytes,
            max_connections,
            max_handshakes,
            requests_per_sec,
            request_burst,
            max_queues_per_connection,
            max_subscriptions_per_connection,
            idle_timeout,
            blob_ttl,
            blob_max_bytes,
            blob_budget_bytes,
            metrics: _,
            create_token: _,
            create_tokens_file: _,
            store,
            nats: _,
            nats_creds: _,
            nats_ca: _,
            nats_replicas: _,
            nats_prefix: _,
            blob_store,
        } = parsed.clone();
        assert!(store.is_some() && blob_store.is_some());
        assert!(listen.is_some() && data.is_some());
        assert!(max_ttl.is_some() && queue_idle.is_some() && sweep_interval.is_some());
        assert!(max_envelope_bytes.is_some() && queue_max_messages.is_some());
        assert!(queue_max_bytes.is_some() && max_connections.is_some());
        assert!(max_handshakes.is_some() && requests_per_sec.is_some());
        assert!(request_burst.is_some() && max_queues_per_connection.is_some());
        assert!(max_subscriptions_per_connection.is_some() && idle_timeout.is_some());
        assert!(blob_ttl.is_some() && blob_max_bytes.is_some() && blob_budget_bytes.is_some());
        let resolved = parsed.resolve(RelayConfig::default()).unwrap();
        assert_eq!(
            format!("{resolved:?}"),
            format!("{:?}", RelayConfig::default())
        );
        // The commented-out keys are real settings too.
        let text = std::fs::read_to_string(&sample).unwrap();
        for key in [
            "public_addr",
            "tls_cert",
            "tls_key",
            "metrics",
            "create_token",
            "create_tokens_file",
            "nats",
            "nats_creds",
            "nats_ca",
            "nats_replicas",
            "nats_prefix",
        ] {
            assert!(text.contains(&format!("# {key} = ")), "{key}");
        }
    }

    #[test]
    fn a_create_token_comes_from_flag_env_or_file_and_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("hush.toml");
        std::fs::write(&file, "create_token = \"file-token-0123456789\"\n").unwrap();
        let path = file.to_str().unwrap();
        let c = Cli::try_parse_from(["hush-server", "--config", path])
            .unwrap()
            .into_config()
            .unwrap();
        let t = c.create_token.as_ref().map(CreateToken::as_str);
        assert_eq!(t, Some("file-token-0123456789"));
        // The resolved settings print without the token.
        assert!(!format!("{c:?}").contains("file-token"));
        let cli = Cli::try_parse_from([
            "hush-server",
            "--config",
            path,
            "--create-token",
            "flag-token-0123456789",
        ]);
        let c = cli.unwrap().into_config().unwrap();
        let t = c.create_token.as_ref().map(CreateToken::as_str);
        assert_eq!(t, Some("flag-token-0123456789"));
        assert!(Cli::try_parse_from(["hush-server", "--create-token", "short"]).is_err());
        std::fs::write(&file, "create_token = \"short secret\"\n").unwrap();
        let cli = Cli::try_parse_from(["hush-server", "--config", path]).unwrap();
        let err = cli.into_config().unwrap_err().to_string();
        assert!(
            err.contains("line 1") && err.contains("create token"),
            "{err}"
        );
        assert!(!err.contains("short secret"), "{err}");
    }

    #[test]
    fn the_jetstream_store_needs_its_urls_and_blobs_on_jetstream_need_it() {
        let parse = |args: &[&str]| {
            let argv = [&["hush-server"][..], args].concat();
            Cli::try_parse_from(argv).unwrap().into_config()
        };
        assert_eq!(parse(&[]).unwrap().store, StoreChoice::Sled);
        let c = parse(&[
            "--store",
            "jetstream",
            "--nats",
            "nats://a:4222, nats://b:4222",
            "--nats-replicas",
            "1",
        ])
        .unwrap();
        let StoreChoice::JetStream(js) = c.store else {
            panic!("not jetstream: {:?}", c.store)
        };
        assert_eq!(js.urls, ["nats://a:4222", "nats://b:4222"]);
        assert_eq!((js.replicas, js.prefix.as_str()), (1, "hush"));
        let named = |r: Result<RelayConfig, ConfigError>| match r {
            Err(ConfigError::Invalid { name, .. }) => name,
            other => panic!("expected an invalid setting, got {other:?}"),
        };
        assert_eq!(named(parse(&["--store", "jetstream"])), "nats");
        assert_eq!(named(parse(&["--nats", "nats://a:4222"])), "nats");
        assert_eq!(named(parse(&["--store", "redis"])), "store");
        assert_eq!(c.blob_store, BlobChoice::Local);
        let blobs = ["--store", "jetstream", "--nats", "nats://a:4222"];
        let on_js = parse(&[&blobs[..], &["--blob-store", "jetstream"]].concat());
        assert_eq!(on_js.unwrap().blob_store, BlobChoice::JetStream);
        assert_eq!(named(parse(&["--blob-store", "jetstream"])), "blob-store");
        assert_eq!(
            named(parse(&[&blobs[..], &["--blob-store", "s3"]].concat())),
            "blob-store"
        );
    }

    #[test]
    fn a_certificate_without_its_key_is_refused() {
        let cli = Cli::try_parse_from(["hush-server", "--tls-cert", "/nonexistent.pem"]).unwrap();
        assert!(matches!(
            cli.into_config(),
            Err(ConfigError::Invalid {
                name: "tls-cert",
                ..
            })
        ));
        let cli = Cli::try_parse_from([
            "hush-server",
            "--tls-cert",
            "/nonexistent/cert.pem",
            "--tls-key",
            "/nonexistent/key.pem",
        ])
        .unwrap();
        let config = cli.into_config().unwrap();
        let err = config.check().unwrap_err();
        assert!(err.to_string().contains("cert.pem"), "{err}");
    }
}
