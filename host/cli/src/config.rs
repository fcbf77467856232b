//! Host configuration: the embedded defaults, optionally overridden by a TOML file.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::CliError;

/// The configuration the binary runs on when given no file.
pub const DEFAULT_CONFIG: &str = include_str!("default-config.toml");

/// Host configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostConfig {
    /// Node identity.
    pub node: NodeSection,
    /// Authority verification.
    pub authority: AuthoritySection,
    /// Evidence storage.
    pub evidence: EvidenceSection,
}

/// `[node]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSection {
    /// Node id (the audience of authority refs).
    pub id: String,
}

/// `[authority]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthoritySection {
    /// Trust store path, relative to the config file's directory.
    pub trust_store: PathBuf,
    /// Tolerated clock skew on `issued_at`.
    pub clock_skew_secs: u64,
}

/// `[evidence]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvidenceSection {
    /// Evidence directory, relative to the config file's directory.
    pub dir: PathBuf,
}

impl HostConfig {
    /// Loads `path`, or the embedded defaults when `None`; relative paths resolve against the
    /// file's directory (the working directory for the defaults).
    pub fn load(path: Option<&Path>) -> Result<Self, CliError> {
        let (text, base) = match path {
            None => (DEFAULT_CONFIG.to_owned(), PathBuf::from(".")),
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|source| CliError::Io {
                    path: p.to_owned(),
                    source,
                })?;
                let base = p.parent().map(Path::to_owned).unwrap_or_default();
                (text, base)
            }
        };
        let mut config: HostConfig = toml::from_str(&text).map_err(|e| {
            let name =
                path.map_or_else(|| "embedded config".to_owned(), |p| p.display().to_string());
            CliError::msg(format!("{name}: {}", e.message()))
        })?;
        if config.node.id.trim().is_empty() {
            return Err(CliError::msg("config: node.id must be a non-empty string"));
        }
        config.authority.trust_store = base.join(&config.authority.trust_store);
        config.evidence.dir = base.join(&config.evidence.dir);
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_defaults_parse() {
        let c = HostConfig::load(None).unwrap();
        assert_eq!(c.node.id, "node-local");
        assert_eq!(c.authority.clock_skew_secs, 60);
    }

    #[test]
    fn unknown_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, DEFAULT_CONFIG.replace("[node]", "[node]\nidd = 1")).unwrap();
        let err = HostConfig::load(Some(&path)).unwrap_err().to_string();
        assert!(err.contains("unknown field"), "{err}");
    }
}
