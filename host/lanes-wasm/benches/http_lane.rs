//! The first-party HTTP lane doing `GET /hello` against a real keep-alive HTTP/1.1 server on
//! loopback, against the baseline of a native pooled keep-alive hyper client (hyper-util's
//! legacy `Client`, `TCP_NODELAY` like the lane's own connector) hitting the same server.
//!
//! Series: `baseline_native_hyper`; `lane_execute` (the lane's `LaneAdapter::execute` called
//! directly: instantiation, the guest, its `wasi:http` request through the host's pooled client,
//! the conversions); `node_execute` (the same through a `Node` with direct lower-lane-owner
//! admission, which adds admission, the lane's `validate` in its own instance, and the execution
//! records).
//!
//! * `http_lane_c1`: one request at a time (criterion's per-request time).
//! * `http_lane_c16`: a batch of 16 × 8 requests issued by 16 concurrent tasks (criterion's
//!   throughput in requests per second).
//!
//! Before criterion runs, a custom loop collects every request's latency at concurrency 1 and
//! 16 for each series (three interleaved rounds; the median round is printed) and prints p50,
//! p99, throughput and the ratios to the baseline. It is skipped when a criterion filter is
//! given that does not contain `latency`.
//!
//! Then one HTTP lane call is timed in parts on a minimal host (`support`): instantiation, the
//! guest's `execute`, the store drop.
//!
//! The server runs on its own single-worker tokio runtime (an upstream, not part of the node);
//! the clients and the lane run on a two-worker runtime.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ep_contracts::boundary::{
    AdmissionRequest, ExecutionRef, ExecutionRequest, Map, Provenance, ResultStatus,
};
use ep_lanes_wasm::egress::HttpGrants;
use ep_lanes_wasm::test_server::TestServer;
use ep_lanes_wasm::{
    Grants, LaneLimits, LaneSource, RuntimeConfig, WasmLane, WasmRuntime, register_wasm_lane,
};
use ep_node::node::Node;
use ep_node::{ExecutionContext, LaneAdapter};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::json;
use tokio::runtime::Runtime;

/// Concurrent tasks of the concurrent series.
const CONCURRENCY: usize = 16;
/// Requests each task issues per criterion iteration of the concurrent series.
const PER_TASK: usize = 8;
/// Requests per round of the latency loop at concurrency 1.
const LATENCY_C1: usize = 1500;
/// Requests per task per round of the latency loop at concurrency 16.
const LATENCY_C16_PER_TASK: usize = 100;
/// Rounds of the latency loop (series interleaved within a round).
const ROUNDS: usize = 3;

/// One way of getting `GET /hello` done.
// One value per benchmark run; its size does not matter (and it grows with the hyper
// client features the workspace enables).
#[allow(clippy::large_enum_variant)]
enum Series {
    Native {
        client: Client<HttpConnector, Empty<Bytes>>,
        uri: hyper::Uri,
    },
    Lane {
        lane: Arc<WasmLane>,
        payload: Map,
    },
    Node {
        node: Node,
        payload: Map,
    },
}

impl Series {
    fn name(&self) -> &'static str {
        match self {
            Self::Native { .. } => "baseline_native_hyper",
            Self::Lane { .. } => "lane_execute",
            Self::Node { .. } => "node_execute",
        }
    }

    /// One request; panics unless it got the 200 `hello`.
    async fn once(&self) {
        match self {
            Self::Native { client, uri } => {
                let request = hyper::Request::get(uri.clone())
                    .body(Empty::<Bytes>::new())
                    .unwrap();
                let response = client.request(request).await.unwrap();
                assert_eq!(response.status(), 200);
                let body = response.into_body().collect().await.unwrap().to_bytes();
                assert_eq!(&body[..], b"hello");
            }
            Self::Lane { lane, payload } => {
                let request = ExecutionRequest {
                    execution_ref: ExecutionRef::mint(),
                    lane_id: Some("http".to_owned()),
                    payload: payload.clone(),
                    ..ExecutionRequest::default()
                };
                let result = lane.execute(request, ExecutionContext::default()).await;
                check(&result);
            }
            Self::Node { node, payload } => {
                let mut request = AdmissionRequest::new("http");
                request.provenance =
                    Provenance::direct_lower_lane_owner("http-lane-bench", Map::new());
                request.payload = payload.clone();
                let result = node.execute(request).await;
                check(&result);
            }
        }
    }
}

