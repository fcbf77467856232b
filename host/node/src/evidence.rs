//! Evidence: one record per step the node takes (admission accepted or rejected, target
//! selected, execution started, completed, cancelled), with the full context of §7.8 and the
//! time it was emitted, sent to every registered sink.
//!
//! Evidence is **bounded**: it never holds bodies, prompts or secrets, only fingerprints and
//! shapes. Three layers make sure of it:
//! 1. the payload builders here replace every lane payload and output with
//!    `{"fingerprint": {sha256, byte_size}, "shape": [sorted top-level keys]}` (under a
//!    `payload_summary` key, since `payload` itself is a forbidden raw-evidence key), and every
//!    free-form caller map (metadata, details, opaque bundles, raw constraints) the same way;
//! 2. [`bound`] replaces any string longer than [`MAX_EVIDENCE_STRING_BYTES`] and any key
//!    carrying a forbidden marker with its fingerprint;
//! 3. [`bound`] then runs the contracts' raw-evidence scan and replaces every finding with its
//!    fingerprint (a forbidden key `k` becomes `k_fingerprint`), so the scan passes by
//!    construction; anything it cannot place is withheld whole behind one fingerprint.
//!
//! A sink that fails is logged (`tracing::warn`) and never fails the execution.

use ep_contracts::Contract;
use ep_contracts::boundary::{
    AdmissionDecision, AdmissionRequest, Evidence, ExecutionRef, ExecutionRequest, ExecutionResult,
    ResultStatus, TargetDescriptor,
};
use ep_contracts::canonical::{fingerprint, sha256_ref};
use ep_contracts::simulation::{RawFinding, RawFindingReason, raw_evidence_findings};
use serde_json::{Map, Value, json};

use crate::error::TargetError;
use crate::node::Node;

/// `admission.accepted`: a governed request was admitted (payload: the dumped decision).
pub const ADMISSION_ACCEPTED: &str = "admission.accepted";
/// `target.selected`: the one target chosen (payload: the dumped descriptor).
pub const TARGET_SELECTED: &str = "target.selected";
/// `admission.rejected`: a request was refused (payload: the dumped rejection).
pub const ADMISSION_REJECTED: &str = "admission.rejected";
/// `execution.started`: dispatch began (payload: the bounded execution request).
pub const EXECUTION_STARTED: &str = "execution.started";
/// `execution.completed`: the target answered (payload: reply, status, bounded output/error).
pub const EXECUTION_COMPLETED: &str = "execution.completed";
/// `execution.cancelled`: a cancel reached the target (payload: ref and cancel result).
pub const EXECUTION_CANCELLED: &str = "execution.cancelled";
/// `execution.input`: a caller's input reached a running stream (payload: its kind and size,
/// never its bytes).
pub const EXECUTION_INPUT: &str = "execution.input";
/// `dispatch.completed`: the target's answer succeeded (payload: status).
pub use ep_kernel::facts::DISPATCH_COMPLETED;
/// `dispatch.failed`: the target's answer did not (payload: status and failure class or
/// rejection reason).
pub use ep_kernel::facts::DISPATCH_FAILED;
/// `dispatch.started`: the node handed the execution to its target (payload: lane, target,
/// planned budget); not recorded when nothing is dispatched (an expired deadline, a simulation).
pub use ep_kernel::facts::DISPATCH_STARTED;

/// The payload of `dispatch.started`.
pub(crate) fn dispatch_started_payload(
    lane_id: &str,
    target_id: Option<&str>,
    deadline: Option<ep_lane_api::Deadline>,
) -> Value {
    let timeout_ms =
        deadline.map(|deadline| u64::try_from(deadline.budget().as_millis()).unwrap_or(u64::MAX));
    serde_json::json!({"lane_id": lane_id, "target_id": target_id, "timeout_ms": timeout_ms})
}

