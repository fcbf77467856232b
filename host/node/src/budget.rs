//! The time an execution may take, planned once at admission by the kernel's effective-timeout
//! rule (`ep_kernel::timeout`): the smallest positive budget of the request's
//! `metadata.timeout_ms` and the time left until its `metadata.deadline_at` (RFC 3339). A
//! deadline that has already passed makes the dispatch an immediate `timeout`: the lane is never
//! called. A budget that does not read is refused at admission (`invalid_lane_request`), before
//! a single-use authority ref is used up.

use std::time::Duration;

use chrono::{DateTime, Utc};
use ep_contracts::boundary::{AdmissionRejection, AdmissionRequest, Map, RejectionReason};
use ep_kernel::timeout::{Budgets, Timeout, effective_timeout};
use ep_lane_api::Deadline;
use serde_json::Value;

/// The metadata key of the caller's budget in milliseconds.
pub const TIMEOUT_MS: &str = "timeout_ms";
/// The metadata key of the caller's absolute deadline (RFC 3339).
pub const DEADLINE_AT: &str = "deadline_at";

/// What admission planned for the execution's time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    /// The request set no budget: the lane's own default (capped by its limits) applies.
    Unset,
    /// Run until this deadline.
    Until(Deadline),
    /// `deadline_at` passed this many milliseconds before admission.
    Expired {
        /// How long ago the deadline passed.
        overdue_ms: u64,
    },
}

impl Budget {
    /// The deadline a lane gets (none when unset or expired).
    pub fn deadline(&self) -> Option<Deadline> {
        match self {
            Self::Until(deadline) => Some(*deadline),
            Self::Unset | Self::Expired { .. } => None,
        }
    }
}

/// Plans the budget of `request` at `now`, or refuses a budget that does not read.
pub(crate) fn plan(
    request: &AdmissionRequest,
    now: DateTime<Utc>,
) -> Result<Budget, AdmissionRejection> {
    let option_ms = timeout_ms(&request.metadata)?;
    let deadline = deadline_at(&request.metadata)?;
    if option_ms.is_none() && deadline.is_none() {
        return Ok(Budget::Unset);
    }
    let budgets = Budgets {
        option_ms,
        deadline,
        ..Budgets::default()
    };
    Ok(match effective_timeout(&budgets, now) {
        Timeout::Budget(ms) => Budget::Until(Deadline::after(Duration::from_millis(ms))),
        Timeout::Expired { overdue_ms } => Budget::Expired { overdue_ms },
    })
}

fn invalid(key: &str, found: &Value, expected: &str) -> AdmissionRejection {
    let mut rejection = AdmissionRejection::new(
        RejectionReason::InvalidLaneRequest,
        format!("metadata.{key} must be {expected} (got {found})"),
    );
    rejection
        .details
        .insert("field".to_owned(), format!("metadata.{key}").into());
    rejection
}

/// `metadata.timeout_ms`: a positive integer of milliseconds.
fn timeout_ms(metadata: &Map) -> Result<Option<i64>, AdmissionRejection> {
    match metadata.get(TIMEOUT_MS) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => match value.as_u64().filter(|ms| *ms > 0) {
            Some(ms) => Ok(Some(i64::try_from(ms).unwrap_or(i64::MAX))),
            None => Err(invalid(
                TIMEOUT_MS,
                value,
                "a positive integer of milliseconds",
            )),
        },
    }
}

/// `metadata.deadline_at`: an RFC 3339 timestamp.
fn deadline_at(
    metadata: &Map,
) -> Result<Option<DateTime<chrono::FixedOffset>>, AdmissionRejection> {
    match metadata.get(DEADLINE_AT) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value
            .as_str()
            .and_then(|text| DateTime::parse_from_rfc3339(text).ok())
            .map(Some)
            .ok_or_else(|| {
                invalid(
                    DEADLINE_AT,
                    value,
                    "an RFC 3339 timestamp such as 2026-12-03T10:00:00Z",
                )
            }),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    fn request(metadata: Value) -> AdmissionRequest {
        let mut request = AdmissionRequest::new("http");
        if let Value::Object(map) = metadata {
            request.metadata = map;
        }
        request
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[tokio::test]
    async fn the_smallest_budget_wins_and_none_leaves_the_lane_its_default() {
        let now = at("2026-12-03T10:00:00Z");
        assert_eq!(plan(&request(json!({})), now).unwrap(), Budget::Unset);
        let budget = |metadata| {
            plan(&request(metadata), now)
                .unwrap()
                .deadline()
                .unwrap()
                .budget()
        };
        assert_eq!(
            budget(json!({"timeout_ms": 250})),
            Duration::from_millis(250)
        );
        assert_eq!(
            budget(json!({"deadline_at": "2026-12-03T10:00:01Z"})),
            Duration::from_secs(1)
        );
        assert_eq!(
            budget(json!({"timeout_ms": 5000, "deadline_at": "2026-12-03T10:00:02Z"})),
            Duration::from_secs(2)
        );
        assert_eq!(
            budget(json!({"timeout_ms": 40, "deadline_at": "2026-12-03T11:00:05+01:00"})),
            Duration::from_millis(40)
        );
    }

    #[test]
    fn a_passed_deadline_is_expired_and_a_budget_that_does_not_read_is_refused() {
        let now = at("2026-12-03T10:00:00Z");
        assert_eq!(
            plan(
                &request(json!({"deadline_at": "2026-12-03T09:59:59.500Z"})),
                now
            )
            .unwrap(),
            Budget::Expired { overdue_ms: 500 }
        );
        for bad in [
            json!({"timeout_ms": 0}),
            json!({"timeout_ms": -5}),
            json!({"timeout_ms": "100"}),
            json!({"deadline_at": "tomorrow"}),
            json!({"deadline_at": 17}),
        ] {
            let rejection = plan(&request(bad.clone()), now).unwrap_err();
            assert_eq!(rejection.reason, "invalid_lane_request", "{bad}");
            assert!(
                rejection
                    .message
                    .as_deref()
                    .unwrap()
                    .starts_with("metadata."),
                "{bad}: {rejection:?}"
            );
        }
    }
}
