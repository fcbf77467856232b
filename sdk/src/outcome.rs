//! How an execution ended: a success with output, or a failure in one of the 13 frozen classes.

use std::fmt;

use serde_json::{Map, Value};

use crate::json::into_object;
use crate::{PayloadError, Rejection};

/// How an execution ended; build it with [`Outcome::success`] or [`Outcome::failed`].
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub struct Outcome {
    output: Map<String, Value>,
    failure: Option<Failure>,
    metrics: Map<String, Value>,
}

impl Outcome {
    /// A success with `output`, which should be a JSON object (`null` becomes `{}`, any other
    /// value is wrapped as `{"value": ...}`).
    pub fn success(output: Value) -> Self {
        Self {
            output: into_object(output),
            failure: None,
            metrics: Map::new(),
        }
    }

    /// A failure of `class` with a short `reason` and the precise cause in `details` (an object;
    /// `null` becomes `{}`, other values are wrapped as `{"value": ...}`).
    pub fn failed(class: FailureClass, reason: impl Into<String>, details: Value) -> Self {
        Self {
            output: Map::new(),
            failure: Some(Failure {
                class,
                reason: reason.into(),
                details: into_object(details),
            }),
            metrics: Map::new(),
        }
    }

    /// Replaces the output, e.g. to return what a failed call produced before it broke.
    pub fn with_output(mut self, output: Value) -> Self {
        self.output = into_object(output);
        self
    }

    /// Adds one metric (`bytes_sent`, `retries`, ...); the host adds its own timing.
    pub fn with_metric(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.metrics.insert(key.into(), value.into());
        self
    }

    /// Whether the execution succeeded.
    pub fn is_success(&self) -> bool {
        self.failure.is_none()
    }

    /// The output object.
    pub fn output(&self) -> &Map<String, Value> {
        &self.output
    }

    /// The failure, when the execution failed.
    pub fn failure(&self) -> Option<&Failure> {
        self.failure.as_ref()
    }

    /// The metrics object.
    pub fn metrics(&self) -> &Map<String, Value> {
        &self.metrics
    }

    /// Reassembles an outcome from its parts, for the test harness.
    pub(crate) fn from_parts(
        output: Map<String, Value>,
        failure: Option<Failure>,
        metrics: Map<String, Value>,
    ) -> Self {
        Self {
            output,
            failure,
            metrics,
        }
    }
}

/// A rejection that surfaces during `execute` (the SDK re-validates, or a lane returns one) ends
/// the execution as `protocol_framing_failed`: the request as framed cannot be run. The
/// rejection's reason becomes the failure's reason; its message and details go into `details`.
impl From<Rejection> for Outcome {
    fn from(rejection: Rejection) -> Self {
        let mut details = rejection.details;
        details.insert("message".to_owned(), Value::from(rejection.message));
        Self::failed(
            FailureClass::ProtocolFramingFailed,
            rejection.reason,
            Value::Object(details),
        )
    }
}

/// An unreadable payload in `execute` fails like the `invalid_lane_request` rejection it would
/// have been in `validate`.
impl From<PayloadError> for Outcome {
    fn from(error: PayloadError) -> Self {
        Self::from(Rejection::from(error))
    }
}

/// Why an execution failed: the class decides owner, retryability and durability on the host.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// The failure class.
    pub class: FailureClass,
    /// A short reason for people.
    pub reason: String,
    /// The precise cause as data.
    pub details: Map<String, Value>,
}

macro_rules! failure_classes {
    ($( $(#[$doc:meta])* $variant:ident => $name:literal, )*) => {
        /// The 13 frozen failure classes, in their frozen order (the WIT `failure-class` enum).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum FailureClass { $( $(#[$doc])* $variant, )* }

        impl FailureClass {
            /// All classes in frozen order, for tables and exhaustive tests.
            pub const ALL: [FailureClass; 13] = [$(FailureClass::$variant,)*];

            /// The wire name the host's contracts use (`protocol_framing_failed`, ...).
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $name,)* }
            }

            /// The class for a wire name, so lanes can map classes carried in remote errors.
            pub fn parse(name: &str) -> Option<Self> {
                match name { $($name => Some(Self::$variant),)* _ => None }
            }
        }
    };
}

