//! Root boundary values (§3): the permissive, integer-versioned values that cross the node's
//! admission and execution boundary. Missing fields take defaults and unknown fields are
//! ignored; unlike upstream, field types are checked, and a `contract_version` other than 1 is
//! refused at parse time (except on [`AdmissionRequest`], where the node reports it as
//! `contract_version_mismatch`).

mod admission;
mod evidence;
mod execution;
mod lane;
mod node;
mod provenance;
mod refs;
mod root_version;
mod sandbox;
mod target;

pub use admission::{AdmissionDecision, AdmissionRejection, AdmissionRequest, RejectionReason};
pub use evidence::Evidence;
pub use execution::{ExecutionEvent, ExecutionRequest, ExecutionResult, ResultStatus};
pub use lane::{LaneCapabilities, PlacementSurface, RuntimeConstraint};
pub use node::{NodeDescriptor, VerifierSummary, VersionRange};
pub use provenance::Provenance;
pub use refs::{AuthorityRef, ExecutionRef};
pub use root_version::RootVersion;
pub use sandbox::{AcceptableAttestation, SandboxProfile};
pub use target::{TargetAttestation, TargetDescriptor};

/// JSON object type used for open-ended maps (payload, metadata, details).
pub type Map = serde_json::Map<String, serde_json::Value>;
