//! The effective timeout of a dispatch: the smallest positive budget among the caller's option,
//! the route budget, the HTTP request timeout and the envelope deadline; 30 s when none is set.
//!
//! Unlike upstream, a deadline that has already passed is not ignored: it makes the dispatch an
//! immediate `timeout` (see [`Timeout::Expired`]), so an expired request never reaches a lane.

use chrono::{DateTime, Utc};

/// Timeout when no budget is given, in milliseconds.
pub const DEFAULT_TIMEOUT_MS: u64 = 30_000;

/// The outcome of timeout planning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timeout {
    /// Run with this many milliseconds.
    Budget(u64),
    /// The envelope deadline passed before dispatch (by this many milliseconds, ≥ 0).
    Expired {
        /// How long ago the deadline passed.
        overdue_ms: u64,
    },
}

impl Timeout {
    /// The budget in milliseconds (0 when expired).
    pub fn as_ms(self) -> u64 {
        match self {
            Self::Budget(ms) => ms,
            Self::Expired { .. } => 0,
        }
    }
}

/// Budgets that feed the effective timeout; non-positive values are ignored.
#[derive(Debug, Clone, Copy, Default)]
pub struct Budgets {
    /// The caller's `timeout_ms` option.
    pub option_ms: Option<i64>,
    /// `route.resolved_budget.timeout_ms`.
    pub route_ms: Option<i64>,
    /// HTTP `intent.timeouts.request_timeout_ms`.
    pub request_ms: Option<i64>,
    /// `envelope.deadline_at`.
    pub deadline: Option<DateTime<chrono::FixedOffset>>,
}

/// Plans the effective timeout at `now`.
pub fn effective_timeout(budgets: &Budgets, now: DateTime<Utc>) -> Timeout {
    let mut candidates: Vec<u64> = [budgets.option_ms, budgets.route_ms, budgets.request_ms]
        .into_iter()
        .flatten()
        .filter_map(|ms| u64::try_from(ms).ok().filter(|ms| *ms > 0))
        .collect();
    if let Some(deadline) = budgets.deadline {
        let remaining = deadline
            .with_timezone(&Utc)
            .signed_duration_since(now)
            .num_milliseconds();
        if remaining <= 0 {
            return Timeout::Expired {
                overdue_ms: remaining.unsigned_abs(),
            };
        }
        candidates.push(remaining.unsigned_abs());
    }
    Timeout::Budget(candidates.into_iter().min().unwrap_or(DEFAULT_TIMEOUT_MS))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn default_is_thirty_seconds() {
        assert_eq!(
            effective_timeout(&Budgets::default(), Utc::now()),
            Timeout::Budget(30_000)
        );
    }

    #[test]
    fn smallest_positive_budget_wins_and_non_positive_are_ignored() {
        let b = Budgets {
            option_ms: Some(0),
            route_ms: Some(1500),
            request_ms: Some(750),
            deadline: None,
        };
        assert_eq!(effective_timeout(&b, Utc::now()), Timeout::Budget(750));
        let b = Budgets {
            option_ms: Some(-5),
            ..Budgets::default()
        };
        assert_eq!(effective_timeout(&b, Utc::now()), Timeout::Budget(30_000));
    }

    #[test]
    fn deadline_remaining_counts_as_a_budget() {
        let now = at("2026-01-01T00:00:00Z");
        let b = Budgets {
            route_ms: Some(60_000),
            deadline: Some(DateTime::parse_from_rfc3339("2026-01-01T00:00:02Z").unwrap()),
            ..Budgets::default()
        };
        assert_eq!(effective_timeout(&b, now), Timeout::Budget(2_000));
    }

    #[test]
    fn a_passed_deadline_is_an_immediate_timeout() {
        let now = at("2026-01-01T00:00:05Z");
        let b = Budgets {
            route_ms: Some(60_000),
            deadline: Some(DateTime::parse_from_rfc3339("2026-01-01T00:00:02+00:00").unwrap()),
            ..Budgets::default()
        };
        assert_eq!(
            effective_timeout(&b, now),
            Timeout::Expired { overdue_ms: 3_000 }
        );
        let exactly_now = Budgets {
            deadline: Some(DateTime::parse_from_rfc3339("2026-01-01T00:00:05Z").unwrap()),
            ..Budgets::default()
        };
        assert_eq!(
            effective_timeout(&exactly_now, now),
            Timeout::Expired { overdue_ms: 0 }
        );
    }
}
