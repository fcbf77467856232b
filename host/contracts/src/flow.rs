//! Core flow packets (§2.4): the intent envelope, the route, events, outcomes and the carried
//! authority/session/credential packets. Each is a strict `*.v1` contract: fields are read in
//! the upstream order, error text is stable, and `from_value(&x.to_value()) == Ok(x)`.
//!
//! ```
//! use ep_contracts::{Contract, flow::ExecutionRoute, fixtures};
//!
//! let route = ExecutionRoute::from_value(&fixtures::flow::http_execution_route())?;
//! assert_eq!(route.family, "http");
//! assert_eq!(route.lineage.get("route_id"), Some(route.route_id.as_str()));
//! assert_eq!(ExecutionRoute::from_value(&route.to_value())?, route);
//! # Ok::<(), ep_contracts::ContractError>(())
//! ```

use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

use crate::contract::{Contract, dump_packet};
use crate::error::ContractError;
use crate::failure::Failure;
use crate::fields::{self, Attrs};
use crate::lineage::{EVENT_LINEAGE_KEYS, Lineage, ROUTE_LINEAGE_KEYS};

/// `status` of an outcome whose lower execution succeeded.
pub const STATUS_SUCCEEDED: &str = "succeeded";

/// `status` of an outcome whose lower execution failed (`failure` may still be `None`).
pub const STATUS_FAILED: &str = "failed";

/// An optional ISO 8601 field read as upstream does: first as a non-empty string, then parsed.
pub(crate) fn optional_timestamp(
    attrs: &Attrs<'_>,
    field: &str,
) -> Result<Option<String>, ContractError> {
    match attrs.optional_string(field)? {
        None => Ok(None),
        Some(s) => fields::iso8601(field, &Value::String(s)).map(Some),
    }
}

/// A required ISO 8601 field: a non-empty string first, then parsed.
pub(crate) fn required_timestamp(attrs: &Attrs<'_>, field: &str) -> Result<String, ContractError> {
    let s = attrs.required_string(field)?;
    fields::iso8601(field, &Value::String(s))
}

/// An opaque handle ref checked as upstream: a non-empty string first, then the ref shape.
pub(crate) fn handle_ref(field: &str, value: &Value) -> Result<String, ContractError> {
    fields::non_empty_string(field, value)?;
    fields::opaque_ref(field, value)
}

/// Reads a lineage map with the given required keys (absent or non-map → `lineage must be a map`).
fn read_lineage(attrs: &Attrs<'_>, required: &[&str]) -> Result<Lineage, ContractError> {
    Lineage::normalize(attrs.get("lineage").unwrap_or(&Value::Null), required)
}

/// Serializes a nested contract through its own dump.
pub(crate) fn serialize_contract<T: Contract, S: Serializer>(
    value: &T,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    value.to_value().serialize(serializer)
}

fn serialize_failure<S: Serializer>(
    failure: &Option<Failure>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match failure {
        Some(f) => f.to_value().serialize(serializer),
        None => serializer.serialize_none(),
    }
}

/// Spine-to-Execution intent envelope: the family-neutral identity of one intent
/// (`execution_intent_envelope.v1`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExecutionIntentEnvelope {
    /// Intent id.
    pub intent_id: String,
    /// Lower family (`http`, `process`, ...); must equal the route's family.
    pub family: String,
    /// Lower protocol (`http`, `jsonrpc`, `process`); must equal the route's protocol.
    pub protocol: String,
    /// Trace id; when present must equal the route lineage's trace id.
    pub trace_id: Option<String>,
    /// Caller idempotency key; must equal the route lineage's.
    pub idempotency_key: String,
    /// The boundary session this intent runs in.
    pub boundary_session_id: String,
    /// The authority decision that allowed it.
    pub decision_id: String,
    /// Lease the intent runs under.
    pub lease_ref: Option<String>,
    /// Route template it was derived from.
    pub route_template_ref: Option<String>,
    /// Credential handle refs (opaque refs only, never raw secrets).
    pub credential_handle_refs: Vec<String>,
    /// Attempt ref.
    pub attempt_ref: Option<String>,
    /// Absolute deadline (ISO 8601 with offset).
    pub deadline_at: Option<String>,
    /// Ref used to cancel the intent.
    pub cancellation_ref: Option<String>,
    /// Capabilities the intent asks for (`http.unary`, ...).
    pub requested_capabilities: Vec<String>,
    /// Namespaced extensions.
    pub extensions: Map<String, Value>,
}

