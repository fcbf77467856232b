//! The service configuration: the embedded `serve-default.toml`, with a file's keys laid over
//! it. Every key has its default there, so a file names only what it changes; unknown keys are
//! refused, so a typo never silently loosens anything. Relative paths resolve against the
//! file's directory (the working directory for the embedded defaults); `[evidence]`,
//! `[authority]` and `[operator]` paths resolve against `data_dir`.
//!
//! ```
//! let config = ep_server::ServeConfig::load(None)?;
//! assert_eq!(config.server.listen.to_string(), "127.0.0.1:8787");
//! assert_eq!(config.server.max_body_bytes, 1 << 20);
//! # Ok::<(), ep_server::ConfigError>(())
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ep_lanes_wasm::RuntimeConfig;
use ep_node::sinks::file_chain::{Durability, NodeKey, SinkOptions};
use ep_placement_local::ProcessPolicy;
use ep_placement_local::sandbox::SandboxPolicy;
use serde::Deserialize;
use thiserror::Error;

/// The configuration `serve` runs on when given no file.
pub const DEFAULT_CONFIG: &str = include_str!("serve-default.toml");

/// Name of the embedded defaults in messages.
const EMBEDDED: &str = "the embedded default config";

/// Largest config file read, in bytes.
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Why a configuration was refused; the message names the file and the key.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{}: {source}; check that the config file exists and is readable", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not TOML of the expected shape (a missing, unknown or mistyped key).
    #[error("{file}: {message}")]
    Syntax {
        /// The file (or the embedded defaults).
        file: String,
        /// What the TOML parser said, naming the key.
        message: String,
    },
    /// A key has a value the service cannot use.
    #[error("{file}: {key} {message}")]
    Invalid {
        /// The file (or the embedded defaults).
        file: String,
        /// The dotted key, e.g. `server.max_body_bytes`.
        key: &'static str,
        /// What is wrong and what to do.
        message: String,
    },
}

/// `serve`'s whole configuration, paths resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeConfig {
    /// The file it came from (`None`: the embedded defaults); reloads read it again.
    pub source: Option<PathBuf>,
    /// State directory.
    pub data_dir: PathBuf,
    /// `[server]`
    pub server: ServerSection,
    /// `[node]`
    pub node: NodeSection,
    /// `[plugins]`
    pub plugins: PluginsSection,
    /// `[policy]`
    pub policy: PolicySection,
    /// `[limits]`
    pub limits: LimitsSection,
    /// `[evidence]`
    pub evidence: EvidenceSection,
    /// `[authority]`
    pub authority: AuthoritySection,
    /// `[operator]`
    pub operator: OperatorSection,
    /// `[log]`
    pub log: LogSection,
    /// `[telemetry]`
    pub telemetry: TelemetrySection,
    /// `[process]`: what the `process` lane may run (nothing by default); `cwd` roots and the
    /// `[process.sandbox]` paths resolved.
    pub process: ProcessPolicy,
}

/// `[server]`: the listener and its limits.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    /// Listen address.
    pub listen: SocketAddr,
    /// Largest request body in bytes.
    pub max_body_bytes: u64,
    /// Largest request head in bytes.
    pub max_header_bytes: u64,
    /// Time to send a complete request head, in ms.
    pub header_read_timeout_ms: u64,
    /// Keep-alive idle timeout, in ms.
    pub idle_timeout_ms: u64,
    /// Connections served at once.
    pub max_connections: u64,
    /// Time to receive a whole request body once its head is read, in ms (408 after it).
    pub body_read_timeout_ms: u64,
    /// Slowest a request body may arrive once the grace has passed, in bytes per second (0:
    /// no rate check, only the total time).
    pub min_body_bytes_per_sec: u64,
    /// Time a body may take before the rate check starts, in ms.
    pub min_body_rate_grace_ms: u64,
    /// Connections beyond `max_connections` kept for `/healthz`, `/metrics` and the operator.
    pub reserve_connections: u64,
    /// Time a reserved connection has to send its one request head, in ms.
    pub reserve_header_timeout_ms: u64,
    /// Drain time for executions in flight at shutdown, in ms.
    pub drain_timeout_ms: u64,
}

impl ServerSection {
    /// The drain timeout as a duration.
    pub fn drain_timeout(&self) -> Duration {
        Duration::from_millis(self.drain_timeout_ms)
    }
}

