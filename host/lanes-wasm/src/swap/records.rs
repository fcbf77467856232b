//! What a slot's transitions are and how they are recorded: the [`SwapError`] of a refused
//! artifact or rollback, and the [`Activation`], [`RollBack`] and [`SwapOutcome`] of one that
//! happened, with the evidence types they are recorded under.

use std::path::PathBuf;

use serde_json::{Value, json};
use thiserror::Error;

use crate::error::LoadError;
use crate::generation::FaultCounts;
use crate::plugins::PluginError;
use crate::withdrawals::WithdrawalState;

/// Evidence type of a published generation: `{lane_id, old_digest, new_digest, generation,
/// source, version}`.
pub const LANE_ACTIVATED: &str = "lane.activated";
/// Evidence type of a refused artifact: `{lane_id, source, stage, reason, refused_digest,
/// serving_digest, serving_generation}`.
pub const LANE_REJECTED: &str = "lane.rejected";
/// Evidence type of a rollback: `{lane_id, from_digest, to_digest, from_generation,
/// to_generation, reason, withdrawal, executions, running, faults, fault_causes, window}`.
pub const LANE_ROLLED_BACK: &str = "lane.rolled_back";
/// Evidence type of a digest re-admitted by the operator: `{lane_id, digest, was}`.
pub const LANE_REINSTATED: &str = "lane.reinstated";
/// Evidence type of a lane that stopped serving (a policy reload refuses it): `{lane_id,
/// digest, generation, reason}`.
pub const LANE_RETIRED: &str = "lane.retired";

/// Why a swap or a rollback did not happen; the serving generation is untouched.
#[derive(Debug, Error)]
pub enum SwapError {
    /// The component file could not be read.
    #[error("cannot read lane component {path}: {source}; check that it exists and is readable")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The plugin's manifest, the policy or the component refused it.
    #[error(transparent)]
    Plugin(#[from] PluginError),
    /// The component did not load (not a component, does not compile, ungranted import,
    /// failed probe, ...).
    #[error("lane {lane_id}: the new component was refused: {source}")]
    Load {
        /// The slot's lane id.
        lane_id: String,
        /// Why.
        #[source]
        source: LoadError,
    },
    /// The artifact serves another lane id than the slot.
    #[error(
        "lane {lane_id} cannot be replaced by {origin}, which serves lane {candidate:?}: a new \
         generation must keep its lane id (load it as a lane of its own instead)"
    )]
    LaneIdChanged {
        /// The slot's lane id.
        lane_id: String,
        /// The lane id the artifact names.
        candidate: String,
        /// The artifact (path or `bytes`).
        origin: String,
    },
    /// The node refused to re-connect the slot's target for the new generation.
    #[error("lane {lane_id}: the node refused the new generation as its target: {message}")]
    Target {
        /// The slot's lane id.
        lane_id: String,
        /// The node's rejection message.
        message: String,
    },
    /// A rollback was asked for but only one generation is kept.
    #[error(
        "lane {lane_id} has no previous generation to roll back to (there is none before the \
         first publish, and none right after a rollback)"
    )]
    NoPreviousGeneration {
        /// The slot's lane id.
        lane_id: String,
    },
    /// An automatic rollback found that the faulty generation no longer serves.
    #[error("lane {lane_id}: generation {generation} no longer serves; nothing to roll back")]
    NotServing {
        /// The slot's lane id.
        lane_id: String,
        /// The generation that faulted.
        generation: u64,
    },
    /// No lane of that id is known (to the plugin watch).
    #[error("no hot-swappable lane {lane_id} is loaded; check the lane id (`lanes list`)")]
    UnknownLane {
        /// The lane id asked for.
        lane_id: String,
    },
    /// A new plugin names a lane id another plugin file already serves.
    #[error(
        "{origin} names lane {lane_id}, which another plugin file already serves; give it a \
         lane id of its own or replace that plugin's files instead"
    )]
    LaneIdTaken {
        /// The lane id.
        lane_id: String,
        /// The new plugin file.
        origin: String,
    },
    /// The rollback policy is unusable.
    #[error("invalid rollback policy for lane {lane_id}: {message}")]
    InvalidPolicy {
        /// The slot's lane id.
        lane_id: String,
        /// What is wrong.
        message: String,
    },
    /// The artifact's digest was rolled back and no other version of the lane is at hand.
    #[error(
        "lane {lane_id}: {origin} holds {digest}, which is {state} (rolled back); deploy another \
         version, or re-admit it with `execution-plane lanes reinstate {lane_id} {digest}`"
    )]
    Withdrawn {
        /// The lane.
        lane_id: String,
        /// The digest.
        digest: String,
        /// Withdrawn or quarantined.
        state: WithdrawalState,
        /// The plugin file.
        origin: String,
    },
    /// The slot no longer serves (a policy reload replaced or refused it).
    #[error("lane {lane_id} was retired by a policy reload; its replacement (if any) serves now")]
    Retired {
        /// The slot's lane id.
        lane_id: String,
    },
}