impl Contract for ExecutionIntentEnvelope {
    const NAME: &'static str = "execution_intent_envelope.v1";

    fn from_value(value: &Value) -> Result<Self, ContractError> {
        let attrs = Attrs::new(value)?;
        attrs.check_version(Self::NAME)?;
        Ok(Self {
            intent_id: attrs.required_string("intent_id")?,
            family: attrs.required_string("family")?,
            protocol: attrs.required_string("protocol")?,
            trace_id: attrs.optional_string("trace_id")?,
            idempotency_key: attrs.required_string("idempotency_key")?,
            boundary_session_id: attrs.required_string("boundary_session_id")?,
            decision_id: attrs.required_string("decision_id")?,
            lease_ref: attrs.optional_string("lease_ref")?,
            route_template_ref: attrs.optional_string("route_template_ref")?,
            credential_handle_refs: attrs.list("credential_handle_refs", |v| {
                handle_ref("credential_handle_ref", v)
            })?,
            attempt_ref: attrs.optional_string("attempt_ref")?,
            deadline_at: optional_timestamp(&attrs, "deadline_at")?,
            cancellation_ref: attrs.optional_string("cancellation_ref")?,
            requested_capabilities: attrs
                .string_list("requested_capabilities", "requested_capability")?,
            extensions: attrs.optional_map("extensions")?,
        })
    }

    fn to_value(&self) -> Value {
        dump_packet(self, Self::NAME)
    }
}

/// The Spine-owned route choice carried to the Execution Plane (`execution_route.v1`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExecutionRoute {
    /// Route id; equals `lineage.route_id`.
    pub route_id: String,
    /// Lower family.
    pub family: String,
    /// Lower protocol; selects the protocol module.
    pub protocol: String,
    /// Transport family.
    pub transport_family: String,
    /// Placement family (`local`, `ssh`, `guest`); must match the surface's.
    pub placement_family: String,
    /// Where lanes read `url`, `method`, `command`, `execution_surface`, `lower_simulation`, ...
    pub resolved_target: Map<String, Value>,
    /// Budget; `timeout_ms` feeds the effective timeout.
    pub resolved_budget: Map<String, Value>,
    /// Lineage with every canonical key but `event_id`.
    pub lineage: Lineage,
}

impl Contract for ExecutionRoute {
    const NAME: &'static str = "execution_route.v1";

    fn from_value(value: &Value) -> Result<Self, ContractError> {
        let attrs = Attrs::new(value)?;
        attrs.check_version(Self::NAME)?;
        let route_id = attrs.required_string("route_id")?;
        let lineage = read_lineage(&attrs, &ROUTE_LINEAGE_KEYS)?;
        lineage.check_matches("route_id", &route_id)?;
        Ok(Self {
            route_id,
            family: attrs.required_string("family")?,
            protocol: attrs.required_string("protocol")?,
            transport_family: attrs.required_string("transport_family")?,
            placement_family: attrs.required_string("placement_family")?,
            resolved_target: attrs.optional_map("resolved_target")?,
            resolved_budget: attrs.optional_map("resolved_budget")?,
            lineage,
        })
    }

    fn to_value(&self) -> Value {
        dump_packet(self, Self::NAME)
    }
}

/// An append-only raw execution fact (`execution_event.v1`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExecutionEventV1 {
    /// Event id; equals `lineage.event_id`.
    pub event_id: String,
    /// Route id; equals `lineage.route_id`.
    pub route_id: String,
    /// Event type (`transport.connected`, `dispatch.started`, ...).
    pub event_type: String,
    /// When it happened (ISO 8601 with offset).
    pub timestamp: String,
    /// Lineage with all nine canonical keys.
    pub lineage: Lineage,
    /// Raw event payload.
    pub payload: Map<String, Value>,
}

impl Contract for ExecutionEventV1 {
    const NAME: &'static str = "execution_event.v1";

