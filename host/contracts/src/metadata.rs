//! "Enterprise precut" metadata: the refs the workflow layer above hands to (and gets back from)
//! Execution Plane activities. Unlike the strict packets these are permissive builders: a field is
//! only checked for being *present* (non-null, and for strings non-blank after trimming), every
//! missing field is reported at once, values keep whatever JSON type they were given, and unknown
//! keys are dropped.
//!
//! ```
//! use ep_contracts::metadata::{HeartbeatMetadata, MetadataError};
//! use serde_json::json;
//!
//! let err = HeartbeatMetadata::new(&json!({"heartbeat_id": "hb-1", "trace_id": " "})).unwrap_err();
//! assert!(matches!(err, MetadataError::MissingRequiredFields(_)));
//! assert!(err.to_string().starts_with("missing required fields: tenant_ref, resource_ref"));
//! ```

use serde_json::{Map, Value};
use thiserror::Error;

use crate::contract::Contract;
use crate::error::ContractError;
use crate::inspect::inspect;

/// Why a metadata builder refused its input.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MetadataError {
    /// Required fields that are absent, null or blank, in the contract's table order.
    #[error("missing required fields: {}", .0.join(", "))]
    MissingRequiredFields(Vec<String>),
    /// The attrs were not a JSON object.
    #[error("invalid attrs: expected a JSON object")]
    InvalidAttrs,
}

/// Whether a metadata value counts as present: non-null, and for strings non-blank after trim.
pub fn is_present(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) => !s.trim().is_empty(),
        Some(_) => true,
    }
}

/// Reads `value` as metadata attrs and lists the missing `required` fields in order.
fn check_attrs<'a>(
    value: &'a Value,
    required: &[&str],
) -> Result<&'a Map<String, Value>, MetadataError> {
    let Value::Object(map) = value else {
        return Err(MetadataError::InvalidAttrs);
    };
    let missing: Vec<String> = required
        .iter()
        .filter(|field| !is_present(map.get(**field)))
        .map(|field| (*field).to_owned())
        .collect();
    if missing.is_empty() {
        Ok(map)
    } else {
        Err(MetadataError::MissingRequiredFields(missing))
    }
}

/// Maps a builder error onto the crate error, naming the first missing field.
fn to_contract_error(err: MetadataError, value: &Value) -> ContractError {
    match err {
        MetadataError::MissingRequiredFields(ref fields) => {
            let field = fields.first().cloned().unwrap_or_default();
            ContractError::rule(field, err.to_string())
        }
        MetadataError::InvalidAttrs => ContractError::NotAnObject {
            got: inspect(value),
        },
    }
}

macro_rules! field_type {
    (required) => { Value };
    (optional) => { Option<Value> };
}

macro_rules! read_field {
    (required, $map:expr, $name:expr) => {
        $map.get($name).cloned().unwrap_or(Value::Null)
    };
    (optional, $map:expr, $name:expr) => {
        $map.get($name).filter(|v| !v.is_null()).cloned()
    };
}

macro_rules! write_field {
    (required, $out:expr, $name:expr, $value:expr) => {
        $out.insert($name.to_owned(), $value.clone());
    };
    (optional, $out:expr, $name:expr, $value:expr) => {
        $out.insert($name.to_owned(), $value.clone().unwrap_or(Value::Null));
    };
}

macro_rules! is_required {
    (required) => {
        true
    };
    (optional) => {
        false
    };
}

macro_rules! metadata_contract {
    (
        $(#[$meta:meta])*
        $ty:ident, $contract:literal,
        { $($field:ident : $kind:ident),* $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq)]
        pub struct $ty {
            /// Always the contract name.
            pub contract_name: String,
            $(
                #[doc = concat!("`", stringify!($field), "` (", stringify!($kind), ").")]
                pub $field: field_type!($kind),
            )*
        }

        impl $ty {
            /// The contract name every value carries.
            pub const CONTRACT_NAME: &'static str = $contract;

            /// All fields after `contract_name`, in declaration order.
            pub const FIELDS: &'static [&'static str] = &[$(stringify!($field)),*];

            /// Required fields, in the order missing ones are reported.
            pub const REQUIRED_FIELDS: &'static [&'static str] = {
                const ALL: &[(&str, bool)] = &[$((stringify!($field), is_required!($kind))),*];
                const N: usize = {
                    let mut n = 0;
                    let mut i = 0;
                    while i < ALL.len() {
                        if ALL[i].1 {
                            n += 1;
                        }
                        i += 1;
                    }
                    n
                };
                const OUT: [&str; N] = {
                    let mut out = [""; N];
                    let mut n = 0;
                    let mut i = 0;
                    while i < ALL.len() {
                        if ALL[i].1 {
                            out[n] = ALL[i].0;
                            n += 1;
                        }
                        i += 1;
                    }
                    out
                };
                &OUT
            };

            /// The contract name.
            pub fn contract_name() -> &'static str {
                Self::CONTRACT_NAME
            }

            /// Builds the metadata: every required field present, unknown keys dropped.
            pub fn new(attrs: &Value) -> Result<Self, MetadataError> {
                let map = check_attrs(attrs, Self::REQUIRED_FIELDS)?;
                Ok(Self {
                    contract_name: Self::CONTRACT_NAME.to_owned(),
                    $($field: read_field!($kind, map, stringify!($field)),)*
                })
            }
        }

        impl Contract for $ty {
            const NAME: &'static str = $contract;

            fn from_value(value: &Value) -> Result<Self, ContractError> {
                Self::new(value).map_err(|err| to_contract_error(err, value))
            }

            fn to_value(&self) -> Value {
                let mut out = Map::new();
                out.insert("contract_name".to_owned(), Value::String(self.contract_name.clone()));
                out.insert("contract_version".to_owned(), Value::String(Self::CONTRACT_NAME.to_owned()));
                $(write_field!($kind, out, stringify!($field), self.$field);)*
                Value::Object(out)
            }
        }
    };
}

