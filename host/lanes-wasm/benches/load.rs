//! Loading the first-party HTTP lane with and without the compiled-artifact cache.
//!
//! Baseline: `WasmLane::load_with_grants` on a fresh runtime, which compiles the component
//! (the runtime is built outside the timed region). Measured: the same load of the same bytes
//! on a runtime that has compiled them already, so only the cache hit, the import check, the
//! linker, `instantiate_pre`, the egress clients and the `capabilities` probe remain.
//! `WasmRuntime::compilations()` proves which path each load took.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use ep_lanes_wasm::egress::HttpGrants;
use ep_lanes_wasm::{Grants, LaneLimits, LaneSource, RuntimeConfig, WasmLane, WasmRuntime};

fn runtime() -> WasmRuntime {
    WasmRuntime::new(RuntimeConfig::default()).unwrap_or_else(|e| panic!("runtime: {e}"))
}

fn grants() -> Grants {
    Grants::default().with_http(
        HttpGrants::parse(&["http://127.0.0.1:*"], &[]).unwrap_or_else(|e| panic!("{e}")),
    )
}

async fn load(runtime: &WasmRuntime, bytes: &Arc<[u8]>) -> WasmLane {
    WasmLane::load_with_grants(
        runtime,
        LaneSource::Bytes(Arc::clone(bytes)),
        LaneLimits::default(),
        grants(),
    )
    .await
    .unwrap_or_else(|e| panic!("the http lane loads: {e}"))
}

fn bench_load(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("tokio runtime: {e}"));
    let bytes: Arc<[u8]> = ep_builtin_lanes::http().wasm.into();
    let mut group = c.benchmark_group("wasm_load");
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));

    group.bench_function("baseline_load_compiling", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let fresh = runtime();
                let started = Instant::now();
                let lane = rt.block_on(load(&fresh, &bytes));
                total += started.elapsed();
                assert_eq!(fresh.compilations(), 1);
                drop(black_box(lane));
            }
            total
        })
    });

    let warm = runtime();
    let first = rt.block_on(load(&warm, &bytes));
    group.sample_size(30);
    group.measurement_time(Duration::from_secs(3));
    group.bench_function("load_cached", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let started = Instant::now();
                let lane = rt.block_on(load(&warm, &bytes));
                total += started.elapsed();
                drop(black_box(lane));
            }
            total
        })
    });
    assert_eq!(warm.compilations(), 1, "every later load hits the cache");
    drop(first);
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1));
    targets = bench_load
}
criterion_main!(benches);