failure_classes! {
    /// Policy refused the execution.
    PolicyDenied => "policy_denied",
    /// No route to a target could be resolved.
    RouteUnresolved => "route_unresolved",
    /// No placement was available to run on.
    PlacementUnavailable => "placement_unavailable",
    /// The lower process or session could not be launched.
    LaunchFailed => "launch_failed",
    /// Connecting or sending failed (DNS, TCP, TLS, HTTP transport errors).
    TransportFailed => "transport_failed",
    /// Bytes arrived but could not be framed or parsed as the protocol.
    ProtocolFramingFailed => "protocol_framing_failed",
    /// The remote understood the request and reported a semantic error.
    SemanticRuntimeFailed => "semantic_runtime_failed",
    /// An approval ran out before use.
    ApprovalExpired => "approval_expired",
    /// A lease ran out before use.
    LeaseExpired => "lease_expired",
    /// An attach did not match what was granted.
    AttachMismatch => "attach_mismatch",
    /// The remote side went away mid-execution.
    RemoteDisconnect => "remote_disconnect",
    /// The execution was cancelled.
    Cancellation => "cancellation",
    /// The execution ran out of time.
    Timeout => "timeout",
}

impl fmt::Display for FailureClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn success_keeps_an_object_output_and_has_no_failure() {
        let o = Outcome::success(json!({"echo": 1}));
        assert!(o.is_success());
        assert_eq!(Value::Object(o.output().clone()), json!({"echo": 1}));
        assert_eq!(o.failure(), None);
    }

    #[test]
    fn success_with_a_scalar_output_wraps_it() {
        assert_eq!(
            Value::Object(Outcome::success(json!(42)).output().clone()),
            json!({"value": 42})
        );
        assert!(Outcome::success(Value::Null).output().is_empty());
    }

    #[test]
    fn failed_carries_class_reason_and_details() {
        let o = Outcome::failed(
            FailureClass::TransportFailed,
            "connect refused",
            json!({"port": 1}),
        );
        assert!(!o.is_success());
        let f = o.failure().unwrap();
        assert_eq!(f.class, FailureClass::TransportFailed);
        assert_eq!(f.reason, "connect refused");
        assert_eq!(Value::Object(f.details.clone()), json!({"port": 1}));
        assert!(o.output().is_empty());
    }

    #[test]
    fn with_output_and_metrics_add_to_either_kind() {
        let o = Outcome::failed(FailureClass::Timeout, "slow", Value::Null)
            .with_output(json!({"partial": true}))
            .with_metric("retries", 2)
            .with_metric("bytes", 10u64);
        assert_eq!(Value::Object(o.output().clone()), json!({"partial": true}));
        assert_eq!(
            Value::Object(o.metrics().clone()),
            json!({"retries": 2, "bytes": 10})
        );
    }

    #[test]
    fn a_rejection_in_execute_fails_as_protocol_framing_with_its_reason() {
        let o = Outcome::from(Rejection::invalid_request("bad").with_detail("field", "m"));
        let f = o.failure().unwrap();
        assert_eq!(f.class, FailureClass::ProtocolFramingFailed);
        assert_eq!(f.reason, "invalid_lane_request");
        assert_eq!(
            Value::Object(f.details.clone()),
            json!({"field": "m", "message": "bad"})
        );
    }

    #[test]
    fn a_payload_error_in_execute_fails_like_its_rejection() {
        let o = Outcome::from(PayloadError::Missing { key: "m".into() });
        assert_eq!(o.failure().unwrap().reason, "invalid_lane_request");
    }

    #[test]
    fn failure_classes_are_thirteen_in_frozen_order_and_round_trip() {
        let names: Vec<_> = FailureClass::ALL.iter().map(|c| c.as_str()).collect();
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
        for class in FailureClass::ALL {
            assert_eq!(FailureClass::parse(class.as_str()), Some(class));
        }
        assert_eq!(FailureClass::parse("nope"), None);
    }
}
