//! `docs/openapi.json` against a served node: every documented path and method answers a
//! documented status with a body that validates against the documented schema (event-stream
//! frames included), every documented operation is exercised, and every route the server
//! answers is documented.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::PathBuf;

use bytes::Bytes;
use ep_contracts::FailureClass;
use ep_remote::sse::SseParser;
use ep_server::{ApiOptions, RunningServer, serve_node};
use ep_tests::fixtures::{FakeNodes, NodeFactory, STRONG, Setup, governed};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

const TOKEN: &str = "operator-token";

/// The OpenAPI document and lookups into it.
struct Spec {
    doc: Value,
}

impl Spec {
    fn load() -> Self {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json");
        let text = std::fs::read_to_string(&path).unwrap();
        let doc: Value = serde_json::from_str(&text).unwrap();
        assert!(
            doc["openapi"].as_str().unwrap().starts_with("3.1."),
            "OpenAPI 3.1"
        );
        Self { doc }
    }

    /// Every documented (path template, method).
    fn operations(&self) -> BTreeSet<(String, String)> {
        let mut out = BTreeSet::new();
        for (path, item) in self.doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                out.insert((path.clone(), method.to_ascii_uppercase()));
            }
        }
        out
    }

    /// The documented template a concrete path matches.
    fn template_of(&self, path: &str) -> Option<String> {
        let segments: Vec<&str> = path.split('/').collect();
        self.doc["paths"]
            .as_object()
            .unwrap()
            .keys()
            .find(|template| {
                let parts: Vec<&str> = template.split('/').collect();
                parts.len() == segments.len()
                    && parts.iter().zip(&segments).all(|(t, s)| {
                        (t.starts_with('{') && t.ends_with('}') && !s.is_empty()) || t == s
                    })
            })
            .cloned()
    }

    fn resolve<'a>(&'a self, value: &'a Value) -> &'a Value {
        match value.get("$ref").and_then(Value::as_str) {
            Some(pointer) => self
                .doc
                .pointer(pointer.trim_start_matches('#'))
                .unwrap_or_else(|| panic!("dangling {pointer}")),
            None => value,
        }
    }

    /// The documented response for `status` (no `default`: statuses are listed explicitly).
    fn response(&self, template: &str, method: &str, status: u16) -> Option<&Value> {
        let responses = &self.doc["paths"][template][method.to_ascii_lowercase()]["responses"];
        responses
            .get(status.to_string())
            .map(|response| self.resolve(response))
    }

    /// A validator for `schema`, resolving `#/components/...` against the document.
    fn validator(&self, schema: &Value) -> jsonschema::Validator {
        let mut root = match schema {
            Value::Object(map) => map.clone(),
            _ => panic!("schema is not an object: {schema}"),
        };
        root.insert(
            "$schema".into(),
            json!("https://json-schema.org/draft/2020-12/schema"),
        );
        root.insert("components".into(), self.doc["components"].clone());
        jsonschema::draft202012::new(&Value::Object(root)).unwrap()
    }

    fn check(&self, schema: &Value, instance: &Value) -> Vec<String> {
        let validator = self.validator(schema);
        validator
            .iter_errors(instance)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect()
    }
}

/// One answer of the server.
struct Answer {
    status: StatusCode,
    content_type: Option<String>,
    allow: Option<String>,
    body: Bytes,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

struct Probe {
    server: RunningServer,
    client: Client<HttpConnector, Full<Bytes>>,
    fixture: ep_tests::fixtures::Fixture,
}

impl Probe {
    async fn new() -> Self {
        let fixture = FakeNodes.build(Setup::Standard).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let options = ApiOptions {
            operator_token: Some(TOKEN.to_owned()),
            ..ApiOptions::default()
        };
        let server = serve_node(fixture.node.clone(), options, listener)
            .await
            .unwrap();
        let client = Client::builder(TokioExecutor::new()).build(HttpConnector::new());
        Self {
            server,
            client,
            fixture,
        }
    }

