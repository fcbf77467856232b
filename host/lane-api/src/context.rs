//! What a lane is handed with each request besides the request itself.

use std::time::Duration;

use tokio::time::Instant;

use crate::cancel::CancelSignal;
use crate::evidence::LaneEvidence;
use crate::input::InputSlot;
use crate::target::Dispatch;

/// When an execution must end: planned once, before dispatch, from every budget the request
/// and its route carry (the kernel's effective-timeout rule), and handed to the lane as a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    at: Instant,
    budget: Duration,
}

impl Deadline {
    /// A deadline `budget` from now.
    pub fn after(budget: Duration) -> Self {
        Self {
            at: Instant::now() + budget,
            budget,
        }
    }

    /// The instant the execution must have ended by.
    pub fn at(&self) -> Instant {
        self.at
    }

    /// The whole budget planned for the execution.
    pub fn budget(&self) -> Duration {
        self.budget
    }

    /// What is left of the budget now (zero once it has passed).
    pub fn remaining(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }

    /// Whether it has passed.
    pub fn has_passed(&self) -> bool {
        Instant::now() >= self.at
    }
}

/// What a lane gets besides the request.
#[derive(Debug, Clone, Default)]
pub struct ExecutionContext {
    /// Fires when the execution is cancelled (or its stream dropped).
    pub cancel: CancelSignal,
    /// The deadline planned for the execution; `None` when neither the caller nor the route set
    /// a budget, so the lane's own default (capped by its limits) applies.
    pub deadline: Option<Deadline>,
    /// The caller's input to the running execution (streams only; empty otherwise).
    pub input: InputSlot,
    /// Where the lane reports what it refused; the node records it.
    pub evidence: LaneEvidence,
}

impl ExecutionContext {
    /// A context with `cancel` and `deadline`.
    pub fn new(cancel: CancelSignal, deadline: Option<Deadline>) -> Self {
        Self {
            cancel,
            deadline,
            input: InputSlot::default(),
            evidence: LaneEvidence::default(),
        }
    }

    /// The context a target builds for `dispatch`, with the target's `cancel` signal.
    pub fn for_dispatch(cancel: CancelSignal, dispatch: Dispatch) -> Self {
        Self {
            cancel,
            deadline: dispatch.deadline,
            input: dispatch.input,
            evidence: dispatch.evidence,
        }
    }

    /// The same context, with `input` as the caller's input channel.
    #[must_use]
    pub fn with_input(mut self, input: InputSlot) -> Self {
        self.input = input;
        self
    }

    /// How long the execution may take: what is left of the planned deadline, else
    /// `default`; never more than `cap`.
    pub fn time_left(&self, default: Duration, cap: Duration) -> Duration {
        self.deadline
            .map_or(default, |deadline| deadline.remaining())
            .min(cap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_deadline_counts_down_and_the_lane_takes_the_smaller_of_it_and_its_cap() {
        let deadline = Deadline::after(Duration::from_millis(300));
        assert_eq!(deadline.budget(), Duration::from_millis(300));
        assert!(!deadline.has_passed());
        tokio::time::advance(Duration::from_millis(100)).await;
        assert_eq!(deadline.remaining(), Duration::from_millis(200));
        let ctx = ExecutionContext::new(CancelSignal::default(), Some(deadline));
        let (default, cap) = (Duration::from_secs(30), Duration::from_secs(60));
        assert_eq!(ctx.time_left(default, cap), Duration::from_millis(200));
        assert_eq!(
            ctx.time_left(default, Duration::from_millis(50)),
            Duration::from_millis(50)
        );
        assert_eq!(ExecutionContext::default().time_left(default, cap), default);
        tokio::time::advance(Duration::from_millis(250)).await;
        assert!(deadline.has_passed());
        assert_eq!(deadline.remaining(), Duration::ZERO);
    }
}
