//! Evidence: full context on every record, emission time, bounded payloads, sink failures and
//! shutdown flushing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;

use ep_contracts::boundary::{AuthorityRef, Evidence, Map, ResultStatus};
use ep_contracts::canonical::fingerprint;
use ep_contracts::simulation::raw_evidence_findings;
use ep_node::sinks::memory::MemorySink;
use serde_json::{Value, json};
use support::*;

#[tokio::test]
async fn sink_receives_admission_target_execution_and_cancellation_context() {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let rt = runtime_on(Arc::new(CancelAwareLane { started: tx })).await;
    let request = governed_request();
    let request_id = request.request_id.clone();
    let node = rt.node.clone();
    let running = tokio::spawn(async move { node.execute(request).await });
    let reference = rx.recv().await.unwrap();
    rt.node.cancel(&reference).await.unwrap();
    let result = running.await.unwrap();
    assert_eq!(result.execution_ref, reference);

    // Causal order: the cancel that fired the lane's signal is written before the completion
    // the signal caused.
    let records = rt.sink.records();
    let types: Vec<_> = records
        .iter()
        .map(|e| e.evidence_type.clone().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "admission.accepted",
            "target.selected",
            "execution.started",
            "dispatch.started",
            "execution.cancelled",
            "dispatch.failed",
            "execution.completed"
        ]
    );
    for record in &records {
        let dumped = serde_json::to_value(record).unwrap();
        assert_eq!(dumped["contract_version"], 1);
        assert_eq!(record.policy_bundle_hash.as_deref(), Some("sha256:test"));
        assert_eq!(record.target_id.as_deref(), Some("target-1"));
        assert_eq!(record.target_verifier_id.as_deref(), Some(STUB_VERIFIER));
        assert_eq!(record.attestation_class.as_deref(), Some(WEAK));
        assert_eq!(record.lane_id.as_deref(), Some("process"));
        assert_eq!(record.authority_verifier_id.as_deref(), Some(AUTHORITY));
        assert_eq!(record.request_id.as_deref(), Some(request_id.as_str()));
        assert_eq!(record.execution_ref.as_ref(), Some(&result.execution_ref));
    }
    assert_eq!(
        records[4].payload,
        json!({
            "execution_ref": result.execution_ref.as_str(),
            "cancel_result": "ok",
            "cancelled_by": "operator",
        })
    );
}

#[tokio::test]
async fn cancelling_an_ended_execution_is_refused_and_records_nothing() {
    let rt = runtime().await;
    let result = rt.node.execute(governed_request()).await;
    assert_eq!(result.status, ResultStatus::Succeeded);
    let before = rt.sink.records().len();
    let err = rt.node.cancel(&result.execution_ref).await.unwrap_err();
    assert!(
        matches!(&err, ep_node::RuntimeError::ExecutionEnded(r) if r == result.execution_ref.as_str()),
        "{err:?}"
    );
    assert!(err.to_string().contains("has already ended"), "{err}");
    assert_eq!(rt.sink.records().len(), before, "nothing appended");
}

#[tokio::test]
async fn every_record_is_stamped_with_its_emission_time_and_a_unique_id() {
    let rt = runtime().await;
    let before = chrono::Utc::now();
    let _ = rt.node.execute(governed_request()).await;
    let after = chrono::Utc::now();
    let records = rt.sink.records();
    let mut ids: Vec<_> = records.iter().map(|e| e.evidence_id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), records.len());
    for record in records {
        let at = chrono::DateTime::parse_from_rfc3339(record.emitted_at.as_deref().unwrap())
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert!(before <= at && at <= after);
        assert!(record.evidence_id.starts_with("ev-"));
    }
}

#[tokio::test]
async fn rejection_evidence_carries_request_context_without_a_decision() {
    let rt = runtime_without_target();
    let request = governed_request();
    let request_id = request.request_id.clone();
    rt.node.execute(request).await;
    let records = rt.sink.records();
    assert_eq!(records.len(), 1);
    let record = &records[0];
    assert_eq!(record.evidence_type.as_deref(), Some("admission.rejected"));
    assert_eq!(record.request_id.as_deref(), Some(request_id.as_str()));
    assert_eq!(record.policy_bundle_hash.as_deref(), Some("sha256:test"));
    assert_eq!(record.lane_id.as_deref(), Some("process"));
    assert_eq!(record.authority_verifier_id.as_deref(), Some(AUTHORITY));
    assert_eq!(record.execution_ref, None);
    assert_eq!(record.target_id, None);
    assert_eq!(record.attestation_class, None);
    assert_eq!(record.payload["reason"], "no_satisfying_attested_target");
}