/// The kind and payload of the record that ends a dispatch answered by `result`.
pub(crate) fn dispatch_finished(
    result: &ep_contracts::boundary::ExecutionResult,
) -> (&'static str, Value) {
    use ep_contracts::boundary::ResultStatus;
    let status = serde_json::to_value(result.status).unwrap_or(Value::Null);
    if result.status == ResultStatus::Succeeded {
        return (DISPATCH_COMPLETED, serde_json::json!({"status": status}));
    }
    let error = result.error.as_ref();
    let class = error
        .and_then(|e| e.get("failure_class").or_else(|| e.get("reason")))
        .cloned()
        .unwrap_or(Value::Null);
    (
        DISPATCH_FAILED,
        serde_json::json!({"status": status, "failure_class": class}),
    )
}

/// The `dispatch.started` event of `execution_ref`: the record's payload, as the execution's
/// first event.
pub(crate) fn dispatch_started_event(
    execution_ref: &ep_contracts::boundary::ExecutionRef,
    payload: &Value,
) -> ep_contracts::boundary::ExecutionEvent {
    let payload = payload.as_object().cloned().unwrap_or_default();
    ep_contracts::boundary::ExecutionEvent::new(execution_ref.clone(), DISPATCH_STARTED, payload)
}

/// The `dispatch.completed` / `dispatch.failed` event that ends an execution answered by
/// `result`: the record's payload plus, when it failed, the failure as `error` (so the last
/// event of a stream says how it ended, as upstream's last event does).
pub(crate) fn dispatch_finished_event(
    result: &ep_contracts::boundary::ExecutionResult,
) -> ep_contracts::boundary::ExecutionEvent {
    let (kind, payload) = dispatch_finished(result);
    let mut payload = match payload {
        Value::Object(map) => map,
        _ => serde_json::Map::new(),
    };
    if let Some(error) = &result.error {
        payload.insert("error".to_owned(), error.clone());
    }
    ep_contracts::boundary::ExecutionEvent::new(result.execution_ref.clone(), kind, payload)
}

/// A lane asked for a capability its grants do not allow (one record per denial).
pub use ep_lane_api::CAPABILITY_DENIED;

/// Longest string kept verbatim in an evidence payload; longer strings become fingerprints,
/// so no body or document can ride along in an innocuous-looking field.
pub const MAX_EVIDENCE_STRING_BYTES: usize = 512;

/// Longest error `reason` copied into `execution.completed`.
const MAX_REASON_BYTES: usize = 128;

/// Rounds of scan-and-replace before a payload is withheld whole.
const MAX_SCAN_ROUNDS: usize = 4;

/// Work budget for resolving one finding's dotted path (keys may themselves contain dots).
const PATH_RESOLVE_BUDGET: usize = 4096;

/// The context every evidence record of one request carries (§7.8).
#[derive(Debug, Clone, Default)]
pub(crate) struct EvidenceContext {
    pub(crate) execution_ref: Option<ExecutionRef>,
    pub(crate) request_id: Option<String>,
    pub(crate) policy_bundle_hash: Option<String>,
    pub(crate) target_id: Option<String>,
    pub(crate) target_verifier_id: Option<String>,
    pub(crate) attestation_class: Option<String>,
    pub(crate) lane_id: Option<String>,
    pub(crate) authority_verifier_id: Option<String>,
}

impl EvidenceContext {
    /// The context before any decision: request, lane, policy hash, authority verifier.
    pub(crate) fn for_request(
        request: &AdmissionRequest,
        authority_verifier_id: Option<String>,
    ) -> Self {
        Self {
            request_id: Some(request.request_id.clone()),
            policy_bundle_hash: request
                .sandbox_profile
                .as_ref()
                .and_then(|p| p.bundle_hash.clone()),
            lane_id: Some(request.lane_id.clone()),
            authority_verifier_id,
            ..Self::default()
        }
    }

    /// Adds the decision's ref, target and class, and the stored target's verifier.
    pub(crate) fn with_decision(
        mut self,
        decision: &AdmissionDecision,
        descriptor: Option<&TargetDescriptor>,
    ) -> Self {
        self.execution_ref = decision.execution_ref.clone();
        self.target_id = decision.target_id.clone();
        self.attestation_class = decision.attestation_class.clone();
        self.target_verifier_id = descriptor.map(|d| d.verifier_id.clone());
        self
    }