    /// Starts a governed unary execution on `lane` in the background and answers its ref once
    /// the lane has it (the `slow` and `sticky` lanes report their start).
    async fn start_running(&self, lane: &str) -> String {
        let client = self.client.clone();
        let uri = format!("{}/v1/execute", self.server.url());
        let body = request(lane, |_| {}).to_string();
        tokio::spawn(async move {
            let request = Request::builder()
                .method(Method::POST)
                .uri(uri)
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(body)))
                .unwrap();
            let _ = client.request(request).await;
        });
        let signal = tokio::time::timeout(std::time::Duration::from_secs(60), async {
            self.fixture.signals.lock().await.recv().await
        })
        .await
        .unwrap();
        match signal {
            Some(ep_tests::fixtures::Signal::Started(reference)) => reference.as_str().to_owned(),
            other => panic!("lane {lane} did not start: {other:?}"),
        }
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<String>,
    ) -> Answer {
        let mut request = Request::builder()
            .method(Method::from_bytes(method.as_bytes()).unwrap())
            .uri(format!("{}{path}", self.server.url()));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .unwrap();
        let response = self.client.request(request).await.unwrap();
        let header = |name: http::header::HeaderName| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let content_type = header(http::header::CONTENT_TYPE);
        let allow = header(http::header::ALLOW);
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        Answer {
            status,
            content_type,
            allow,
            body,
        }
    }
}

const JSON: (&str, &str) = ("content-type", "application/json");
const BEARER: (&str, &str) = ("authorization", "Bearer operator-token");

/// A request the test sends, the status it must answer, and what it exercises.
struct Case {
    method: &'static str,
    path: String,
    headers: Vec<(&'static str, &'static str)>,
    body: Option<String>,
    status: u16,
}

fn case(method: &'static str, path: &str, status: u16) -> Case {
    Case {
        method,
        path: path.to_owned(),
        headers: Vec::new(),
        body: None,
        status,
    }
}

fn with_json(mut case: Case, body: Value) -> Case {
    case.headers.push(JSON);
    case.body = Some(body.to_string());
    case
}

fn request(lane: &str, edit: impl FnOnce(&mut ep_contracts::boundary::AdmissionRequest)) -> Value {
    let mut request = governed(lane, "req-openapi");
    edit(&mut request);
    ep_contracts::Contract::to_value(&request)
}

fn failure_status(class: FailureClass) -> u16 {
    match class.as_str() {
        "policy_denied" | "approval_expired" => 403,
        "route_unresolved" => 422,
        "lease_expired" | "attach_mismatch" | "cancellation" => 409,
        "launch_failed" | "transport_failed" | "protocol_framing_failed" | "remote_disconnect" => {
            502
        }
        "placement_unavailable" => 503,
        "timeout" => 504,
        _ => 500,
    }
}

