//! The operator's [`HostPolicy`]: what each lane may be granted and the ceilings on its limits.
//!
//! ```toml
//! # Lanes without a section of their own. Omitted keys: events and logging allowed, limits
//! # as `LaneLimits::default()` (64 MiB, 600 000 ms, 16 concurrent; streams 300 000 ms and
//! # 100 000 events).
//! [default]
//! events = true
//! logging = false
//!
//! # One lane; omitted keys fall back to [default].
//! [lanes.example-echo]
//! logging = true
//! max_memory_mb = 16
//! timeout_ms = 5000
//! max_concurrency = 4
//! # Streams: a finite lifetime and event budget by default (300 000 ms, 100 000 events). A
//! # long-lived SSE or WebSocket lane asks for more in its manifest's [limits]; it gets it
//! # only up to these ceilings, which the operator raises here.
//! stream_lifetime_ms = 3600000
//! stream_events = 10000000
//!
//! # Outbound HTTP: URL patterns (none by default). `http_private` patterns may resolve to
//! # loopback / private / link-local addresses; `http` ones to public addresses only.
//! [lanes.http]
//! http = ["https://*.example.com", "http://127.0.0.1:*"]
//! http_private = ["http://svc.internal:8080"]
//!
//! # Local processes (ABI 0.2.0 `process`): the commands a lane may start (none by default),
//! # as names or absolute paths. The host's `[process]` policy checks each start again.
//! [lanes.lsp]
//! process = ["rust-analyzer", "/usr/local/bin/mcp-server"]
//! ```
//!
//! Effective grant = manifest request ∩ policy: a boolean grant the manifest asks for and the
//! policy denies refuses the plugin (naming the grant); URL patterns are intersected, and a
//! manifest whose patterns share nothing with the policy's is refused; process commands likewise
//! (the commands both name, compared as written); a grant the manifest does not ask for is never
//! linked. Effective limits = the smaller of manifest and policy for each limit: the operator
//! can lower a lane's limits, never raise them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use thiserror::Error;

use crate::egress::HttpGrants;
use crate::grants::Grants;
use crate::limits::LaneLimits;
use crate::manifest::{LaneManifest, LimitRequest, one_line};

/// A manifest's `[grants] process` entry asking for every command the operator allows the lane.
pub const ANY_COMMAND: &str = "*";
/// Largest policy file read, in bytes.
pub const MAX_POLICY_BYTES: u64 = 1 << 20;

/// What the operator allows one lane: grants and limit ceilings, all resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LanePolicy {
    /// `execution-plane:lane/events` may be linked.
    pub events: bool,
    /// `execution-plane:lane/logging` may be linked.
    pub logging: bool,
    /// `wasi:filesystem` (with no directory preopened) may be linked.
    pub filesystem: bool,
    /// `wasi:sockets` (every socket refused) may be linked.
    pub sockets: bool,
    /// The URL patterns outbound HTTP may reach (none by default).
    pub http: HttpGrants,
    /// The commands the lane may start (none by default).
    pub process: Vec<String>,
    /// Ceiling on the instance's memories and tables, in MiB.
    pub max_memory_mb: u64,
    /// Ceiling on one execution's deadline, in milliseconds.
    pub timeout_ms: u64,
    /// Ceiling on concurrent executions of the lane.
    pub max_concurrency: u64,
    /// Ceiling on one stream's event budget.
    pub stream_events: u64,
    /// Ceiling on one stream's lifetime, in milliseconds.
    pub stream_lifetime_ms: u64,
}

impl Default for LanePolicy {
    /// Events and logging allowed; the ceilings of [`LaneLimits::default()`].
    fn default() -> Self {
        let limits = LaneLimits::default();
        Self {
            events: true,
            logging: true,
            filesystem: true,
            sockets: true,
            http: HttpGrants::default(),
            process: Vec::new(),
            max_memory_mb: (limits.max_memory_bytes >> 20) as u64,
            timeout_ms: u64::try_from(limits.max_timeout.as_millis()).unwrap_or(u64::MAX),
            max_concurrency: limits.max_concurrent as u64,
            stream_events: limits.max_stream_events,
            stream_lifetime_ms: u64::try_from(limits.max_stream_lifetime.as_millis())
                .unwrap_or(u64::MAX),
        }
    }
}

