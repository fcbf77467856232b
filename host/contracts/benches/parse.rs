//! Parse + validate of a typical ExecutionRequest and of an HTTP intent + route, each against
//! the baseline of parsing the same bytes into an untyped `serde_json::Value`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use criterion::{Criterion, criterion_group, criterion_main};
use ep_contracts::boundary::ExecutionRequest;
use ep_contracts::flow::ExecutionRoute;
use ep_contracts::intents::HttpExecutionIntent;
use ep_contracts::{Contract, fixtures};
use serde_json::{Value, json};
use std::hint::black_box;

fn typical_execution_request() -> String {
    json!({
        "contract_version": 1,
        "execution_ref": {"contract_version": 1, "ref": "exec-1795472347289-222708564"},
        "admission_request": {
            "contract_version": 1,
            "request_id": "adm-1795472347289-222708565",
            "lane_id": "http",
            "operation": "request",
            "payload": {
                "method": "POST",
                "url": "https://api.example.test/v1/widgets?limit=10",
                "headers": {"content-type": "application/json", "accept": "application/json"},
                "body": "{\"name\":\"widget\",\"size\":3}"
            },
            "authority_ref": {
                "ref": "auth-1", "audience": "node-local",
                "payload_hash": "sha256:9f124d3e4c536d80f9607e45ec83d611834be5a3bafcc82f486001ad331dd98b",
                "issued_at": "2026-11-23T22:19:07.289526Z", "expires_at": "2026-11-23T22:24:07.289526Z",
                "metadata": {"key_id": "dev", "signature": "tJK9s/bLj8GyfsGRKQtzu8+BSaQzLTO2PGr8luqgysmyIPFrZSIHSMUna00FUFbsLHJGN1qO8gl0ypf0MfZGDg=="}
            },
            "sandbox_profile": {"profile_ref": "sandbox://default", "bundle_hash": "sha256:test"},
            "acceptable_attestation": {"classes": ["wasm-engine:wasmtime@48", "local-process-weak"]},
            "provenance": {"kind": "node_admitted"}
        },
        "target_descriptor": {
            "target_id": "http-target-1", "lane_id": "http",
            "verifier_id": "execution-plane:local-weak-verifier:v1",
            "attested_capability_classes": ["local-process-weak"],
            "attested_at": "2026-11-23T22:00:00Z", "metadata": {"local": true}
        },
        "lane_id": "http",
        "operation": "request",
        "payload": {
            "method": "POST",
            "url": "https://api.example.test/v1/widgets?limit=10",
            "headers": {"content-type": "application/json", "accept": "application/json"},
            "body": "{\"name\":\"widget\",\"size\":3}"
        },
        "provenance": {"kind": "node_admitted"},
        "metadata": {}
    })
    .to_string()
}

fn bench_execution_request(c: &mut Criterion) {
    let text = typical_execution_request();
    let mut group = c.benchmark_group("execution_request");
    group.bench_function("baseline_serde_json_value", |b| {
        b.iter(|| black_box(serde_json::from_str::<Value>(black_box(&text))))
    });
    group.bench_function("parse_and_validate", |b| {
        b.iter(|| black_box(ep_contracts::parse::<ExecutionRequest>(black_box(&text))))
    });
    group.finish();
}

fn bench_http_intent_and_route(c: &mut Criterion) {
    let intent = fixtures::flow::http_execution_intent().to_string();
    let route = fixtures::flow::http_execution_route().to_string();
    let mut group = c.benchmark_group("http_intent_and_route");
    group.bench_function("baseline_serde_json_value", |b| {
        b.iter(|| {
            black_box((
                serde_json::from_str::<Value>(black_box(&intent)),
                serde_json::from_str::<Value>(black_box(&route)),
            ))
        })
    });
    group.bench_function("parse_and_validate", |b| {
        b.iter(|| {
            black_box((
                ep_contracts::parse::<HttpExecutionIntent>(black_box(&intent)),
                ep_contracts::parse::<ExecutionRoute>(black_box(&route)),
            ))
        })
    });
    group.finish();
    // Keep the contract in the benchmark honest: the documents must validate.
    let ok = ep_contracts::parse::<HttpExecutionIntent>(&intent).is_ok()
        && ep_contracts::parse::<ExecutionRoute>(&route).is_ok()
        && ExecutionRequest::from_value(
            &serde_json::from_str(&typical_execution_request()).unwrap_or(Value::Null),
        )
        .is_ok();
    assert!(ok, "benchmark documents must be valid");
}

criterion_group!(
    benches,
    bench_execution_request,
    bench_http_intent_and_route
);
criterion_main!(benches);