    /// A record of `evidence_type` in this context, payload bounded, stamped now.
    pub(crate) fn record(&self, evidence_type: &str, payload: Value) -> Evidence {
        Evidence {
            evidence_type: Some(evidence_type.to_owned()),
            execution_ref: self.execution_ref.clone(),
            request_id: self.request_id.clone(),
            policy_bundle_hash: self.policy_bundle_hash.clone(),
            target_id: self.target_id.clone(),
            target_verifier_id: self.target_verifier_id.clone(),
            attestation_class: self.attestation_class.clone(),
            lane_id: self.lane_id.clone(),
            authority_verifier_id: self.authority_verifier_id.clone(),
            payload: bound(payload),
            emitted_at: Some(ep_contracts::ids::now_iso8601()),
            ..Evidence::default()
        }
    }
}

impl Node {
    /// Sends `evidence` to every registered sink, in registration order. A sink error is
    /// logged and otherwise ignored: evidence never fails an execution.
    pub(crate) async fn emit(&self, evidence: Evidence) {
        for sink in self.sinks() {
            if let Err(error) = sink.emit(&evidence).await {
                tracing::warn!(
                    sink_id = sink.sink_id(),
                    evidence_type = evidence.evidence_type.as_deref().unwrap_or(""),
                    %error,
                    "evidence sink failed to record evidence"
                );
            }
        }
    }

    /// Waits until every sink has written what was emitted before (see
    /// [`crate::traits::EvidenceSink::settle`]): called before the node answers, once per answer, so sinks
    /// that queue can commit many records together. A failure is logged, like one of `emit`.
    pub(crate) async fn settle(&self) {
        for sink in self.sinks() {
            if let Err(error) = sink.settle().await {
                tracing::warn!(
                    sink_id = sink.sink_id(),
                    %error,
                    "evidence sink failed to write evidence"
                );
            }
        }
    }

    /// Builds a record in `context` and sends it to every sink.
    pub(crate) async fn emit_in(&self, context: &EvidenceContext, kind: &str, payload: Value) {
        self.emit(context.record(kind, payload)).await;
    }

    /// Records evidence of a step that belongs to no execution (a lane generation activated,
    /// refused or rolled back; an operator action): the payload is [`bound`]ed, the record is
    /// stamped now, carries `lane_id` when given, and goes to every sink like any other record.
    /// Returns the record as sent.
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// use std::sync::Arc;
    /// use ep_node::node::Node;
    /// use ep_node::sinks::memory::MemorySink;
    ///
    /// let node = Node::new("node-docs");
    /// let sink = Arc::new(MemorySink::new("memory"));
    /// node.register_evidence_sink(sink.clone());
    /// let record = node
    ///     .record_evidence("lane.activated", Some("echo"), serde_json::json!({"generation": 2}))
    ///     .await;
    /// assert_eq!(record.lane_id.as_deref(), Some("echo"));
    /// assert_eq!(sink.evidence_types(), ["lane.activated"]);
    /// # });
    /// ```
    pub async fn record_evidence(
        &self,
        evidence_type: &str,
        lane_id: Option<&str>,
        payload: Value,
    ) -> Evidence {
        let context = EvidenceContext {
            lane_id: lane_id.map(str::to_owned),
            ..EvidenceContext::default()
        };
        let record = context.record(evidence_type, payload);
        self.emit(record.clone()).await;
        self.settle().await;
        record
    }
}

impl Node {
    /// Records evidence of a step a host took for one execution outside the node's own
    /// dispatch (a served stream whose client went away, an execution cut at shutdown): like
    /// [`Node::record_evidence`], with the record's `execution_ref` set. Returns the record.
    pub async fn record_execution_evidence(
        &self,
        evidence_type: &str,
        execution_ref: &ExecutionRef,
        lane_id: Option<&str>,
        payload: Value,
    ) -> Evidence {
        let context = EvidenceContext {
            execution_ref: Some(execution_ref.clone()),
            lane_id: lane_id.map(str::to_owned),
            ..EvidenceContext::default()
        };
        let record = context.record(evidence_type, payload);
        self.emit(record.clone()).await;
        self.settle().await;
        record
    }
}

