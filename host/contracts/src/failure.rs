//! `Failure` and the 13 frozen failure classes; owner, retryability and durability are derived
//! from the class, never taken from input.

use serde_json::{Map, Value};

use crate::error::ContractError;
use crate::fields::Attrs;
use crate::inspect::inspect;

/// Who owns the response to a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PrimaryOwner {
    /// The orchestration layer (routes, approvals, leases).
    Spine,
    /// This host.
    ExecutionPlane,
    /// The family kit above the lane (semantic failures).
    FamilyKit,
}

impl PrimaryOwner {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Spine => "spine",
            Self::ExecutionPlane => "execution_plane",
            Self::FamilyKit => "family_kit",
        }
    }
}

/// Whether a failure matters to durable truth or is a raw fact only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DurableTruthRelevance {
    /// Recorded as durable truth above.
    DurableTruth,
    /// A raw fact only.
    RawFactOnly,
}

impl DurableTruthRelevance {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DurableTruth => "durable_truth",
            Self::RawFactOnly => "raw_fact_only",
        }
    }
}

macro_rules! failure_classes {
    ($( $variant:ident => $name:literal, $owner:ident, $retry:literal, $dur:ident; )*) => {
        /// The frozen failure classes, in their frozen order.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum FailureClass { $(
            #[doc = concat!("`", $name, "`")]
            $variant,
        )* }

        impl FailureClass {
            /// All classes in frozen order.
            pub const ALL: [FailureClass; 13] = [$(FailureClass::$variant,)*];

            /// The wire name.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $name,)* }
            }

            /// The class for a wire name.
            pub fn parse(name: &str) -> Option<Self> {
                match name { $($name => Some(Self::$variant),)* _ => None }
            }

            /// Who owns the response.
            pub fn primary_owner(self) -> PrimaryOwner {
                match self { $(Self::$variant => PrimaryOwner::$owner,)* }
            }

            /// Whether a new call may succeed.
            pub fn retryable(self) -> bool {
                match self { $(Self::$variant => $retry,)* }
            }

            /// Durable truth or raw fact only.
            pub fn durable_truth_relevance(self) -> DurableTruthRelevance {
                match self { $(Self::$variant => DurableTruthRelevance::$dur,)* }
            }
        }
    };
}

failure_classes! {
    PolicyDenied => "policy_denied", Spine, false, DurableTruth;
    RouteUnresolved => "route_unresolved", Spine, true, DurableTruth;
    PlacementUnavailable => "placement_unavailable", ExecutionPlane, true, DurableTruth;
    LaunchFailed => "launch_failed", ExecutionPlane, true, DurableTruth;
    TransportFailed => "transport_failed", ExecutionPlane, true, DurableTruth;
    ProtocolFramingFailed => "protocol_framing_failed", ExecutionPlane, false, DurableTruth;
    SemanticRuntimeFailed => "semantic_runtime_failed", FamilyKit, false, DurableTruth;
    ApprovalExpired => "approval_expired", Spine, false, DurableTruth;
    LeaseExpired => "lease_expired", Spine, true, DurableTruth;
    AttachMismatch => "attach_mismatch", Spine, false, DurableTruth;
    RemoteDisconnect => "remote_disconnect", ExecutionPlane, true, RawFactOnly;
    Cancellation => "cancellation", Spine, false, DurableTruth;
    Timeout => "timeout", ExecutionPlane, true, RawFactOnly;
}

impl std::fmt::Display for FailureClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failure inside an outcome: the class plus an optional reason and details.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// The class; owner/retryable/durability derive from it.
    pub failure_class: FailureClass,
    /// A short human reason.
    pub reason: Option<String>,
    /// The precise cause, as data.
    pub details: Map<String, Value>,
}

impl Failure {
    /// A failure of `class` with a reason and no details.
    pub fn new(class: FailureClass, reason: impl Into<String>) -> Self {
        Self {
            failure_class: class,
            reason: Some(reason.into()),
            details: Map::new(),
        }
    }

    /// Adds one detail.
    #[must_use]
    pub fn with_detail(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.details.insert(key.to_owned(), value.into());
        self
    }

    /// Validates failure attrs; derived fields in the input are ignored.
    pub fn from_value(value: &Value) -> Result<Self, ContractError> {
        let attrs = Attrs::new(value)?;
        let class = match attrs.get("failure_class") {
            Some(Value::String(s)) => FailureClass::parse(s),
            _ => None,
        }
        .ok_or_else(|| ContractError::UnknownFailureClass {
            got: inspect(attrs.get("failure_class").unwrap_or(&Value::Null)),
        })?;
        Ok(Self {
            failure_class: class,
            reason: attrs.optional_string("reason")?,
            details: attrs.optional_map("details")?,
        })
    }

    /// Dumps with the derived fields (`primary_owner`, `retryable?`, `durable_truth_relevance`).
    pub fn to_value(&self) -> Value {
        let class = self.failure_class;
        let mut map = Map::new();
        map.insert("failure_class".into(), class.as_str().into());
        map.insert(
            "reason".into(),
            self.reason.clone().map_or(Value::Null, Value::String),
        );
        map.insert("details".into(), Value::Object(self.details.clone()));
        map.insert(
            "primary_owner".into(),
            class.primary_owner().as_str().into(),
        );
        map.insert("retryable?".into(), class.retryable().into());
        map.insert(
            "durable_truth_relevance".into(),
            class.durable_truth_relevance().as_str().into(),
        );
        Value::Object(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn class_order_is_frozen() {
        let names: Vec<&str> = FailureClass::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(
            names,
            [
                "policy_denied",
                "route_unresolved",
                "placement_unavailable",
                "launch_failed",
                "transport_failed",
                "protocol_framing_failed",
                "semantic_runtime_failed",
                "approval_expired",
                "lease_expired",
                "attach_mismatch",
                "remote_disconnect",
                "cancellation",
                "timeout",
            ]
        );
    }

    #[test]
    fn launch_failed_derives_owner_retryable_and_durability() {
        let f = Failure::from_value(&json!({"failure_class": "launch_failed"})).unwrap();
        let v = f.to_value();
        assert_eq!(v["failure_class"], "launch_failed");
        assert_eq!(v["primary_owner"], "execution_plane");
        assert_eq!(v["retryable?"], true);
        assert_eq!(v["durable_truth_relevance"], "durable_truth");
    }

    #[test]
    fn derived_fields_in_input_are_ignored() {
        let f = Failure::from_value(&json!({
            "failure_class": "timeout", "retryable?": false, "primary_owner": "spine"
        }))
        .unwrap();
        assert_eq!(f.to_value()["retryable?"], true);
        assert_eq!(f.to_value()["durable_truth_relevance"], "raw_fact_only");
    }

    #[test]
    fn unknown_class_is_rejected_with_upstream_wording() {
        let err = Failure::from_value(&json!({"failure_class": "oops"})).unwrap_err();
        assert_eq!(err.to_string(), r#"unknown failure_class: "oops""#);
    }

    #[test]
    fn every_class_round_trips() {
        for class in FailureClass::ALL {
            let f = Failure::new(class, "r").with_detail("k", 1);
            assert_eq!(Failure::from_value(&f.to_value()).unwrap(), f);
        }
    }
}
