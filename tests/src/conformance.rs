//! The node conformance suite: every behaviour a caller of a [`RuntimeClient`] can observe,
//! run through any client (in-process, remote, ...) so two clients can be shown to be
//! interchangeable.
//!
//! Each check builds a fresh node from a [`NodeFactory`], wraps it with a [`Connector`], drives
//! it through the trait only, and returns an [`Observation`]: what the caller saw, normalized
//! (minted execution refs, event ids and timestamps replaced by placeholders), plus the ways it
//! differs from the documented behaviour. Two clients conform alike when their observation
//! lists are equal and neither has problems.
//!
//! ```no_run
//! use ep_node::local_client::LocalRuntimeClient;
//! use ep_tests::conformance::{self, Connection, Connector};
//! use ep_tests::fixtures::FakeNodes;
//!
//! struct Local;
//! impl Connector for Local {
//!     fn connect(&self, node: ep_node::node::Node) -> futures::future::BoxFuture<'_, Connection> {
//!         Box::pin(async move { Connection::new(LocalRuntimeClient::new(node)) })
//!     }
//! }
//!
//! # async fn demo() {
//! let observations = conformance::run(&FakeNodes, &Local).await;
//! assert!(conformance::problems(&observations).is_empty());
//! # }
//! ```

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use ep_contracts::boundary::{
    AcceptableAttestation, AdmissionRequest, ExecutionEvent, ExecutionRef, ExecutionResult, Map,
    Provenance, ResultStatus,
};
use ep_contracts::{Contract, FailureClass};
use ep_node::node::Node;
use ep_node::{RuntimeClient, RuntimeError};
use futures::StreamExt;
use futures::future::BoxFuture;
use serde_json::{Value, json};

use crate::fixtures::{Fixture, LANES, NODE_ID, NodeFactory, STRONG, Setup, Signal, governed};

/// Hang guard for waits on the node: generous, never a performance assertion.
pub const HANG_GUARD: Duration = Duration::from_secs(10);

/// A client wrapped around a node, and whatever must stay alive while it is used (a server).
pub struct Connection {
    /// The client the checks drive.
    pub client: Arc<dyn RuntimeClient>,
    keep: Vec<Box<dyn Any + Send + Sync>>,
}

impl Connection {
    /// A connection that is only the client.
    pub fn new(client: impl RuntimeClient + 'static) -> Self {
        Self {
            client: Arc::new(client),
            keep: Vec::new(),
        }
    }

    /// Keeps `guard` alive as long as the connection (e.g. the server the client talks to).
    #[must_use]
    pub fn keeping(mut self, guard: impl Any + Send + Sync) -> Self {
        self.keep.push(Box::new(guard));
        self
    }

    /// How many guards it keeps.
    pub fn guards(&self) -> usize {
        self.keep.len()
    }
}

/// Wraps a node in a client (in-process, or served and reached over the network).
pub trait Connector: Send + Sync {
    /// A client for `node`.
    fn connect(&self, node: Node) -> BoxFuture<'_, Connection>;
}

/// What one check saw through the client.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// The check's name (behaviour under test).
    pub check: String,
    /// What the caller observed, normalized.
    pub observed: Value,
    /// Where the observation departs from the documented behaviour (empty when it conforms).
    pub problems: Vec<String>,
}

/// Every problem of every observation, as `check: problem` lines.
pub fn problems(observations: &[Observation]) -> Vec<String> {
    observations
        .iter()
        .flat_map(|o| o.problems.iter().map(move |p| format!("{}: {p}", o.check)))
        .collect()
}

/// The checks whose observations differ between two runs, with both sides, for a readable
/// failure message.
pub fn differences(left: &[Observation], right: &[Observation]) -> Vec<String> {
    let mut out = Vec::new();
    for (l, r) in left.iter().zip(right) {
        if l.check != r.check {
            out.push(format!("check order differs: {} vs {}", l.check, r.check));
        } else if l.observed != r.observed {
            out.push(format!(
                "{}:\n  left:  {}\n  right: {}",
                l.check, l.observed, r.observed
            ));
        }
    }
    if left.len() != right.len() {
        out.push(format!("{} vs {} observations", left.len(), right.len()));
    }
    out
}

/// Collects the problems of one check.
#[derive(Default)]
struct Expect(Vec<String>);

impl Expect {
    fn that(&mut self, ok: bool, what: impl Into<String>) {
        if !ok {
            self.0.push(what.into());
        }
    }

    fn eq<T: PartialEq + std::fmt::Debug>(&mut self, got: T, want: T, what: &str) {
        if got != want {
            self.0.push(format!("{what}: got {got:?}, want {want:?}"));
        }
    }
}

