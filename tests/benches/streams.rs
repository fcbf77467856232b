//! The streaming lanes against native clients on the same loopback servers, in one run:
//!
//! * `sse` — events/s of the `sse` lane reading an event stream of N events (64, 256 and
//!   1 024 bytes each on the wire) against a native hyper client parsing the same body with
//!   `eventsource-stream`;
//! * `websocket` — echo round trips/s of the `websocket` lane (caller input out, the echoed
//!   frame back as an event) against a native tokio-tungstenite client;
//! * `jsonrpc` — calls/s of a `jsonrpc` lane session to one `ep-jsonrpc-peer` child over stdio
//!   (NDJSON; caller input out, the response back as an event) against a native client writing
//!   and reading lines on the pipes of the same peer binary;
//! * `concurrent` — 1 000 `sse` streams held open at once through one runtime: resident memory
//!   before, while open and after, and the count of streams that did not open.
//!
//! The series run in a task on the runtime's two workers, where a served host runs its streams,
//! native clients and lanes alike. Every series runs three interleaved rounds; the median round is printed with its ratio to
//! the native baseline of the same round. Name sections as arguments to run only those
//! (`cargo bench -p ep-tests --bench streams -- sse websocket`). `EP_BENCH_STREAMS` sets the
//! 1 000 of `concurrent`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ep_contracts::boundary::{ExecutionEvent, ExecutionRef, ExecutionRequest};
use ep_lane_api::{
    ExecutionContext, Input, InputSlot, LaneAdapter, ProcessLauncher, STREAM_COMPLETED_EVENT,
};
use ep_lanes_wasm::egress::HttpGrants;
use ep_lanes_wasm::{Grants, LaneLimits, LaneSource, RuntimeConfig, WasmLane, WasmRuntime};
use ep_placement_local::{ProcessLane, ProcessPolicy};
use ep_test_servers::sse::SseServer;
use ep_test_servers::websocket::{WsEchoServer, WsOptions};
use ep_tests::binaries::helper;
use eventsource_stream::Eventsource;
use futures::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// Rounds per series; the median is printed.
const ROUNDS: usize = 3;
/// Events per SSE stream.
const SSE_EVENTS: usize = 20_000;
/// Round trips per WebSocket round.
const WS_ROUND_TRIPS: usize = 3_000;
/// Calls per JSON-RPC round.
const RPC_CALLS: usize = 3_000;
/// Hang guard for anything awaited; never a performance assertion.
const HANG_GUARD: Duration = Duration::from_secs(120);

fn main() {
    let sections: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with("--"))
        .collect();
    let wanted = |name: &str| sections.is_empty() || sections.iter().any(|s| s == name);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (sse, websocket, jsonrpc, concurrent) = (
        wanted("sse"),
        wanted("websocket"),
        wanted("jsonrpc"),
        wanted("concurrent"),
    );
    // On a worker, as a served host runs each stream (in its connection's task), so the
    // runtime's I/O driver and the consumer share a thread instead of waking `main` per item.
    let series = runtime.spawn(async move {
        if sse {
            sse_throughput().await;
        }
        if websocket {
            websocket_round_trips().await;
        }
        if jsonrpc {
            jsonrpc_calls().await;
        }
        if concurrent {
            concurrent_streams().await;
        }
    });
    runtime.block_on(series).unwrap();
}

async fn guarded<F: std::future::Future>(future: F) -> F::Output {
    tokio::time::timeout(HANG_GUARD, future)
        .await
        .expect("the hang guard fired")
}

fn request(payload: Value) -> ExecutionRequest {
    let Value::Object(payload) = payload else {
        panic!("payloads are objects")
    };
    ExecutionRequest {
        execution_ref: ExecutionRef::mint(),
        payload,
        ..ExecutionRequest::default()
    }
}

fn kind(event: &ExecutionEvent) -> &str {
    event.event_type.as_deref().unwrap_or_default()
}

fn runtime_with(max_instances: u32, launcher: Option<Arc<dyn ProcessLauncher>>) -> WasmRuntime {
    WasmRuntime::new(RuntimeConfig {
        max_instances,
        process_launcher: launcher,
        ..RuntimeConfig::default()
    })
    .unwrap()
}