/// The operator's policy: a `[default]` for unlisted lanes and `[lanes.<lane_id>]` sections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPolicy {
    source: String,
    default: LanePolicy,
    lanes: BTreeMap<String, LanePolicy>,
}

impl Default for HostPolicy {
    /// The built-in policy: every lane gets [`LanePolicy::default()`].
    fn default() -> Self {
        Self {
            source: "the built-in default policy".to_owned(),
            default: LanePolicy::default(),
            lanes: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    #[serde(default)]
    default: RawLanePolicy,
    #[serde(default)]
    lanes: BTreeMap<String, RawLanePolicy>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLanePolicy {
    events: Option<bool>,
    logging: Option<bool>,
    filesystem: Option<bool>,
    sockets: Option<bool>,
    http: Option<Vec<String>>,
    http_private: Option<Vec<String>>,
    process: Option<Vec<String>>,
    max_memory_mb: Option<u64>,
    timeout_ms: Option<u64>,
    max_concurrency: Option<u64>,
    stream_events: Option<u64>,
    stream_lifetime_ms: Option<u64>,
}

impl RawLanePolicy {
    fn limits(&self) -> LimitRequest {
        LimitRequest {
            max_memory_mb: self.max_memory_mb,
            timeout_ms: self.timeout_ms,
            max_concurrency: self.max_concurrency,
            stream_events: self.stream_events,
            stream_lifetime_ms: self.stream_lifetime_ms,
        }
    }

    fn over(self, base: &LanePolicy) -> Result<LanePolicy, RawError> {
        let http = if self.http.is_none() && self.http_private.is_none() {
            base.http.clone()
        } else {
            HttpGrants::parse(
                self.http.as_deref().unwrap_or_default(),
                self.http_private.as_deref().unwrap_or_default(),
            )?
        };
        let process = match &self.process {
            None => base.process.clone(),
            Some(commands) => {
                crate::capability::process::commands(commands).map_err(RawError::Process)?
            }
        };
        Ok(LanePolicy {
            events: self.events.unwrap_or(base.events),
            logging: self.logging.unwrap_or(base.logging),
            filesystem: self.filesystem.unwrap_or(base.filesystem),
            sockets: self.sockets.unwrap_or(base.sockets),
            http,
            process,
            max_memory_mb: self.max_memory_mb.unwrap_or(base.max_memory_mb),
            timeout_ms: self.timeout_ms.unwrap_or(base.timeout_ms),
            max_concurrency: self.max_concurrency.unwrap_or(base.max_concurrency),
            stream_events: self.stream_events.unwrap_or(base.stream_events),
            stream_lifetime_ms: self.stream_lifetime_ms.unwrap_or(base.stream_lifetime_ms),
        })
    }
}

/// Why a policy section does not read.
enum RawError {
    Pattern(crate::egress::PatternError),
    Process(String),
}

impl From<crate::egress::PatternError> for RawError {
    fn from(error: crate::egress::PatternError) -> Self {
        Self::Pattern(error)
    }
}

/// A policy could not be loaded, or refuses what a manifest asks for.
#[derive(Debug, Error)]
pub enum PolicyError {
    /// The policy file could not be read.
    #[error("cannot read lane policy {path}: {source}")]
    Read {
        /// The policy file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The policy file is larger than [`MAX_POLICY_BYTES`].
    #[error("lane policy {path} is over the {limit}-byte limit")]
    TooLarge {
        /// The policy file.
        path: PathBuf,
        /// The cap.
        limit: u64,
    },
    /// Not TOML, an unknown key or a value of the wrong type.
    #[error(
        "lane policy {source_name}: {message}; fix the policy (keys: [default] and \
         [lanes.<lane_id>] with events, logging, max_memory_mb, timeout_ms, max_concurrency, \
         stream_events, stream_lifetime_ms)"
    )]
    Syntax {
        /// The policy file.
        source_name: String,
        /// The TOML parser's message (names the key and the line).
        message: String,
    },
    /// A limit is zero.
    #[error(
        "lane policy {source_name}: `{key}` in [{section}] is 0; use a positive value or omit it"
    )]
    ZeroLimit {
        /// The policy file.
        source_name: String,
        /// `default` or `lanes.<lane_id>`.
        section: String,
        /// The key.
        key: &'static str,
    },
    /// The manifest asks for a grant the policy denies.
    #[error(
        "lane {lane_id:?} asks for the `{grant}` grant but {source_name} denies it; widen the \
         policy ([lanes.{lane_id}] {grant} = true) or remove `{grant}` from the manifest's [grants]"
    )]
    GrantDenied {
        /// The lane.
        lane_id: String,
        /// `events` or `logging`.
        grant: &'static str,
        /// Where the policy came from.
        source_name: String,
    },
    /// The manifest's URL patterns share nothing with the policy's.
    #[error("{0}")]
    HttpDenied(Box<HttpDenial>),
    /// A URL pattern in the policy is invalid.
    #[error("lane policy {source_name}: [{section}] {error}")]
    InvalidPattern {
        /// The policy file.
        source_name: String,
        /// `default` or `lanes.<lane_id>`.
        section: String,
        /// The pattern error.
        error: Box<crate::egress::PatternError>,
    },
    /// A `process` command in the policy is invalid.
    #[error("lane policy {source_name}: [{section}] `process` {problem}")]
    InvalidCommand {
        /// The policy file.
        source_name: String,
        /// `default` or `lanes.<lane_id>`.
        section: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The manifest's process commands share nothing with the policy's.
    #[error(
        "lane {lane_id:?} asks to start {asked} but {source_name} allows it {allowed}; widen the \
         policy ([lanes.{lane_id}] process = [\"command\", ...]) or narrow the manifest's [grants] \
         process"
    )]
    ProcessDenied {
        /// The lane.
        lane_id: String,
        /// The manifest's commands.
        asked: String,
        /// The policy's commands.
        allowed: String,
        /// Where the policy came from.
        source_name: String,
    },
}