/// `{"fingerprint": {sha256, byte_size}, "shape": [sorted top-level keys]}`: what evidence
/// keeps of a payload or output instead of the value itself.
pub fn summarize(value: &Value) -> Value {
    let shape: Vec<Value> = match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            keys.into_iter().map(|k| Value::String(k.clone())).collect()
        }
        _ => Vec::new(),
    };
    json!({"fingerprint": fingerprint(value), "shape": shape})
}

/// The `execution.started` payload: the dumped execution request with the lane payload (top
/// level and inside the admission request) replaced by a `payload_summary`, and every
/// free-form caller map (`metadata`, `details`, the sandbox profile's `opaque_bundle`, the raw
/// `constraints`) replaced by its summary. Ids, refs, hashes, classes and the verifier-minted
/// target descriptor are kept as they are.
pub fn started_payload(request: &ExecutionRequest) -> Value {
    let mut dumped = request.to_value();
    if let Value::Object(map) = &mut dumped {
        // The lane payload is usually the admission request's own: summarize it once.
        let payload = map.remove("payload");
        let summary = payload.as_ref().map(summarize);
        if let Some(summary) = &summary {
            map.insert("payload_summary".to_owned(), summary.clone());
        }
        for key in FREE_FORM_KEYS {
            summarize_in_place(map, key);
        }
        if let Some(provenance) = map.get_mut("provenance") {
            summarize_free_form(provenance);
        }
        if let Some(admission) = map.get_mut("admission_request") {
            if let Value::Object(admission) = admission
                && let Some(inner) = admission.remove("payload")
            {
                let inner_summary = match (&payload, summary) {
                    (Some(outer), Some(summary)) if *outer == inner => summary,
                    _ => summarize(&inner),
                };
                admission.insert("payload_summary".to_owned(), inner_summary);
            }
            summarize_free_form(admission);
        }
    }
    dumped
}

/// Caller-supplied free-form fields evidence keeps only as summaries.
const FREE_FORM_KEYS: [&str; 4] = ["metadata", "details", "opaque_bundle", "constraints"];