    fn from_value(value: &Value) -> Result<Self, ContractError> {
        let attrs = Attrs::new(value)?;
        attrs.check_version(Self::NAME)?;
        let event_id = attrs.required_string("event_id")?;
        let route_id = attrs.required_string("route_id")?;
        let lineage = read_lineage(&attrs, &EVENT_LINEAGE_KEYS)?;
        lineage.check_matches("event_id", &event_id)?;
        lineage.check_matches("route_id", &route_id)?;
        Ok(Self {
            event_id,
            route_id,
            event_type: attrs.required_string("event_type")?,
            timestamp: required_timestamp(&attrs, "timestamp")?,
            lineage,
            payload: attrs.optional_map("payload")?,
        })
    }

    fn to_value(&self) -> Value {
        dump_packet(self, Self::NAME)
    }
}

/// A terminal or checkpointed raw outcome (`execution_outcome.v1`). `raw_payload` is the lower
/// family's result kept verbatim, never narrowed or projected.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExecutionOutcome {
    /// Route id; equals `lineage.route_id`.
    pub route_id: String,
    /// [`STATUS_SUCCEEDED`] or [`STATUS_FAILED`] (any non-empty string is carried).
    pub status: String,
    /// Family that produced the result.
    pub family: String,
    /// The raw lower-family result, verbatim.
    pub raw_payload: Map<String, Value>,
    /// Artifacts (evidence records, refs), verbatim.
    pub artifacts: Vec<Value>,
    /// Metrics (`started_at`, `finished_at`, `timeout_ms`, ...).
    pub metrics: Map<String, Value>,
    /// The classified failure, when there is one.
    #[serde(serialize_with = "serialize_failure")]
    pub failure: Option<Failure>,
    /// Lineage with every canonical key but `event_id`.
    pub lineage: Lineage,
}

impl ExecutionOutcome {
    /// Whether the status is [`STATUS_SUCCEEDED`].
    pub fn succeeded(&self) -> bool {
        self.status == STATUS_SUCCEEDED
    }
}

impl Contract for ExecutionOutcome {
    const NAME: &'static str = "execution_outcome.v1";

    fn from_value(value: &Value) -> Result<Self, ContractError> {
        let attrs = Attrs::new(value)?;
        attrs.check_version(Self::NAME)?;
        let route_id = attrs.required_string("route_id")?;
        let lineage = read_lineage(&attrs, &ROUTE_LINEAGE_KEYS)?;
        lineage.check_matches("route_id", &route_id)?;
        Ok(Self {
            route_id,
            status: attrs.required_string("status")?,
            family: attrs.required_string("family")?,
            raw_payload: attrs.optional_map("raw_payload")?,
            artifacts: attrs.list("artifacts", |v| Ok(v.clone()))?,
            metrics: attrs.optional_map("metrics")?,
            failure: match attrs.get("failure") {
                None => None,
                Some(v @ Value::Object(_)) => Some(Failure::from_value(v)?),
                Some(_) => {
                    return Err(ContractError::WrongType {
                        field: "failure".to_owned(),
                        expected: "a map",
                    });
                }
            },
            lineage,
        })
    }

    fn to_value(&self) -> Value {
        dump_packet(self, Self::NAME)
    }
}

/// The Brain's authority decision, carried unchanged: the Execution Plane never reinterprets
/// its policy axes (`authority_decision.v1`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuthorityDecision {
    /// Decision id.
    pub decision_id: String,
    /// Tenant.
    pub tenant_id: String,
    /// Request the decision answers.
    pub request_id: String,
    /// Policy version that produced it.
    pub policy_version: String,
    /// Boundary class.
    pub boundary_class: String,
    /// Trust profile.
    pub trust_profile: String,
    /// Approval profile.
    pub approval_profile: String,
    /// Egress profile.
    pub egress_profile: String,
    /// Workspace profile.
    pub workspace_profile: String,
    /// Resource profile.
    pub resource_profile: String,
    /// Hash identifying the decision (superseded, never edited).
    pub decision_hash: String,
    /// Namespaced extensions.
    pub extensions: Map<String, Value>,
}

impl Contract for AuthorityDecision {
    const NAME: &'static str = "authority_decision.v1";

