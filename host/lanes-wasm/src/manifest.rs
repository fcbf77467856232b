//! Lane plugin manifests: `<name>.toml` beside `<name>.wasm` (format documented, key by key, in
//! `examples/echo-lane/example-echo.toml`). A manifest is a request: the host narrows its
//! grants and limits by the operator's [`crate::policy::HostPolicy`]. Keys are exact: an
//! unknown key is an error, never a silently missing grant or limit.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use thiserror::Error;

use crate::egress::HttpGrants;
use crate::grants::Grants;

/// The WIT package (and version) of the current lane ABI; the host also loads components of
/// every version in [`crate::AbiVersion::ALL`] (0.1.0).
pub const WIT_PACKAGE: &str = "execution-plane:lane@0.2.0";

/// Largest manifest file read, in bytes (a manifest is a few hundred bytes).
pub const MAX_MANIFEST_BYTES: u64 = 64 << 10;

/// A parsed, checked lane plugin manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaneManifest {
    /// The lane id; must equal the id the component's `capabilities()` reports.
    pub lane_id: String,
    /// The plugin's own version.
    pub version: semver::Version,
    /// The WIT package the component targets: one of [`crate::AbiVersion::ALL`]'s once parsed.
    pub wit_version: String,
    /// The host imports the lane asks for (`[grants]`, omitted = `false`).
    pub grants: Grants,
    /// The limits the lane asks for (`[limits]`, each optional).
    pub limits: LimitRequest,
}

/// Optional per-lane limits, as a manifest asks for them or a policy caps them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitRequest {
    /// Ceiling on the instance's memories and tables, in MiB.
    pub max_memory_mb: Option<u64>,
    /// Longest one execution may run, in milliseconds.
    pub timeout_ms: Option<u64>,
    /// Executions (including open streams) of the lane at once.
    pub max_concurrency: Option<u64>,
    /// Events one stream may yield in all (default 100 000; more needs the policy's ceiling).
    pub stream_events: Option<u64>,
    /// Longest one stream may live, in milliseconds (default 300 000; more needs the policy's
    /// ceiling).
    pub stream_lifetime_ms: Option<u64>,
}

impl LimitRequest {
    /// The first limit set to zero, by key name.
    pub(crate) fn zero_key(&self) -> Option<&'static str> {
        [
            ("max_memory_mb", self.max_memory_mb),
            ("timeout_ms", self.timeout_ms),
            ("max_concurrency", self.max_concurrency),
            ("stream_events", self.stream_events),
            ("stream_lifetime_ms", self.stream_lifetime_ms),
        ]
        .into_iter()
        .find(|(_, value)| *value == Some(0))
        .map(|(key, _)| key)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    lane_id: String,
    version: String,
    wit_version: String,
    #[serde(default)]
    grants: RawGrants,
    #[serde(default)]
    limits: LimitRequest,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGrants {
    #[serde(default)]
    events: bool,
    #[serde(default)]
    logging: bool,
    /// URL patterns restricted to public addresses.
    #[serde(default)]
    http: Vec<String>,
    /// URL patterns whose names may resolve to private ranges.
    #[serde(default)]
    http_private: Vec<String>,
    /// `wasi:filesystem` (no directory preopened).
    #[serde(default)]
    filesystem: bool,
    /// `wasi:sockets` (every socket refused).
    #[serde(default)]
    sockets: bool,
    /// Commands the lane may start (names or absolute paths).
    #[serde(default)]
    process: Vec<String>,
    /// Grants the lane runs without (`http`, `process`).
    #[serde(default)]
    optional: Vec<String>,
}

/// A manifest could not be read or is not valid; the message names the file, the key and what
/// to do.
#[derive(Debug, Error)]
pub enum ManifestError {
    /// The file could not be read.
    #[error("cannot read lane manifest {path}: {source}")]
    Read {
        /// The manifest file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_MANIFEST_BYTES`].
    #[error("lane manifest {path} is over the {limit}-byte limit; a manifest is a few keys")]
    TooLarge {
        /// The manifest file.
        path: PathBuf,
        /// The cap.
        limit: u64,
    },
    /// Not TOML, an unknown key, a missing key or a value of the wrong type.
    #[error(
        "lane manifest {path}: {message}; fix the manifest (format and keys: \
         examples/echo-lane/example-echo.toml)"
    )]
    Syntax {
        /// The manifest file.
        path: PathBuf,
        /// The TOML parser's message (names the key and the line).
        message: String,
    },
    /// A key's value is out of range.
    #[error("lane manifest {path}: `{key}` {problem}")]
    InvalidValue {
        /// The manifest file.
        path: PathBuf,
        /// The key.
        key: &'static str,
        /// What is wrong and what to do.
        problem: String,
    },
    /// The component targets a lane ABI this host does not implement.
    #[error(
        "lane manifest {path}: `wit_version` is {found:?} but this host implements {expected:?} \
         (and still loads execution-plane:lane@0.1.0); rebuild the lane against {expected} and \
         set `wit_version = \"{expected}\"`"
    )]
    WitVersion {
        /// The manifest file.
        path: PathBuf,
        /// The manifest's value.
        found: String,
        /// [`WIT_PACKAGE`].
        expected: &'static str,
    },
}

