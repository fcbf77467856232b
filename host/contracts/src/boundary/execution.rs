use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{AdmissionRequest, ExecutionRef, Map, Provenance, RootVersion, TargetDescriptor};
use crate::ids::stable_id;

/// What a target client receives after admission.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ExecutionRequest {
    /// Always 1.
    pub contract_version: RootVersion,
    /// The decision's execution ref.
    pub execution_ref: ExecutionRef,
    /// The admitted request.
    pub admission_request: Option<AdmissionRequest>,
    /// The chosen target (none on the direct path).
    pub target_descriptor: Option<TargetDescriptor>,
    /// The lane.
    pub lane_id: Option<String>,
    /// Lane operation.
    pub operation: Option<String>,
    /// Lane payload.
    pub payload: Map,
    /// Where the request came from.
    pub provenance: Provenance,
    /// Free-form metadata.
    pub metadata: Map,
}

crate::boundary_contract!(ExecutionRequest, "execution_request");

/// An event a lane emits during an execution (distinct from `execution_event.v1`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExecutionEvent {
    /// Always 1.
    pub contract_version: RootVersion,
    /// Event id (minted `event-<ms>-<n>` when absent).
    pub event_id: String,
    /// The execution it belongs to.
    pub execution_ref: Option<ExecutionRef>,
    /// Event type (`fake.chunk`, `sse.event`, ...).
    pub event_type: Option<String>,
    /// Event payload.
    pub payload: Map,
    /// When it was emitted (RFC 3339).
    pub emitted_at: Option<String>,
    /// Attached evidence.
    pub evidence: Vec<Value>,
}

impl ExecutionEvent {
    /// A new event of `event_type` for `execution_ref`, stamped now.
    pub fn new(execution_ref: ExecutionRef, event_type: impl Into<String>, payload: Map) -> Self {
        Self {
            execution_ref: Some(execution_ref),
            event_type: Some(event_type.into()),
            payload,
            emitted_at: Some(crate::ids::now_iso8601()),
            ..Self::default()
        }
    }
}

impl Default for ExecutionEvent {
    fn default() -> Self {
        Self {
            contract_version: RootVersion,
            event_id: stable_id("event"),
            execution_ref: None,
            event_type: None,
            payload: Map::new(),
            emitted_at: None,
            evidence: Vec::new(),
        }
    }
}

crate::boundary_contract!(ExecutionEvent, "execution_event");

/// Terminal status of an execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResultStatus {
    /// The lane finished its work.
    #[default]
    Succeeded,
    /// The lane (or the lower I/O) failed.
    Failed,
    /// Admission or validation refused the request.
    Rejected,
}

impl ResultStatus {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Rejected => "rejected",
        }
    }
}

/// The result of `execute`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ExecutionResult {
    /// Always 1.
    pub contract_version: RootVersion,
    /// The execution (fresh for rejections).
    pub execution_ref: ExecutionRef,
    /// Terminal status.
    pub status: ResultStatus,
    /// Lane output.
    pub output: Map,
    /// Events in order.
    pub events: Vec<ExecutionEvent>,
    /// Attached evidence.
    pub evidence: Vec<Value>,
    /// The dumped rejection or failure, when not succeeded.
    pub error: Option<Value>,
    /// Where the request came from.
    pub provenance: Provenance,
}

impl ExecutionResult {
    /// A succeeded result with `output`.
    pub fn succeeded(execution_ref: ExecutionRef, output: Map) -> Self {
        Self {
            execution_ref,
            output,
            ..Self::default()
        }
    }
}

crate::boundary_contract!(ExecutionResult, "execution_result");