fn cases() -> Vec<Case> {
    let mut cases = vec![
        case("GET", "/v1/node", 200),
        with_json(case("POST", "/v1/admit", 200), request("process", |_| {})),
        with_json(
            case("POST", "/v1/admit", 400),
            request("process", |r| r.contract_version = json!(2)),
        ),
        with_json(
            case("POST", "/v1/admit", 401),
            request("process", |r| r.authority_ref = None),
        ),
        with_json(
            case("POST", "/v1/admit", 403),
            request("process", |r| {
                if let Some(a) = r.authority_ref.as_mut() {
                    a.reference = Some("deny".into());
                }
            }),
        ),
        with_json(case("POST", "/v1/admit", 404), request("nope", |_| {})),
        with_json(
            case("POST", "/v1/admit", 422),
            request("process", |r| {
                r.acceptable_attestation =
                    ep_contracts::boundary::AcceptableAttestation::of([STRONG]);
            }),
        ),
        with_json(case("POST", "/v1/admit", 400), json!({"lane_id": ""})),
        Case {
            headers: vec![JSON],
            body: Some("{not json".into()),
            ..case("POST", "/v1/admit", 400)
        },
        Case {
            headers: vec![("content-type", "text/plain")],
            body: Some(request("process", |_| {}).to_string()),
            ..case("POST", "/v1/admit", 415)
        },
        Case {
            headers: vec![JSON],
            body: Some(format!(
                "{{\"lane_id\": \"process\", \"metadata\": {{\"pad\": \"{}\"}}}}",
                "x".repeat(1 << 20)
            )),
            ..case("POST", "/v1/admit", 413)
        },
        with_json(case("POST", "/v1/execute", 200), request("process", |_| {})),
        with_json(
            case("POST", "/v1/execute", 422),
            request("process", |r| {
                r.payload.insert("invalid".into(), json!(true));
            }),
        ),
        with_json(
            case("POST", "/v1/execute", 401),
            request("process", |r| r.authority_ref = None),
        ),
        with_json(case("POST", "/v1/execute", 404), request("nope", |_| {})),
        Case {
            headers: vec![JSON],
            body: Some("[]".into()),
            ..case("POST", "/v1/execute", 400)
        },
        with_json(
            case("POST", "/v1/stream", 200),
            request("process", |r| {
                r.payload.insert("events".into(), json!(3));
            }),
        ),
        with_json(case("POST", "/v1/stream", 501), request("http", |_| {})),
        with_json(case("POST", "/v1/stream", 422), request("batch", |_| {})),
        with_json(
            case("POST", "/v1/stream", 401),
            request("process", |r| r.authority_ref = None),
        ),
        case("POST", "/v1/executions/exec-0-0/cancel", 401),
        Case {
            headers: vec![BEARER],
            ..case("POST", "/v1/executions/exec-0-0/cancel", 404)
        },
        Case {
            headers: vec![("content-type", "text/plain")],
            body: Some("x".into()),
            ..case("POST", "/v1/executions/exec-0-0/cancel", 415)
        },
        case("POST", "/v1/executions/exec-0-0/input", 401),
        Case {
            headers: vec![BEARER, JSON],
            body: Some(r#"{"end": true}"#.into()),
            ..case("POST", "/v1/executions/exec-0-0/input", 404)
        },
        case("GET", "/v1/lanes", 401),
        Case {
            headers: vec![("authorization", "Bearer wrong")],
            ..case("GET", "/v1/lanes", 403)
        },
        Case {
            headers: vec![BEARER],
            ..case("GET", "/v1/lanes", 200)
        },
        Case {
            headers: vec![BEARER],
            ..case("POST", "/v1/admin/reload", 200)
        },
        case("POST", "/v1/admin/reload", 401),
        Case {
            headers: vec![BEARER],
            ..case("POST", "/v1/lanes/process/rollback", 404)
        },
        case("POST", "/v1/lanes/process/rollback", 401),
        Case {
            headers: vec![BEARER],
            ..case("POST", "/v1/lanes/process/digests/sha256:00/reinstate", 404)
        },
        case("POST", "/v1/lanes/process/digests/sha256:00/reinstate", 401),
        case("GET", "/healthz", 200),
        case("GET", "/metrics", 200),
    ];
    for class in FailureClass::ALL {
        cases.push(with_json(
            case("POST", "/v1/execute", failure_status(class)),
            request("process", |r| {
                r.payload.insert("fail".into(), json!(class.as_str()));
            }),
        ));
    }
    cases
}

/// Checks one answer against the documented response; returns the problems.
fn conforms(spec: &Spec, method: &str, path: &str, answer: &Answer) -> Vec<String> {
    let name = format!("{method} {path} → {}", answer.status.as_u16());
    let Some(template) = spec.template_of(path) else {
        return vec![format!("{name}: path not documented")];
    };
    let Some(response) = spec.response(&template, method, answer.status.as_u16()) else {
        return vec![format!("{name}: status not documented for {template}")];
    };
    let Some(content) = response.get("content").and_then(Value::as_object) else {
        return Vec::new();
    };
    let found = answer.content_type.clone().unwrap_or_default();
    let essence = |t: &str| {
        t.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    };
    let Some((media, entry)) = content.iter().find(|(m, _)| essence(m) == essence(&found)) else {
        return vec![format!(
            "{name}: content-type {found:?} not among {:?}",
            content.keys().collect::<Vec<_>>()
        )];
    };
    let mut problems = Vec::new();
    match essence(media).as_str() {
        "application/json" => {
            let Ok(body) = serde_json::from_slice::<Value>(&answer.body) else {
                return vec![format!("{name}: body is not JSON")];
            };
            for problem in spec.check(&entry["schema"], &body) {
                problems.push(format!("{name}: {problem}"));
            }
        }
        "text/event-stream" => {
            let frames = SseParser::new().push(&answer.body);
            let events = &entry["x-sse-events"];
            if frames.last().map(|f| f.event.as_str()) != Some("result") {
                problems.push(format!("{name}: the stream does not end with its result"));
            }
            for frame in frames {
                let Some(schema) = events.get(&frame.event) else {
                    problems.push(format!("{name}: undocumented frame {}", frame.event));
                    continue;
                };
                let data: Value = serde_json::from_str(&frame.data).unwrap_or(Value::Null);
                for problem in spec.check(schema, &data) {
                    problems.push(format!("{name}: {} frame: {problem}", frame.event));
                }
            }
        }
        _ => {
            if std::str::from_utf8(&answer.body).is_err() {
                problems.push(format!("{name}: text body is not UTF-8"));
            }
        }
    }
    problems
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_operation_answers_as_documented() {
    let spec = Spec::load();
    let probe = Probe::new().await;
    let mut problems = Vec::new();
    let mut exercised = BTreeSet::new();
    for case in cases() {
        let answer = probe
            .send(case.method, &case.path, &case.headers, case.body.clone())
            .await;
        if answer.status.as_u16() != case.status {
            problems.push(format!(
                "{} {}: status {}, want {} ({})",
                case.method,
                case.path,
                answer.status,
                case.status,
                String::from_utf8_lossy(&answer.body)
            ));
        }
        problems.extend(conforms(&spec, case.method, &case.path, &answer));
        if let Some(template) = spec.template_of(&case.path) {
            exercised.insert((template, case.method.to_owned()));
        }
    }
    // Cancel answers need an execution running (one whose target's cancel fails, too) and
    // one that already ended.
    let ended = probe
        .send(
            "POST",
            "/v1/execute",
            &[JSON],
            Some(request("process", |_| {}).to_string()),
        )
        .await;
    let ended = ended.json()["execution_ref"]["ref"]
        .as_str()
        .unwrap()
        .to_owned();
    let running = probe.start_running("slow").await;
    let sticky = probe.start_running("sticky").await;
    // Input: a running unary execution takes none; a malformed body is 400.
    let input = format!("/v1/executions/{running}/input");
    for (body, status) in [
        (r#"{"end": true}"#, 409),
        (r#"{"end": true, "interrupt": true}"#, 400),
    ] {
        let answer = probe
            .send("POST", &input, &[BEARER, JSON], Some(body.to_owned()))
            .await;
        if answer.status.as_u16() != status {
            problems.push(format!("input {body}: status {}", answer.status));
        }
        problems.extend(conforms(&spec, "POST", &input, &answer));
    }
    for (reference, status) in [(running, 200), (sticky, 502), (ended, 409)] {
        let path = format!("/v1/executions/{reference}/cancel");
        let answer = probe.send("POST", &path, &[BEARER], None).await;
        if answer.status.as_u16() != status {
            problems.push(format!("cancel of {reference}: status {}", answer.status));
        }
        problems.extend(conforms(&spec, "POST", &path, &answer));
    }
    let missing: Vec<_> = spec.operations().difference(&exercised).cloned().collect();
    assert!(
        missing.is_empty(),
        "operations never exercised: {missing:?}"
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_the_server_answers_is_documented() {
    let spec = Spec::load();
    let probe = Probe::new().await;
    let documented = spec.operations();
    let mut paths: Vec<String> = documented
        .iter()
        .map(|(template, _)| {
            template
                .replace("{execution_ref}", "exec-0-0")
                .replace("{lane_id}", "process")
                .replace("{digest}", "sha256:00")
        })
        .collect();
    paths.extend(
        [
            // The endpoints of docs/api.md, whether or not the document lists them.
            "/v1/node",
            "/v1/admit",
            "/v1/execute",
            "/v1/stream",
            "/v1/executions/exec-0-0/cancel",
            "/v1/executions/exec-0-0/input",
            "/v1/lanes",
            "/v1/admin/reload",
            "/v1/lanes/process/rollback",
            "/v1/lanes/process/digests/sha256:00/reinstate",
            "/healthz",
            "/metrics",
            // Near misses.
            "/",
            "/v1",
            "/v1/",
            "/v2/node",
            "/v1/nodes",
            "/v1/node/x",
            "/v1/executions",
            "/v1/executions/exec-0-0",
            "/v1/executions/exec-0-0/status",
            "/v1/lanes/process",
            "/v1/lanes/process/digests",
            "/v1/lanes/process/digests/sha256:00",
            "/v1/admin",
            "/v1/admin/shutdown",
            "/health",
            "/metrics/x",
            "/openapi.json",
        ]
        .map(str::to_owned),
    );
    paths.sort();
    paths.dedup();
    let mut problems = Vec::new();
    for path in &paths {
        for method in ["GET", "POST", "PUT", "DELETE", "PATCH"] {
            let answer = probe.send(method, path, &[BEARER], None).await;
            let code = answer.json()["error"]["code"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let template = spec.template_of(path);
            let is_documented = template
                .as_ref()
                .is_some_and(|t| documented.contains(&(t.clone(), method.to_owned())));
            let unrouted = (answer.status == StatusCode::NOT_FOUND && code == "not_found")
                || (answer.status == StatusCode::METHOD_NOT_ALLOWED
                    && code == "method_not_allowed");
            if is_documented == unrouted {
                problems.push(format!(
                    "{method} {path}: answered {} {code:?}, documented: {is_documented}",
                    answer.status
                ));
            }
            if answer.status == StatusCode::METHOD_NOT_ALLOWED {
                let allowed = answer.allow.clone().unwrap_or_default();
                let ok = template
                    .as_ref()
                    .is_some_and(|t| documented.contains(&(t.clone(), allowed.clone())));
                if !ok {
                    problems.push(format!(
                        "{method} {path}: 405 allows {allowed:?}, not a documented method"
                    ));
                }
            }
            if unrouted {
                problems.extend(spec_error_envelope(&spec, method, path, &answer));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// 404 / 405 answers are the error envelope too.
fn spec_error_envelope(spec: &Spec, method: &str, path: &str, answer: &Answer) -> Vec<String> {
    let schema = json!({"$ref": "#/components/schemas/ErrorEnvelope"});
    spec.check(&schema, &answer.json())
        .into_iter()
        .map(|p| format!("{method} {path} → {}: {p}", answer.status))
        .collect()
}

#[test]
fn every_schema_reference_resolves() {
    let spec = Spec::load();
    let mut pointers = Vec::new();
    collect_refs(&spec.doc, &mut pointers);
    assert!(!pointers.is_empty());
    for pointer in pointers {
        assert!(
            spec.doc.pointer(pointer.trim_start_matches('#')).is_some(),
            "dangling {pointer}"
        );
    }
    for (name, schema) in spec.doc["components"]["schemas"].as_object().unwrap() {
        let _ = spec.validator(&json!({"$ref": format!("#/components/schemas/{name}")}));
        assert!(schema.is_object());
    }
}

fn collect_refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(pointer)) = map.get("$ref") {
                out.push(pointer.clone());
            }
            map.values().for_each(|v| collect_refs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}
