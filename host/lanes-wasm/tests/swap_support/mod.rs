//! What the hot-swap tests share: a node that admits everything with a memory sink, governed
//! `echo` requests, evidence lookups, slots and plugin directories of the real guests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ep_contracts::boundary::{
    AcceptableAttestation, AdmissionRejection, AdmissionRequest, AuthorityRef, ExecutionResult, Map,
};
use ep_lanes_wasm::{
    LaneLimits, LaneSlot, LaneSource, RollbackPolicy, SwapOutcome, WASM_ENGINE_CLASS, WatchConfig,
};
use ep_node::AuthorityVerifier;
use ep_node::node::Node;
use ep_node::sinks::memory::MemorySink;
use serde_json::Value;

use crate::support::*;

/// Allows every authority ref (authority is not what these tests are about).
pub struct AllowAll;

#[async_trait]
impl AuthorityVerifier for AllowAll {
    fn verifier_id(&self) -> &str {
        "allow-all"
    }
    async fn verify(
        &self,
        _authority: &AuthorityRef,
        _request: &AdmissionRequest,
    ) -> Result<Map, AdmissionRejection> {
        Ok(Map::new())
    }
}

/// A node that admits everything, with a memory sink.
pub fn node() -> (Node, Arc<MemorySink>) {
    let node = Node::new("node-hot-swap");
    let sink = Arc::new(MemorySink::new("memory"));
    node.register_evidence_sink(sink.clone());
    node.register_authority_verifier(Arc::new(AllowAll));
    node.complete_registration();
    (node, sink)
}

/// A governed request for lane `echo` accepting the wasm engine class.
pub fn governed(payload: Value) -> AdmissionRequest {
    let mut request = AdmissionRequest::new("echo");
    request.payload = obj(payload);
    request.authority_ref = Some(AuthorityRef {
        reference: Some("allow".to_owned()),
        ..AuthorityRef::default()
    });
    request.acceptable_attestation = AcceptableAttestation::of([WASM_ENGINE_CLASS]);
    request
}

/// The component digest the result's wasm evidence names (exactly one entry, exactly one
/// digest).
pub fn digest_of(result: &ExecutionResult) -> String {
    assert_eq!(result.evidence.len(), 1, "{result:?}");
    let entry = &result.evidence[0];
    assert_eq!(entry["kind"], "wasm_lane.execution");
    entry["component_digest"]
        .as_str()
        .expect("a component digest")
        .to_owned()
}

/// Payloads of every record of `evidence_type`, oldest first.
pub fn payloads(sink: &MemorySink, evidence_type: &str) -> Vec<Value> {
    sink.records()
        .into_iter()
        .filter(|r| r.evidence_type.as_deref() == Some(evidence_type))
        .map(|r| r.payload)
        .collect()
}

/// Polls the sink until a record of `evidence_type` matches `predicate` (hang guard only).
pub async fn wait_for(
    sink: &MemorySink,
    evidence_type: &str,
    predicate: impl Fn(&Value) -> bool,
) -> Value {
    guarded(async {
        loop {
            if let Some(found) = payloads(sink, evidence_type).into_iter().find(&predicate) {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
}

pub fn bytes_of(name: &str) -> Arc<[u8]> {
    std::fs::read(guest(name)).unwrap().into()
}

pub fn sha256(bytes: &[u8]) -> String {
    ep_contracts::canonical::sha256_ref(bytes)
}

/// A slot serving the `echo` guest as generation 1 (default grants and limits).
pub async fn echo_slot(rollback: RollbackPolicy) -> LaneSlot {
    let rt = runtime();
    // Under load on a shared machine a request can queue for an instance longer than the
    // default one-second validate budget; these tests are about swaps, not that budget.
    let limits = LaneLimits {
        validate_timeout: Duration::from_secs(30),
        ..LaneLimits::default()
    };
    let lane = load(&rt, "echo", limits).await;
    LaneSlot::new(lane, guest("echo").display().to_string(), rollback).unwrap()
}

pub async fn activate(slot: &LaneSlot, bytes: &Arc<[u8]>) -> u64 {
    match guarded(slot.swap_component(LaneSource::Bytes(Arc::clone(bytes)))).await {
        Ok(SwapOutcome::Activated(activation)) => activation.generation,
        other => panic!("expected an activation, got {other:?}"),
    }
}

/// A plugin directory with `echo.wasm` + `echo.toml` (events granted).
pub fn plugin_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let wasm = dir.path().join("echo.wasm");
    std::fs::copy(guest("echo"), &wasm).unwrap();
    write_manifest(&wasm, &manifest("echo", ""));
    (dir, wasm)
}

pub fn manifest(lane_id: &str, extra: &str) -> String {
    format!(
        "lane_id = \"{lane_id}\"\nversion = \"1.0.0\"\nwit_version = \"{}\"\n\
         [grants]\nevents = true\n{extra}",
        ep_lanes_wasm::testing::GUEST_WIT
    )
}

pub fn write_manifest(wasm: &Path, text: &str) {
    std::fs::write(wasm.with_extension("toml"), text).unwrap();
}

/// Writes `name.wasm` (from `bytes`) and `name.toml` into `dir` and returns the wasm path.
pub fn candidate(dir: &Path, name: &str, bytes: &[u8], manifest_text: &str) -> PathBuf {
    let wasm = dir.join(format!("{name}.wasm"));
    std::fs::write(&wasm, bytes).unwrap();
    write_manifest(&wasm, manifest_text);
    wasm
}

/// Replaces `path` with `bytes` the way a deploy does: write beside it, then rename over it.
pub fn replace_file(path: &Path, bytes: &[u8]) {
    let staged = path.with_extension("staged");
    std::fs::write(&staged, bytes).unwrap();
    std::fs::rename(&staged, path).unwrap();
}

pub fn watch_config() -> WatchConfig {
    WatchConfig {
        debounce: Duration::from_millis(100),
        rescan: Duration::from_millis(500),
        ..WatchConfig::default()
    }
}