/// `[node]`
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSection {
    /// Node id (the audience of authority refs).
    pub id: String,
}

/// `[plugins]`
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginsSection {
    /// Plugin directory (ignored when absent).
    pub dir: PathBuf,
    /// Hot-swap on file changes.
    pub watch: bool,
}

/// `[policy]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicySection {
    /// Operator policy file; `None` is the built-in default policy.
    pub file: Option<PathBuf>,
}

/// `[limits]`: the wasm runtime's size.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    /// Component instances alive at once.
    pub max_instances: u32,
    /// Linear memory ceiling per instance, MiB.
    pub max_memory_per_instance_mb: u64,
    /// Epoch tick, ms.
    pub epoch_tick_ms: u64,
}

impl LimitsSection {
    /// The wasm [`RuntimeConfig`] these limits describe.
    pub fn runtime_config(&self) -> RuntimeConfig {
        RuntimeConfig {
            max_instances: self.max_instances,
            max_memory_per_instance: usize::try_from(self.max_memory_per_instance_mb << 20)
                .unwrap_or(usize::MAX),
            epoch_tick: Duration::from_millis(self.epoch_tick_ms),
            ..RuntimeConfig::default()
        }
    }
}

/// Under `data_dir`: compiled lane components, by digest and engine.
pub const COMPILED_DIR: &str = "compiled";

/// `[evidence]`
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvidenceSection {
    /// Evidence directory.
    pub dir: PathBuf,
    /// When a record counts as written (what a power loss can take).
    pub sync: EvidenceSync,
    /// With `sync = "interval"`: the longest a written record waits for its `fdatasync`.
    pub sync_interval_ms: u64,
    /// Encoded records that may wait to be written (the execution that fills it writes).
    pub queue_records: usize,
}

/// `[evidence] sync`: the durability of the evidence log, named as the operator chooses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EvidenceSync {
    /// `fdatasync` every group commit before the executions in it are answered.
    Batch,
    /// Written before answering, `fdatasync` at most `sync_interval_ms` later.
    Interval,
    /// Written before answering, synced only at shutdown.
    Never,
}

impl EvidenceSection {
    /// The hash-chained log file.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("evidence.jsonl")
    }

    /// How the log's writer is opened: these durability settings, signed with `key`.
    pub fn sink_options(&self, key: NodeKey) -> SinkOptions {
        let durability = match self.sync {
            EvidenceSync::Batch => Durability::Batch,
            EvidenceSync::Interval => {
                Durability::Interval(Duration::from_millis(self.sync_interval_ms))
            }
            EvidenceSync::Never => Durability::Never,
        };
        SinkOptions {
            key: Some(key),
            durability,
            queue_records: self.queue_records,
            ..SinkOptions::default()
        }
    }
}

/// `[authority]`
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthoritySection {
    /// Trust store file.
    pub trust_store: PathBuf,
    /// Tolerated clock skew on `issued_at`, seconds.
    pub clock_skew_secs: u64,
    /// Generate a development signing key on first start.
    pub dev_key: bool,
}

/// `[operator]`
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorSection {
    /// The operator bearer token's file.
    pub token_file: PathBuf,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "human" => Ok(Self::Human),
            "json" => Ok(Self::Json),
            other => Err(format!(
                "log format must be `human` or `json`, not {other:?}"
            )),
        }
    }
}

/// `[log]`
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSection {
    /// `human` or `json`.
    pub format: LogFormat,
    /// Default level or filter directive.
    pub level: String,
}

/// `[telemetry]`: OpenTelemetry trace export (builds with the `otel` feature).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetrySection {
    /// OTLP/HTTP base URL of a collector (`http://host:4318`); empty: no export.
    pub otlp_endpoint: String,
    /// `service.name` of the exported resource.
    pub service_name: String,
}

impl TelemetrySection {
    /// Where spans are posted (`<otlp_endpoint>/v1/traces`), or `None` when export is off.
    pub fn traces_url(&self) -> Option<String> {
        let base = self.otlp_endpoint.trim();
        (!base.is_empty()).then(|| format!("{}/v1/traces", base.trim_end_matches('/')))
    }
}

