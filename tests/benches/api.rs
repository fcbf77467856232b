//! The network API's cost: an execute round trip through `RemoteRuntimeClient` →
//! `ep_server::serve_node` against `LocalRuntimeClient` on the same node.
//!
//! Series (each on its own node, built the same way):
//! * `local` — `LocalRuntimeClient::execute` (the baseline);
//! * `remote_http1` — `RemoteRuntimeClient` over pooled HTTP/1.1 keep-alive to `serve_node` on
//!   loopback;
//! * `remote_h2c` — the same over HTTP/2 with prior knowledge (one multiplexed connection).
//!
//! Two lanes: `native`, a governed execute on the fake unary lane (`http` of
//! `ep_tests::fixtures`; admission, dispatch and evidence but no lane I/O), which isolates what
//! the API adds; and `http_lane`, a direct execute of the built-in wasm HTTP lane doing
//! `GET /hello` against a loopback hyper server (`TestServer`), a realistic execution.
//!
//! Criterion group `api_execute_c1` times one execute at a time. Before it, a custom loop
//! measures every execute's latency at concurrency 1 and 64 (64 tasks issuing executes back to
//! back for a fixed time) and prints p50, p99, executions per second and the ratios to `local`.
//! Set `EP_BENCH_SECS` to change the sustained window (default 3 s per series); the loop is
//! skipped when a criterion filter is given that does not contain `sustained`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::Criterion;
use ep_contracts::boundary::{AdmissionRequest, Map, Provenance, ResultStatus};
use ep_lanes_wasm::egress::HttpGrants;
use ep_lanes_wasm::test_server::TestServer;
use ep_lanes_wasm::{Grants, LaneLimits, LaneSource, RuntimeConfig, WasmLane, WasmRuntime};
use ep_node::RuntimeClient;
use ep_node::local_client::LocalRuntimeClient;
use ep_node::node::Node;
use ep_remote::RemoteRuntimeClient;
use ep_server::{ApiOptions, RunningServer, serve_node};
use ep_tests::fixtures::{AllowAuthority, StubTargetVerifier, UnaryLane, governed, stub};
use serde_json::json;
use tokio::runtime::Runtime;

/// Concurrent tasks of the sustained series.
const CONCURRENCY: usize = 64;
/// Executes per round at concurrency 1.
const C1_EXECUTES: usize = 2000;

/// One client and the request it repeats.
struct Series {
    name: String,
    client: Arc<dyn RuntimeClient>,
    request: AdmissionRequest,
}

impl Series {
    async fn once(&self) {
        let result = self.client.execute(self.request.clone()).await;
        assert_eq!(result.status, ResultStatus::Succeeded, "{result:?}");
        black_box(result);
    }
}

/// A node with the fake unary `http` lane, its target and the authority verifier; no
/// evidence sink (a sink that keeps records would grow through the run).
async fn native_node() -> Node {
    let node = Node::new("node-bench");
    node.register_lane(Arc::new(UnaryLane::http()));
    node.register_target_verifier(Arc::new(StubTargetVerifier));
    node.register_authority_verifier(Arc::new(AllowAuthority));
    node.connect_target(
        stub("target-http", "http"),
        node.in_process_client(),
        ep_node::ConnectOptions::default(),
    )
    .await
    .unwrap();
    node.complete_registration();
    node
}

/// A node serving the built-in wasm HTTP lane, allowed to reach loopback.
async fn http_lane_node(runtime: &WasmRuntime) -> Node {
    let grants =
        Grants::default().with_http(HttpGrants::parse(&["http://127.0.0.1:*"], &[]).unwrap());
    let lane = WasmLane::load_with_grants(
        runtime,
        LaneSource::from(ep_builtin_lanes::http().wasm),
        LaneLimits::default(),
        grants,
    )
    .await
    .unwrap_or_else(|e| panic!("the http lane loads: {e}"));
    let node = Node::new("node-bench-http");
    node.complete_registration();
    ep_lanes_wasm::register_wasm_lane(&node, Arc::new(lane))
        .await
        .unwrap();
    node
}

fn http_lane_request(url: &str) -> AdmissionRequest {
    let mut request = AdmissionRequest::new("http");
    request.provenance = Provenance::direct_lower_lane_owner("api-bench", Map::new());
    if let serde_json::Value::Object(payload) = json!({"url": url, "method": "GET"}) {
        request.payload = payload;
    }
    request
}

/// The served node's operator token: the bench's requests are direct, which the API accepts
/// only from the operator.
const BENCH_TOKEN: &str = "bench-operator-token";

async fn serve(node: Node) -> RunningServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let options = ApiOptions {
        operator_token: Some(BENCH_TOKEN.to_owned()),
        ..ApiOptions::default()
    };
    serve_node(node, options, listener).await.unwrap()
}

