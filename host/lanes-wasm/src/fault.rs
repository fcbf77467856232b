//! Runtime faults of a guest call and their typed failures. Whatever a guest does — trap, spin,
//! exhaust its memory or handles, break the ABI's JSON framing, outlive its deadline, get
//! cancelled — ends only its own execution, as a failed result with one of the 13 failure
//! classes and the precise cause in `details.cause`:
//!
//! | fault                                   | class                     | `details.cause`    |
//! |-----------------------------------------|---------------------------|--------------------|
//! | trap (panic, `unreachable`, host error) | `semantic_runtime_failed` | `trap`             |
//! | memory growth refused by the limit      | `semantic_runtime_failed` | `memory_limit`     |
//! | handle / resource / table / event cap   | `semantic_runtime_failed` | `resource_limit`   |
//! | output/metrics/event/failure not JSON   | `protocol_framing_failed` | `invalid_json`     |
//! | deadline (epoch or wall clock)          | `timeout`                 | `deadline`         |
//! | cancel signal                           | `cancellation`            | `cancelled`        |
//! | instantiation failed                    | `launch_failed`           | `instantiation`    |
//! | lane wait queue full                    | `placement_unavailable`   | `lane_saturated`   |
//! | a stream outlived its lifetime          | `timeout`                 | `stream_lifetime`  |
//! | a stream spent its event budget         | `policy_denied`           | `stream_event_budget` |

use std::time::Duration;

use ep_contracts::{Failure, FailureClass};
use serde_json::Value;
use wasmtime::Trap;
use wasmtime::component::ResourceTableError;

use crate::state::{HostFault, LaneState, LimitHit};

/// Bytes of an error chain kept in `details.message`.
const MAX_MESSAGE_BYTES: usize = 2048;
/// wasmtime's message when a store's live component handles reach `max_component_handles`.
const HANDLE_LIMIT_MESSAGE: &str = "handle limit exceeded";

/// Where an execution was when its deadline passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Waiting in the lane's queue.
    Queued,
    /// Waiting for a pooled instance slot.
    InstanceSlot,
    /// Instantiating or running the guest.
    Running,
}

impl Phase {
    fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::InstanceSlot => "instance_slot",
            Self::Running => "running",
        }
    }
}

/// Why a guest call ended without a usable answer.
#[derive(Debug, Clone)]
pub(crate) enum Fault {
    /// The guest trapped.
    Trap {
        trap: String,
        message: String,
        console: Option<String>,
    },
    /// The guest trapped after its memory growth was refused.
    MemoryLimit {
        limit: usize,
        requested: usize,
        trap: String,
        console: Option<String>,
    },
    /// A count limit (handles, host resources, table elements, events) was hit.
    ResourceLimit {
        limit: &'static str,
        message: String,
    },
    /// The guest broke the ABI's JSON framing.
    InvalidJson { what: &'static str, message: String },
    /// The deadline passed.
    Deadline { timeout: Duration, phase: Phase },
    /// The execution was cancelled.
    Cancelled,
    /// The component could not be instantiated.
    Instantiation { message: String },
    /// The lane's wait queue is full.
    Saturated {
        max_concurrent: usize,
        max_queued: usize,
    },
    /// A stream lived as long as its lifetime allows.
    StreamLifetime { lifetime: Duration },
    /// A stream yielded as many events as its budget allows.
    StreamEventBudget { budget: u64 },
}

impl Fault {
    /// The `details.cause` value.
    pub(crate) fn cause(&self) -> &'static str {
        match self {
            Self::Trap { .. } => "trap",
            Self::MemoryLimit { .. } => "memory_limit",
            Self::ResourceLimit { .. } => "resource_limit",
            Self::InvalidJson { .. } => "invalid_json",
            Self::Deadline { .. } => "deadline",
            Self::Cancelled => "cancelled",
            Self::Instantiation { .. } => "instantiation",
            Self::Saturated { .. } => "lane_saturated",
            Self::StreamLifetime { .. } => "stream_lifetime",
            Self::StreamEventBudget { .. } => "stream_event_budget",
        }
    }