/// The file as written (paths not yet resolved).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    data_dir: PathBuf,
    server: ServerSection,
    node: NodeSection,
    plugins: PluginsSection,
    policy: RawPolicySection,
    limits: LimitsSection,
    evidence: EvidenceSection,
    authority: AuthoritySection,
    operator: OperatorSection,
    log: LogSection,
    telemetry: TelemetrySection,
    process: ProcessPolicy,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicySection {
    file: PathBuf,
}

/// Lays `given` over `base`: tables merge key by key, any other value replaces the default.
fn overlay(base: &mut toml::Table, given: toml::Table) {
    for (key, value) in given {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(inner)), toml::Value::Table(value)) => overlay(inner, value),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

impl ServeConfig {
    /// Loads `path`, or the embedded defaults when `None`, and checks every value.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        match path {
            None => Self::parse(DEFAULT_CONFIG, None, Path::new(".")),
            Some(path) => {
                let text = read_limited(path)?;
                let base = match path.parent() {
                    Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
                    _ => PathBuf::from("."),
                };
                Self::parse(&text, Some(path), &base)
            }
        }
    }

    /// Parses config text; `source` names it, `base` is where relative paths start.
    pub fn parse(text: &str, source: Option<&Path>, base: &Path) -> Result<Self, ConfigError> {
        let file = source.map_or_else(|| EMBEDDED.to_owned(), |p| p.display().to_string());
        let syntax = |file: &str, e: toml::de::Error| ConfigError::Syntax {
            file: file.to_owned(),
            message: e.message().trim().to_owned(),
        };
        let mut merged: toml::Table =
            toml::from_str(DEFAULT_CONFIG).map_err(|e| syntax(EMBEDDED, e))?;
        let given: toml::Table = toml::from_str(text).map_err(|e| syntax(&file, e))?;
        overlay(&mut merged, given);
        let raw =
            RawConfig::deserialize(toml::Value::Table(merged)).map_err(|e| syntax(&file, e))?;
        check(&raw, &file)?;
        let data_dir = base.join(&raw.data_dir);
        let policy_file =
            (!raw.policy.file.as_os_str().is_empty()).then(|| base.join(&raw.policy.file));
        Ok(Self {
            source: source.map(Path::to_owned),
            server: raw.server,
            node: raw.node,
            plugins: PluginsSection {
                dir: base.join(&raw.plugins.dir),
                watch: raw.plugins.watch,
            },
            policy: PolicySection { file: policy_file },
            limits: raw.limits,
            evidence: EvidenceSection {
                dir: data_dir.join(&raw.evidence.dir),
                ..raw.evidence
            },
            authority: AuthoritySection {
                trust_store: data_dir.join(&raw.authority.trust_store),
                ..raw.authority
            },
            operator: OperatorSection {
                token_file: data_dir.join(&raw.operator.token_file),
            },
            log: raw.log,
            telemetry: raw.telemetry,
            process: ProcessPolicy {
                cwd: raw.process.cwd.iter().map(|dir| base.join(dir)).collect(),
                sandbox: SandboxPolicy {
                    read: raw
                        .process
                        .sandbox
                        .read
                        .iter()
                        .map(|p| base.join(p))
                        .collect(),
                    write: raw
                        .process
                        .sandbox
                        .write
                        .iter()
                        .map(|p| base.join(p))
                        .collect(),
                    devices: raw
                        .process
                        .sandbox
                        .devices
                        .iter()
                        .map(|p| base.join(p))
                        .collect(),
                    launcher: raw.process.sandbox.launcher.as_ref().map(|p| base.join(p)),
                    ..raw.process.sandbox.clone()
                },
                ..raw.process
            },
            data_dir,
        })
    }

    /// The wasm runtime of this host: `[limits]`, compiled lanes kept under
    /// `<data_dir>/compiled` so a restart does not compile them again.
    pub fn runtime_config(&self) -> RuntimeConfig {
        RuntimeConfig {
            compiled_dir: Some(self.data_dir.join(COMPILED_DIR)),
            ..self.limits.runtime_config()
        }
    }

    /// The same source read again (what a reload uses).
    pub fn reread(&self) -> Result<Self, ConfigError> {
        Self::load(self.source.as_deref())
    }
}

