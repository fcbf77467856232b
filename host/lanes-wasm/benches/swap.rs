//! Hot-swap cut-over: from calling `LaneSlot::swap_component` with an artifact the runtime has
//! already compiled (a cache hit: digest, link, pre-instantiate, `capabilities` probe, publish)
//! to the first execution served by the new generation, alternating the `echo` and `echo-v2`
//! test guests. Baseline, in the same run: one plain `execute` on the serving generation.
//!
//! Prints the ratio at the end (and `scripts/bench-ratios` reads it from target/criterion).
//! Short by design: `cargo bench -p ep-lanes-wasm --bench swap -- --quick`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use ep_contracts::boundary::{ExecutionRef, ExecutionRequest, ResultStatus};
use ep_lanes_wasm::testing::build_guest;
use ep_lanes_wasm::{
    LaneLimits, LaneSlot, LaneSource, RollbackPolicy, RuntimeConfig, SwapOutcome, WasmLane,
    WasmRuntime,
};
use ep_node::{ExecutionContext, LaneAdapter};

fn request() -> ExecutionRequest {
    ExecutionRequest {
        execution_ref: ExecutionRef::mint(),
        payload: serde_json::json!({"ping": 1})
            .as_object()
            .cloned()
            .unwrap_or_default(),
        ..ExecutionRequest::default()
    }
}

struct Bench {
    rt: tokio::runtime::Runtime,
    slot: LaneSlot,
    artifacts: [(Arc<[u8]>, String); 2],
}

impl Bench {
    fn new() -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let runtime = WasmRuntime::new(RuntimeConfig::default()).unwrap();
        let artifacts = ["echo", "echo-v2"].map(|name| {
            let bytes: Arc<[u8]> = std::fs::read(build_guest(name).unwrap()).unwrap().into();
            let digest = ep_contracts::canonical::sha256_ref(&bytes);
            (bytes, digest)
        });
        let slot = rt.block_on(async {
            let first = LaneSource::Bytes(Arc::clone(&artifacts[0].0));
            let lane = WasmLane::load(&runtime, first, LaneLimits::default())
                .await
                .unwrap();
            let slot = LaneSlot::new(lane, "bytes", RollbackPolicy::disabled()).unwrap();
            // Compile echo-v2 too, so every measured swap is a cache hit.
            for (bytes, _) in artifacts.iter().rev() {
                let swapped = slot.swap_component(LaneSource::Bytes(Arc::clone(bytes)));
                assert!(matches!(swapped.await, Ok(SwapOutcome::Activated(_))));
            }
            slot
        });
        Self {
            rt,
            slot,
            artifacts,
        }
    }

    /// One plain execution on the serving generation.
    fn execute(&self) {
        let result = self
            .rt
            .block_on(self.slot.execute(request(), ExecutionContext::default()));
        assert_eq!(result.status, ResultStatus::Succeeded);
    }

    /// Swap to the other artifact, then the first execution (which must run on it).
    fn cut_over(&self) {
        let serving = self.slot.current().digest().to_owned();
        let (bytes, digest) = self
            .artifacts
            .iter()
            .find(|(_, digest)| *digest != serving)
            .unwrap();
        self.rt.block_on(async {
            let swapped = self
                .slot
                .swap_component(LaneSource::Bytes(Arc::clone(bytes)))
                .await;
            assert!(matches!(swapped, Ok(SwapOutcome::Activated(_))));
            let result = self
                .slot
                .execute(request(), ExecutionContext::default())
                .await;
            assert_eq!(result.evidence[0]["component_digest"], digest.as_str());
        });
    }
}

/// Median of `runs` timings of `f`.
fn median(runs: usize, mut f: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let started = Instant::now();
            f();
            started.elapsed()
        })
        .collect();
    times.sort_unstable();
    times[times.len() / 2]
}

fn swap(c: &mut Criterion) {
    let bench = Bench::new();
    let mut group = c.benchmark_group("hot_swap");
    group.sample_size(20);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    group.bench_function("baseline_execute_serving_generation", |b| {
        b.iter(|| bench.execute())
    });
    group.bench_function("swap_cached_then_first_execute", |b| {
        b.iter(|| bench.cut_over())
    });
    group.finish();

    // The same comparison, interleaved, for a ratio in this output.
    let execute = median(101, || bench.execute());
    let cut_over = median(101, || bench.cut_over());
    println!(
        "hot_swap: execute {execute:?}, swap + first execute {cut_over:?}, ratio {:.2}x",
        cut_over.as_secs_f64() / execute.as_secs_f64()
    );
    println!(
        "hot_swap: generations still alive after the run: {:?}",
        bench.slot.live_generations()
    );
}

criterion_group!(benches, swap);
criterion_main!(benches);