const SECRET_BODY: &str = "top secret body";
const SECRET_PROMPT: &str = "summarize the confidential merger memo for acme";
const SECRET_TOKEN: &str = "sk-live-4242abcd9999";
const SECRET_QUESTION: &str = "what did the board decide";

fn secret_request() -> ep_contracts::boundary::AdmissionRequest {
    let mut request = governed_request();
    request.payload = serde_json::from_value(json!({
        "body": SECRET_BODY,
        "prompt": SECRET_PROMPT,
        "headers": {"authorization": format!("Bearer {SECRET_TOKEN}")},
        "messages": [{"role": "user", "content": SECRET_PROMPT}],
        "api_token": SECRET_TOKEN,
    }))
    .unwrap();
    request.metadata = serde_json::from_value(json!({
        "question": SECRET_QUESTION,
        "note": format!("caller token {SECRET_TOKEN}"),
        "long": SECRET_BODY.repeat(100),
    }))
    .unwrap();
    let mut authority_metadata = Map::new();
    authority_metadata.insert("signature".into(), json!(SECRET_TOKEN));
    request.authority_ref = Some(AuthorityRef {
        reference: Some("allow".into()),
        metadata: authority_metadata,
        ..AuthorityRef::default()
    });
    request
}

fn assert_bounded(records: &[Evidence]) {
    assert!(!records.is_empty());
    for record in records {
        let text = serde_json::to_string(record).unwrap();
        for secret in [
            SECRET_BODY,
            SECRET_PROMPT,
            SECRET_TOKEN,
            SECRET_QUESTION,
            "sk-live",
        ] {
            assert!(
                !text.contains(secret),
                "{:?} leaked {secret:?}: {text}",
                record.evidence_type
            );
        }
        assert!(
            raw_evidence_findings(&record.payload).is_empty(),
            "{:?} fails the raw-evidence scan: {}",
            record.evidence_type,
            record.payload
        );
    }
}

#[tokio::test]
async fn evidence_never_holds_bodies_prompts_or_secrets() {
    let rt = runtime_on(Arc::new(EchoLane)).await;
    let request = secret_request();
    let payload = Value::Object(request.payload.clone());
    let result = rt.node.execute(request).await;
    assert_eq!(result.status, ResultStatus::Succeeded);
    assert_eq!(
        result.output["body"], SECRET_BODY,
        "the caller still gets its output"
    );

    let records = rt.sink.records();
    assert_bounded(&records);

    let started = records
        .iter()
        .find(|e| e.evidence_type.as_deref() == Some("execution.started"))
        .unwrap();
    let expected_summary = json!({
        "fingerprint": fingerprint(&payload),
        "shape": ["api_token", "body", "headers", "messages", "prompt"],
    });
    assert_eq!(started.payload["payload_summary"], expected_summary);
    assert_eq!(
        started.payload["admission_request"]["payload_summary"],
        expected_summary
    );
    assert!(started.payload.get("payload").is_none());
    assert_eq!(
        started.payload["admission_request"]["authority_ref"]["ref"],
        "allow"
    );
    assert_eq!(
        started.payload["admission_request"]["authority_ref"]["metadata"]["shape"],
        json!(["signature"])
    );
    assert_eq!(
        started.payload["admission_request"]["metadata"]["shape"],
        json!(["long", "note", "question"])
    );
    assert_eq!(
        started.payload["target_descriptor"]["target_id"],
        "target-1"
    );
    assert_eq!(
        started.payload["admission_request"]["sandbox_profile"]["bundle_hash"],
        "sha256:test"
    );

    let completed = records
        .iter()
        .find(|e| e.evidence_type.as_deref() == Some("execution.completed"))
        .unwrap();
    assert_eq!(completed.payload["reply"], "ok");
    assert_eq!(completed.payload["status"], "succeeded");
    assert_eq!(completed.payload["output"], expected_summary);
    assert_eq!(completed.payload["error"], Value::Null);
}

#[tokio::test]
async fn rejected_and_direct_paths_keep_evidence_bounded_too() {
    let rt = runtime_without_target();
    rt.node.execute(secret_request()).await;
    let mut direct = secret_request();
    direct.provenance =
        ep_contracts::boundary::Provenance::direct_lower_lane_owner("owner", Map::new());
    direct.lane_id = "process".into();
    let result = rt.node.execute(direct).await;
    assert_eq!(result.status, ResultStatus::Succeeded);
    assert_bounded(&rt.sink.records());
}