    fn from_value(value: &Value) -> Result<Self, ContractError> {
        let attrs = Attrs::new(value)?;
        attrs.check_version(Self::NAME)?;
        Ok(Self {
            decision_id: attrs.required_string("decision_id")?,
            tenant_id: attrs.required_string("tenant_id")?,
            request_id: attrs.required_string("request_id")?,
            policy_version: attrs.required_string("policy_version")?,
            boundary_class: attrs.required_string("boundary_class")?,
            trust_profile: attrs.required_string("trust_profile")?,
            approval_profile: attrs.required_string("approval_profile")?,
            egress_profile: attrs.required_string("egress_profile")?,
            workspace_profile: attrs.required_string("workspace_profile")?,
            resource_profile: attrs.required_string("resource_profile")?,
            decision_hash: attrs.required_string("decision_hash")?,
            extensions: attrs.optional_map("extensions")?,
        })
    }

    fn to_value(&self) -> Value {
        dump_packet(self, Self::NAME)
    }
}

/// The Spine's durable boundary/session descriptor (`boundary_session_descriptor.v1`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BoundarySessionDescriptor {
    /// Boundary session id.
    pub boundary_session_id: String,
    /// The authority decision it runs under.
    pub decision_id: String,
    /// Session status.
    pub session_status: String,
    /// Attach state.
    pub attach_state: String,
    /// Workspace ref.
    pub workspace_ref: String,
    /// Artifact refs.
    pub artifact_refs: Vec<String>,
    /// Lease refs.
    pub lease_refs: Vec<String>,
    /// Approval refs.
    pub approval_refs: Vec<String>,
    /// Echo of the policy axes in force.
    pub policy_echo: Map<String, Value>,
    /// Namespaced extensions.
    pub extensions: Map<String, Value>,
}

impl Contract for BoundarySessionDescriptor {
    const NAME: &'static str = "boundary_session_descriptor.v1";

    fn from_value(value: &Value) -> Result<Self, ContractError> {
        let attrs = Attrs::new(value)?;
        attrs.check_version(Self::NAME)?;
        Ok(Self {
            boundary_session_id: attrs.required_string("boundary_session_id")?,
            decision_id: attrs.required_string("decision_id")?,
            session_status: attrs.required_string("session_status")?,
            attach_state: attrs.required_string("attach_state")?,
            workspace_ref: attrs.required_string("workspace_ref")?,
            artifact_refs: attrs.string_list("artifact_refs", "artifact_ref")?,
            lease_refs: attrs.string_list("lease_refs", "lease_ref")?,
            approval_refs: attrs.string_list("approval_refs", "approval_ref")?,
            policy_echo: attrs.optional_map("policy_echo")?,
            extensions: attrs.optional_map("extensions")?,
        })
    }

    fn to_value(&self) -> Value {
        dump_packet(self, Self::NAME)
    }
}

/// A reference to short-lived credential material; raw long-lived secrets are refused
/// (`credential_handle_ref.v1`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CredentialHandleRef {
    /// The opaque handle (`scheme://...` or `urn:...`).
    pub handle_ref: String,
    /// Credential kind (`oauth_bearer`, ...).
    pub kind: String,
    /// Audience the credential is for.
    pub audience: String,
    /// Expiry (ISO 8601 with offset).
    pub expires_at: Option<String>,
    /// Rotation policy.
    pub rotation_policy: Option<String>,
}

impl Contract for CredentialHandleRef {
    const NAME: &'static str = "credential_handle_ref.v1";

    fn from_value(value: &Value) -> Result<Self, ContractError> {
        let attrs = Attrs::new(value)?;
        attrs.check_version(Self::NAME)?;
        Ok(Self {
            handle_ref: handle_ref(
                "handle_ref",
                attrs.map().get("handle_ref").unwrap_or(&Value::Null),
            )?,
            kind: attrs.required_string("kind")?,
            audience: attrs.required_string("audience")?,
            expires_at: optional_timestamp(&attrs, "expires_at")?,
            rotation_policy: attrs.optional_string("rotation_policy")?,
        })
    }

    fn to_value(&self) -> Value {
        dump_packet(self, Self::NAME)
    }
}