/// The lane's events of an execution, between the node's `dispatch.started` (first) and the
/// `closing` event (`dispatch.completed` or `dispatch.failed`, last), which `expect` checks.
fn lane_events<'a>(
    expect: &mut Expect,
    events: &'a [ExecutionEvent],
    closing: &str,
) -> &'a [ExecutionEvent] {
    let types: Vec<_> = events.iter().map(|e| e.event_type.as_deref()).collect();
    expect.eq(
        types.first().copied().flatten(),
        Some("dispatch.started"),
        "first event",
    );
    expect.eq(types.last().copied().flatten(), Some(closing), "last event");
    events
        .get(1..events.len().saturating_sub(1))
        .unwrap_or_default()
}

fn observation(check: impl Into<String>, observed: Value, expect: Expect) -> Observation {
    Observation {
        check: check.into(),
        observed: normalize(observed),
        problems: expect.0,
    }
}

/// Replaces what is minted per run (execution refs, request/event ids, timestamps) with
/// placeholders so observations of two runs compare equal.
pub fn normalize(value: Value) -> Value {
    match value {
        Value::String(text) => Value::String(placeholder(&text).unwrap_or(text)),
        Value::Array(items) => Value::Array(items.into_iter().map(normalize).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(key, value)| {
                    let value = match (key.as_str(), &value) {
                        ("event_id", Value::String(_)) => Value::String("<event_id>".into()),
                        _ => normalize(value),
                    };
                    (key, value)
                })
                .collect(),
        ),
        other => other,
    }
}

fn placeholder(text: &str) -> Option<String> {
    // Execution refs: `exec-` and 32 hex digits of randomness.
    if let Some(rest) = text.strip_prefix("exec-")
        && rest.len() == 32
        && is_hex(rest)
    {
        return Some("<exec>".to_owned());
    }
    // Other minted ids: `<prefix>-<unix_ms>-<16 hex>`.
    for prefix in ["exec", "adm", "event", "ev", "req"] {
        if let Some(rest) = text.strip_prefix(prefix).and_then(|r| r.strip_prefix('-')) {
            let mut parts = rest.split('-');
            let minted = parts.next().is_some_and(is_digits)
                && parts.next().is_some_and(|r| r.len() == 16 && is_hex(r))
                && parts.next().is_none();
            if minted {
                return Some(format!("<{prefix}>"));
            }
        }
    }
    if text.len() >= 20 && chrono::DateTime::parse_from_rfc3339(text).is_ok() {
        return Some("<time>".to_owned());
    }
    None
}

fn is_hex(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_hexdigit())
}