impl SwapError {
    /// The step that refused: `read`, `manifest`, `policy`, `load`, `lane_id`, `target`,
    /// `rollback`, `config`, `withdrawn` or `retired` (the `stage` of `lane.rejected`).
    pub fn stage(&self) -> &'static str {
        match self {
            Self::Read { .. } | Self::Plugin(PluginError::ReadDir { .. }) => "read",
            Self::Plugin(
                PluginError::ManifestMissing { .. }
                | PluginError::Manifest(_)
                | PluginError::AbiMismatch { .. },
            ) => "manifest",
            Self::Plugin(PluginError::Policy { .. }) => "policy",
            Self::Plugin(PluginError::Load { .. }) | Self::Load { .. } => "load",
            Self::Plugin(PluginError::LaneIdMismatch { .. })
            | Self::LaneIdChanged { .. }
            | Self::LaneIdTaken { .. } => "lane_id",
            Self::Target { .. } => "target",
            Self::NoPreviousGeneration { .. }
            | Self::NotServing { .. }
            | Self::UnknownLane { .. } => "rollback",
            Self::InvalidPolicy { .. } => "config",
            Self::Withdrawn { .. } => "withdrawn",
            Self::Retired { .. } => "retired",
        }
    }
}

/// A published generation, as recorded in `lane.activated`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activation {
    /// The lane id.
    pub lane_id: String,
    /// The digest it replaced (none for a lane's first generation).
    pub old_digest: Option<String>,
    /// The digest now serving.
    pub new_digest: String,
    /// The new generation's number.
    pub generation: u64,
    /// Where it came from: the component file's path, or `bytes`.
    pub source: String,
    /// The plugin manifest's version, when it came with one.
    pub version: Option<String>,
}

impl Activation {
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "lane_id": self.lane_id,
            "old_digest": self.old_digest,
            "new_digest": self.new_digest,
            "generation": self.generation,
            "source": self.source,
            "version": self.version,
        })
    }
}

/// What a swap did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum SwapOutcome {
    /// A new generation serves.
    Activated(Activation),
    /// The artifact is the one serving (same digest, same manifest): nothing changed and
    /// nothing was recorded.
    Unchanged {
        /// The serving generation.
        generation: u64,
        /// Its digest.
        digest: String,
    },
    /// The artifact's digest was rolled back and stays out until it is reinstated (or, when
    /// withdrawn by an operator, until another artifact arrives): nothing changed and nothing
    /// was recorded.
    Withdrawn {
        /// The refused digest.
        digest: String,
        /// Withdrawn or quarantined.
        state: WithdrawalState,
        /// The generation still serving.
        serving_generation: u64,
    },
}

/// Who asked for a rollback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RollbackReason {
    /// The new generation's faults reached the [`crate::RollbackPolicy`] threshold.
    Automatic,
    /// [`crate::LaneSlot::rollback`].
    Operator,
}

impl RollbackReason {
    /// `automatic` or `operator`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Automatic => "automatic",
            Self::Operator => "operator",
        }
    }

    /// What a rollback for this reason does to the digest it rolls back from.
    pub fn withdrawal(self) -> WithdrawalState {
        match self {
            Self::Automatic => WithdrawalState::Quarantined,
            Self::Operator => WithdrawalState::Withdrawn,
        }
    }
}

/// A rollback, as recorded in `lane.rolled_back`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollBack {
    /// The lane id.
    pub lane_id: String,
    /// The digest withdrawn.
    pub from_digest: String,
    /// The digest serving again.
    pub to_digest: String,
    /// The generation withdrawn.
    pub from_generation: u64,
    /// The generation serving again.
    pub to_generation: u64,
    /// Who asked.
    pub reason: RollbackReason,
    /// Every execution that started on the withdrawn generation (none can start on it after
    /// the rollback), with the faults of those that had finished.
    pub counts: FaultCounts,
    /// Of those, how many were still running (they finish on the withdrawn generation).
    pub running: u32,
    /// What the withdrawn generation's probation window counted (for an automatic rollback,
    /// what reached the threshold).
    pub window: FaultCounts,
}

impl RollBack {
    pub(crate) fn to_json(&self) -> Value {
        let mut value = json!({
            "lane_id": self.lane_id,
            "from_digest": self.from_digest,
            "to_digest": self.to_digest,
            "from_generation": self.from_generation,
            "to_generation": self.to_generation,
            "reason": self.reason.as_str(),
            "withdrawal": self.reason.withdrawal().as_str(),
            "running": self.running,
            "window": self.window.to_json(),
        });
        if let (Value::Object(map), Value::Object(counts)) = (&mut value, self.counts.to_json()) {
            map.extend(counts);
        }
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rollback_evidence_carries_every_execution_and_the_window() {
        let mut counts = FaultCounts {
            executions: 7,
            faults: 4,
            ..FaultCounts::default()
        };
        counts.by_cause.insert("trap".to_owned(), 4);
        let mut window = FaultCounts {
            executions: 3,
            faults: 3,
            ..FaultCounts::default()
        };
        window.by_cause.insert("trap".to_owned(), 3);
        let rollback = RollBack {
            lane_id: "echo".to_owned(),
            from_digest: "sha256:b".to_owned(),
            to_digest: "sha256:a".to_owned(),
            from_generation: 2,
            to_generation: 1,
            reason: RollbackReason::Automatic,
            counts,
            running: 3,
            window,
        };
        let value = rollback.to_json();
        assert_eq!(value["reason"], "automatic");
        assert_eq!(value["withdrawal"], "quarantined");
        assert_eq!(value["executions"], 7);
        assert_eq!(value["running"], 3);
        assert_eq!(value["faults"], 4);
        assert_eq!(value["fault_causes"]["trap"], 4);
        assert_eq!(value["window"]["executions"], 3);
        assert_eq!(value["to_digest"], "sha256:a");
    }
}