impl LaneManifest {
    /// Reads and checks the manifest file at `path`.
    pub fn load(path: &Path) -> Result<Self, ManifestError> {
        Self::load_with_text(path).map(|(manifest, _)| manifest)
    }

    /// Reads and checks the manifest file at `path`, and returns its text too (kept with a
    /// generation a rollback may restore after a restart).
    pub(crate) fn load_with_text(path: &Path) -> Result<(Self, String), ManifestError> {
        let read = |source| ManifestError::Read {
            path: path.to_owned(),
            source,
        };
        let size = std::fs::metadata(path).map_err(read)?.len();
        if size > MAX_MANIFEST_BYTES {
            return Err(ManifestError::TooLarge {
                path: path.to_owned(),
                limit: MAX_MANIFEST_BYTES,
            });
        }
        let text = std::fs::read_to_string(path).map_err(read)?;
        let manifest = Self::parse(&text, path)?;
        Ok((manifest, text))
    }

    /// Parses and checks manifest `text`; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ManifestError> {
        let raw: RawManifest = toml::from_str(text).map_err(|e| ManifestError::Syntax {
            path: path.to_owned(),
            message: one_line(&e.to_string()),
        })?;
        let invalid = |key: &'static str, problem: String| ManifestError::InvalidValue {
            path: path.to_owned(),
            key,
            problem,
        };
        if raw.lane_id.trim().is_empty() {
            return Err(invalid(
                "lane_id",
                "is empty; set it to the id the component's capabilities() reports".to_owned(),
            ));
        }
        let version = semver::Version::parse(&raw.version).map_err(|e| {
            invalid(
                "version",
                format!(
                    "{:?} is not a semver version ({e}); use MAJOR.MINOR.PATCH, e.g. \"0.1.0\"",
                    raw.version
                ),
            )
        })?;
        if crate::AbiVersion::from_package(&raw.wit_version).is_none() {
            return Err(ManifestError::WitVersion {
                path: path.to_owned(),
                found: raw.wit_version,
                expected: WIT_PACKAGE,
            });
        }
        if let Some(key) = raw.limits.zero_key() {
            return Err(invalid(
                key,
                "in [limits] is 0; use a positive value or omit the key".to_owned(),
            ));
        }
        let http = HttpGrants::parse(&raw.grants.http, &raw.grants.http_private)
            .map_err(|e| invalid("grants.http", format!("holds an invalid pattern: {e}")))?;
        let process = crate::capability::process::commands(&raw.grants.process)
            .map_err(|problem| invalid("grants.process", problem))?;
        Ok(Self {
            lane_id: raw.lane_id,
            version,
            wit_version: raw.wit_version,
            grants: Grants {
                events: raw.grants.events,
                logging: raw.grants.logging,
                http,
                filesystem: raw.grants.filesystem,
                sockets: raw.grants.sockets,
                process,
                optional: optional(&raw.grants.optional)
                    .map_err(|problem| invalid("grants.optional", problem))?,
            },
            limits: raw.limits,
        })
    }

    /// The manifest path of a component: `<same stem>.toml` beside the `.wasm`.
    pub fn path_for(wasm_path: &Path) -> PathBuf {
        wasm_path.with_extension("toml")
    }
}

/// The TOML error's text on one line (it spans several, with a source excerpt).
pub(crate) fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The grants a manifest may mark optional: those a lane can be left without and still run
/// (each use then denied), never the ones that only switch an interface on.
const OPTIONAL_GRANTS: [&str; 2] = ["http", "process"];