fn is_digits(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

/// A runtime error as data: the variant and what it carries.
pub fn error_value(error: &RuntimeError) -> Value {
    match error {
        RuntimeError::Rejected(rejection) => json!({"rejected": rejection.to_value()}),
        RuntimeError::UnknownExecutionRef(reference) => {
            json!({"unknown_execution_ref": reference})
        }
        RuntimeError::ExecutionEnded(reference) => json!({"execution_ended": reference}),
        RuntimeError::InputNotAccepted(reference) => json!({"input_not_accepted": reference}),
        RuntimeError::InputBusy(reference) => json!({"input_busy": reference}),
        RuntimeError::Target(target) => json!({"target": target.to_string()}),
        RuntimeError::Transport(message) => json!({"transport": message}),
        RuntimeError::Remote {
            status,
            code,
            message,
        } => json!({"remote": {"status": status, "code": code, "message": message}}),
    }
}

/// A unit outcome as data: `"ok"` or the error.
fn outcome_value(outcome: &Result<(), RuntimeError>) -> Value {
    match outcome {
        Ok(()) => json!("ok"),
        Err(error) => error_value(error),
    }
}

fn result_value(result: &ExecutionResult) -> Value {
    result.to_value()
}

fn reason_of(result: &ExecutionResult) -> Option<String> {
    result
        .error
        .as_ref()
        .and_then(|e| e.get("reason"))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

fn failure_class_of(result: &ExecutionResult) -> Option<String> {
    result
        .error
        .as_ref()
        .and_then(|e| e.get("failure_class"))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// One check's node, client and evidence.
struct Case {
    fixture: Fixture,
    connection: Connection,
}

impl Case {
    async fn new(factory: &dyn NodeFactory, connector: &dyn Connector, setup: Setup) -> Self {
        let fixture = factory.build(setup).await;
        let connection = connector.connect(fixture.node.clone()).await;
        Self {
            fixture,
            connection,
        }
    }

    fn client(&self) -> &dyn RuntimeClient {
        self.connection.client.as_ref()
    }

    fn evidence(&self) -> Value {
        json!(self.fixture.sink.evidence_types())
    }

    /// The payload of the first `kind` record, once one arrives (records made off the
    /// caller's path land a little later), or `None` after [`HANG_GUARD`].
    async fn evidence_of(&self, kind: &str) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + HANG_GUARD;
        loop {
            let found = self
                .fixture
                .sink
                .records()
                .into_iter()
                .find(|r| r.evidence_type.as_deref() == Some(kind));
            if let Some(record) = found {
                return Some(record.payload);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    /// The next signal of the `slow` lane, or `None` after [`HANG_GUARD`].
    async fn signal(&self) -> Option<Signal> {
        let mut signals = self.fixture.signals.lock().await;
        tokio::time::timeout(HANG_GUARD, signals.recv())
            .await
            .ok()
            .flatten()
    }
}

/// A way admission refuses a request.
struct Refusal {
    name: &'static str,
    setup: Setup,
    reason: &'static str,
    /// Whether `admit` itself refuses (lane validation refuses only at dispatch).
    at_admission: bool,
    request: fn() -> AdmissionRequest,
}

fn refusals() -> Vec<Refusal> {
    vec![
        Refusal {
            name: "contract_version_mismatch",
            setup: Setup::Standard,
            reason: "contract_version_mismatch",
            at_admission: true,
            request: || {
                let mut request = governed("process", "req-version");
                request.contract_version = json!(2);
                request
            },
        },
        Refusal {
            name: "registration_incomplete",
            setup: Setup::RegistrationIncomplete,
            reason: "registration_incomplete",
            at_admission: true,
            request: || governed("process", "req-registration"),
        },
        Refusal {
            name: "authority_verifier_missing",
            setup: Setup::NoAuthorityVerifier,
            reason: "authority_verifier_missing",
            at_admission: true,
            request: || governed("process", "req-verifier"),
        },
        Refusal {
            name: "lane_not_registered",
            setup: Setup::Standard,
            reason: "lane_not_registered",
            at_admission: true,
            request: || governed("nope", "req-lane"),
        },
        Refusal {
            name: "direct_lane_not_registered",
            setup: Setup::Standard,
            reason: "lane_not_registered",
            at_admission: true,
            request: || {
                let mut request = governed("nope", "req-direct-lane");
                request.provenance = direct_provenance();
                request
            },
        },
        Refusal {
            name: "authority_ref_missing",
            setup: Setup::Standard,
            reason: "authority_ref_missing",
            at_admission: true,
            request: || {
                let mut request = governed("process", "req-no-authority");
                request.authority_ref = None;
                request
            },
        },
        Refusal {
            name: "authority_rejected",
            setup: Setup::Standard,
            reason: "authority_rejected",
            at_admission: true,
            request: || {
                let mut request = governed("process", "req-bad-authority");
                if let Some(authority) = request.authority_ref.as_mut() {
                    authority.reference = Some("deny".to_owned());
                }
                request
            },
        },
        Refusal {
            name: "no_satisfying_attested_target_class",
            setup: Setup::Standard,
            reason: "no_satisfying_attested_target",
            at_admission: true,
            request: || {
                let mut request = governed("process", "req-strong");
                request.acceptable_attestation = AcceptableAttestation::of([STRONG]);
                request
            },
        },
        Refusal {
            name: "no_satisfying_attested_target_none",
            setup: Setup::NoTargets,
            reason: "no_satisfying_attested_target",
            at_admission: true,
            request: || governed("process", "req-no-target"),
        },
        Refusal {
            name: "invalid_lane_request",
            setup: Setup::Standard,
            reason: "invalid_lane_request",
            at_admission: false,
            request: || {
                let mut request = governed("process", "req-invalid");
                request.payload.insert("invalid".into(), json!(true));
                request
            },
        },
    ]
}

fn direct_provenance() -> Provenance {
    let mut details = Map::new();
    details.insert("caller".into(), json!("conformance"));
    Provenance::direct_lower_lane_owner("conformance_owner", details)
}

/// Runs every check with nodes from `factory` wrapped by `connector`, in a fixed order.
pub async fn run(factory: &dyn NodeFactory, connector: &dyn Connector) -> Vec<Observation> {
    let mut out = vec![
        describe(factory, connector).await,
        admit_accepted(factory, connector).await,
        admit_direct(factory, connector).await,
    ];
    for refusal in refusals() {
        out.push(admit_refused(factory, connector, &refusal).await);
        out.push(execute_refused(factory, connector, &refusal).await);
        out.push(stream_refused(factory, connector, &refusal).await);
    }
    out.push(execute_succeeds(factory, connector).await);
    out.push(execute_direct(factory, connector).await);
    for class in FailureClass::ALL {
        out.push(execute_lane_failure(factory, connector, class).await);
    }
    out.push(execute_on_each_lane(factory, connector).await);
    out.push(lineage_and_provenance_preserved(factory, connector).await);
    out.push(stream_events_in_order(factory, connector).await);
    out.push(stream_with_no_events(factory, connector).await);
    out.push(stream_failure_event(factory, connector).await);
    out.push(stream_not_supported(factory, connector, "http", "not_supported").await);
    out.push(stream_not_supported(factory, connector, "batch", "stream_not_supported").await);
    out.push(dropping_a_stream_cancels_it(factory, connector).await);
    out.push(cancel_running(factory, connector).await);
    out.push(cancel_completed(factory, connector).await);
    out.push(cancel_unknown(factory, connector).await);
    out.push(cancel_rejected_execution(factory, connector).await);
    out.push(cancel_target_error(factory, connector).await);
    out
}

async fn describe(factory: &dyn NodeFactory, connector: &dyn Connector) -> Observation {
    let case = Case::new(factory, connector, Setup::Standard).await;
    let mut expect = Expect::default();
    let observed = match case.client().describe().await {
        Ok(descriptor) => {
            expect.eq(descriptor.node_id.as_deref(), Some(NODE_ID), "node id");
            expect.eq(&descriptor, &case.fixture.node.describe(), "descriptor");
            let lanes: Vec<_> = descriptor
                .registered_lanes
                .iter()
                .filter_map(|l| l.lane_id.clone())
                .collect();
            expect.eq(lanes, LANES.map(str::to_owned).to_vec(), "lanes");
            expect.that(descriptor.registration_complete, "registration complete");
            json!({"descriptor": descriptor.to_value()})
        }
        Err(error) => {
            expect.that(false, format!("describe failed: {error}"));
            json!({"error": error_value(&error)})
        }
    };
    observation("describe", observed, expect)
}

async fn admit_accepted(factory: &dyn NodeFactory, connector: &dyn Connector) -> Observation {
    let case = Case::new(factory, connector, Setup::Standard).await;
    let mut expect = Expect::default();
    let observed = match case.client().admit(governed("process", "req-admit")).await {
        Ok(decision) => {
            expect.eq(decision.status.as_str(), "accepted", "status");
            expect.eq(
                decision.request_id.as_deref(),
                Some("req-admit"),
                "request id",
            );
            expect.eq(
                decision.target_id.as_deref(),
                Some("target-process"),
                "target",
            );
            expect.that(decision.execution_ref.is_some(), "an execution ref");
            json!({"decision": decision.to_value()})
        }
        Err(error) => {
            expect.that(false, format!("admit refused: {error}"));
            json!({"error": error_value(&error)})
        }
    };
    expect.eq(
        case.evidence(),
        json!(["admission.accepted", "target.selected"]),
        "evidence",
    );
    observation(
        "admit_accepted",
        json!({"admit": observed, "evidence": case.evidence()}),
        expect,
    )
}

async fn admit_direct(factory: &dyn NodeFactory, connector: &dyn Connector) -> Observation {
    let case = Case::new(factory, connector, Setup::Standard).await;
    let mut expect = Expect::default();
    let mut request = governed("process", "req-admit-direct");
    request.authority_ref = None;
    request.provenance = direct_provenance();
    let observed = match case.client().admit(request).await {
        Ok(decision) => {
            expect.eq(
                decision.target_id.as_deref(),
                None,
                "no target on the direct path",
            );
            json!({"decision": decision.to_value()})
        }
        Err(error) => {
            expect.that(false, format!("admit refused: {error}"));
            json!({"error": error_value(&error)})
        }
    };
    expect.eq(case.evidence(), json!([]), "evidence");
    observation(
        "admit_direct",
        json!({"admit": observed, "evidence": case.evidence()}),
        expect,
    )
}

async fn admit_refused(
    factory: &dyn NodeFactory,
    connector: &dyn Connector,
    refusal: &Refusal,
) -> Observation {
    let case = Case::new(factory, connector, refusal.setup).await;
    let mut expect = Expect::default();
    let request = (refusal.request)();
    let request_id = request.request_id.clone();
    let outcome = case.client().admit(request).await;
    let observed = match &outcome {
        Ok(decision) => {
            expect.that(
                !refusal.at_admission,
                format!("admitted, want {}", refusal.reason),
            );
            json!({"decision": decision.to_value()})
        }
        Err(error) => {
            match error {
                RuntimeError::Rejected(rejection) => {
                    expect.that(refusal.at_admission, "refused by admit");
                    expect.eq(rejection.reason.as_str(), refusal.reason, "reason");
                    expect.eq(
                        rejection.request_id.as_deref(),
                        Some(request_id.as_str()),
                        "request id",
                    );
                }
                other => expect.that(false, format!("want a rejection, got {other}")),
            }
            error_value(error)
        }
    };
    let evidence = case.evidence();
    let want = if refusal.at_admission {
        json!(["admission.rejected"])
    } else {
        json!(["admission.accepted", "target.selected"])
    };
    expect.eq(&evidence, &want, "evidence");
    observation(
        format!("admit_refused_{}", refusal.name),
        json!({"admit": observed, "evidence": evidence}),
        expect,
    )
}

async fn execute_refused(
    factory: &dyn NodeFactory,
    connector: &dyn Connector,
    refusal: &Refusal,
) -> Observation {
    let case = Case::new(factory, connector, refusal.setup).await;
    let mut expect = Expect::default();
    let request = (refusal.request)();
    let provenance = request.provenance.clone();
    let result = case.client().execute(request).await;
    expect.eq(result.status, ResultStatus::Rejected, "status");
    expect.eq(
        reason_of(&result).as_deref(),
        Some(refusal.reason),
        "reason",
    );
    expect.eq(&result.provenance, &provenance, "provenance");
    let evidence = case.evidence();
    let want = if refusal.at_admission {
        json!(["admission.rejected"])
    } else {
        json!([
            "admission.accepted",
            "target.selected",
            "execution.started",
            "dispatch.started",
            "dispatch.failed",
            "execution.completed"
        ])
    };
    expect.eq(&evidence, &want, "evidence");
    observation(
        format!("execute_refused_{}", refusal.name),
        json!({"result": result_value(&result), "evidence": evidence}),
        expect,
    )
}

async fn stream_refused(
    factory: &dyn NodeFactory,
    connector: &dyn Connector,
    refusal: &Refusal,
) -> Observation {
    let case = Case::new(factory, connector, refusal.setup).await;
    let mut expect = Expect::default();
    let observed = match case.client().stream((refusal.request)()).await {
        Ok(stream) => {
            let events: Vec<ExecutionEvent> = collect(stream).await;
            expect.that(false, format!("streamed, want {}", refusal.reason));
            json!({"events": events.iter().map(Contract::to_value).collect::<Vec<_>>()})
        }
        Err(error) => {
            match &error {
                RuntimeError::Rejected(rejection) => {
                    expect.eq(rejection.reason.as_str(), refusal.reason, "reason");
                }
                other => expect.that(false, format!("want a rejection, got {other}")),
            }
            error_value(&error)
        }
    };
    observation(
        format!("stream_refused_{}", refusal.name),
        json!({"stream": observed, "evidence": case.evidence()}),
        expect,
    )
}

async fn collect(stream: ep_node::EventStream) -> Vec<ExecutionEvent> {
    tokio::time::timeout(HANG_GUARD, stream.collect::<Vec<_>>())
        .await
        .unwrap_or_default()
}

async fn execute_succeeds(factory: &dyn NodeFactory, connector: &dyn Connector) -> Observation {
    let case = Case::new(factory, connector, Setup::Standard).await;
    let mut expect = Expect::default();
    let result = case
        .client()
        .execute(governed("process", "req-execute"))
        .await;
    expect.eq(result.status, ResultStatus::Succeeded, "status");
    expect.eq(result.output.get("ok"), Some(&json!(true)), "output");
    let lane = lane_events(&mut expect, &result.events, "dispatch.completed");
    expect.eq(lane.len(), 1, "events");
    expect.eq(
        case.evidence(),
        json!([
            "admission.accepted",
            "target.selected",
            "execution.started",
            "dispatch.started",
            "dispatch.completed",
            "execution.completed"
        ]),
        "evidence",
    );
    observation(
        "execute_succeeds",
        json!({"result": result_value(&result), "evidence": case.evidence()}),
        expect,
    )
}

async fn execute_direct(factory: &dyn NodeFactory, connector: &dyn Connector) -> Observation {
    let case = Case::new(factory, connector, Setup::NoTargets).await;
    let mut expect = Expect::default();
    let mut request = governed("process", "req-execute-direct");
    request.authority_ref = None;
    request.provenance = direct_provenance();
    let result = case.client().execute(request).await;
    expect.eq(result.status, ResultStatus::Succeeded, "status");
    expect.eq(&result.provenance, &direct_provenance(), "provenance");
    expect.eq(
        case.evidence(),
        json!([
            "execution.started",
            "dispatch.started",
            "dispatch.completed",
            "execution.completed"
        ]),
        "evidence",
    );
    observation(
        "execute_direct",
        json!({"result": result_value(&result), "evidence": case.evidence()}),
        expect,
    )
}

async fn execute_lane_failure(
    factory: &dyn NodeFactory,
    connector: &dyn Connector,
    class: FailureClass,
) -> Observation {
    let case = Case::new(factory, connector, Setup::Standard).await;
    let mut expect = Expect::default();
    let mut request = governed("process", "req-fail");
    request.payload.insert("fail".into(), json!(class.as_str()));
    let result = case.client().execute(request).await;
    expect.eq(result.status, ResultStatus::Failed, "status");
    expect.eq(
        failure_class_of(&result).as_deref(),
        Some(class.as_str()),
        "failure class",
    );
    expect.eq(result.output.get("partial"), Some(&json!(true)), "output");
    observation(
        format!("execute_lane_failure_{class}"),
        json!({"result": result_value(&result), "evidence": case.evidence()}),
        expect,
    )
}

async fn execute_on_each_lane(factory: &dyn NodeFactory, connector: &dyn Connector) -> Observation {
    let case = Case::new(factory, connector, Setup::Standard).await;
    let mut expect = Expect::default();
    let mut results = Map::new();
    for lane in ["batch", "http"] {
        let result = case
            .client()
            .execute(governed(lane, &format!("req-{lane}")))
            .await;
        expect.eq(result.status, ResultStatus::Succeeded, lane);
        expect.eq(result.output.get(lane), Some(&json!("ok")), lane);
        results.insert(lane.to_owned(), result_value(&result));
    }
    observation("execute_on_each_lane", Value::Object(results), expect)
}

async fn lineage_and_provenance_preserved(
    factory: &dyn NodeFactory,
    connector: &dyn Connector,
) -> Observation {
    let case = Case::new(factory, connector, Setup::Standard).await;
    let mut expect = Expect::default();
    let lineage = json!({
        "tenant_id": "tenant-1", "trace_id": "trace-1", "request_id": "req-lineage",
        "decision_id": "decision-1", "boundary_session_id": "session-1",
        "attempt_ref": "attempt-1", "route_id": "route-1", "idempotency_key": "key-1",
        "unicode": "snow ☃ and \"quotes\"\nnewline"
    });
    let mut observed = Map::new();
    for (name, provenance) in [
        ("governed", Provenance::node_admitted()),
        ("direct", direct_provenance()),
    ] {
        let mut request = governed("process", &format!("req-lineage-{name}"));
        request.operation = Some("echo".to_owned());
        request.metadata.insert("lineage".into(), lineage.clone());
        request.payload.insert("lineage".into(), lineage.clone());
        request.provenance = provenance.clone();
        let result = case.client().execute(request).await;
        let seen = result.output.get("lineage").cloned().unwrap_or(Value::Null);
        expect.eq(result.status, ResultStatus::Succeeded, name);
        expect.eq(&result.provenance, &provenance, "result provenance");
        expect.eq(
            &seen["provenance"],
            &provenance.to_value(),
            "lane provenance",
        );
        expect.eq(
            seen["request_id"].as_str(),
            Some(format!("req-lineage-{name}").as_str()),
            "request id",
        );
        expect.eq(&seen["metadata"]["lineage"], &lineage, "metadata lineage");
        expect.eq(&seen["payload"]["lineage"], &lineage, "payload lineage");
        expect.eq(seen["operation"].as_str(), Some("echo"), "operation");
        observed.insert(name.to_owned(), result_value(&result));
    }
    observation(
        "lineage_and_provenance_preserved",
        Value::Object(observed),
        expect,
    )
}

async fn stream_events_in_order(
    factory: &dyn NodeFactory,
    connector: &dyn Connector,
) -> Observation {
    let case = Case::new(factory, connector, Setup::Standard).await;
    let mut expect = Expect::default();
    let mut request = governed("process", "req-stream");
    request.payload.insert("events".into(), json!(5));
    let observed = match case.client().stream(request).await {
        Ok(stream) => {
            let events = collect(stream).await;
            let seqs: Vec<_> = lane_events(&mut expect, &events, "dispatch.completed")
                .iter()
                .map(|e| e.payload.get("seq").cloned())
                .collect();
            expect.eq(
                seqs,
                (0..5).map(|n| Some(json!(n))).collect::<Vec<_>>(),
                "event order",
            );
            let refs: Vec<_> = events.iter().map(|e| e.execution_ref.clone()).collect();
            expect.that(
                refs.windows(2).all(|w| w[0] == w[1]) && refs.first().is_some_and(Option::is_some),
                "every event names the same execution",
            );
            json!({"events": events.iter().map(Contract::to_value).collect::<Vec<_>>()})
        }
        Err(error) => {
            expect.that(false, format!("stream refused: {error}"));
            error_value(&error)
        }
    };
    observation(
        "stream_events_in_order",
        json!({"stream": observed, "evidence": case.evidence()}),
        expect,
    )
}

async fn stream_with_no_events(
    factory: &dyn NodeFactory,
    connector: &dyn Connector,
) -> Observation {
    let case = Case::new(factory, connector, Setup::Standard).await;
    let mut expect = Expect::default();
    let mut request = governed("process", "req-stream-empty");
    request.payload.insert("events".into(), json!(0));
    let observed = match case.client().stream(request).await {
        Ok(stream) => {
            let events = collect(stream).await;
            let lane = lane_events(&mut expect, &events, "dispatch.completed");
            expect.eq(lane.len(), 0, "events");
            json!({"events": events.len()})
        }
        Err(error) => {
            expect.that(false, format!("stream refused: {error}"));
            error_value(&error)
        }
    };
    observation("stream_with_no_events", json!({"stream": observed}), expect)
}

async fn stream_failure_event(factory: &dyn NodeFactory, connector: &dyn Connector) -> Observation {
    let case = Case::new(factory, connector, Setup::Standard).await;
    let mut expect = Expect::default();
    let mut request = governed("process", "req-stream-fail");
    request.payload.insert("events".into(), json!(2));
    request
        .payload
        .insert("fail_event".into(), json!("transport_failed"));
    let observed = match case.client().stream(request).await {
        Ok(stream) => {
            let events = collect(stream).await;
            // A lane event that reports a failure does not end the stream failed: only a
            // final `{"status": "failed"}` event does.
            let lane = lane_events(&mut expect, &events, "dispatch.completed");
            let types: Vec<_> = lane.iter().map(|e| e.event_type.clone()).collect();
            expect.eq(
                types,
                vec![
                    Some("fake.chunk".to_owned()),
                    Some("fake.chunk".to_owned()),
                    Some("fake.failed".to_owned()),
                ],
                "event types",
            );
            json!({"events": events.iter().map(Contract::to_value).collect::<Vec<_>>()})
        }
        Err(error) => {
            expect.that(false, format!("stream refused: {error}"));
            error_value(&error)
        }
    };
    observation("stream_failure_event", json!({"stream": observed}), expect)
}

async fn stream_not_supported(
    factory: &dyn NodeFactory,
    connector: &dyn Connector,
    lane: &str,
    reason: &str,
) -> Observation {
    let case = Case::new(factory, connector, Setup::Standard).await;
    let mut expect = Expect::default();
    let observed = match case
        .client()
        .stream(governed(lane, &format!("req-stream-{lane}")))
        .await
    {
        Ok(stream) => {
            let events = collect(stream).await;
            expect.that(false, format!("streamed {} events", events.len()));
            json!({"events": events.len()})
        }
        Err(error) => {
            match &error {
                RuntimeError::Rejected(rejection) => {
                    expect.eq(rejection.reason.as_str(), reason, "reason");
                }
                other => expect.that(false, format!("want a rejection, got {other}")),
            }
            error_value(&error)
        }
    };
    observation(
        format!("stream_refused_by_unary_lane_{lane}"),
        json!({"stream": observed}),
        expect,
    )
}

async fn dropping_a_stream_cancels_it(
    factory: &dyn NodeFactory,
    connector: &dyn Connector,
) -> Observation {
    let case = Case::new(factory, connector, Setup::Standard).await;
    let mut expect = Expect::default();
    let observed = match case.client().stream(governed("slow", "req-drop")).await {
        Ok(mut stream) => {
            let mut types = Vec::new();
            for _ in 0..2 {
                let event = tokio::time::timeout(HANG_GUARD, stream.next())
                    .await
                    .ok()
                    .flatten();
                types.push(event.and_then(|e| e.event_type));
            }
            expect.eq(
                types.clone(),
                vec![
                    Some("dispatch.started".to_owned()),
                    Some("slow.started".to_owned()),
                ],
                "first events",
            );
            let started = case.signal().await;
            drop(stream);
            let cancelled = case.signal().await;
            let same = match (&started, &cancelled) {
                (Some(Signal::Started(a)), Some(Signal::StreamCancelled(b))) => a == b,
                _ => false,
            };
            expect.that(same, format!("lane saw {started:?} then {cancelled:?}"));
            // The drop is on the record, for the in-process caller as for a served client.
            let record = case.evidence_of("execution.cancelled").await;
            let cause = record
                .as_ref()
                .and_then(|r| r.get("cause"))
                .and_then(Value::as_str)
                .map(str::to_owned);
            expect.eq(
                cause.as_deref(),
                Some("client_disconnected"),
                "cancel cause",
            );
            let reference = record
                .as_ref()
                .and_then(|r| r.get("execution_ref"))
                .and_then(Value::as_str)
                .map(str::to_owned);
            // ...and so is its end, once (a failed completion of class cancellation).
            let completed = case.evidence_of("execution.completed").await;
            expect.eq(
                completed
                    .as_ref()
                    .and_then(|r| r.pointer("/error/failure_class"))
                    .and_then(Value::as_str),
                Some("cancellation"),
                "completion after the drop",
            );
            let recorded_same = match &started {
                Some(Signal::Started(a)) => reference.as_deref() == Some(a.as_str()),
                _ => false,
            };
            expect.that(
                recorded_same,
                format!("recorded {reference:?}, lane ran {started:?}"),
            );
            json!({
                "first_events": types,
                "lane_cancelled": same,
                "cancel_cause": cause,
                "evidence": case.evidence(),
            })
        }
        Err(error) => {
            expect.that(false, format!("stream refused: {error}"));
            error_value(&error)
        }
    };
    observation("dropping_a_stream_cancels_it", observed, expect)
}

async fn cancel_running(factory: &dyn NodeFactory, connector: &dyn Connector) -> Observation {
    let case = Case::new(factory, connector, Setup::Standard).await;
    let mut expect = Expect::default();
    let client = Arc::clone(&case.connection.client);
    let running = tokio::spawn(async move { client.execute(governed("slow", "req-cancel")).await });
    let observed = match case.signal().await {
        Some(Signal::Started(reference)) => {
            let cancelled = case.client().cancel(&reference).await;
            expect.that(cancelled.is_ok(), format!("cancel: {cancelled:?}"));
            let result = tokio::time::timeout(HANG_GUARD, running).await;
            match result {
                Ok(Ok(result)) => {
                    expect.eq(&result.execution_ref, &reference, "execution ref");
                    expect.eq(result.status, ResultStatus::Failed, "status");
                    expect.eq(
                        failure_class_of(&result).as_deref(),
                        Some("cancellation"),
                        "failure class",
                    );
                    json!({
                        "cancel": outcome_value(&cancelled),
                        "result": result_value(&result),
                    })
                }
                other => {
                    expect.that(false, format!("execution did not end: {other:?}"));
                    json!({"cancel": outcome_value(&cancelled), "result": null})
                }
            }
        }
        other => {
            running.abort();
            expect.that(false, format!("lane did not start: {other:?}"));
            json!({"started": false})
        }
    };
    let mut evidence = case.evidence();
    // The cancel's evidence and the lane's completion race; both are recorded.
    if let Value::Array(types) = &mut evidence {
        types.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
    }
    expect.eq(
        &evidence,
        &json!([
            "admission.accepted",
            "dispatch.failed",
            "dispatch.started",
            "execution.cancelled",
            "execution.completed",
            "execution.started",
            "target.selected"
        ]),
        "evidence",
    );
    observation(
        "cancel_running",
        json!({"outcome": observed, "evidence": evidence}),
        expect,
    )
}

async fn cancel_completed(factory: &dyn NodeFactory, connector: &dyn Connector) -> Observation {
    let case = Case::new(factory, connector, Setup::Standard).await;
    let mut expect = Expect::default();
    let result = case
        .client()
        .execute(governed("process", "req-cancel-done"))
        .await;
    let before = case.evidence();
    let cancelled = case.client().cancel(&result.execution_ref).await;
    match &cancelled {
        Err(RuntimeError::ExecutionEnded(r)) => {
            expect.eq(r.as_str(), result.execution_ref.as_str(), "ref");
        }
        other => expect.that(false, format!("want execution_ended, got {other:?}")),
    }
    expect.eq(case.evidence(), before, "a refused cancel records nothing");
    observation(
        "cancel_completed",
        json!({
            "cancel": outcome_value(&cancelled),
            "evidence": case.evidence(),
        }),
        expect,
    )
}

async fn cancel_unknown(factory: &dyn NodeFactory, connector: &dyn Connector) -> Observation {
    let case = Case::new(factory, connector, Setup::Standard).await;
    let mut expect = Expect::default();
    let mut observed = Map::new();
    for reference in ["exec-0-0", "exec-with/slash and space"] {
        let outcome = case
            .client()
            .cancel(&ExecutionRef::from_string(reference))
            .await;
        match &outcome {
            Err(RuntimeError::UnknownExecutionRef(r)) => expect.eq(r.as_str(), reference, "ref"),
            other => expect.that(false, format!("want unknown_execution_ref, got {other:?}")),
        }
        observed.insert(
            reference.to_owned(),
            outcome.map(|()| json!("ok")).unwrap_or_else(|e| {
                let mut value = error_value(&e);
                value["display"] = json!(e.to_string());
                value
            }),
        );
    }
    expect.eq(case.evidence(), json!([]), "evidence");
    observation("cancel_unknown", Value::Object(observed), expect)
}

async fn cancel_rejected_execution(
    factory: &dyn NodeFactory,
    connector: &dyn Connector,
) -> Observation {
    let case = Case::new(factory, connector, Setup::NoTargets).await;
    let mut expect = Expect::default();
    let result = case
        .client()
        .execute(governed("process", "req-rejected"))
        .await;
    let outcome = case.client().cancel(&result.execution_ref).await;
    let known = !matches!(outcome, Err(RuntimeError::UnknownExecutionRef(_)));
    expect.that(!known, "a rejected execution's ref is unknown to cancel");
    observation(
        "cancel_rejected_execution",
        json!({"cancel": outcome_value(&outcome)}),
        expect,
    )
}

async fn cancel_target_error(factory: &dyn NodeFactory, connector: &dyn Connector) -> Observation {
    let case = Case::new(factory, connector, Setup::Standard).await;
    let mut expect = Expect::default();
    let client = Arc::clone(&case.connection.client);
    // The execution ends by itself after STICKY_FALLBACK: the failing cancel never reaches it.
    let running =
        tokio::spawn(async move { client.execute(governed("sticky", "req-sticky")).await });
    let outcome = match case.signal().await {
        Some(Signal::Started(reference)) => case.client().cancel(&reference).await,
        other => {
            expect.that(false, format!("lane did not start: {other:?}"));
            Ok(())
        }
    };
    match &outcome {
        Err(RuntimeError::Target(error)) => expect.that(
            error.to_string().contains("connection refused"),
            format!("target error names the cause: {error}"),
        ),
        other => expect.that(false, format!("want a target error, got {other:?}")),
    }
    let cancelled = case
        .fixture
        .sink
        .records()
        .into_iter()
        .rfind(|e| e.evidence_type.as_deref() == Some("execution.cancelled"));
    expect.that(cancelled.is_some(), "execution.cancelled recorded");
    let finished = tokio::time::timeout(HANG_GUARD, running).await;
    expect.that(
        matches!(&finished, Ok(Ok(result)) if result.status == ResultStatus::Succeeded),
        format!("the execution ran to its end: {finished:?}"),
    );
    observation(
        "cancel_target_error",
        json!({
            "cancel": outcome_value(&outcome),
            "cancel_result": cancelled.map(|e| e.payload.get("cancel_result").cloned()),
        }),
        expect,
    )
}