/// An embedded lane granted `patterns` on loopback, and `commands`.
async fn lane(
    runtime: &WasmRuntime,
    wasm: &[u8],
    patterns: &[&str],
    commands: &[String],
) -> WasmLane {
    lane_limited(runtime, wasm, patterns, commands, LaneLimits::default()).await
}

/// [`lane`] with its own limits.
async fn lane_limited(
    runtime: &WasmRuntime,
    wasm: &[u8],
    patterns: &[&str],
    commands: &[String],
    limits: LaneLimits,
) -> WasmLane {
    let mut grants = Grants::default().with_http(HttpGrants::parse(patterns, patterns).unwrap());
    grants.process = commands.to_vec();
    WasmLane::load_with_grants(runtime, LaneSource::from(wasm), limits, grants)
        .await
        .unwrap()
}

/// Median of `rounds` by the rate; each entry is (native per second, lane per second).
fn report(title: &str, unit: &str, mut rounds: Vec<(f64, f64)>) {
    rounds.sort_by(|a, b| (a.1 / a.0).total_cmp(&(b.1 / b.0)));
    let (native, lane) = rounds[rounds.len() / 2];
    println!(
        "{title:<34} native {native:>10.0} {unit}/s   lane {lane:>10.0} {unit}/s   ratio {:.2}x",
        lane / native
    );
}

async fn sse_throughput() {
    let runtime = runtime_with(8, None);
    let lane = lane(&runtime, ep_builtin_lanes::sse().wasm, &["http://*:*"], &[]).await;
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    for size in [64, 256, 1024] {
        // A lane's response body is capped (16 MiB by default): keep each flood under half.
        let total = SSE_EVENTS.min((8 << 20) / (size + 16));
        let server = SseServer::flood(total, size).unwrap();
        let url = server.url();
        let mut rounds = Vec::new();
        for _ in 0..ROUNDS {
            let started = Instant::now();
            let native = guarded(native_sse(&client, &url)).await;
            let native_rate = native as f64 / started.elapsed().as_secs_f64();
            let started = Instant::now();
            let through_lane = guarded(lane_sse(&lane, &url)).await;
            let lane_rate = through_lane as f64 / started.elapsed().as_secs_f64();
            assert_eq!((native, through_lane), (total, total));
            rounds.push((native_rate, lane_rate));
        }
        report(&format!("sse events of {size} B"), "events", rounds);
    }
}

async fn native_sse(
    client: &Client<hyper_util::client::legacy::connect::HttpConnector, Empty<Bytes>>,
    url: &str,
) -> usize {
    let response = client.get(url.parse().unwrap()).await.unwrap();
    assert_eq!(response.status(), 200);
    let mut events = response.into_body().into_data_stream().eventsource();
    let mut count = 0;
    while let Some(event) = events.next().await {
        let event = event.unwrap();
        assert!(!event.data.is_empty());
        count += 1;
    }
    count
}

async fn lane_sse(lane: &WasmLane, url: &str) -> usize {
    let mut events = lane
        .stream(request(json!({"url": url})), ExecutionContext::default())
        .await
        .unwrap();
    let mut count = 0;
    let mut completed = false;
    while let Some(event) = events.next().await {
        match kind(&event) {
            "sse.event" => count += 1,
            STREAM_COMPLETED_EVENT => completed = true,
            "sse.open" => {}
            other => panic!("unexpected {other}: {event:?}"),
        }
    }
    assert!(completed, "the stream ended without completing");
    count
}

async fn websocket_round_trips() {
    let runtime = runtime_with(8, None);
    let lane = lane(
        &runtime,
        ep_builtin_lanes::websocket().wasm,
        &["ws://*:*"],
        &[],
    )
    .await;
    let server = WsEchoServer::start(WsOptions::new()).unwrap();
    let url = server.url();
    let mut rounds = Vec::new();
    for _ in 0..ROUNDS {
        let started = Instant::now();
        guarded(native_ws(&url, server.addr())).await;
        let native = WS_ROUND_TRIPS as f64 / started.elapsed().as_secs_f64();
        let started = Instant::now();
        guarded(lane_ws(&lane, &url)).await;
        let through_lane = WS_ROUND_TRIPS as f64 / started.elapsed().as_secs_f64();
        rounds.push((native, through_lane));
    }
    report("websocket echo round trips", "trips", rounds);
}

