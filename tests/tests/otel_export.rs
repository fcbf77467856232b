//! OpenTelemetry export (`otel` feature, `[telemetry] otlp_endpoint`): a served execution's
//! `request` and `execution` spans reach a loopback OTLP/HTTP collector as one trace, the
//! execution span a child of its request span, carrying execution ref, lane, target and the
//! lane generation's digest, under the configured `service.name`. A collector that refuses
//! every export costs the service nothing: executions still succeed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use ep_contracts::boundary::{AcceptableAttestation, AdmissionRequest, ResultStatus};
use ep_lanes_wasm::WASM_ENGINE_CLASS;
use ep_lanes_wasm::testing::GUEST_WIT as WIT_PACKAGE;
use ep_lanes_wasm::testing::build_guest;
use ep_node::RuntimeClient;
use ep_node::authority::{SigningKeyFile, sign_request};
use ep_remote::RemoteRuntimeClient;
use ep_server::config::DEFAULT_CONFIG;
use ep_server::{ServeConfig, observability, start};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;
use serde_json::{Value, json};

/// Fails a hung test instead of letting it sit until CI's limit.
const HANG_GUARD: Duration = Duration::from_secs(120);

/// What the loopback collector received, and whether it currently refuses exports.
#[derive(Default)]
struct Collector {
    requests: Mutex<Vec<ExportTraceServiceRequest>>,
    paths: Mutex<Vec<String>>,
    refusing: AtomicBool,
}

impl Collector {
    /// Every span received so far, with its resource's `service.name`.
    fn spans(&self) -> Vec<(String, Span)> {
        let requests = self.requests.lock().unwrap();
        let mut spans = Vec::new();
        for request in requests.iter() {
            for resource in &request.resource_spans {
                let service = resource
                    .resource
                    .as_ref()
                    .and_then(|r| text(&r.attributes, "service.name"))
                    .unwrap_or_default();
                for scope in &resource.scope_spans {
                    for span in &scope.spans {
                        spans.push((service.clone(), span.clone()));
                    }
                }
            }
        }
        spans
    }
}

fn text(attributes: &[KeyValue], key: &str) -> Option<String> {
    let values: Vec<&AnyValue> = attributes
        .iter()
        .filter(|kv| kv.key == key)
        .filter_map(|kv| kv.value.as_ref())
        .collect();
    assert!(
        values.len() <= 1,
        "attribute {key} appears {} times",
        values.len()
    );
    match values.first()?.value.as_ref()? {
        any_value::Value::StringValue(s) => Some(s.clone()),
        any_value::Value::IntValue(i) => Some(i.to_string()),
        other => Some(format!("{other:?}")),
    }
}

/// A real OTLP/HTTP (protobuf) trace receiver on loopback.
async fn collector() -> (SocketAddr, Arc<Collector>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = Arc::new(Collector::default());
    let shared = state.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let state = shared.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                    let state = state.clone();
                    async move {
                        let path = request.uri().path().to_owned();
                        let body = request.into_body().collect().await.unwrap().to_bytes();
                        state.paths.lock().unwrap().push(path);
                        if state.refusing.load(Ordering::SeqCst) {
                            // 400: not retried, so the exporter reports it at once.
                            let mut refused = Response::new(Full::new(Bytes::from_static(b"no")));
                            *refused.status_mut() = hyper::StatusCode::BAD_REQUEST;
                            return Ok::<_, Infallible>(refused);
                        }
                        let decoded = ExportTraceServiceRequest::decode(body).unwrap();
                        state.requests.lock().unwrap().push(decoded);
                        let mut ok = Response::new(Full::new(Bytes::new()));
                        ok.headers_mut().insert(
                            "content-type",
                            hyper::header::HeaderValue::from_static("application/x-protobuf"),
                        );
                        Ok(ok)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, state)
}

