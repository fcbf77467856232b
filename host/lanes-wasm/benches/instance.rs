//! Per-execution instance overhead: every wasm lane call runs in a fresh `Store` instantiated
//! from the lane's `InstancePre`. Two groups, each against a native baseline in the same run:
//!
//! * `wasm_instance`: a fresh store + instantiation of the `echo` test guest from an
//!   `InstancePre` built on the runtime's own engine (pooling allocator, epochs), then the
//!   `capabilities` call and its conversion to the host's `LaneCapabilities`, against the
//!   baseline of a native function producing the same record and doing the same conversion.
//!   The difference is what instantiating, entering and releasing a component costs. Each
//!   cycle is timed in parts: `instantiate` (fresh store + instantiation), `store_drop` (the
//!   pooling allocator resetting the instance's memory and tables) and the whole
//!   `instantiate_capabilities_drop`. The same for the first-party HTTP lane's component, a
//!   larger guest.
//! * `echo_execute`: `WasmLane::execute` of the `echo` guest on a trivial payload (the whole
//!   per-call path: lane gate, instance slot, per-store state, instantiation, the call, framing
//!   checks, event and evidence) against a native `LaneAdapter` doing the same host-side JSON
//!   work without wasm.
//!
//! The runtime keeps its `InstancePre` private, so the first group builds its own over the same
//! engine with per-store state like the runtime's (`support`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::hint::black_box;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use criterion::{Criterion, criterion_group, criterion_main};
use ep_contracts::boundary::{
    AdmissionRejection, ExecutionEvent, ExecutionRef, ExecutionRequest, ExecutionResult,
    LaneCapabilities, Map, ResultStatus,
};
use ep_lanes_wasm::bindings::types;
use ep_lanes_wasm::testing::build_guest;
use ep_lanes_wasm::{LaneLimits, RuntimeConfig, WasmLane, WasmRuntime};
use ep_node::{EventStream, ExecutionContext, LaneAdapter};
use serde_json::{Value, json};
use support::{Cycle, Egress, lane_pre};

/// What the host does with a guest's capabilities (as `convert::capabilities`): parse the
/// metadata JSON object and add the host's own keys.
fn host_capabilities(raw: types::LaneCapabilities, host_metadata: &Map) -> LaneCapabilities {
    let mut metadata: Map = serde_json::from_str(&raw.metadata_json).unwrap_or_default();
    for (key, value) in host_metadata {
        metadata.insert(key.clone(), value.clone());
    }
    LaneCapabilities {
        lane_id: Some(raw.lane_id),
        protocols: raw.protocols,
        surfaces: raw.surfaces,
        supports_execute: raw.supports_execute,
        supports_stream: raw.supports_stream,
        metadata,
        ..LaneCapabilities::default()
    }
}

/// The `echo` guest's `capabilities`, natively.
fn native_capabilities() -> types::LaneCapabilities {
    types::LaneCapabilities {
        lane_id: "echo".to_owned(),
        protocols: vec!["echo".to_owned()],
        surfaces: vec!["wasm".to_owned()],
        supports_execute: true,
        supports_stream: true,
        metadata_json: r#"{"guest":"echo"}"#.to_owned(),
    }
}

/// The `echo` lane without wasm: the same request → text → outcome → result conversions the
/// runtime does around the guest, and the guest's own trivial work.
struct NativeEcho;

#[async_trait]
impl LaneAdapter for NativeEcho {
    fn lane_id(&self) -> &str {
        "echo"
    }
    fn capabilities(&self) -> LaneCapabilities {
        host_capabilities(native_capabilities(), &Map::new())
    }
    async fn validate(&self, _: &ExecutionRequest) -> Result<(), AdmissionRejection> {
        Ok(())
    }
    async fn execute(&self, request: ExecutionRequest, _: ExecutionContext) -> ExecutionResult {
        let started = Instant::now();
        // Host → guest: the WIT request's payload text.
        let payload_json = Value::Object(request.payload.clone()).to_string();
        // The guest: one event, the payload back, a metric.
        let event_json = format!(r#"{{"payload_bytes":{}}}"#, payload_json.len());
        let metrics_json = r#"{"lineage_entries":0}"#.to_owned();
        // Guest → host: strict JSON objects, the event, the evidence entry.
        let output: Map = serde_json::from_str(&payload_json).unwrap_or_default();
        let metrics: Map = serde_json::from_str(&metrics_json).unwrap_or_default();
        let event_payload: Map = serde_json::from_str(&event_json).unwrap_or_default();
        let event = ExecutionEvent::new(
            request.execution_ref.clone(),
            "echo.received".to_owned(),
            event_payload,
        );
        let evidence = json!({
            "kind": "wasm_lane.execution",
            "lane_id": "echo",
            "component_digest": "sha256:native",
            "engine": "native",
            "duration_ms": started.elapsed().as_millis() as u64,
            "metrics": Value::Object(metrics),
            "dropped_log_lines": 0,
        });
        ExecutionResult {
            execution_ref: request.execution_ref,
            provenance: request.provenance,
            events: vec![event],
            evidence: vec![evidence],
            output,
            status: ResultStatus::Succeeded,
            ..ExecutionResult::default()
        }
    }
    async fn stream(
        &self,
        _: ExecutionRequest,
        _: ExecutionContext,
    ) -> Result<EventStream, AdmissionRejection> {
        Ok(Box::pin(futures::stream::empty()))
    }
}

fn trivial_request() -> ExecutionRequest {
    let mut payload = Map::new();
    payload.insert("n".to_owned(), json!(1));
    ExecutionRequest {
        execution_ref: ExecutionRef::mint(),
        lane_id: Some("echo".to_owned()),
        payload,
        ..ExecutionRequest::default()
    }
}

/// Which part of an instance's life a benchmark reports.
#[derive(Clone, Copy)]
enum Part {
    Instantiate,
    StoreDrop,
    Whole,
}

impl Part {
    fn name(self) -> &'static str {
        match self {
            Self::Instantiate => "instantiate",
            Self::StoreDrop => "store_drop",
            Self::Whole => "instantiate_capabilities_drop",
        }
    }