    /// The typed failure, with the cause and its specifics in `details`.
    pub(crate) fn failure(&self, lane_id: &str) -> Failure {
        let (class, reason) = match self {
            Self::Trap { trap, .. } => (
                FailureClass::SemanticRuntimeFailed,
                format!("lane {lane_id} trapped: {trap}"),
            ),
            Self::MemoryLimit { limit, .. } => (
                FailureClass::SemanticRuntimeFailed,
                format!("lane {lane_id} exceeded its memory limit of {limit} bytes"),
            ),
            Self::ResourceLimit { limit, .. } => (
                FailureClass::SemanticRuntimeFailed,
                format!("lane {lane_id} exceeded its {limit} limit"),
            ),
            Self::InvalidJson { what, .. } => (
                FailureClass::ProtocolFramingFailed,
                format!("lane {lane_id} returned {what} that is not a JSON object"),
            ),
            Self::Deadline { timeout, .. } => (
                FailureClass::Timeout,
                format!(
                    "lane {lane_id} did not finish within its {} ms deadline",
                    timeout.as_millis()
                ),
            ),
            Self::Cancelled => (
                FailureClass::Cancellation,
                format!("execution on lane {lane_id} was cancelled"),
            ),
            Self::Instantiation { .. } => (
                FailureClass::LaunchFailed,
                format!("lane {lane_id} could not be instantiated"),
            ),
            Self::Saturated { .. } => (
                FailureClass::PlacementUnavailable,
                format!("lane {lane_id} is saturated: every slot is busy and its queue is full"),
            ),
            Self::StreamLifetime { lifetime } => (
                FailureClass::Timeout,
                format!(
                    "stream on lane {lane_id} reached its {} ms lifetime",
                    lifetime.as_millis()
                ),
            ),
            Self::StreamEventBudget { budget } => (
                FailureClass::PolicyDenied,
                format!("stream on lane {lane_id} spent its budget of {budget} events"),
            ),
        };
        let mut failure = Failure::new(class, reason).with_detail("cause", self.cause());
        match self {
            Self::Trap {
                trap,
                message,
                console,
            } => {
                failure = failure
                    .with_detail("trap", trap.as_str())
                    .with_detail("message", message.as_str());
                failure = with_console(failure, console);
            }
            Self::MemoryLimit {
                limit,
                requested,
                trap,
                console,
            } => {
                failure = failure
                    .with_detail("limit_bytes", *limit as u64)
                    .with_detail("requested_bytes", *requested as u64)
                    .with_detail("trap", trap.as_str());
                failure = with_console(failure, console);
            }
            Self::ResourceLimit { limit, message } => {
                failure = failure
                    .with_detail("limit", *limit)
                    .with_detail("message", message.as_str());
            }
            Self::InvalidJson { what, message } => {
                failure = failure
                    .with_detail("field", *what)
                    .with_detail("message", message.as_str());
            }
            Self::Deadline { timeout, phase } => {
                failure = failure
                    .with_detail("timeout_ms", timeout.as_millis() as u64)
                    .with_detail("phase", phase.as_str());
            }
            Self::Cancelled => {}
            Self::Instantiation { message } => {
                failure = failure.with_detail("message", message.as_str());
            }
            Self::Saturated {
                max_concurrent,
                max_queued,
            } => {
                failure = failure
                    .with_detail("max_concurrent", *max_concurrent as u64)
                    .with_detail("max_queued", *max_queued as u64);
            }
            Self::StreamLifetime { lifetime } => {
                failure = failure.with_detail("lifetime_ms", lifetime.as_millis() as u64);
            }
            Self::StreamEventBudget { budget } => {
                failure = failure.with_detail("max_stream_events", *budget);
            }
        }
        failure
    }
}

fn with_console(failure: Failure, console: &Option<String>) -> Failure {
    match console {
        Some(text) => failure.with_detail("console", Value::String(text.clone())),
        None => failure,
    }
}