/// A served config in `dir` (free port, echo plugin, policy) exporting to `collector`.
fn setup(dir: &Path, collector: SocketAddr) -> ServeConfig {
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let guest = build_guest("echo").unwrap_or_else(|e| panic!("{e}"));
    std::fs::copy(guest, plugins.join("echo.wasm")).unwrap();
    std::fs::write(
        plugins.join("echo.toml"),
        format!(
            "lane_id = \"echo\"\nversion = \"1.0.0\"\nwit_version = \"{WIT_PACKAGE}\"\n\
             [grants]\nevents = true\n"
        ),
    )
    .unwrap();
    std::fs::write(dir.join("policy.toml"), "[default]\nevents = true\n").unwrap();
    let text = DEFAULT_CONFIG
        .replace("listen = \"127.0.0.1:8787\"", "listen = \"127.0.0.1:0\"")
        .replace("file = \"\"", "file = \"policy.toml\"")
        .replace(
            "otlp_endpoint = \"\"",
            &format!("otlp_endpoint = \"http://{collector}\""),
        )
        .replace(
            "service_name = \"execution-plane\"",
            "service_name = \"ep-otel-test\"",
        );
    let path = dir.join("serve.toml");
    std::fs::write(&path, text).unwrap();
    ServeConfig::load(Some(&path)).unwrap()
}

fn signed(key: &SigningKeyFile, n: u64) -> AdmissionRequest {
    let mut request = AdmissionRequest::new("echo");
    let Value::Object(payload) = json!({ "n": n }) else {
        unreachable!()
    };
    request.payload = payload;
    request.acceptable_attestation = AcceptableAttestation::of([WASM_ENGINE_CLASS]);
    request.authority_ref = Some(sign_request(
        key,
        &request,
        "node-local",
        Duration::from_secs(120),
        chrono::Utc::now(),
    ));
    request
}

