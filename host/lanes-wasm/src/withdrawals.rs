//! Withdrawn and quarantined digests: what a rollback takes out of service stays out of
//! service, across reloads and restarts, until the operator re-admits it.
//!
//! * An **operator** rollback *withdraws* the digest it rolls back from. A plugin file that
//!   still holds that digest is not activated again (a reload, a rescan, a touched file); the
//!   withdrawal ends when the operator reinstates the digest ([`Withdrawals::reinstate`]) or
//!   when the lane's plugin file holds another artifact (a new deploy, or the restored version
//!   copied back).
//! * An **automatic** rollback (the probation window's faults) *quarantines* the digest: the
//!   same, except that only [`Withdrawals::reinstate`] ends it — deploying the same faulty
//!   bytes again later does not re-admit them. At most [`MAX_QUARANTINED_PER_LANE`] are kept
//!   per lane (the oldest is forgotten beyond it, with a warning).
//!
//! A store opened on a directory ([`Withdrawals::open`], `serve` uses
//! `<data_dir>/lanes`) persists them in [`WITHDRAWALS_FILE`] (written to a temporary file and
//! renamed, so a crash never leaves half a file) together with a copy of the artifact each
//! rollback restored (`kept/<hex>.wasm` and its manifest's text): a host restarted while a
//! lane's plugin file still holds a withdrawn digest serves the kept copy, the version it served
//! before the restart. [`Withdrawals::in_memory`] keeps them for the life of the process only.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::generation::Artifact;

/// The file a persisted store keeps its withdrawals in, inside its directory.
pub const WITHDRAWALS_FILE: &str = "withdrawals.json";
/// Quarantined digests remembered per lane; beyond it the oldest is forgotten.
pub const MAX_QUARANTINED_PER_LANE: usize = 32;
/// The directory (inside the store's) of the kept copies of restored artifacts.
const KEPT_DIR: &str = "kept";
/// Largest withdrawals file read.
const MAX_FILE_BYTES: u64 = 4 << 20;
/// The format of [`WITHDRAWALS_FILE`].
const FORMAT: u32 = 1;

/// Why a digest is out of service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WithdrawalState {
    /// An operator rolled it back; it returns with a reinstatement or another deploy.
    Withdrawn,
    /// An automatic rollback took it out for faulting; only a reinstatement re-admits it.
    Quarantined,
}

impl WithdrawalState {
    /// `withdrawn` or `quarantined`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Withdrawn => "withdrawn",
            Self::Quarantined => "quarantined",
        }
    }
}

impl std::fmt::Display for WithdrawalState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One digest a rollback took out of service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Withdrawal {
    /// The lane.
    pub lane_id: String,
    /// The digest out of service.
    pub digest: String,
    /// Withdrawn (operator) or quarantined (automatic).
    pub state: WithdrawalState,
    /// When (RFC 3339).
    pub at: String,
    /// The generation number it served as.
    pub generation: u64,
    /// Where that generation came from.
    pub source: String,
    /// The digest the rollback restored.
    pub restored_digest: String,
}

/// The copy of the artifact a rollback restored, kept for a restart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Kept {
    digest: String,
    /// The plugin manifest's text, when the artifact came with one.
    manifest: Option<String>,
    /// Where the restored generation came from.
    source: String,
}

/// A kept artifact, read back and checked against its digest.
#[derive(Debug, Clone)]
pub(crate) struct KeptArtifact {
    pub(crate) digest: String,
    pub(crate) bytes: Arc<[u8]>,
    pub(crate) manifest: Option<String>,
    /// The kept file.
    pub(crate) path: PathBuf,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Stored {
    format: u32,
    #[serde(default)]
    withdrawn: Vec<Withdrawal>,
    /// Lane id → the artifact its last rollback restored.
    #[serde(default)]
    kept: BTreeMap<String, Kept>,
}

/// The withdrawals file could not be read or written, or a reinstatement names nothing.
#[derive(Debug, Error)]
pub enum WithdrawalsError {
    /// The file (or a kept artifact) could not be read.
    #[error("cannot read the lane withdrawals {path}: {source}; check its permissions")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a withdrawals file.
    #[error(
        "{path} is not a valid lane withdrawals file ({message}); restore it from a backup or \
         move it away (the digests it withdrew would then serve again)"
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The file could not be written.
    #[error("cannot write the lane withdrawals {path}: {source}; check the state directory")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Nothing to reinstate.
    #[error(
        "digest {digest} of lane {lane_id} is neither withdrawn nor quarantined; `lanes list` \
         shows the withdrawn digests of each lane"
    )]
    NotWithdrawn {
        /// The lane.
        lane_id: String,
        /// The digest asked for.
        digest: String,
    },
}