/// Classifies the error of a guest call from the store's records first (deadline flag, host
/// import faults, limiter hits), then from the error itself.
pub(crate) fn classify(error: &wasmtime::Error, state: &LaneState, timeout: Duration) -> Fault {
    let message = crate::error::error_chain(error, MAX_MESSAGE_BYTES);
    let trap = error.downcast_ref::<Trap>().copied();
    if state.deadline_hit || trap == Some(Trap::Interrupt) {
        return Fault::Deadline {
            timeout,
            phase: Phase::Running,
        };
    }
    if let Some(fault) = &state.fault {
        return match fault {
            HostFault::TooManyEvents { .. } => Fault::ResourceLimit {
                limit: "events",
                message: fault.to_string(),
            },
            HostFault::EventBytes { .. } => Fault::ResourceLimit {
                limit: "event_bytes",
                message: fault.to_string(),
            },
            HostFault::EventNotJson { .. } => Fault::InvalidJson {
                what: "event payload-json",
                message: fault.to_string(),
            },
        };
    }
    let trap_text = trap.map_or_else(|| first_line(&message), |t| t.to_string());
    match state.limiter.hit {
        Some(LimitHit::Memory { limit, requested }) => {
            return Fault::MemoryLimit {
                limit,
                requested,
                trap: trap_text,
                console: state.console.text(),
            };
        }
        Some(LimitHit::TableElements { limit, requested }) => {
            return Fault::ResourceLimit {
                limit: "table_elements",
                message: format!(
                    "table growth to {requested} elements refused (limit {limit}): {message}"
                ),
            };
        }
        None => {}
    }
    if error
        .chain()
        .any(|cause| matches!(cause.downcast_ref(), Some(ResourceTableError::Full)))
    {
        return Fault::ResourceLimit {
            limit: "host_resources",
            message,
        };
    }
    if message.contains(HANDLE_LIMIT_MESSAGE) {
        return Fault::ResourceLimit {
            limit: "component_handles",
            message,
        };
    }
    Fault::Trap {
        trap: trap_text,
        message,
        console: state.console.text(),
    }
}

fn first_line(message: &str) -> String {
    message.lines().next().unwrap_or_default().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fault_maps_to_its_documented_class_and_cause() {
        let timeout = Duration::from_millis(200);
        let cases = [
            (
                Fault::Trap {
                    trap: "t".into(),
                    message: "m".into(),
                    console: None,
                },
                "semantic_runtime_failed",
                "trap",
            ),
            (
                Fault::MemoryLimit {
                    limit: 1,
                    requested: 2,
                    trap: "t".into(),
                    console: Some("c".into()),
                },
                "semantic_runtime_failed",
                "memory_limit",
            ),
            (
                Fault::ResourceLimit {
                    limit: "component_handles",
                    message: "m".into(),
                },
                "semantic_runtime_failed",
                "resource_limit",
            ),
            (
                Fault::InvalidJson {
                    what: "output-json",
                    message: "m".into(),
                },
                "protocol_framing_failed",
                "invalid_json",
            ),
            (
                Fault::Deadline {
                    timeout,
                    phase: Phase::Queued,
                },
                "timeout",
                "deadline",
            ),
            (Fault::Cancelled, "cancellation", "cancelled"),
            (
                Fault::Instantiation {
                    message: "m".into(),
                },
                "launch_failed",
                "instantiation",
            ),
            (
                Fault::Saturated {
                    max_concurrent: 1,
                    max_queued: 0,
                },
                "placement_unavailable",
                "lane_saturated",
            ),
        ];
        for (fault, class, cause) in cases {
            let value = fault.failure("lane-x").to_value();
            assert_eq!(value["failure_class"], class, "{fault:?}");
            assert_eq!(value["details"]["cause"], cause, "{fault:?}");
            assert!(
                value["reason"].as_str().unwrap().contains("lane-x"),
                "{value}"
            );
        }
    }
}