#[tokio::test]
async fn completed_evidence_for_a_refused_execution_keeps_only_the_reason() {
    let rt = runtime().await;
    let mut request = governed_request();
    request.payload.insert("invalid".into(), json!(true));
    rt.node.execute(request).await;
    let completed = rt.sink.records().pop().unwrap();
    assert_eq!(
        completed.evidence_type.as_deref(),
        Some("execution.completed")
    );
    assert_eq!(completed.payload["reply"], "error");
    assert_eq!(completed.payload["status"], "rejected");
    assert_eq!(completed.payload["error"]["reason"], "invalid_lane_request");
    assert!(completed.payload["error"]["fingerprint"]["sha256"].is_string());
    assert!(completed.payload["error"].get("message").is_none());
}

#[tokio::test]
async fn a_failing_sink_never_fails_the_execution() {
    let rt = Runtime::empty();
    rt.node.register_evidence_sink(Arc::new(FailingSink));
    let after = Arc::new(MemorySink::new("after-failing"));
    rt.node.register_evidence_sink(after.clone());
    rt.node.register_lane(Arc::new(FakeLane));
    rt.node
        .register_target_verifier(Arc::new(StubTargetVerifier));
    rt.node
        .register_authority_verifier(Arc::new(AllowAuthority));
    rt.node
        .connect_in_process(valid_stub(), Default::default())
        .await
        .unwrap();
    rt.node.complete_registration();

    let result = rt.node.execute(governed_request()).await;
    assert_eq!(result.status, ResultStatus::Succeeded);
    assert_eq!(rt.sink.len(), 6);
    assert_eq!(after.len(), 6, "sinks after the failing one still receive");
}

#[tokio::test]
async fn shutdown_flushes_every_sink() {
    let rt = runtime().await;
    let second = Arc::new(MemorySink::new("second"));
    rt.node.register_evidence_sink(second.clone());
    rt.node.shutdown().await.unwrap();
    assert_eq!(rt.sink.flushes(), 1);
    assert_eq!(second.flushes(), 1);
}

#[tokio::test]
async fn shutdown_flushes_all_sinks_and_returns_the_first_error() {
    let rt = Runtime::empty();
    rt.node.register_evidence_sink(Arc::new(FailingSink));
    let last = Arc::new(MemorySink::new("last"));
    rt.node.register_evidence_sink(last.clone());
    let err = rt.node.shutdown().await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "evidence sink failing-sink: cannot encode record: disk full"
    );
    assert_eq!(rt.sink.flushes(), 1);
    assert_eq!(last.flushes(), 1);
}

#[tokio::test]
async fn re_registering_a_sink_id_replaces_it() {
    let rt = runtime().await;
    let replacement = Arc::new(MemorySink::new(SINK));
    rt.node.register_evidence_sink(replacement.clone());
    rt.node.execute(governed_request()).await;
    assert!(rt.sink.is_empty());
    assert_eq!(replacement.len(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_answers_only_once_the_file_log_holds_the_execution() {
    let rt = runtime().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("evidence.jsonl");
    // Never synced and a long queue: only `settle` can put the records in the file in time.
    let options = ep_node::sinks::file_chain::SinkOptions {
        durability: ep_node::sinks::file_chain::Durability::Never,
        ..Default::default()
    };
    let sink = ep_node::sinks::file_chain::FileChainSink::open_with(&path, options).unwrap();
    rt.node.register_evidence_sink(Arc::new(sink));
    let in_file = |execution_ref: Option<&str>, request_id: &str| -> Vec<String> {
        std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str::<Value>(line).unwrap())
            .filter(|line| {
                line["evidence"]["request_id"] == request_id
                    && execution_ref.is_none_or(|r| line["evidence"]["execution_ref"]["ref"] == r)
            })
            .map(|line| {
                line["evidence"]["evidence_type"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    };

    for _ in 0..20 {
        let request = governed_request();
        let request_id = request.request_id.clone();
        let result = rt.node.execute(request).await;
        assert_eq!(result.status, ResultStatus::Succeeded);
        let types = in_file(Some(result.execution_ref.as_str()), &request_id);
        assert_eq!(
            types,
            [
                "admission.accepted",
                "target.selected",
                "execution.started",
                "dispatch.started",
                "dispatch.completed",
                "execution.completed"
            ],
            "the file holds the execution's records when the result is returned"
        );
    }
    let mut rejected = governed_request();
    rejected.lane_id = "no-such-lane".to_owned();
    let request_id = rejected.request_id.clone();
    let result = rt.node.execute(rejected).await;
    assert_eq!(result.status, ResultStatus::Rejected);
    assert_eq!(in_file(None, &request_id), ["admission.rejected"]);
}