/// Why a lane's outbound HTTP request was refused by the policy.
#[derive(Debug, Error)]
#[error(
    "lane {lane_id:?} asks for outbound http to {asked} but {source_name} allows it {allowed}; \
     widen the policy ([lanes.{lane_id}] http = [\"scheme://host[:port][/prefix]\", ...]) or \
     narrow the manifest's [grants] http"
)]
pub struct HttpDenial {
    /// The lane.
    pub lane_id: String,
    /// The manifest's patterns.
    pub asked: String,
    /// The policy's patterns.
    pub allowed: String,
    /// Where the policy came from.
    pub source_name: String,
}

/// The grants and limits a lane plugin gets: its manifest narrowed by the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effective {
    /// What is linked.
    pub grants: Grants,
    /// What every execution runs under.
    pub limits: LaneLimits,
}

impl HostPolicy {
    /// Reads the policy file at `path`.
    pub fn load(path: &Path) -> Result<Self, PolicyError> {
        let read = |source| PolicyError::Read {
            path: path.to_owned(),
            source,
        };
        let size = std::fs::metadata(path).map_err(read)?.len();
        if size > MAX_POLICY_BYTES {
            return Err(PolicyError::TooLarge {
                path: path.to_owned(),
                limit: MAX_POLICY_BYTES,
            });
        }
        let text = std::fs::read_to_string(path).map_err(read)?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses policy `text`; `source_name` names it in errors.
    pub fn parse(text: &str, source_name: &str) -> Result<Self, PolicyError> {
        let raw: RawPolicy = toml::from_str(text).map_err(|e| PolicyError::Syntax {
            source_name: source_name.to_owned(),
            message: one_line(&e.to_string()),
        })?;
        let zero = |section: &str, raw: &RawLanePolicy| match raw.limits().zero_key() {
            Some(key) => Err(PolicyError::ZeroLimit {
                source_name: source_name.to_owned(),
                section: section.to_owned(),
                key,
            }),
            None => Ok(()),
        };
        let pattern = |section: &str| {
            let section = section.to_owned();
            move |error| match error {
                RawError::Pattern(error) => PolicyError::InvalidPattern {
                    source_name: source_name.to_owned(),
                    section,
                    error: Box::new(error),
                },
                RawError::Process(problem) => PolicyError::InvalidCommand {
                    source_name: source_name.to_owned(),
                    section,
                    problem,
                },
            }
        };
        zero("default", &raw.default)?;
        let default = raw
            .default
            .over(&LanePolicy::default())
            .map_err(pattern("default"))?;
        let mut lanes = BTreeMap::new();
        for (lane_id, section) in raw.lanes {
            let name = format!("lanes.{lane_id}");
            zero(&name, &section)?;
            let policy = section.over(&default).map_err(pattern(&name))?;
            lanes.insert(lane_id, policy);
        }
        Ok(Self {
            source: source_name.to_owned(),
            default,
            lanes,
        })
    }

    /// Where the policy came from (a path, or the built-in default).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The policy for `lane_id`: its own section, else `[default]`.
    pub fn for_lane(&self, lane_id: &str) -> LanePolicy {
        self.lanes
            .get(lane_id)
            .cloned()
            .unwrap_or_else(|| self.default.clone())
    }

    /// Adds `http` to what `lane_id` may reach (on top of its section or `[default]`), for an
    /// operator's command-line grant.
    pub fn grant_http(&mut self, lane_id: &str, http: &HttpGrants) {
        let mut lane = self.for_lane(lane_id);
        lane.http.public.extend(http.public.iter().cloned());
        lane.http.private.extend(http.private.iter().cloned());
        lane.http = lane.http.normalized();
        self.lanes.insert(lane_id.to_owned(), lane);
    }

    /// Adds `commands` to what lane `lane_id` may start (`exec --allow-command`: a grant for one
    /// run, on top of the policy file's).
    pub fn grant_process(&mut self, lane_id: &str, commands: &[String]) {
        let mut lane = self.for_lane(lane_id);
        for command in commands {
            if !lane.process.contains(command) {
                lane.process.push(command.clone());
            }
        }
        self.lanes.insert(lane_id.to_owned(), lane);
    }

    /// The manifest's request narrowed by this policy, or the first grant it asks for that the
    /// policy denies.
    pub fn effective(&self, manifest: &LaneManifest) -> Result<Effective, PolicyError> {
        let policy = self.for_lane(&manifest.lane_id);
        let denied = |grant| PolicyError::GrantDenied {
            lane_id: manifest.lane_id.clone(),
            grant,
            source_name: self.source.clone(),
        };
        if manifest.grants.events && !policy.events {
            return Err(denied("events"));
        }
        if manifest.grants.logging && !policy.logging {
            return Err(denied("logging"));
        }
        if manifest.grants.filesystem && !policy.filesystem {
            return Err(denied("filesystem"));
        }
        if manifest.grants.sockets && !policy.sockets {
            return Err(denied("sockets"));
        }
        let http = manifest.grants.http.intersect(&policy.http);
        let optional = |key: &str| manifest.grants.optional.iter().any(|o| o == key);
        if !manifest.grants.http.is_empty() && http.is_empty() && !optional("http") {
            return Err(PolicyError::HttpDenied(Box::new(HttpDenial {
                lane_id: manifest.lane_id.clone(),
                asked: manifest.grants.http.to_string(),
                allowed: policy.http.to_string(),
                source_name: self.source.clone(),
            })));
        }
        if http != manifest.grants.http {
            tracing::info!(
                lane_id = manifest.lane_id,
                asked = %manifest.grants.http,
                effective = %http,
                "outbound http grant narrowed by the host policy"
            );
        }
        let process = self.effective_process(manifest, &policy)?;
        let cap = |asked: Option<u64>, ceiling: u64| asked.map_or(ceiling, |v| v.min(ceiling));
        let memory_mb = cap(manifest.limits.max_memory_mb, policy.max_memory_mb);
        let timeout_ms = cap(manifest.limits.timeout_ms, policy.timeout_ms);
        let concurrency = cap(manifest.limits.max_concurrency, policy.max_concurrency);
        // Stream limits: the finite default unless the manifest asks, never above the ceiling.
        let defaults = LaneLimits::default();
        let stream_events = manifest
            .limits
            .stream_events
            .unwrap_or(defaults.max_stream_events)
            .min(policy.stream_events);
        let default_lifetime =
            u64::try_from(defaults.max_stream_lifetime.as_millis()).unwrap_or(u64::MAX);
        let stream_lifetime_ms = manifest
            .limits
            .stream_lifetime_ms
            .unwrap_or(default_lifetime)
            .min(policy.stream_lifetime_ms);
        let mut limits = LaneLimits {
            max_stream_events: stream_events,
            max_stream_lifetime: Duration::from_millis(stream_lifetime_ms),
            max_memory_bytes: usize::try_from(memory_mb)
                .ok()
                .and_then(|mb| mb.checked_mul(1 << 20))
                .unwrap_or(usize::MAX),
            max_timeout: Duration::from_millis(timeout_ms),
            max_concurrent: usize::try_from(concurrency).unwrap_or(usize::MAX),
            ..LaneLimits::default()
        };
        limits.default_timeout = limits.default_timeout.min(limits.max_timeout);
        limits.validate_timeout = limits.validate_timeout.min(limits.max_timeout);
        Ok(Effective {
            grants: Grants {
                http,
                process,
                ..manifest.grants.clone()
            },
            limits,
        })
    }

    /// The manifest's commands the policy names too (all the policy names, for a manifest's
    /// `"*"`); refused when it asks for some and the policy allows none of them.
    fn effective_process(
        &self,
        manifest: &LaneManifest,
        policy: &LanePolicy,
    ) -> Result<Vec<String>, PolicyError> {
        let asked = &manifest.grants.process;
        // `"*"` in a manifest asks for whatever the operator names for the lane (a generic
        // lane, like `jsonrpc`, cannot know the commands); the policy itself is never a
        // wildcard: an operator names each command.
        let any = asked.iter().any(|command| command == ANY_COMMAND);
        let process: Vec<String> = if any {
            policy
                .process
                .iter()
                .filter(|command| command.as_str() != ANY_COMMAND)
                .cloned()
                .collect()
        } else {
            asked
                .iter()
                .filter(|command| policy.process.contains(command))
                .cloned()
                .collect()
        };
        let list = |commands: &[String]| match commands {
            [] => "(none)".to_owned(),
            commands => commands.join(", "),
        };
        let optional = manifest.grants.optional.iter().any(|o| o == "process");
        if !asked.is_empty() && process.is_empty() && !optional {
            return Err(PolicyError::ProcessDenied {
                lane_id: manifest.lane_id.clone(),
                asked: list(asked),
                allowed: list(&policy.process),
                source_name: self.source.clone(),
            });
        }
        if process.len() != asked.len() {
            tracing::info!(
                lane_id = manifest.lane_id,
                asked = list(asked),
                effective = list(&process),
                "process grant narrowed by the host policy"
            );
        }
        Ok(process)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn manifest(extra: &str) -> LaneManifest {
        let text = format!(
            "lane_id = \"echo\"\nversion = \"0.1.0\"\n\
             wit_version = \"execution-plane:lane@0.1.0\"\n{extra}"
        );
        LaneManifest::parse(&text, Path::new("echo.toml")).unwrap()
    }

    #[test]
    fn the_default_policy_allows_both_grants_with_default_ceilings() {
        let policy = HostPolicy::default();
        let e = policy
            .effective(&manifest("[grants]\nevents = true\nlogging = true\n"))
            .unwrap();
        assert_eq!(e.grants, Grants::default());
        assert_eq!(e.limits, LaneLimits::default());
    }

    #[test]
    fn lane_sections_fall_back_to_default() {
        let policy = HostPolicy::parse(
            "[default]\nlogging = false\nmax_memory_mb = 8\n[lanes.echo]\ntimeout_ms = 100\n",
            "p.toml",
        )
        .unwrap();
        let lane = policy.for_lane("echo");
        assert!(lane.events && !lane.logging);
        assert_eq!((lane.max_memory_mb, lane.timeout_ms), (8, 100));
        assert_eq!(policy.for_lane("other").timeout_ms, 600_000);
    }

    #[test]
    fn streams_are_finite_unless_the_manifest_asks_and_the_operator_grants_more() {
        let asks = "[limits]\nstream_lifetime_ms = 86400000\nstream_events = 1000000000\n";
        // On the default policy, asking for more still gets the finite defaults.
        let e = HostPolicy::default().effective(&manifest(asks)).unwrap();
        assert_eq!(
            e.limits.max_stream_events,
            crate::limits::DEFAULT_STREAM_EVENTS
        );
        assert_eq!(
            e.limits.max_stream_lifetime,
            crate::limits::DEFAULT_STREAM_LIFETIME
        );
        // The operator raises the ceilings: the lane gets what it asked for, up to them.
        let policy = HostPolicy::parse(
            "[lanes.echo]\nstream_lifetime_ms = 3600000\nstream_events = 2000000000\n",
            "p.toml",
        )
        .unwrap();
        let e = policy.effective(&manifest(asks)).unwrap();
        assert_eq!(e.limits.max_stream_lifetime, Duration::from_secs(3600));
        assert_eq!(e.limits.max_stream_events, 1_000_000_000);
        // A lane that asks for nothing keeps the defaults even under raised ceilings.
        let e = policy.effective(&manifest("")).unwrap();
        assert_eq!(
            e.limits.max_stream_events,
            crate::limits::DEFAULT_STREAM_EVENTS
        );
        // Zero is refused, like every limit.
        let err = HostPolicy::parse("[default]\nstream_events = 0\n", "p.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("`stream_events` in [default]"), "{err}");
    }

    #[test]
    fn limits_take_the_smaller_of_manifest_and_policy() {
        let policy = HostPolicy::parse(
            "[lanes.echo]\nmax_memory_mb = 16\ntimeout_ms = 9000\nmax_concurrency = 2\n",
            "p.toml",
        )
        .unwrap();
        let e = policy
            .effective(&manifest(
                "[limits]\nmax_memory_mb = 64\ntimeout_ms = 5000\nmax_concurrency = 8\n",
            ))
            .unwrap();
        assert_eq!(e.limits.max_memory_bytes, 16 << 20);
        assert_eq!(e.limits.max_timeout, Duration::from_millis(5000));
        assert_eq!(e.limits.default_timeout, Duration::from_millis(5000));
        assert_eq!(e.limits.max_concurrent, 2);
        assert_eq!(e.grants, Grants::none());
    }

    #[test]
    fn a_denied_grant_is_named() {
        let policy = HostPolicy::parse("[lanes.echo]\nevents = false\n", "p.toml").unwrap();
        let err = policy
            .effective(&manifest("[grants]\nevents = true\n"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`events` grant") && err.contains("p.toml"),
            "{err}"
        );
        // Not asking for it is fine.
        assert!(policy.effective(&manifest("")).is_ok());
        // The filesystem (nothing preopened) is allowed unless the operator says no.
        let asks = manifest("[grants]\nfilesystem = true\n");
        assert!(
            HostPolicy::default()
                .effective(&asks)
                .unwrap()
                .grants
                .filesystem
        );
        let no = HostPolicy::parse("[lanes.echo]\nfilesystem = false\n", "p.toml").unwrap();
        let err = no.effective(&asks).unwrap_err().to_string();
        assert!(err.contains("`filesystem` grant"), "{err}");
    }

    #[test]
    fn http_patterns_are_intersected_and_refused_when_disjoint() {
        let asks = "[grants]\nhttp = [\"https://*:*\", \"http://*:*\"]\n";
        // Deny unless granted: the default policy reaches nothing.
        let err = HostPolicy::default()
            .effective(&manifest(asks))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("outbound http") && err.contains("(none)"),
            "{err}"
        );
        let policy = HostPolicy::parse(
            "[lanes.echo]\nhttp = [\"https://api.example.com/v1\", \"http://127.0.0.1:*\"]\n",
            "p.toml",
        )
        .unwrap();
        let e = policy.effective(&manifest(asks)).unwrap();
        assert_eq!(
            e.grants.http.to_string(),
            "http://127.0.0.1:*, https://api.example.com/v1"
        );
        let err = policy
            .effective(&manifest("[grants]\nhttp = [\"https://other.test\"]\n"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("https://other.test") && err.contains("p.toml"),
            "{err}"
        );
        // A private grant survives only where the policy grants it as private too.
        let policy = HostPolicy::parse(
            "[lanes.echo]\nhttp_private = [\"http://svc.internal:8080\"]\n",
            "p.toml",
        )
        .unwrap();
        let e = policy
            .effective(&manifest("[grants]\nhttp_private = [\"http://*:*\"]\n"))
            .unwrap();
        assert_eq!(
            e.grants.http.to_string(),
            "http://svc.internal:8080 (private)"
        );
    }

    #[test]
    fn process_commands_are_intersected_and_refused_when_disjoint() {
        let asks = "[grants]\nprocess = [\"cat\", \"rust-analyzer\"]\n";
        // Deny unless granted: the default policy starts nothing.
        let err = HostPolicy::default()
            .effective(&manifest(asks))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("asks to start cat, rust-analyzer")
                && err.contains("(none)")
                && err.contains("[lanes.echo] process"),
            "{err}"
        );
        let policy =
            HostPolicy::parse("[lanes.echo]\nprocess = [\"cat\", \"sh\"]\n", "p.toml").unwrap();
        let e = policy.effective(&manifest(asks)).unwrap();
        assert_eq!(e.grants.process, ["cat"]);
        // A lane that asks for nothing gets nothing, whatever the policy allows.
        assert!(
            policy
                .effective(&manifest(""))
                .unwrap()
                .grants
                .process
                .is_empty()
        );
        let err = HostPolicy::parse("[lanes.echo]\nprocess = [\"./x\"]\n", "p.toml")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("[lanes.echo] `process`") && err.contains("./x"),
            "{err}"
        );
    }

    #[test]
    fn optional_grants_the_policy_leaves_empty_load_the_lane_with_nothing() {
        let asks = manifest(
            "[grants]\nhttp = [\"http://*:*\"]\nprocess = [\"*\"]\noptional = [\"http\", \"process\"]\n",
        );
        let e = HostPolicy::default().effective(&asks).unwrap();
        assert!(e.grants.http.is_empty() && e.grants.process.is_empty());
        assert_eq!(e.grants.optional, ["http", "process"]);
        // Not optional: refused as before.
        let strict = manifest("[grants]\nhttp = [\"http://*:*\"]\n");
        assert!(HostPolicy::default().effective(&strict).is_err());
    }

    #[test]
    fn a_manifests_wildcard_gets_exactly_the_commands_the_operator_names() {
        let asks = manifest("[grants]\nprocess = [\"*\"]\n");
        assert!(
            HostPolicy::default().effective(&asks).is_err(),
            "deny unless granted"
        );
        let policy = HostPolicy::parse(
            "[lanes.echo]\nprocess = [\"cat\", \"/usr/bin/env\"]\n",
            "p.toml",
        )
        .unwrap();
        let e = policy.effective(&asks).unwrap();
        assert_eq!(e.grants.process, ["cat", "/usr/bin/env"]);
    }

    #[test]
    fn command_line_http_grants_add_to_a_lane_policy() {
        let mut policy = HostPolicy::default();
        let asks = manifest("[grants]\nhttp = [\"http://*:*\"]\n");
        assert!(policy.effective(&asks).is_err());
        policy.grant_http(
            "echo",
            &HttpGrants::parse(&["http://127.0.0.1:8080"], &[] as &[&str]).unwrap(),
        );
        let e = policy.effective(&asks).unwrap();
        assert_eq!(e.grants.http.to_string(), "http://127.0.0.1:8080");
        assert!(policy.for_lane("other").http.is_empty());
    }

    #[test]
    fn unknown_keys_and_zero_limits_are_refused() {
        let err = HostPolicy::parse("[lanes.echo]\nnetwork = true\n", "p.toml")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("unknown field") && err.contains("network"),
            "{err}"
        );
        let err = HostPolicy::parse("[lanes.echo]\nhttp = true\n", "p.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("http"), "{err}");
        let err = HostPolicy::parse("[lanes.echo]\nhttp = [\"ftp://x\"]\n", "p.toml")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("[lanes.echo]") && err.contains("ftp://x"),
            "{err}"
        );
        let err = HostPolicy::parse("[default]\nmax_concurrency = 0\n", "p.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("`max_concurrency` in [default]"), "{err}");
    }
}