fn optional(asked: &[String]) -> Result<Vec<String>, String> {
    match asked
        .iter()
        .find(|key| !OPTIONAL_GRANTS.contains(&key.as_str()))
    {
        Some(key) => Err(format!(
            "names {key:?}; only \"http\" and \"process\" can be optional"
        )),
        None => Ok(asked.to_vec()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    const EXAMPLE: &str = include_str!("../../../examples/echo-lane/example-echo.toml");

    #[test]
    fn the_example_manifest_parses() {
        let m = LaneManifest::parse(EXAMPLE, Path::new("example-echo.toml")).unwrap();
        assert_eq!(m.lane_id, "example-echo");
        assert_eq!(m.version, semver::Version::new(0, 1, 0));
        assert_eq!(m.wit_version, WIT_PACKAGE);
        assert_eq!(m.grants, Grants::default());
        assert_eq!(m.limits.max_memory_mb, Some(16));
        assert_eq!(m.limits.timeout_ms, Some(5000));
        assert_eq!(m.limits.max_concurrency, Some(8));
    }

    #[test]
    fn http_patterns_are_parsed_and_bad_ones_name_the_key() {
        let base =
            "lane_id = \"x\"\nversion = \"1.0.0\"\nwit_version = \"execution-plane:lane@0.1.0\"\n";
        let m = LaneManifest::parse(
            &format!("{base}[grants]\nhttp = [\"https://*.example.com\"]\nhttp_private = [\"http://svc:8080\"]\n"),
            Path::new("x.toml"),
        )
        .unwrap();
        assert_eq!(
            m.grants.http.to_string(),
            "https://*.example.com, http://svc:8080 (private)"
        );
        let err = LaneManifest::parse(
            &format!("{base}[grants]\nhttp = [\"example.com\"]\n"),
            Path::new("x.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("grants.http") && err.contains("example.com"),
            "{err}"
        );
    }

    #[test]
    fn the_filesystem_and_sockets_grants_are_read() {
        let base =
            "lane_id = \"x\"\nversion = \"1.0.0\"\nwit_version = \"execution-plane:lane@0.1.0\"\n";
        let m = LaneManifest::parse(
            &format!("{base}[grants]\nfilesystem = true\n"),
            Path::new("x.toml"),
        )
        .unwrap();
        assert!(m.grants.filesystem);
        assert!(
            !LaneManifest::parse(base, Path::new("x.toml"))
                .unwrap()
                .grants
                .filesystem
        );
    }

    #[test]
    fn process_commands_are_read_and_bad_ones_name_the_key() {
        let base =
            "lane_id = \"x\"\nversion = \"1.0.0\"\nwit_version = \"execution-plane:lane@0.2.0\"\n";
        let m = LaneManifest::parse(
            &format!("{base}[grants]\nprocess = [\"cat\", \"/usr/bin/env\", \"cat\"]\n"),
            Path::new("x.toml"),
        )
        .unwrap();
        assert_eq!(m.grants.process, ["cat", "/usr/bin/env"]);
        for bad in ["\"\"", "\"./run.sh\"", "\"bin/sh\""] {
            let err = LaneManifest::parse(
                &format!("{base}[grants]\nprocess = [{bad}]\n"),
                Path::new("x.toml"),
            )
            .unwrap_err()
            .to_string();
            assert!(err.contains("`grants.process`"), "{err}");
        }
    }

    #[test]
    fn omitted_grants_and_limits_default_to_nothing() {
        let text =
            "lane_id = \"x\"\nversion = \"1.2.3\"\nwit_version = \"execution-plane:lane@0.1.0\"\n";
        let m = LaneManifest::parse(text, Path::new("x.toml")).unwrap();
        assert_eq!(m.grants, Grants::none());
        assert_eq!(m.limits, LimitRequest::default());
    }

    #[test]
    fn bad_values_name_the_key() {
        let base = "lane_id = \"x\"\nwit_version = \"execution-plane:lane@0.1.0\"\n";
        let err = LaneManifest::parse(&format!("{base}version = \"one\"\n"), Path::new("x.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("x.toml") && err.contains("`version`"), "{err}");
        let err = LaneManifest::parse(
            &format!("{base}version = \"1.0.0\"\n[limits]\ntimeout_ms = 0\n"),
            Path::new("x.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("`timeout_ms`"), "{err}");
        let err = LaneManifest::parse(
            &format!("{base}version = \"1.0.0\"\n[grants]\nnetwork = true\n"),
            Path::new("x.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("unknown field") && err.contains("network"),
            "{err}"
        );
        assert!(!err.contains('\n'), "{err}");
    }

    #[test]
    fn path_for_replaces_the_extension() {
        assert_eq!(
            LaneManifest::path_for(Path::new("/p/example-echo.wasm")),
            PathBuf::from("/p/example-echo.toml")
        );
    }
}
