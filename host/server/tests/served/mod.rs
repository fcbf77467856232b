//! What the tests of a host assembled by `start` share: a config in a temporary directory
//! (`policy.toml`, `plugins/echo.{wasm,toml}` of the real echo guest, a free port, the state
//! directory `.execution-plane`), deploys done the way an operator does them, direct requests,
//! and the operator routes' answers.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use ep_contracts::boundary::{AdmissionRequest, Map, Provenance};
use ep_lanes_wasm::testing::GUEST_WIT as WIT_PACKAGE;
use ep_lanes_wasm::testing::build_guest;
use ep_server::ServeConfig;
use ep_server::config::DEFAULT_CONFIG;
use serde_json::Value;

use crate::support::{Http, TOKEN, guarded, obj};

/// A host started by `start` on `config`, once its plugin directory has loaded.
pub async fn start_loaded(config: ServeConfig) -> ep_server::RunningServer {
    let server = guarded(ep_server::start(config)).await.unwrap();
    guarded(server.service().unwrap().loaded()).await;
    server
}

/// The `.wasm` of a test guest (built once per test binary).
pub fn guest(name: &str) -> PathBuf {
    match build_guest(name) {
        Ok(path) => path,
        Err(error) => panic!("{error}"),
    }
}

/// The bytes of a test guest.
pub fn bytes_of(name: &str) -> Vec<u8> {
    std::fs::read(guest(name)).unwrap()
}

/// The `sha256:` digest of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    ep_contracts::canonical::sha256_ref(bytes)
}

/// An `echo` plugin manifest (events granted) with `extra` keys.
pub fn manifest(extra: &str) -> String {
    format!(
        "lane_id = \"echo\"\nversion = \"1.0.0\"\nwit_version = \"{WIT_PACKAGE}\"\n\
         [grants]\nevents = true\n{extra}"
    )
}

/// A config in `dir` on a free port, with `policy.toml` and `plugins/echo.{wasm,toml}`; the
/// plugin directory is watched or not.
pub fn setup(dir: &Path, watch: bool) -> ServeConfig {
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(guest("echo"), plugins.join("echo.wasm")).unwrap();
    std::fs::write(plugins.join("echo.toml"), manifest("")).unwrap();
    std::fs::write(dir.join("policy.toml"), "[default]\nevents = true\n").unwrap();
    let text = DEFAULT_CONFIG
        .replace("listen = \"127.0.0.1:8787\"", "listen = \"127.0.0.1:0\"")
        .replace("file = \"\"", "file = \"policy.toml\"")
        .replace("format = \"human\"", "format = \"json\"")
        .replace("watch = true", &format!("watch = {watch}"));
    let path = dir.join("serve.toml");
    std::fs::write(&path, text).unwrap();
    ServeConfig::load(Some(&path)).unwrap()
}

/// Gives the host of `config` the tests' operator token ([`TOKEN`]) instead of a generated
/// one, so [`Http::operator_get`] and friends work against it.
pub fn use_test_token(config: &ServeConfig) {
    std::fs::create_dir_all(&config.data_dir).unwrap();
    std::fs::write(&config.operator.token_file, format!("{TOKEN}\n")).unwrap();
}

/// Replaces `dir/<name>.wasm` with `bytes` the way a deploy does: written beside it, then
/// renamed over it.
pub fn deploy(dir: &Path, name: &str, bytes: &[u8]) {
    let staged = dir.join(format!("{name}.staged"));
    std::fs::write(&staged, bytes).unwrap();
    std::fs::rename(&staged, dir.join(format!("{name}.wasm"))).unwrap();
}

/// A governed request for `lane` with `payload`, accepting `class`, its ref signed by `key` for
/// the default node id.
pub fn signed_for(
    key: &ep_node::authority::SigningKeyFile,
    lane: &str,
    class: &str,
    payload: Value,
) -> AdmissionRequest {
    let mut request = AdmissionRequest::new(lane);
    request.payload = obj(payload);
    request.acceptable_attestation = ep_contracts::boundary::AcceptableAttestation::of([class]);
    request.authority_ref = Some(ep_node::authority::sign_request(
        key,
        &request,
        "node-local",
        std::time::Duration::from_secs(120),
        chrono::Utc::now(),
    ));
    request
}

/// A direct (operator) request for `lane` with `payload`.
pub fn direct(lane: &str, payload: Value) -> AdmissionRequest {
    let mut request = AdmissionRequest::new(lane);
    request.payload = obj(payload);
    request.provenance = Provenance::direct_lower_lane_owner("operator", Map::new());
    request
}

/// `POST /v1/admin/reload` (operator token): the report.
pub async fn reload(http: &Http) -> Value {
    let reply = http.operator_post("/v1/admin/reload").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.json()
}

/// Lane `lane_id` as `GET /v1/lanes` lists it, if it is listed.
pub async fn listed(http: &Http, lane_id: &str) -> Option<Value> {
    let reply = http.operator_get("/v1/lanes").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.json()["lanes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|lane| lane["lane_id"] == lane_id)
        .cloned()
}

/// The digest that ran a succeeded direct `echo` execution.
pub async fn echo_digest(http: &Http) -> String {
    let reply = http
        .post(
            "/v1/execute",
            &direct("echo", serde_json::json!({"probe": true})),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.json()["evidence"][0]["component_digest"]
        .as_str()
        .unwrap()
        .to_owned()
}