fn read_limited(path: &Path) -> Result<String, ConfigError> {
    let read = |source| ConfigError::Read {
        path: path.to_owned(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(read)?;
    if meta.len() > MAX_CONFIG_BYTES {
        return Err(ConfigError::Invalid {
            file: path.display().to_string(),
            key: "(file)",
            message: format!("is over the {MAX_CONFIG_BYTES}-byte limit"),
        });
    }
    std::fs::read_to_string(path).map_err(read)
}

/// Every value the service cannot use, refused with the key that holds it.
fn check(raw: &RawConfig, file: &str) -> Result<(), ConfigError> {
    let invalid = |key: &'static str, message: &str| {
        Err(ConfigError::Invalid {
            file: file.to_owned(),
            key,
            message: message.to_owned(),
        })
    };
    let s = &raw.server;
    if s.max_body_bytes == 0 {
        return invalid("server.max_body_bytes", "must be at least 1");
    }
    if s.max_header_bytes < 8192 {
        return invalid(
            "server.max_header_bytes",
            "must be at least 8192 (the HTTP/1.1 parser's smallest buffer)",
        );
    }
    if s.max_header_bytes > 1 << 24 {
        return invalid("server.max_header_bytes", "must be at most 16777216");
    }
    for (key, value) in [
        ("server.header_read_timeout_ms", s.header_read_timeout_ms),
        ("server.idle_timeout_ms", s.idle_timeout_ms),
        ("server.body_read_timeout_ms", s.body_read_timeout_ms),
        (
            "server.reserve_header_timeout_ms",
            s.reserve_header_timeout_ms,
        ),
    ] {
        if value == 0 {
            return invalid(key, "must be longer than 0 ms");
        }
    }
    if s.max_connections == 0 || s.max_connections > 1_000_000 {
        return invalid("server.max_connections", "must be between 1 and 1000000");
    }
    if s.reserve_connections > 10_000 {
        return invalid(
            "server.reserve_connections",
            "must be between 0 and 10000 (0: no reserve for health and the operator)",
        );
    }
    if raw.node.id.trim().is_empty() {
        return invalid("node.id", "must be a non-empty string");
    }
    if raw.data_dir.as_os_str().is_empty() {
        return invalid("data_dir", "must be a non-empty path");
    }
    let l = &raw.limits;
    if l.max_instances == 0 || l.max_instances > 10_000 {
        return invalid("limits.max_instances", "must be between 1 and 10000");
    }
    if l.max_memory_per_instance_mb == 0 || l.max_memory_per_instance_mb > 4096 {
        return invalid(
            "limits.max_memory_per_instance_mb",
            "must be between 1 and 4096",
        );
    }
    if l.epoch_tick_ms == 0 || l.epoch_tick_ms > 1000 {
        return invalid("limits.epoch_tick_ms", "must be between 1 and 1000");
    }
    let e = &raw.evidence;
    if e.sync_interval_ms == 0 || e.sync_interval_ms > 60_000 {
        return invalid("evidence.sync_interval_ms", "must be between 1 and 60000");
    }
    if e.queue_records == 0 || e.queue_records > 1_000_000 {
        return invalid("evidence.queue_records", "must be between 1 and 1000000");
    }
    if raw.log.level.trim().is_empty() {
        return invalid("log.level", "must name a level such as `info`");
    }
    check_telemetry(&raw.telemetry, file)
}

/// An export endpoint must be a plain `http://` collector address: the exporter is built without
/// TLS, so an `https://` endpoint would only fail at the first export, long after start.
fn check_telemetry(t: &TelemetrySection, file: &str) -> Result<(), ConfigError> {
    let invalid = |key: &'static str, message: String| {
        Err(ConfigError::Invalid {
            file: file.to_owned(),
            key,
            message,
        })
    };
    if t.service_name.trim().is_empty() {
        return invalid(
            "telemetry.service_name",
            "must be a non-empty string".into(),
        );
    }
    let Some(url) = t.traces_url() else {
        return Ok(());
    };
    let uri = match url.parse::<http::Uri>() {
        Ok(uri) => uri,
        Err(e) => {
            return invalid(
                "telemetry.otlp_endpoint",
                format!(
                    "is not a URL ({e}); write the collector's base URL, e.g. `http://127.0.0.1:4318`"
                ),
            );
        }
    };
    if uri.scheme_str() != Some("http") || uri.host().is_none_or(str::is_empty) {
        return invalid(
            "telemetry.otlp_endpoint",
            "must be an `http://host:port` collector address (OTLP/HTTP without TLS: run a \
             collector or agent next to the host and let it forward over TLS)"
                .into(),
        );
    }
    if uri.query().is_some() {
        return invalid(
            "telemetry.otlp_endpoint",
            "must not carry a query; `/v1/traces` is appended to it".into(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn embedded_defaults_parse_with_every_default() {
        let c = ServeConfig::load(None).unwrap();
        assert_eq!(c.server.listen.to_string(), "127.0.0.1:8787");
        assert_eq!(c.server.max_body_bytes, 1 << 20);
        assert_eq!(c.server.max_header_bytes, 16 << 10);
        assert_eq!(c.server.header_read_timeout_ms, 10_000);
        assert_eq!(c.server.idle_timeout_ms, 60_000);
        assert_eq!(c.server.max_connections, 1024);
        assert_eq!(c.server.body_read_timeout_ms, 30_000);
        assert_eq!(c.server.min_body_bytes_per_sec, 1024);
        assert_eq!(c.server.min_body_rate_grace_ms, 5_000);
        assert_eq!(c.server.reserve_connections, 16);
        assert_eq!(c.server.reserve_header_timeout_ms, 2_000);
        assert_eq!(c.server.drain_timeout_ms, 30_000);
        assert_eq!(c.node.id, "node-local");
        assert_eq!(c.data_dir, Path::new("./.execution-plane"));
        assert_eq!(c.evidence.dir, Path::new("./.execution-plane/evidence"));
        assert_eq!(c.plugins.dir, Path::new("./plugins"));
        assert!(c.plugins.watch);
        assert_eq!(c.policy.file, None);
        assert!(c.authority.dev_key);
        assert_eq!(c.log.format, LogFormat::Human);
        assert_eq!(c.limits.runtime_config(), RuntimeConfig::default());
    }

    #[test]
    fn relative_paths_resolve_against_the_file_directory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("serve.toml");
        std::fs::write(
            &path,
            DEFAULT_CONFIG.replace("file = \"\"", "file = \"policy.toml\""),
        )
        .unwrap();
        let c = ServeConfig::load(Some(&path)).unwrap();
        assert_eq!(c.policy.file, Some(dir.path().join("policy.toml")));
        assert_eq!(c.data_dir, dir.path().join(".execution-plane"));
        assert_eq!(
            c.operator.token_file,
            dir.path().join(".execution-plane/operator-token")
        );
        assert_eq!(c.source.as_deref(), Some(path.as_path()));
    }

    #[test]
    fn unknown_keys_are_refused_naming_the_file_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, DEFAULT_CONFIG.replace("[node]", "[node]\nidd = 1")).unwrap();
        let err = ServeConfig::load(Some(&path)).unwrap_err().to_string();
        assert!(err.contains("unknown field `idd`"), "{err}");
        assert!(err.starts_with(&path.display().to_string()), "{err}");
    }

    #[test]
    fn missing_keys_take_their_defaults() {
        let text = "[server]\nmax_body_bytes = 4096\n\n[node]\nid = \"edge-1\"\n";
        let config = ServeConfig::parse(text, None, Path::new(".")).unwrap();
        assert_eq!(config.server.max_body_bytes, 4096);
        assert_eq!(config.node.id, "edge-1");
        // Untouched keys, in a touched section and in others, keep the embedded defaults.
        assert_eq!(config.server.listen.to_string(), "127.0.0.1:8787");
        assert_eq!(config.server.drain_timeout_ms, 30_000);
        assert!(config.plugins.watch);
        let empty = ServeConfig::parse("", None, Path::new(".")).unwrap();
        assert_eq!(empty.server.max_body_bytes, 1 << 20);
    }

    #[test]
    fn evidence_durability_is_chosen_by_name_and_checked() {
        let c = ServeConfig::load(None).unwrap();
        assert_eq!(c.evidence.sync, EvidenceSync::Interval);
        assert_eq!(c.evidence.sync_interval_ms, 50);
        assert_eq!(c.evidence.queue_records, 16_384);
        let key = NodeKey::from_key_file(&ep_node::authority::SigningKeyFile::from_seed(
            "node-local",
            [3; 32],
        ))
        .unwrap();
        let options = c.evidence.sink_options(key.clone());
        assert_eq!(
            options.durability,
            Durability::Interval(Duration::from_millis(50))
        );
        assert_eq!(
            options.key.as_ref().map(NodeKey::key_id),
            Some("node-local")
        );
        let batch =
            ServeConfig::parse("[evidence]\nsync = \"batch\"\n", None, Path::new(".")).unwrap();
        assert_eq!(
            batch.evidence.sink_options(key).durability,
            Durability::Batch
        );
        for (text, says) in [
            (
                "[evidence]\nsync = \"sometimes\"\n",
                "unknown variant `sometimes`",
            ),
            (
                "[evidence]\nsync_interval_ms = 0\n",
                "evidence.sync_interval_ms must be between 1 and 60000",
            ),
            (
                "[evidence]\nqueue_records = 0\n",
                "evidence.queue_records must be between 1 and 1000000",
            ),
        ] {
            let err = ServeConfig::parse(text, None, Path::new("."))
                .unwrap_err()
                .to_string();
            assert!(err.contains(says), "{err}");
        }
    }

    #[test]
    fn a_mistyped_key_is_refused_even_in_a_partial_file() {
        let err = ServeConfig::parse("[server]\nmax_body_bytes = \"big\"\n", None, Path::new("."))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("max_body_bytes") || err.contains("invalid type"),
            "{err}"
        );
    }

    #[test]
    fn unusable_values_name_their_key() {
        let text = DEFAULT_CONFIG.replace("max_body_bytes = 1048576", "max_body_bytes = 0");
        let err = ServeConfig::parse(&text, None, Path::new("."))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("server.max_body_bytes must be at least 1"),
            "{err}"
        );
        for (text, says) in [
            (
                "[server]\nbody_read_timeout_ms = 0\n",
                "server.body_read_timeout_ms must be longer than 0 ms",
            ),
            (
                "[server]\nreserve_header_timeout_ms = 0\n",
                "server.reserve_header_timeout_ms must be longer than 0 ms",
            ),
            (
                "[server]\nreserve_connections = 10001\n",
                "server.reserve_connections must be between 0 and 10000",
            ),
        ] {
            let err = ServeConfig::parse(text, None, Path::new("."))
                .unwrap_err()
                .to_string();
            assert!(err.contains(says), "{err}");
        }
        let text = DEFAULT_CONFIG.replace("format = \"human\"", "format = \"xml\"");
        let err = ServeConfig::parse(&text, None, Path::new("."))
            .unwrap_err()
            .to_string();
        assert!(err.contains("xml"), "{err}");
    }

    #[test]
    fn telemetry_is_off_by_default_and_an_endpoint_must_be_plain_http() {
        let c = ServeConfig::load(None).unwrap();
        assert_eq!(c.telemetry.traces_url(), None);
        assert_eq!(c.telemetry.service_name, "execution-plane");
        let with = |endpoint: &str| {
            ServeConfig::parse(
                &format!("[telemetry]\notlp_endpoint = \"{endpoint}\"\n"),
                None,
                Path::new("."),
            )
        };
        let c = with("http://127.0.0.1:4318/").unwrap();
        assert_eq!(
            c.telemetry.traces_url().as_deref(),
            Some("http://127.0.0.1:4318/v1/traces")
        );
        let c = with("http://collector:4318/otlp").unwrap();
        assert_eq!(
            c.telemetry.traces_url().as_deref(),
            Some("http://collector:4318/otlp/v1/traces")
        );
        for (endpoint, says) in [
            ("https://collector:4318", "without TLS"),
            ("collector:4318", "not a URL"),
            ("ftp://collector:4318", "http://host:port"),
            ("http://", "not a URL"),
            ("http://c:4318/?key=1", "must not carry a query"),
            ("http://exa mple:4318", "not a URL"),
        ] {
            let err = with(endpoint).unwrap_err().to_string();
            assert!(err.contains("telemetry.otlp_endpoint"), "{endpoint}: {err}");
            assert!(err.contains(says), "{endpoint}: {err}");
        }
        let err = ServeConfig::parse("[telemetry]\nservice_name = \" \"\n", None, Path::new("."))
            .unwrap_err()
            .to_string();
        assert!(err.contains("telemetry.service_name"), "{err}");
    }
}
