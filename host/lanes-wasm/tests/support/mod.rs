//! Shared helpers for the wasm lane tests: a small runtime, the real guest components (built
//! once per test binary by `ep_lanes_wasm::testing`), requests and result inspection.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::time::Duration;

use ep_contracts::boundary::{
    ExecutionEvent, ExecutionRef, ExecutionRequest, ExecutionResult, Map, ResultStatus,
};
use ep_lanes_wasm::egress::HttpGrants;
use ep_lanes_wasm::testing::build_guest;
use ep_lanes_wasm::{Grants, LaneLimits, LaneSource, RuntimeConfig, WasmLane, WasmRuntime};
use ep_node::{CancelSignal, Deadline, ExecutionContext, LaneAdapter};
use futures::StreamExt;
use serde_json::Value;

/// Hang guard only: generous, never a performance assertion.
pub const HANG_GUARD: Duration = Duration::from_secs(60);

/// The `.wasm` of a test guest; fails the test loudly (with cargo's stderr) if the build fails.
pub fn guest(name: &str) -> PathBuf {
    match build_guest(name) {
        Ok(path) => path,
        Err(error) => panic!("{error}"),
    }
}

/// A runtime small enough for many to coexist in one test process.
pub fn runtime() -> WasmRuntime {
    WasmRuntime::new(RuntimeConfig {
        max_instances: 24,
        max_memory_per_instance: 64 << 20,
        ..RuntimeConfig::default()
    })
    .expect("runtime builds")
}

/// Loads guest `name` with `limits` and the default grants.
pub async fn load(runtime: &WasmRuntime, name: &str, limits: LaneLimits) -> WasmLane {
    match WasmLane::load(runtime, guest(name), limits).await {
        Ok(lane) => lane,
        Err(error) => panic!("loading {name}: {error}"),
    }
}

/// An embedded first-party lane granted `patterns` for egress, on loopback too when `private`
/// (`http_private`), or only to public addresses.
pub async fn builtin_lane(wasm: &[u8], patterns: &[&str], private: bool) -> WasmLane {
    let http = if private {
        HttpGrants::parse(patterns, patterns)
    } else {
        HttpGrants::parse(patterns, &[] as &[&str])
    };
    let grants = Grants::default().with_http(http.expect("the patterns parse"));
    WasmLane::load_with_grants(
        &runtime(),
        LaneSource::from(wasm),
        LaneLimits::default(),
        grants,
    )
    .await
    .unwrap_or_else(|e| panic!("the lane loads: {e}"))
}

/// A JSON object.
pub fn obj(value: Value) -> Map {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

/// An execution request with a fresh ref, `operation` and `payload`.
pub fn request(operation: Option<&str>, payload: Value) -> ExecutionRequest {
    ExecutionRequest {
        execution_ref: ExecutionRef::mint(),
        operation: operation.map(str::to_owned),
        payload: obj(payload),
        ..ExecutionRequest::default()
    }
}

/// A context whose deadline (as the node plans it) is `ms` from now, and whose cancel signal is
/// `cancel`.
pub fn within_cancellable(ms: u64, cancel: CancelSignal) -> ExecutionContext {
    ExecutionContext::new(cancel, Some(Deadline::after(Duration::from_millis(ms))))
}

/// A context whose deadline is `ms` from now and whose cancel signal nobody fires.
pub fn within(ms: u64) -> ExecutionContext {
    within_cancellable(ms, CancelSignal::default())
}

/// A context whose cancel signal nobody fires.
pub fn ctx() -> ExecutionContext {
    ExecutionContext::default()
}

/// `(failure_class, details.cause)` of a failed result.
pub fn failure_of(result: &ExecutionResult) -> (String, String) {
    assert_eq!(
        result.status,
        ResultStatus::Failed,
        "expected a failed result, got {result:?}"
    );
    let error = result
        .error
        .as_ref()
        .expect("failed results carry an error");
    failure_in(error)
}

/// `(failure_class, details.cause)` of an error object (a result's, or a failure event's).
pub fn failure_in(error: &Value) -> (String, String) {
    (
        error["failure_class"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        error["details"]["cause"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

/// Runs `future` under the hang guard.
pub async fn guarded<F: std::future::Future>(future: F) -> F::Output {
    tokio::time::timeout(HANG_GUARD, future)
        .await
        .expect("the hang guard fired: the test hung")
}

/// The event types of `events`, in order, for assertions on a stream's shape.
pub fn kinds(events: &[ExecutionEvent]) -> Vec<&str> {
    events
        .iter()
        .map(|event| event.event_type.as_deref().unwrap_or_default())
        .collect()
}

/// Every event of `lane`'s stream of `payload` under `ctx`, to its end.
pub async fn stream_in(
    lane: &WasmLane,
    payload: Value,
    ctx: ExecutionContext,
) -> Vec<ExecutionEvent> {
    let events = lane.stream(request(None, payload), ctx).await.unwrap();
    guarded(events.collect::<Vec<_>>()).await
}

/// [`stream_in`] with a fresh context.
pub async fn stream_all(lane: &WasmLane, payload: Value) -> Vec<ExecutionEvent> {
    stream_in(lane, payload, ctx()).await
}
