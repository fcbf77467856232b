//! The files a service keeps for itself in `data_dir`: the operator token, the node key that
//! signs the evidence head and, in development, a signing key trusted by the trust store.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use ep_node::authority::{SigningKeyFile, TrustStore};
use ep_node::sinks::file_chain::NodeKey;

use super::{DEV_KEY_FILE, DEV_KEY_ID, NODE_KEY_FILE, io};
use crate::config::ServeConfig;
use crate::error::ServeError;

/// The operator token in `path`, generated (32 random bytes as hex, mode 0600) when missing.
pub(super) fn operator_token(path: &Path) -> Result<String, ServeError> {
    if !path.exists() {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| ServeError::Io {
            path: path.to_owned(),
            source: std::io::Error::other(e.to_string()),
        })?;
        let token = hex::encode(bytes);
        write_private(path, format!("{token}\n").as_bytes())?;
        tracing::info!(path = %path.display(), "generated the operator token");
    }
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    let token = text.trim().to_owned();
    if token.is_empty() {
        return Err(ServeError::Io {
            path: path.to_owned(),
            source: std::io::Error::other(
                "the operator token file is empty; delete it to have a new token generated",
            ),
        });
    }
    Ok(token)
}

/// Creates `path` with `bytes`, readable by its owner only.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), ServeError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(io(path))?;
    file.write_all(bytes).map_err(io(path))?;
    file.sync_all().map_err(io(path))
}

/// The node key in `data_dir` (generated, mode 0600, on first start): it signs the evidence
/// head, so a log rewritten with its head by someone without it is detected.
pub fn node_key(data_dir: &Path, node_id: &str) -> Result<NodeKey, ServeError> {
    NodeKey::load_or_generate(&data_dir.join(NODE_KEY_FILE), node_id)
        .map_err(|e| ServeError::Authority(format!("node key (signs the evidence head): {e}")))
}

/// With `dev_key`: the development key (generated on first start) and its trust-store entry.
pub(super) fn prepare_dev_key(config: &ServeConfig) -> Result<Option<PathBuf>, ServeError> {
    if !config.authority.dev_key {
        return Ok(None);
    }
    let path = config.data_dir.join(DEV_KEY_FILE);
    let authority = |e: ep_node::authority::AuthorityKeyError| ServeError::Authority(e.to_string());
    let key = if path.exists() {
        SigningKeyFile::load(&path).map_err(authority)?
    } else {
        let key = SigningKeyFile::generate(DEV_KEY_ID).map_err(authority)?;
        key.save(&path).map_err(authority)?;
        tracing::info!(path = %path.display(), "generated a development signing key");
        key
    };
    let store_path = &config.authority.trust_store;
    let store = if store_path.exists() {
        TrustStore::load(store_path).map_err(authority)?
    } else {
        TrustStore::new()
    };
    match store.get(key.key_id()) {
        Some(trusted) if trusted.public_key == key.verifying_key() => {}
        Some(_) => tracing::warn!(
            key_id = key.key_id(),
            trust_store = %store_path.display(),
            "the trust store has another key under the development key's id; refs signed with the development key will be refused"
        ),
        None => {
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(store_path)
                .map_err(io(store_path))?;
            let existing = std::fs::read_to_string(store_path).map_err(io(store_path))?;
            let separator = if existing.is_empty() || existing.ends_with('\n') {
                ""
            } else {
                "\n"
            };
            write!(file, "{separator}{}", key.public_entry()).map_err(io(store_path))?;
        }
    }
    Ok(Some(path))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_dev_key_joins_an_existing_trust_store_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("serve.toml");
        std::fs::write(&path, crate::config::DEFAULT_CONFIG).unwrap();
        let config = ServeConfig::load(Some(&path)).unwrap();
        std::fs::create_dir_all(&config.data_dir).unwrap();
        std::fs::write(&config.authority.trust_store, "# operator keys").unwrap();
        let key = prepare_dev_key(&config).unwrap().unwrap();
        let store = TrustStore::load(&config.authority.trust_store).unwrap();
        assert!(store.get(DEV_KEY_ID).is_some());
        // A second start reuses the key and adds nothing.
        let text = std::fs::read_to_string(&config.authority.trust_store).unwrap();
        assert_eq!(prepare_dev_key(&config).unwrap(), Some(key));
        assert_eq!(
            std::fs::read_to_string(&config.authority.trust_store).unwrap(),
            text
        );
    }

    #[test]
    fn the_operator_token_is_generated_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        let token = operator_token(&path).unwrap();
        assert_eq!(token.len(), 64);
        assert_eq!(operator_token(&path).unwrap(), token);
        std::fs::write(&path, "\n").unwrap();
        assert!(operator_token(&path).is_err());
    }
}