/// Replaces every free-form field at any depth of `value` by its summary.
fn summarize_free_form(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for key in FREE_FORM_KEYS {
                summarize_in_place(map, key);
            }
            for child in map.values_mut() {
                summarize_free_form(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(summarize_free_form),
        _ => {}
    }
}

/// Replaces `map[key]` by its summary when it holds something (not null).
fn summarize_in_place(map: &mut Map<String, Value>, key: &str) {
    if let Some(slot) = map.get_mut(key)
        && !slot.is_null()
    {
        *slot = summarize(slot);
    }
}

/// The `execution.completed` payload: `reply` (`ok` when succeeded, else `error`), `status`,
/// the output's summary, the number of events, a bounded error (its `reason` and
/// `failure_class` when short strings, plus fingerprint and shape) and the evidence entries
/// the lane attached to its result (such as the wasm component digest).
pub fn completed_payload(result: &ExecutionResult) -> Value {
    let reply = if result.status == ResultStatus::Succeeded {
        "ok"
    } else {
        "error"
    };
    json!({
        "reply": reply,
        "status": result.status.as_str(),
        "output": summarize(&Value::Object(result.output.clone())),
        "event_count": result.events.len(),
        "error": result.error.as_ref().map_or(Value::Null, bounded_error),
        "lane_evidence": result.evidence.iter().take(MAX_LANE_EVIDENCE).cloned().collect::<Vec<_>>(),
    })
}

/// Most lane-attached evidence entries (e.g. a wasm lane's component digest and engine) kept
/// per `execution.completed` record; they are bounded like every payload.
const MAX_LANE_EVIDENCE: usize = 8;

fn bounded_error(error: &Value) -> Value {
    let mut out = Map::new();
    if let Value::Object(map) = error {
        for key in ["reason", "failure_class"] {
            if let Some(Value::String(s)) = map.get(key)
                && s.len() <= MAX_REASON_BYTES
            {
                out.insert(key.to_owned(), Value::String(s.clone()));
            }
        }
    }
    if let Value::Object(summary) = summarize(error) {
        out.extend(summary);
    }
    Value::Object(out)
}

/// The `execution.cancelled` payload: the ref, `ok` or the target's error, and the `cause` when the
/// host (not a caller) cancelled.
pub fn cancelled_payload(
    execution_ref: &ExecutionRef,
    outcome: &Result<(), TargetError>,
    cause: Option<&str>,
) -> Value {
    let cancel_result = match outcome {
        Ok(()) => "ok".to_owned(),
        Err(error) => error.to_string(),
    };
    let mut payload =
        json!({"execution_ref": execution_ref.as_str(), "cancel_result": cancel_result});
    if let (Some(cause), Some(map)) = (cause, payload.as_object_mut()) {
        map.insert("cause".to_owned(), Value::from(cause));
    }
    payload
}

/// Makes `value` safe to persist as evidence: long strings and marked keys become
/// fingerprints, then every raw-evidence finding of
/// [`ep_contracts::simulation::raw_evidence_findings`] is replaced by its fingerprint. The
/// result always passes that scan.
pub fn bound(mut value: Value) -> Value {
    cap(&mut value);
    for _ in 0..MAX_SCAN_ROUNDS {
        let findings = raw_evidence_findings(&value);
        if findings.is_empty() {
            return value;
        }
        for finding in &findings {
            if !replace_finding(&mut value, finding) {
                return withheld(&value);
            }
        }
    }
    if raw_evidence_findings(&value).is_empty() {
        value
    } else {
        withheld(&value)
    }
}

fn withheld(value: &Value) -> Value {
    json!({"withheld_fingerprint": fingerprint(value)})
}

fn has_forbidden_marker(s: &str) -> bool {
    ep_contracts::simulation::forbidden_substring(s).is_some()
}

/// Replaces long strings with fingerprints and renames keys carrying a forbidden marker to
/// the hash of the key.
fn cap(value: &mut Value) {
    match value {
        Value::String(s) if s.len() > MAX_EVIDENCE_STRING_BYTES => {
            *value = fingerprint(&Value::String(std::mem::take(s)));
        }
        Value::Array(items) => items.iter_mut().for_each(cap),
        Value::Object(map) => {
            // In place: renaming is rare, rebuilding every map for it was not.
            let renamed: Vec<String> = map
                .keys()
                .filter(|key| key.len() > MAX_EVIDENCE_STRING_BYTES || has_forbidden_marker(key))
                .cloned()
                .collect();
            for key in renamed {
                if let Some(child) = map.remove(&key) {
                    map.insert(sha256_ref(key.as_bytes()), child);
                }
            }
            map.values_mut().for_each(cap);
        }
        _ => {}
    }
}

/// One step of a resolved finding path.
enum Step {
    Key(String),
    Index(usize),
}

/// Replaces the value at a finding with its fingerprint (a forbidden key `k` is renamed
/// `k_fingerprint`); false when the path cannot be placed.
fn replace_finding(value: &mut Value, finding: &RawFinding) -> bool {
    let steps = if finding.path.is_empty() {
        Vec::new()
    } else {
        let segments: Vec<&str> = finding.path.split('.').collect();
        let mut budget = PATH_RESOLVE_BUDGET;
        match resolve(value, &segments, &mut budget) {
            Some(steps) => steps,
            None => return false,
        }
    };
    if matches!(finding.reason, RawFindingReason::ForbiddenKey(_)) {
        let Some((Step::Key(key), parent_steps)) = steps.split_last() else {
            return false;
        };
        let Some(Value::Object(parent)) = step_into(value, parent_steps) else {
            return false;
        };
        let Some(old) = parent.remove(key) else {
            return false;
        };
        parent.insert(format!("{key}_fingerprint"), fingerprint(&old));
        return true;
    }
    match step_into(value, &steps) {
        Some(slot) => {
            *slot = fingerprint(slot);
            true
        }
        None => false,
    }
}

/// Resolves dotted segments against `value`, trying joined segments for keys that contain
/// dots; gives up when the work budget runs out.
fn resolve(value: &Value, segments: &[&str], budget: &mut usize) -> Option<Vec<Step>> {
    let (first, rest) = match segments.split_first() {
        None => return Some(Vec::new()),
        Some(split) => split,
    };
    *budget = budget.checked_sub(1)?;
    match value {
        Value::Object(map) => {
            for end in 1..=segments.len() {
                let key = segments[..end].join(".");
                let Some(child) = map.get(&key) else {
                    continue;
                };
                if let Some(mut steps) = resolve(child, &segments[end..], budget) {
                    steps.insert(0, Step::Key(key));
                    return Some(steps);
                }
                if *budget == 0 {
                    return None;
                }
            }
            None
        }
        Value::Array(items) => {
            let index: usize = first.parse().ok()?;
            let mut steps = resolve(items.get(index)?, rest, budget)?;
            steps.insert(0, Step::Index(index));
            Some(steps)
        }
        _ => None,
    }
}

fn step_into<'a>(value: &'a mut Value, steps: &[Step]) -> Option<&'a mut Value> {
    let mut current = value;
    for step in steps {
        current = match (step, current) {
            (Step::Key(key), Value::Object(map)) => map.get_mut(key)?,
            (Step::Index(index), Value::Array(items)) => items.get_mut(*index)?,
            _ => return None,
        };
    }
    Some(current)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_keys_are_renamed_and_fingerprinted() {
        let v = bound(json!({"a": {"body": "top secret", "ok": 1}}));
        assert!(v["a"].get("body").is_none());
        assert!(v["a"]["body_fingerprint"]["sha256"].is_string());
        assert_eq!(v["a"]["ok"], 1);
        assert!(raw_evidence_findings(&v).is_empty());
    }

    #[test]
    fn forbidden_substrings_in_lists_and_dotted_keys_are_replaced() {
        let v = bound(json!({"x.y": ["fine", "token sk-live-123"], "root": "ok"}));
        assert_eq!(v["x.y"][0], "fine");
        assert!(v["x.y"][1]["sha256"].is_string());
        assert!(!v.to_string().contains("sk-live"));
    }

    #[test]
    fn root_string_and_long_strings_become_fingerprints() {
        assert!(bound(json!("raw prompt here"))["sha256"].is_string());
        let long = "a".repeat(MAX_EVIDENCE_STRING_BYTES + 1);
        assert!(bound(json!({"k": long}))["k"]["sha256"].is_string());
    }

    #[test]
    fn keys_with_markers_are_hashed() {
        let v = bound(json!({"sk-live-abc": 1}));
        assert!(!v.to_string().contains("sk-live"));
    }

    #[tokio::test]
    async fn recorded_evidence_is_bounded_stamped_and_sent_to_every_sink() {
        use std::sync::Arc;

        use crate::sinks::memory::MemorySink;

        let node = Node::new("node-evidence");
        let first = Arc::new(MemorySink::new("first"));
        let second = Arc::new(MemorySink::new("second"));
        node.register_evidence_sink(first.clone());
        node.register_evidence_sink(second.clone());
        let long = "r".repeat(MAX_EVIDENCE_STRING_BYTES + 1);
        let record = node
            .record_evidence(
                "lane.rejected",
                Some("echo"),
                json!({"reason": long, "body": "raw", "serving_digest": "sha256:ab"}),
            )
            .await;
        assert_eq!(record.evidence_type.as_deref(), Some("lane.rejected"));
        assert_eq!(record.lane_id.as_deref(), Some("echo"));
        assert!(record.execution_ref.is_none());
        assert!(record.emitted_at.is_some());
        assert!(record.payload["reason"]["sha256"].is_string());
        assert!(record.payload.get("body").is_none());
        assert_eq!(record.payload["serving_digest"], "sha256:ab");
        for sink in [&first, &second] {
            let records = sink.records();
            assert_eq!(records.len(), 1);
            assert_eq!(records[0].evidence_id, record.evidence_id);
            assert_eq!(records[0].payload, record.payload);
        }
        let unscoped = node.record_evidence("operator.note", None, json!({})).await;
        assert!(unscoped.lane_id.is_none());
    }

    #[test]
    fn summary_has_sorted_shape() {
        let s = summarize(&json!({"b": 1, "a": 2}));
        assert_eq!(s["shape"], json!(["a", "b"]));
        assert_eq!(s["fingerprint"], fingerprint(&json!({"a": 2, "b": 1})));
    }
}