/// The host's withdrawn and quarantined digests (see the module docs). Cheap to clone (clones
/// share the store); two handles are equal when they share it.
#[derive(Clone)]
pub struct Withdrawals {
    inner: Arc<Inner>,
}

struct Inner {
    dir: Option<PathBuf>,
    state: Mutex<Stored>,
}

impl std::fmt::Debug for Withdrawals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Withdrawals")
            .field("dir", &self.inner.dir)
            .field("withdrawn", &self.stored().withdrawn.len())
            .finish()
    }
}

impl PartialEq for Withdrawals {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl Default for Withdrawals {
    /// [`Withdrawals::in_memory`].
    fn default() -> Self {
        Self::in_memory()
    }
}

impl Withdrawals {
    /// A store that lives as long as the process.
    pub fn in_memory() -> Self {
        Self::with(
            None,
            Stored {
                format: FORMAT,
                ..Stored::default()
            },
        )
    }

    /// The store persisted in `dir` (created on the first write), read back from its
    /// [`WITHDRAWALS_FILE`] when there is one.
    pub fn open(dir: &Path) -> Result<Self, WithdrawalsError> {
        let path = dir.join(WITHDRAWALS_FILE);
        let stored = match std::fs::metadata(&path) {
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Stored {
                format: FORMAT,
                ..Stored::default()
            },
            Err(source) => return Err(WithdrawalsError::Read { path, source }),
            Ok(meta) if meta.len() > MAX_FILE_BYTES => {
                return Err(WithdrawalsError::Corrupt {
                    path,
                    message: format!("over the {MAX_FILE_BYTES}-byte limit"),
                });
            }
            Ok(_) => {
                let text =
                    std::fs::read_to_string(&path).map_err(|source| WithdrawalsError::Read {
                        path: path.clone(),
                        source,
                    })?;
                let stored: Stored =
                    serde_json::from_str(&text).map_err(|e| WithdrawalsError::Corrupt {
                        path: path.clone(),
                        message: e.to_string(),
                    })?;
                if stored.format != FORMAT {
                    return Err(WithdrawalsError::Corrupt {
                        path,
                        message: format!(
                            "format {} (this host reads format {FORMAT})",
                            stored.format
                        ),
                    });
                }
                stored
            }
        };
        Ok(Self::with(Some(dir.to_owned()), stored))
    }

    fn with(dir: Option<PathBuf>, stored: Stored) -> Self {
        Self {
            inner: Arc::new(Inner {
                dir,
                state: Mutex::new(stored),
            }),
        }
    }

    /// Where it persists (none for an in-memory store).
    pub fn dir(&self) -> Option<&Path> {
        self.inner.dir.as_deref()
    }

    fn stored(&self) -> MutexGuard<'_, Stored> {
        // Every update replaces the whole value at once: a poisoned lock holds a whole one.
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The withdrawal of `digest` in lane `lane_id`, if it is out of service.
    pub fn get(&self, lane_id: &str, digest: &str) -> Option<Withdrawal> {
        self.stored()
            .withdrawn
            .iter()
            .find(|w| w.lane_id == lane_id && w.digest == digest)
            .cloned()
    }

    /// The withdrawn and quarantined digests of `lane_id`, oldest first.
    pub fn for_lane(&self, lane_id: &str) -> Vec<Withdrawal> {
        self.stored()
            .withdrawn
            .iter()
            .filter(|w| w.lane_id == lane_id)
            .cloned()
            .collect()
    }

    /// Every withdrawn and quarantined digest, oldest first.
    pub fn all(&self) -> Vec<Withdrawal> {
        self.stored().withdrawn.clone()
    }

    /// Records a rollback: `withdrawal` out of service, and (persisted stores) a copy of the
    /// artifact it restored. The rollback has happened either way: a failure to persist is
    /// logged (a restart would then not know of it).
    pub(crate) fn record(&self, withdrawal: Withdrawal, restored: Option<(&str, &Artifact)>) {
        let mut stored = self.stored();
        let mut next = stored.clone();
        next.withdrawn
            .retain(|w| !(w.lane_id == withdrawal.lane_id && w.digest == withdrawal.digest));
        let lane_id = withdrawal.lane_id.clone();
        next.withdrawn.push(withdrawal);
        let quarantined: Vec<usize> = next
            .withdrawn
            .iter()
            .enumerate()
            .filter(|(_, w)| w.lane_id == lane_id && w.state == WithdrawalState::Quarantined)
            .map(|(i, _)| i)
            .collect();
        if quarantined.len() > MAX_QUARANTINED_PER_LANE {
            let forgotten = next.withdrawn.remove(quarantined[0]);
            tracing::warn!(
                lane_id,
                digest = forgotten.digest,
                limit = MAX_QUARANTINED_PER_LANE,
                "too many quarantined digests for one lane; the oldest is forgotten"
            );
        }
        match restored {
            Some((source, artifact)) if self.inner.dir.is_some() => {
                let digest = ep_contracts::canonical::sha256_ref(&artifact.bytes);
                if let Err(error) = self.keep(&digest, &artifact.bytes) {
                    tracing::error!(lane_id, %error, "the restored artifact could not be kept; a restart cannot serve it");
                } else {
                    next.kept.insert(
                        lane_id.clone(),
                        Kept {
                            digest,
                            manifest: artifact.manifest.clone(),
                            source: source.to_owned(),
                        },
                    );
                }
            }
            _ => {
                next.kept.remove(&lane_id);
            }
        }
        if let Err(error) = self.persist(&next) {
            tracing::error!(lane_id, %error, "withdrawal not persisted; a restart would not know of it");
        }
        *stored = next;
    }