metadata_contract! {
    /// Metadata of one execution activity: the workflow, lower run, target and authority refs
    /// an activity carries so its effects stay attributable and traceable.
    ExecutionActivityMetadata, "ExecutionPlane.ExecutionActivityMetadata.v1",
    {
        tenant_ref: required,
        actor_ref: required,
        resource_ref: required,
        workflow_ref: required,
        activity_call_ref: required,
        lower_run_ref: required,
        target_ref: required,
        authority_packet_ref: required,
        permission_decision_ref: required,
        trace_id: required,
        idempotency_key: required,
        runtime_family: required,
        timeout_policy: required,
        heartbeat_policy: required,
    }
}

metadata_contract! {
    /// Cancellation metadata linking a cancel to its authority, workflow and lower run.
    CancellationMetadata, "ExecutionPlane.CancellationMetadata.v1",
    {
        cancellation_id: required,
        tenant_ref: required,
        actor_ref: required,
        resource_ref: required,
        workflow_ref: required,
        activity_call_ref: optional,
        lower_run_ref: required,
        authority_packet_ref: required,
        permission_decision_ref: required,
        trace_id: required,
        idempotency_key: required,
    }
}

metadata_contract! {
    /// Heartbeat metadata linking a heartbeat to its workflow activity and lease.
    HeartbeatMetadata, "ExecutionPlane.HeartbeatMetadata.v1",
    {
        heartbeat_id: required,
        tenant_ref: required,
        resource_ref: required,
        workflow_ref: required,
        activity_call_ref: required,
        lower_run_ref: required,
        trace_id: required,
        lease_ref: required,
    }
}

metadata_contract! {
    /// A lease-bound, traceable, revocable attach grant as the workflow layer sees it.
    AttachGrantContract, "ExecutionPlane.AttachGrantLeaseBoundTraceable.v1",
    {
        attach_grant_id: required,
        tenant_ref: required,
        principal_ref: required,
        resource_ref: required,
        stream_ref: required,
        lease_ref: required,
        expires_at: required,
        revocation_state: required,
        authority_packet_ref: required,
        permission_decision_ref: required,
        trace_id: required,
    }
}

metadata_contract! {
    /// A stream's lease and epoch, and its revocation state when known.
    StreamLeaseContract, "ExecutionPlane.StreamLeaseContract.v1",
    {
        stream_ref: required,
        tenant_ref: required,
        resource_ref: required,
        lease_ref: required,
        epoch_ref: required,
        trace_id: required,
        revocation_state: optional,
    }
}

metadata_contract! {
    /// A public-safe reference to raw runtime evidence: a hash and a redaction posture, never
    /// the evidence itself.
    RuntimeEvidenceRef, "ExecutionPlane.RuntimeEvidenceRef.v1",
    {
        runtime_evidence_ref: required,
        tenant_ref: required,
        resource_ref: required,
        lower_run_ref: required,
        trace_id: required,
        payload_hash: required,
        redaction_posture: required,
    }
}

metadata_contract! {
    /// The side-effect idempotency contract of a durable-workflow activity: the workflow layer
    /// owns the worker, Execution Plane owns the lower side effect and keys retries by
    /// `intent_id + idempotency_key`.
    ActivitySideEffectIdempotency, "ExecutionPlane.ActivitySideEffectIdempotency.v1",
    {
        tenant_ref: required,
        actor_ref: required,
        resource_ref: required,
        workflow_ref: required,
        activity_call_ref: required,
        lower_run_ref: required,
        intent_id: required,
        idempotency_key: required,
        authority_packet_ref: required,
        permission_decision_ref: required,
        trace_id: required,
        lease_ref: required,
        lease_evidence_ref: required,
        heartbeat_policy: required,
        timeout_policy: required,
        retry_policy: required,
        runtime_family: required,
        side_effect_ref: required,
        release_manifest_ref: required,
    }
}

/// What identifies one side effect across retries.
pub const IDEMPOTENCY_SCOPE: &str = "intent_id + idempotency_key";

impl ActivitySideEffectIdempotency {
    /// The retry scope of a side effect: [`IDEMPOTENCY_SCOPE`].
    pub fn idempotency_scope() -> &'static str {
        IDEMPOTENCY_SCOPE
    }

    /// The key that identifies this side effect: `(intent_id, idempotency_key)`.
    pub fn side_effect_key(&self) -> (&Value, &Value) {
        (&self.intent_id, &self.idempotency_key)
    }

    /// Whether two activity calls are retries of the same side effect (same key; other refs,
    /// such as `activity_call_ref`, may differ).
    pub fn same_retry_scope(&self, other: &Self) -> bool {
        self.side_effect_key() == other.side_effect_key()
    }
}