async fn native_ws(url: &str, addr: std::net::SocketAddr) {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    let (mut socket, _) = tokio_tungstenite::client_async(url, tcp).await.unwrap();
    for n in 0..WS_ROUND_TRIPS {
        let text = format!("ping {n}");
        socket.send(Message::text(text.clone())).await.unwrap();
        loop {
            match socket.next().await.unwrap().unwrap() {
                Message::Text(echo) => {
                    assert_eq!(echo.as_str(), text);
                    break;
                }
                Message::Ping(_) | Message::Pong(_) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    socket.close(None).await.unwrap();
}

async fn lane_ws(lane: &WasmLane, url: &str) {
    let (sender, slot) = InputSlot::channel();
    let mut events = lane
        .stream(
            request(json!({"url": url})),
            ExecutionContext::default().with_input(slot),
        )
        .await
        .unwrap();
    let open = events.next().await.unwrap();
    assert_eq!(kind(&open), "websocket.open", "{open:?}");
    for n in 0..WS_ROUND_TRIPS {
        let text = format!("ping {n}");
        sender
            .send(Input::Data(text.clone().into_bytes()))
            .await
            .unwrap();
        let echo = events.next().await.unwrap();
        assert_eq!(kind(&echo), "websocket.text", "{echo:?}");
        assert_eq!(echo.payload["text"], text);
    }
    sender.send(Input::End).await.unwrap();
    let rest: Vec<_> = events.collect().await;
    assert_eq!(
        rest.last().map(kind),
        Some(STREAM_COMPLETED_EVENT),
        "{rest:?}"
    );
}

async fn jsonrpc_calls() {
    let peer = helper("ep-jsonrpc-peer").display().to_string();
    let dir = tempfile::tempdir().unwrap();
    let policy = ProcessPolicy {
        commands: vec![peer.clone()],
        cwd: vec![dir.path().to_owned()],
        ..ProcessPolicy::default()
    };
    let launcher: Arc<dyn ProcessLauncher> = Arc::new(ProcessLane::new(policy).launcher());
    let runtime = runtime_with(8, Some(launcher));
    let lane = lane(
        &runtime,
        ep_builtin_lanes::jsonrpc().wasm,
        &["http://*:*", "ws://*:*"],
        std::slice::from_ref(&peer),
    )
    .await;
    let mut rounds = Vec::new();
    for _ in 0..ROUNDS {
        let started = Instant::now();
        let for_native = peer.clone();
        tokio::task::spawn_blocking(move || native_rpc(&for_native))
            .await
            .unwrap();
        let native = RPC_CALLS as f64 / started.elapsed().as_secs_f64();
        let started = Instant::now();
        guarded(lane_rpc(&lane, &peer)).await;
        let through_lane = RPC_CALLS as f64 / started.elapsed().as_secs_f64();
        rounds.push((native, through_lane));
    }
    report("jsonrpc calls over stdio (ndjson)", "calls", rounds);
}

/// The native client: the peer's pipes, one line out and one line back per call, the first
/// call included (the lane's session also starts with one).
fn native_rpc(peer: &str) {
    let mut child = Command::new(peer)
        .args(["--framing", "ndjson"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    for n in 0..=RPC_CALLS {
        let call = json!({"jsonrpc": "2.0", "id": n, "method": "echo", "params": [n]});
        writeln!(stdin, "{call}").unwrap();
        stdin.flush().unwrap();
        line.clear();
        stdout.read_line(&mut line).unwrap();
        let answer: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(answer["id"], n, "{answer}");
        assert_eq!(answer["result"]["echo"][0], n, "{answer}");
    }
    drop(stdin);
    child.wait().unwrap();
}

async fn lane_rpc(lane: &WasmLane, peer: &str) {
    let (sender, slot) = InputSlot::channel();
    let payload = json!({
        "request": {"method": "echo", "params": [0]},
        "command": peer,
        "argv": ["--framing", "ndjson"],
        "transport_binding": {"mode": "stdio", "framing": "ndjson"},
    });
    let mut events = lane
        .stream(
            request(payload),
            ExecutionContext::default().with_input(slot),
        )
        .await
        .unwrap();
    let mut next_response = async || loop {
        let event = events.next().await.unwrap();
        match kind(&event) {
            "jsonrpc.response" => return event,
            "jsonrpc.open" | "jsonrpc.sent" => {}
            other => panic!("unexpected {other}: {event:?}"),
        }
    };
    let first = next_response().await;
    assert_eq!(first.payload["result"]["echo"][0], 0, "{first:?}");
    for n in 1..=RPC_CALLS {
        let call = json!({"method": "echo", "params": [n], "id": n});
        sender
            .send(Input::Data(call.to_string().into_bytes()))
            .await
            .unwrap();
        let answer = next_response().await;
        assert_eq!(answer.payload["id"], n, "{answer:?}");
        assert_eq!(answer.payload["result"]["echo"][0], n, "{answer:?}");
    }
    sender.send(Input::End).await.unwrap();
    let rest: Vec<_> = events.collect().await;
    assert_eq!(
        rest.last().map(kind),
        Some(STREAM_COMPLETED_EVENT),
        "{rest:?}"
    );
}

/// This process's resident set and its peak, in MiB, from `/proc/self/status`.
fn rss_mib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<f64>()
                    .ok()
            })
            .map_or(f64::NAN, |kib| kib / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

async fn concurrent_streams() {
    let streams: usize = std::env::var("EP_BENCH_STREAMS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1000);
    let runtime = runtime_with(u32::try_from(streams + 16).unwrap(), None);
    let limits = LaneLimits {
        max_concurrent: streams + 1,
        ..LaneLimits::default()
    };
    let sse = ep_builtin_lanes::sse().wasm;
    let lane = Arc::new(lane_limited(&runtime, sse, &["http://*:*"], &[], limits).await);
    let server = SseServer::hold().unwrap();
    let url = server.url();
    // One stream first, so the compiled component and the pools are warm before the baseline.
    let warm = lane
        .stream(request(json!({"url": url})), ExecutionContext::default())
        .await
        .unwrap();
    drop(warm);
    guarded(server.wait_for_open_connections(0)).await;
    let (before, _) = rss_mib();
    let started = Instant::now();
    let opened: Vec<_> = futures::future::join_all((0..streams).map(|_| {
        let lane = Arc::clone(&lane);
        let url = url.clone();
        tokio::spawn(async move {
            let mut events = lane
                .stream(request(json!({"url": url})), ExecutionContext::default())
                .await
                .map_err(|e| format!("{e:?}"))?;
            for expected in ["sse.open", "sse.event"] {
                let event = events.next().await.ok_or("the stream ended early")?;
                if kind(&event) != expected {
                    return Err(format!("expected {expected}, got {event:?}"));
                }
            }
            Ok::<_, String>(events)
        })
    }))
    .await;
    let open_time = started.elapsed();
    let mut errors = 0;
    let mut held = Vec::new();
    for stream in opened {
        match stream.unwrap() {
            Ok(events) => held.push(events),
            Err(error) => {
                errors += 1;
                eprintln!("a stream failed to open: {error}");
            }
        }
    }
    guarded(server.wait_for_open_connections(held.len())).await;
    let (open, peak) = rss_mib();
    drop(held);
    guarded(server.wait_for_open_connections(0)).await;
    let (after, _) = rss_mib();
    println!(
        "{streams} concurrent sse streams: opened in {:.2} s, errors {errors}, RSS {before:.0} MiB \
         before, {open:.0} MiB open ({:.0} KiB a stream), {peak:.0} MiB peak, {after:.0} MiB after",
        open_time.as_secs_f64(),
        (open - before) * 1024.0 / streams as f64,
    );
    assert_eq!(errors, 0, "every stream opens");
}