    /// The lane's plugin file holds `digest`, which is not out of service: operator withdrawals
    /// of the lane end (another artifact arrived) and its kept copy is no longer needed.
    /// Quarantines stay.
    pub(crate) fn arrived(&self, lane_id: &str, digest: &str) {
        let mut stored = self.stored();
        let mut next = stored.clone();
        next.withdrawn.retain(|w| {
            w.lane_id != lane_id || w.state == WithdrawalState::Quarantined || w.digest == digest
        });
        next.kept.remove(lane_id);
        if next == *stored {
            return;
        }
        tracing::info!(
            lane_id,
            digest,
            "another artifact arrived; the lane's operator withdrawals end"
        );
        if let Err(error) = self.persist(&next) {
            tracing::error!(lane_id, %error, "lifted withdrawals not persisted");
        }
        *stored = next;
    }

    /// Re-admits `digest` of `lane_id` (withdrawn or quarantined): the next reload or change of
    /// the lane's plugin file may activate it again. Persisted before it takes effect.
    pub fn reinstate(&self, lane_id: &str, digest: &str) -> Result<Withdrawal, WithdrawalsError> {
        let mut stored = self.stored();
        let Some(position) = stored
            .withdrawn
            .iter()
            .position(|w| w.lane_id == lane_id && w.digest == digest)
        else {
            return Err(WithdrawalsError::NotWithdrawn {
                lane_id: lane_id.to_owned(),
                digest: digest.to_owned(),
            });
        };
        let mut next = stored.clone();
        let withdrawal = next.withdrawn.remove(position);
        self.persist(&next)?;
        *stored = next;
        Ok(withdrawal)
    }