fn attributes(span: &Span) -> HashMap<String, String> {
    span.attributes
        .iter()
        .filter_map(|kv| Some((kv.key.clone(), text(&span.attributes, &kv.key)?)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn execution_spans_reach_an_otlp_collector_as_one_trace() {
    tokio::time::timeout(HANG_GUARD, run())
        .await
        .expect("the test hung");
}

async fn run() {
    let dir = tempfile::tempdir().unwrap();
    let (addr, collector) = collector().await;
    let config = setup(dir.path(), addr);
    let telemetry = tokio::task::spawn_blocking({
        let config = config.clone();
        move || observability::init(config.log.format, &config.log, &config.telemetry)
    })
    .await
    .unwrap()
    .unwrap();
    assert!(telemetry.exporting());

    let server = start(config).await.unwrap();
    // The echo lane is a plugin: it serves once the plugin directory has loaded.
    server.service().unwrap().loaded().await;
    let info = server.service().unwrap().info().clone();
    let key = SigningKeyFile::load(info.dev_key.as_ref().unwrap()).unwrap();
    let client = RemoteRuntimeClient::new(server.url()).unwrap();
    let result = client.execute(signed(&key, 1)).await;
    assert_eq!(result.status, ResultStatus::Succeeded, "{result:?}");
    let reference = result.execution_ref.as_str().to_owned();
    let digest = result
        .evidence
        .iter()
        .find_map(|e| e.get("component_digest").and_then(Value::as_str))
        .unwrap()
        .to_owned();

    // Refused before it starts (no authority ref): the span still names the execution.
    let mut unsigned = signed(&key, 9);
    unsigned.authority_ref = None;
    let rejected = client.execute(unsigned).await;
    assert_eq!(rejected.status, ResultStatus::Rejected, "{rejected:?}");
    let rejected_ref = rejected.execution_ref.as_str().to_owned();

    let flush = |telemetry: Arc<observability::Telemetry>| async move {
        tokio::task::spawn_blocking(move || telemetry.flush())
            .await
            .unwrap()
    };
    let telemetry = Arc::new(telemetry);
    flush(telemetry.clone()).await.unwrap();
    assert!(
        !collector.spans().is_empty(),
        "a flush returned before the collector had the spans"
    );

    // A collector that refuses exports: the export fails, the service carries on.
    collector.refusing.store(true, Ordering::SeqCst);
    let before = collector.paths.lock().unwrap().len();
    let refused = client.execute(signed(&key, 2)).await;
    assert_eq!(refused.status, ResultStatus::Succeeded, "{refused:?}");
    // Our flush reports the refusal, unless the exporter's 5 s timer sent (and lost) the batch
    // just before it; either way the collector refused an export (checked next).
    if let Err(error) = flush(telemetry.clone()).await {
        assert!(
            error.to_string().contains("OpenTelemetry export"),
            "{error}"
        );
    }
    assert!(
        collector.paths.lock().unwrap().len() > before,
        "no export was tried"
    );

    // And once it takes spans again, export resumes.
    collector.refusing.store(false, Ordering::SeqCst);
    let later = client.execute(signed(&key, 3)).await;
    assert_eq!(later.status, ResultStatus::Succeeded, "{later:?}");
    let later_ref = later.execution_ref.as_str().to_owned();

    let report = server.shutdown(Duration::from_secs(5)).await;
    assert!(report.flush_error.is_none(), "{:?}", report.flush_error);
    let telemetry = Arc::try_unwrap(telemetry).unwrap();
    tokio::task::spawn_blocking(move || telemetry.shutdown())
        .await
        .unwrap()
        .unwrap();

    let paths = collector.paths.lock().unwrap().clone();
    assert!(paths.iter().all(|p| p == "/v1/traces"), "{paths:?}");
    let refused_ref = refused.execution_ref.as_str();
    let exported = |reference: &str| {
        collector.spans().iter().any(|(_, s)| {
            s.name == "execution"
                && attributes(s).get("execution_ref").map(String::as_str) == Some(reference)
        })
    };
    assert!(exported(&later_ref), "the export did not resume");
    assert!(!exported(refused_ref), "a refused export was recorded");

    let spans = collector.spans();
    let (service, execution) = spans
        .iter()
        .find(|(_, s)| {
            s.name == "execution"
                && attributes(s).get("execution_ref").map(String::as_str) == Some(&reference)
        })
        .unwrap_or_else(|| {
            let names: Vec<_> = spans
                .iter()
                .map(|(_, s)| (&s.name, attributes(s)))
                .collect();
            panic!("no execution span for {reference} in {names:#?}")
        });
    assert_eq!(service, "ep-otel-test");
    let a = attributes(execution);
    assert_eq!(a.get("lane").map(String::as_str), Some("echo"), "{a:?}");
    assert_eq!(
        a.get("status").map(String::as_str),
        Some("succeeded"),
        "{a:?}"
    );
    assert_eq!(
        a.get("generation_digest").map(String::as_str),
        Some(digest.as_str()),
        "{a:?}"
    );
    let target = a
        .get("target")
        .unwrap_or_else(|| panic!("no target in {a:?}"));
    assert!(!target.is_empty() && !target.contains("::"), "{target}");

    let (_, refused) = spans
        .iter()
        .find(|(_, s)| {
            s.name == "execution"
                && attributes(s).get("execution_ref").map(String::as_str) == Some(&rejected_ref)
        })
        .unwrap_or_else(|| panic!("no execution span for the rejected {rejected_ref}"));
    assert_eq!(
        attributes(refused).get("status").map(String::as_str),
        Some("rejected")
    );

    let (_, request) = spans
        .iter()
        .find(|(_, s)| s.name == "request" && s.span_id == execution.parent_span_id)
        .unwrap_or_else(|| panic!("the execution span's parent is not an exported request span"));
    assert_eq!(request.trace_id, execution.trace_id);
    let r = attributes(request);
    assert_eq!(
        r.get("path").map(String::as_str),
        Some("/v1/execute"),
        "{r:?}"
    );
    assert_eq!(r.get("route").map(String::as_str), Some("execute"), "{r:?}");
    assert_eq!(r.get("status").map(String::as_str), Some("200"), "{r:?}");
}