fn check(result: &ep_contracts::boundary::ExecutionResult) {
    assert_eq!(result.status, ResultStatus::Succeeded, "{result:?}");
    assert_eq!(result.output["status_code"], 200, "{result:?}");
    assert_eq!(result.output["body"], "hello", "{result:?}");
}

/// `concurrency` tasks each issuing `per_task` requests one after another; the batch's wall
/// time and, when `record`, every request's latency.
async fn batch(
    series: &Arc<Series>,
    concurrency: usize,
    per_task: usize,
    record: bool,
) -> (Duration, Vec<Duration>) {
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let series = Arc::clone(series);
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(if record { per_task } else { 0 });
                for _ in 0..per_task {
                    let sent = Instant::now();
                    series.once().await;
                    if record {
                        latencies.push(sent.elapsed());
                    }
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    (started.elapsed(), latencies)
}

struct Setup {
    /// The clients' runtime (two workers).
    rt: Runtime,
    /// The lanes' runtime (its engine serves the decomposition too).
    wasm: WasmRuntime,
    /// `http://127.0.0.1:<port>/hello`.
    url: String,
    /// Keeps the server's runtime alive.
    _server_rt: Runtime,
    _server: TestServer,
    series: Vec<Arc<Series>>,
}

fn setup() -> Setup {
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("bench-upstream")
        .enable_all()
        .build()
        .unwrap();
    let server = server_rt.block_on(TestServer::start()).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let url = server.url("/hello");
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(32)
        .build(connector);
    let native = Series::Native {
        client,
        uri: url.parse().unwrap(),
    };
    let payload: Map = match json!({"url": url, "method": "GET"}) {
        serde_json::Value::Object(map) => map,
        _ => unreachable!(),
    };
    let (wasm, lane, node) = rt.block_on(async {
        let runtime = WasmRuntime::new(RuntimeConfig {
            max_instances: 64,
            ..RuntimeConfig::default()
        })
        .unwrap();
        let grants =
            Grants::default().with_http(HttpGrants::parse(&["http://127.0.0.1:*"], &[]).unwrap());
        let lane = WasmLane::load_with_grants(
            &runtime,
            LaneSource::from(ep_builtin_lanes::http().wasm),
            LaneLimits::default(),
            grants,
        )
        .await
        .unwrap_or_else(|e| panic!("the http lane loads: {e}"));
        let lane = Arc::new(lane);
        let node = Node::new("node-bench");
        node.complete_registration();
        register_wasm_lane(&node, Arc::clone(&lane)).await.unwrap();
        (runtime, lane, node)
    });
    let series = vec![
        Arc::new(native),
        Arc::new(Series::Lane {
            lane,
            payload: payload.clone(),
        }),
        Arc::new(Series::Node { node, payload }),
    ];
    // Every series works before anything is measured.
    for s in &series {
        rt.block_on(s.once());
    }
    Setup {
        rt,
        wasm,
        url,
        _server_rt: server_rt,
        _server: server,
        series,
    }
}

/// One measured round of one series at one concurrency.
#[derive(Debug, Clone, Copy)]
struct Round {
    p50: Duration,
    p99: Duration,
    per_second: f64,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((sorted.len() as f64) * p).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn round(rt: &Runtime, series: &Arc<Series>, concurrency: usize, per_task: usize) -> Round {
    // Warm the pool to `concurrency` connections first.
    rt.block_on(batch(series, concurrency, 10, false));
    let (wall, mut latencies) = rt.block_on(batch(series, concurrency, per_task, true));
    latencies.sort_unstable();
    Round {
        p50: percentile(&latencies, 0.50),
        p99: percentile(&latencies, 0.99),
        per_second: latencies.len() as f64 / wall.as_secs_f64(),
    }
}

fn median_by<T: Copy + PartialOrd>(rounds: &[Round], key: impl Fn(&Round) -> T) -> T {
    let mut values: Vec<T> = rounds.iter().map(key).collect();
    values.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    values[values.len() / 2]
}

fn micros(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

/// Whether the latency loop runs: always, unless a criterion filter is given that does not
/// name `latency` (so `-- http_lane_c16` or a profiling run measures only criterion's series).
fn latency_wanted() -> bool {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    filters.is_empty() || filters.iter().any(|f| f.contains("latency"))
}

/// The latency loop: p50, p99 and throughput of every series at concurrency 1 and 16.
fn latency_report(setup: &Setup) {
    if !latency_wanted() {
        return;
    }
    let test_mode = std::env::args().any(|a| a == "--test" || a == "--list");
    let scale = if test_mode { 20 } else { 1 };
    for (concurrency, per_task) in [
        (1, LATENCY_C1 / scale),
        (CONCURRENCY, LATENCY_C16_PER_TASK / scale),
    ] {
        let mut rounds: Vec<Vec<Round>> = vec![Vec::new(); setup.series.len()];
        for _ in 0..ROUNDS {
            for (i, series) in setup.series.iter().enumerate() {
                rounds[i].push(round(&setup.rt, series, concurrency, per_task));
            }
        }
        println!(
            "http_lane latency, concurrency {concurrency}: {} requests per round, median of {ROUNDS} rounds",
            concurrency * per_task
        );
        let base_rate = median_by(&rounds[0], |r| r.per_second);
        let base_p50 = median_by(&rounds[0], |r| r.p50);
        for (series, rounds) in setup.series.iter().zip(&rounds) {
            let rate = median_by(rounds, |r| r.per_second);
            let p50 = median_by(rounds, |r| r.p50);
            let p99 = median_by(rounds, |r| r.p99);
            println!(
                "  {:24} p50 {:>10}  p99 {:>10}  {:>8.0} req/s  throughput {:.2}x  p50 {:.2}x baseline",
                series.name(),
                micros(p50),
                micros(p99),
                rate,
                rate / base_rate,
                p50.as_secs_f64() / base_p50.as_secs_f64(),
            );
        }
    }
}

/// One HTTP lane call timed in parts, on a minimal host over the runtime's engine (see
/// `support`): instantiation, the `execute` call (the guest, its `wasi:http` request through a
/// pooled client, the response), and the store drop (the pool resetting the instance).
fn decomposition(setup: &Setup) {
    if !latency_wanted() {
        return;
    }
    let test_mode = std::env::args().any(|a| a == "--test" || a == "--list");
    let count = if test_mode { 20 } else { LATENCY_C1 };
    let engine = setup.wasm.engine().clone();
    let limits = LaneLimits::default();
    let pre = support::lane_pre(&engine, ep_builtin_lanes::http().wasm);
    let egress = support::Egress::pooled();
    let request = ep_lanes_wasm::bindings::types::ExecutionRequest {
        execution_ref: "exec-bench".to_owned(),
        lane_id: "http".to_owned(),
        operation: None,
        lineage: Vec::new(),
        timeout_ms: 30_000,
        payload_json: json!({"url": &setup.url, "method": "GET"}).to_string(),
    };
    let once = || {
        setup.rt.block_on(support::cycle(
            &pre,
            &engine,
            &limits,
            egress.clone(),
            async |lane, store| {
                let outcome = lane.execute(store, &request).await;
                assert!(outcome.succeeded, "{}", outcome.output_json);
                let output: serde_json::Value = serde_json::from_str(&outcome.output_json).unwrap();
                assert_eq!(output["status_code"], 200);
            },
        ))
    };
    for _ in 0..count / 10 {
        once();
    }
    let mut parts: [Vec<Duration>; 4] = Default::default();
    for _ in 0..count {
        let cycle = once();
        parts[0].push(cycle.instantiate);
        parts[1].push(cycle.call);
        parts[2].push(cycle.drop);
        parts[3].push(cycle.whole());
    }
    println!("http_lane decomposition (minimal host, concurrency 1, {count} calls):");
    for (name, mut values) in ["instantiate", "execute call", "store drop", "whole"]
        .into_iter()
        .zip(parts)
    {
        values.sort_unstable();
        let mean = values.iter().sum::<Duration>() / values.len() as u32;
        println!(
            "  {name:14} p50 {:>10}  mean {:>10}",
            micros(percentile(&values, 0.5)),
            micros(mean)
        );
    }
}

fn bench_http_lane(c: &mut Criterion) {
    let setup = setup();
    latency_report(&setup);
    decomposition(&setup);
    let rt = &setup.rt;

    let mut group = c.benchmark_group("http_lane_c1");
    for series in &setup.series {
        group.bench_function(series.name(), |b| {
            b.iter_custom(|iters| rt.block_on(batch(series, 1, iters as usize, false)).0)
        });
    }
    group.finish();

    let mut group = c.benchmark_group("http_lane_c16");
    group.throughput(Throughput::Elements((CONCURRENCY * PER_TASK) as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    for series in &setup.series {
        group.bench_function(series.name(), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += rt.block_on(batch(series, CONCURRENCY, PER_TASK, false)).0;
                }
                black_box(total)
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .measurement_time(Duration::from_secs(4))
        .warm_up_time(Duration::from_secs(1));
    targets = bench_http_lane
}
criterion_main!(benches);