    /// The artifact the lane's last rollback restored, read back from the store (a copy whose
    /// bytes no longer match its digest is ignored, with a warning).
    pub(crate) fn kept(&self, lane_id: &str) -> Option<KeptArtifact> {
        let kept = self.stored().kept.get(lane_id).cloned()?;
        let path = self.kept_path(&kept.digest)?;
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) => {
                tracing::warn!(lane_id, path = %path.display(), %error, "kept artifact unreadable");
                return None;
            }
        };
        if ep_contracts::canonical::sha256_ref(&bytes) != kept.digest {
            tracing::warn!(lane_id, path = %path.display(), "kept artifact does not match its digest; ignored");
            return None;
        }
        Some(KeptArtifact {
            digest: kept.digest,
            bytes: bytes.into(),
            manifest: kept.manifest,
            path,
        })
    }

    fn kept_path(&self, digest: &str) -> Option<PathBuf> {
        let hex = digest.strip_prefix("sha256:")?;
        if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        Some(
            self.inner
                .dir
                .as_ref()?
                .join(KEPT_DIR)
                .join(format!("{hex}.wasm")),
        )
    }

    /// Writes the kept copy of `bytes` (content-addressed: an existing copy is reused).
    fn keep(&self, digest: &str, bytes: &[u8]) -> Result<(), WithdrawalsError> {
        let Some(path) = self.kept_path(digest) else {
            return Ok(());
        };
        if path.is_file() {
            return Ok(());
        }
        write_atomically(&path, bytes)
    }

    /// Writes `stored` to the file, then removes kept copies nothing names any more.
    fn persist(&self, stored: &Stored) -> Result<(), WithdrawalsError> {
        let Some(dir) = &self.inner.dir else {
            return Ok(());
        };
        let text = serde_json::to_string_pretty(stored).map_err(|e| WithdrawalsError::Write {
            path: dir.join(WITHDRAWALS_FILE),
            source: std::io::Error::other(e),
        })?;
        write_atomically(&dir.join(WITHDRAWALS_FILE), text.as_bytes())?;
        let named: Vec<PathBuf> = stored
            .kept
            .values()
            .filter_map(|k| self.kept_path(&k.digest))
            .collect();
        if let Ok(entries) = std::fs::read_dir(dir.join(KEPT_DIR)) {
            for entry in entries.flatten() {
                let path = entry.path();
                if path.extension().is_some_and(|e| e == "wasm") && !named.contains(&path) {
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        Ok(())
    }
}

/// Records `lane.reinstated` for `withdrawal`, just re-admitted.
pub async fn record_reinstated(host: &dyn ep_lane_api::LaneHost, withdrawal: &Withdrawal) {
    tracing::info!(
        lane_id = withdrawal.lane_id,
        digest = withdrawal.digest,
        was = %withdrawal.state,
        "lane digest reinstated"
    );
    let payload = serde_json::json!({
        "lane_id": withdrawal.lane_id,
        "digest": withdrawal.digest,
        "was": withdrawal.state.as_str(),
    });
    host.record_evidence(
        crate::swap::LANE_REINSTATED,
        Some(&withdrawal.lane_id),
        payload,
    )
    .await;
}

/// Writes `bytes` to `path` through a temporary file renamed over it.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), WithdrawalsError> {
    use std::io::Write as _;
    let error = |source| WithdrawalsError::Write {
        path: path.to_owned(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(error)?;
    }
    let staged = path.with_extension("tmp");
    let mut file = std::fs::File::create(&staged).map_err(error)?;
    file.write_all(bytes).map_err(error)?;
    file.sync_all().map_err(error)?;
    drop(file);
    std::fs::rename(&staged, path).map_err(error)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn withdrawal(digest: &str, state: WithdrawalState) -> Withdrawal {
        Withdrawal {
            lane_id: "echo".to_owned(),
            digest: digest.to_owned(),
            state,
            at: ep_contracts::ids::now_iso8601(),
            generation: 2,
            source: "plugins/echo.wasm".to_owned(),
            restored_digest: "sha256:aa".to_owned(),
        }
    }

    fn artifact(bytes: &[u8]) -> Artifact {
        Artifact {
            bytes: bytes.into(),
            manifest: Some("lane_id = \"echo\"".to_owned()),
        }
    }

    #[test]
    fn withdrawals_and_the_kept_copy_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = Withdrawals::open(dir.path()).unwrap();
        store.record(
            withdrawal("sha256:bb", WithdrawalState::Quarantined),
            Some(("plugins/echo.wasm", &artifact(b"v1 bytes"))),
        );
        let reopened = Withdrawals::open(dir.path()).unwrap();
        assert_eq!(reopened.all(), store.all());
        let kept = reopened.kept("echo").unwrap();
        assert_eq!(&*kept.bytes, b"v1 bytes");
        assert_eq!(kept.manifest.as_deref(), Some("lane_id = \"echo\""));
        assert_eq!(
            kept.digest,
            ep_contracts::canonical::sha256_ref(b"v1 bytes")
        );

        // A tampered copy is not served.
        std::fs::write(&kept.path, b"other bytes").unwrap();
        assert!(reopened.kept("echo").is_none());
    }

    #[test]
    fn another_artifact_ends_operator_withdrawals_but_not_quarantines() {
        let store = Withdrawals::in_memory();
        store.record(withdrawal("sha256:bb", WithdrawalState::Withdrawn), None);
        store.record(withdrawal("sha256:cc", WithdrawalState::Quarantined), None);
        store.arrived("echo", "sha256:dd");
        let left: Vec<String> = store.all().into_iter().map(|w| w.digest).collect();
        assert_eq!(left, ["sha256:cc"]);
        assert_eq!(
            store.reinstate("echo", "sha256:cc").unwrap().state,
            WithdrawalState::Quarantined
        );
        assert!(matches!(
            store.reinstate("echo", "sha256:cc"),
            Err(WithdrawalsError::NotWithdrawn { .. })
        ));
    }

    #[test]
    fn quarantines_per_lane_are_bounded() {
        let store = Withdrawals::in_memory();
        for n in 0..=MAX_QUARANTINED_PER_LANE {
            store.record(
                withdrawal(&format!("sha256:{n:02x}"), WithdrawalState::Quarantined),
                None,
            );
        }
        let all = store.all();
        assert_eq!(all.len(), MAX_QUARANTINED_PER_LANE);
        assert_eq!(all[0].digest, "sha256:01");
    }

    #[test]
    fn a_corrupt_file_is_refused_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(WITHDRAWALS_FILE), "{not json").unwrap();
        let error = Withdrawals::open(dir.path()).unwrap_err().to_string();
        assert!(error.contains(WITHDRAWALS_FILE), "{error}");
        std::fs::write(
            dir.path().join(WITHDRAWALS_FILE),
            r#"{"format": 9, "withdrawn": []}"#,
        )
        .unwrap();
        let error = Withdrawals::open(dir.path()).unwrap_err().to_string();
        assert!(error.contains("format 9"), "{error}");
    }
}