    fn of<T>(self, cycle: &Cycle<T>) -> Duration {
        match self {
            Self::Instantiate => cycle.instantiate,
            Self::StoreDrop => cycle.drop,
            Self::Whole => cycle.whole(),
        }
    }
}

/// Instantiate, call `capabilities` and convert it as the host does, drop.
async fn capabilities_cycle(
    pre: &support::AnyPre,
    engine: &wasmtime::Engine,
    limits: &LaneLimits,
    host_metadata: &Map,
) -> Cycle<LaneCapabilities> {
    support::cycle(pre, engine, limits, Egress::Refuse, async |lane, store| {
        let raw = lane.capabilities(store).await;
        black_box(host_capabilities(raw, host_metadata))
    })
    .await
}

fn runtime() -> WasmRuntime {
    WasmRuntime::new(RuntimeConfig::default()).unwrap_or_else(|e| panic!("runtime: {e}"))
}

fn bench_instance(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("tokio runtime: {e}"));
    let wasm = build_guest("echo").unwrap_or_else(|e| panic!("{e}"));
    let runtime = runtime();
    let engine = runtime.engine().clone();
    let limits = LaneLimits::default();

    let pre = lane_pre(
        &engine,
        &std::fs::read(&wasm).unwrap_or_else(|e| panic!("{e}")),
    );
    let http_pre = lane_pre(&engine, ep_builtin_lanes::http().wasm);
    let mut host_metadata = Map::new();
    host_metadata.insert("component_digest".to_owned(), json!("sha256:bench"));
    host_metadata.insert("engine".to_owned(), json!(ep_lanes_wasm::ENGINE));

    let probe = rt.block_on(capabilities_cycle(&pre, &engine, &limits, &host_metadata));
    assert_eq!(
        probe.answer,
        host_capabilities(native_capabilities(), &host_metadata)
    );
    let probe = rt.block_on(capabilities_cycle(
        &http_pre,
        &engine,
        &limits,
        &host_metadata,
    ));
    assert_eq!(probe.answer.lane_id.as_deref(), Some("http"));

    let mut group = c.benchmark_group("wasm_instance");
    group.bench_function("baseline_native_capabilities", |b| {
        b.iter(|| {
            black_box(host_capabilities(
                black_box(native_capabilities()),
                &host_metadata,
            ))
        })
    });
    for (guest, pre) in [("echo", &pre), ("http_lane", &http_pre)] {
        for part in [Part::Instantiate, Part::StoreDrop, Part::Whole] {
            group.bench_function(format!("{guest}_{}", part.name()), |b| {
                b.iter_custom(|iters| {
                    rt.block_on(async {
                        let mut total = Duration::ZERO;
                        for _ in 0..iters {
                            let timed =
                                capabilities_cycle(pre, &engine, &limits, &host_metadata).await;
                            total += part.of(&timed);
                        }
                        total
                    })
                })
            });
        }
    }
    group.finish();

    let lane = rt
        .block_on(WasmLane::load(
            &runtime,
            wasm.as_path(),
            LaneLimits::default(),
        ))
        .unwrap_or_else(|e| panic!("{e}"));
    let native = NativeEcho;
    let wasm_result = rt.block_on(lane.execute(trivial_request(), ExecutionContext::default()));
    let native_result = rt.block_on(native.execute(trivial_request(), ExecutionContext::default()));
    assert_eq!(
        wasm_result.status,
        ResultStatus::Succeeded,
        "{wasm_result:?}"
    );
    assert_eq!(wasm_result.output, native_result.output);
    assert_eq!(wasm_result.events.len(), native_result.events.len());

    let mut group = c.benchmark_group("echo_execute");
    group.bench_function("baseline_native_echo", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let started = Instant::now();
                for _ in 0..iters {
                    black_box(
                        native
                            .execute(trivial_request(), ExecutionContext::default())
                            .await,
                    );
                }
                started.elapsed()
            })
        })
    });
    group.bench_function("wasm_echo_lane", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let started = Instant::now();
                for _ in 0..iters {
                    black_box(
                        lane.execute(trivial_request(), ExecutionContext::default())
                            .await,
                    );
                }
                started.elapsed()
            })
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    targets = bench_instance
}
criterion_main!(benches);