struct Setup {
    rt: Runtime,
    _upstream_rt: Runtime,
    _upstream: TestServer,
    _servers: Vec<RunningServer>,
    _wasm: WasmRuntime,
    /// Per lane: local, remote_http1, remote_h2c.
    lanes: Vec<(&'static str, Vec<Arc<Series>>)>,
}

fn setup() -> Setup {
    let upstream_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("bench-upstream")
        .enable_all()
        .build()
        .unwrap();
    let upstream = upstream_rt.block_on(TestServer::start()).unwrap();
    let url = upstream.url("/hello");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (wasm, servers, lanes) = rt.block_on(async {
        let wasm = WasmRuntime::new(RuntimeConfig {
            max_instances: 128,
            ..RuntimeConfig::default()
        })
        .unwrap();
        let mut servers = Vec::new();
        let mut lanes = Vec::new();
        for lane in ["native", "http_lane"] {
            let request = if lane == "native" {
                governed("http", "req-bench")
            } else {
                http_lane_request(&url)
            };
            let mut series = Vec::new();
            for name in ["local", "remote_http1", "remote_h2c"] {
                let node = if lane == "native" {
                    native_node().await
                } else {
                    http_lane_node(&wasm).await
                };
                let client: Arc<dyn RuntimeClient> = if name == "local" {
                    Arc::new(LocalRuntimeClient::new(node))
                } else {
                    let server = serve(node).await;
                    let client = RemoteRuntimeClient::builder(server.url())
                        .operator_token(BENCH_TOKEN)
                        .http2_prior_knowledge(name == "remote_h2c")
                        .pool_max_idle_per_host(CONCURRENCY * 2)
                        .build()
                        .unwrap();
                    servers.push(server);
                    Arc::new(client)
                };
                let one = Arc::new(Series {
                    name: format!("{lane}/{name}"),
                    client,
                    request: request.clone(),
                });
                // Every series works before anything is measured.
                one.once().await;
                series.push(one);
            }
            lanes.push((lane, series));
        }
        (wasm, servers, lanes)
    });
    Setup {
        rt,
        _upstream_rt: upstream_rt,
        _upstream: upstream,
        _servers: servers,
        _wasm: wasm,
        lanes,
    }
}

/// One measured run of one series at one concurrency.
#[derive(Debug, Clone, Copy)]
struct Run {
    p50: Duration,
    p99: Duration,
    per_second: f64,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((sorted.len() as f64) * p).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn summarize(elapsed: Duration, mut latencies: Vec<Duration>) -> Run {
    latencies.sort();
    Run {
        p50: percentile(&latencies, 0.50),
        p99: percentile(&latencies, 0.99),
        per_second: latencies.len() as f64 / elapsed.as_secs_f64(),
    }
}

/// `C1_EXECUTES` executes one after another.
async fn sequential(series: &Series) -> Run {
    let started = Instant::now();
    let mut latencies = Vec::with_capacity(C1_EXECUTES);
    for _ in 0..C1_EXECUTES {
        let sent = Instant::now();
        series.once().await;
        latencies.push(sent.elapsed());
    }
    summarize(started.elapsed(), latencies)
}

/// `CONCURRENCY` tasks issuing executes back to back for `window`.
async fn sustained(series: &Arc<Series>, window: Duration) -> Run {
    let started = Instant::now();
    let deadline = started + window;
    let tasks: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let series = Arc::clone(series);
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    series.once().await;
                    latencies.push(sent.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    summarize(started.elapsed(), latencies)
}

fn micros(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us >= 1000.0 {
        format!("{:.2} ms", us / 1000.0)
    } else {
        format!("{us:.0} µs")
    }
}

fn print_table(title: &str, runs: &[(String, Run)]) {
    println!("\n{title}");
    println!("| series | p50 | p99 | executions/s | throughput vs local | p50 vs local |");
    println!("|---|---|---|---|---|---|");
    let Some((_, base)) = runs.first() else {
        return;
    };
    for (name, run) in runs {
        println!(
            "| {name} | {} | {} | {:.0} | {:.2}x | {:.2}x |",
            micros(run.p50),
            micros(run.p99),
            run.per_second,
            run.per_second / base.per_second,
            run.p50.as_secs_f64() / base.p50.as_secs_f64(),
        );
    }
}

fn measure_sustained(setup: &Setup) {
    let window = Duration::from_secs(
        std::env::var("EP_BENCH_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(3),
    );
    for (lane, series) in &setup.lanes {
        let mut c1 = Vec::new();
        let mut c64 = Vec::new();
        for one in series {
            c1.push((one.name.clone(), setup.rt.block_on(sequential(one))));
        }
        for one in series {
            c64.push((one.name.clone(), setup.rt.block_on(sustained(one, window))));
        }
        print_table(
            &format!("{lane}: concurrency 1 ({C1_EXECUTES} executes)"),
            &c1,
        );
        print_table(
            &format!(
                "{lane}: concurrency {CONCURRENCY} ({} s sustained)",
                window.as_secs()
            ),
            &c64,
        );
    }
}

fn main() {
    let setup = setup();
    let filter = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .unwrap_or_default();
    let test_mode = std::env::args().any(|a| a == "--test" || a == "--list");
    if !test_mode && (filter.is_empty() || filter.contains("sustained")) {
        measure_sustained(&setup);
    }
    let mut criterion = Criterion::default().configure_from_args();
    let mut group = criterion.benchmark_group("api_execute_c1");
    for (_, series) in &setup.lanes {
        for one in series {
            group.bench_function(one.name.as_str(), |b| {
                b.iter_custom(|iters| {
                    setup.rt.block_on(async {
                        let started = Instant::now();
                        for _ in 0..iters {
                            one.once().await;
                        }
                        started.elapsed()
                    })
                });
            });
        }
    }
    group.finish();
    criterion.final_summary();
}
