//! `execute`: plan, emit `dispatch.started`, run the protocol (or its lower simulation), emit
//! `dispatch.completed` / `dispatch.failed`, and build the outcome.
//!
//! The kernel stays pure: the protocol's I/O lives behind [`ProtocolDriver`], supplied by the
//! caller (a lane). The driver enforces `plan.timeout_ms()`; the kernel has no runtime to do it.

use std::future::Future;

use ep_contracts::flow::{ExecutionEventV1, ExecutionOutcome};
use ep_contracts::{Failure, FailureClass};
use serde_json::{Map, Value};

use crate::error::KernelError;
use crate::facts::{self, Execution};
use crate::plan::{DispatchOptions, DispatchPlan, build_dispatch};
use crate::simulation;
use crate::timeout::Timeout;

/// The protocol side of a dispatch: the lower I/O the kernel plans but never performs.
pub trait ProtocolDriver {
    /// Checks that need no I/O and must fail before any simulation (e.g. an invalid HTTP
    /// method). `Err` ends the dispatch with that execution.
    #[allow(
        clippy::result_large_err,
        reason = "cold path; the Err is the execution that ends the dispatch, kept unboxed for the public API"
    )]
    fn precheck(&self, plan: &DispatchPlan) -> Result<(), Execution> {
        let _ = plan;
        Ok(())
    }

    /// Performs the lower call within `plan.timeout_ms()`.
    fn execute(&self, plan: &DispatchPlan) -> impl Future<Output = Execution> + Send;
}

/// Everything a dispatch produced: the plan, the ordered events and the outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct KernelResult {
    /// The plan.
    pub plan: DispatchPlan,
    /// `dispatch.started` then `dispatch.completed` or `dispatch.failed`.
    pub events: Vec<ExecutionEventV1>,
    /// The outcome.
    pub outcome: ExecutionOutcome,
}

impl KernelResult {
    /// Whether the outcome succeeded.
    pub fn succeeded(&self) -> bool {
        self.outcome.succeeded()
    }
}

/// Plans and runs one dispatch. Planning errors are returned (upstream raised); every planned
/// dispatch yields exactly two events and one outcome. `emit` sees each event as it happens.
pub async fn execute<D: ProtocolDriver>(
    intent: &Value,
    route: &Value,
    options: &DispatchOptions,
    driver: &D,
    emit: &mut (dyn FnMut(&ExecutionEventV1) + Send),
) -> Result<KernelResult, KernelError> {
    let plan = build_dispatch(intent, route, options)?;
    let started = facts::dispatch_event(
        &plan,
        facts::DISPATCH_STARTED,
        facts::started_payload(&plan),
        options.now(),
    );
    emit(&started);

    let execution = run(&plan, driver).await;

    let (event_type, payload) = facts::finished_event(&execution);
    let finished = facts::dispatch_event(&plan, event_type, payload, options.now());
    emit(&finished);
    let outcome = facts::outcome(&plan, execution, &started.timestamp, &finished.timestamp);
    Ok(KernelResult {
        plan,
        events: vec![started, finished],
        outcome,
    })
}

async fn run<D: ProtocolDriver>(plan: &DispatchPlan, driver: &D) -> Execution {
    if let Timeout::Expired { overdue_ms } = plan.timeout {
        return deadline_expired(plan, overdue_ms);
    }
    if let Err(execution) = driver.precheck(plan) {
        return execution;
    }
    if let Some(execution) = simulation::execute_if_configured(plan) {
        return execution;
    }
    driver.execute(plan).await
}

fn deadline_expired(plan: &DispatchPlan, overdue_ms: u64) -> Execution {
    let mut raw = Map::new();
    raw.insert("error".into(), "deadline_expired".into());
    raw.insert(
        "side_effect_result".into(),
        "blocked_before_dispatch".into(),
    );
    let failure = Failure::new(FailureClass::Timeout, "deadline passed before dispatch")
        .with_detail("overdue_ms", overdue_ms)
        .with_detail(
            "deadline_at",
            plan.intent
                .envelope()
                .deadline_at
                .clone()
                .map_or(Value::Null, Value::String),
        );
    let mut execution = Execution::failed(plan.family.clone(), raw, Some(failure));
    execution.metrics.insert("duration_ms".into(), 0.into());
    execution
}
