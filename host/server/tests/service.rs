//! The service assembled by `start` from a config file: the development key signs refs the node
//! verifies, the plugin directory serves a real wasm lane, and reloads pick up plugin changes
//! and policy changes while a bad policy or config is refused and the old one keeps serving.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod served;
mod support;

use std::time::Duration;

use ep_contracts::boundary::AdmissionRequest;
use ep_lanes_wasm::WASM_ENGINE_CLASS;
use ep_lanes_wasm::test_server::TestServer;
use ep_node::authority::SigningKeyFile;
use ep_server::config::DEFAULT_CONFIG;
use ep_server::{ServeConfig, start};
use serde_json::{Value, json};
use served::{deploy, direct, guest, listed, reload, setup};
use support::*;

/// A governed `echo` request signed with the development key.
fn signed(key: &SigningKeyFile, payload: Value) -> AdmissionRequest {
    served::signed_for(key, "echo", WASM_ENGINE_CLASS, payload)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_configured_service_serves_plugins_with_the_development_key_and_reloads() {
    let dir = tempfile::tempdir().unwrap();
    let config = served::setup(dir.path(), true);
    let server = served::start_loaded(config.clone()).await;
    let service = server.service().unwrap().clone();
    let info = service.info().clone();
    let key = SigningKeyFile::load(info.dev_key.as_ref().unwrap()).unwrap();
    let token = std::fs::read_to_string(&info.token_file).unwrap();
    assert_eq!(token.trim().len(), 64);
    assert_eq!(
        info.plugins_dir.as_deref(),
        Some(dir.path().join("plugins").as_path())
    );

    let http = Http::new(&server.url());
    let bearer = format!("Bearer {}", token.trim());
    let auth = [("authorization", bearer.as_str())];

    // A governed execution, verified against the trust store the dev key was added to.
    let reply = http
        .post("/v1/execute", &signed(&key, json!({"hello": "wasm"})))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let first_digest = reply.json()["evidence"][0]["component_digest"].clone();
    // A ref signed for other bytes is refused.
    let mut tampered = signed(&key, json!({"a": 1}));
    tampered.payload = obj(json!({"a": 2}));
    let reply = http.post("/v1/execute", &tampered).await;
    assert_eq!(reply.status, 403, "{}", reply.body);

    let lanes = http.send(http::Method::GET, "/v1/lanes", &auth, None).await;
    assert_eq!(lanes.status, 200);
    let listed = lanes.json()["lanes"].clone();
    let echo = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["lane_id"] == "echo")
        .unwrap()
        .clone();
    assert_eq!(echo["generation"], 1);
    assert_eq!(echo["digest"], first_digest);

    // A changed plugin file is picked up (by the watch, or at the latest by the reload).
    let staged = dir.path().join("plugins/echo.staged");
    std::fs::copy(guest("echo-v2"), &staged).unwrap();
    std::fs::rename(&staged, dir.path().join("plugins/echo.wasm")).unwrap();
    let reload = http
        .send(http::Method::POST, "/v1/admin/reload", &auth, None)
        .await;
    assert_eq!(reload.status, 200, "{}", reload.body);
    let report = reload.json();
    assert_eq!(report["status"], "reloaded");
    assert_eq!(report["policy_changed"], false);
    let echo = report["lanes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["lane_id"] == "echo")
        .unwrap()
        .clone();
    assert_eq!(echo["generation"], 2, "{report}");
    assert_ne!(echo["digest"], first_digest);

    // A policy that does not parse is refused; the lanes keep serving.
    std::fs::write(dir.path().join("policy.toml"), "[default]\nnot_a_key = 1\n").unwrap();
    let reload = http
        .send(http::Method::POST, "/v1/admin/reload", &auth, None)
        .await;
    let report = reload.json();
    assert_eq!(report["status"], "refused", "{report}");
    assert!(
        report["errors"][0].as_str().unwrap().contains("not_a_key"),
        "{report}"
    );
    let reply = http
        .post("/v1/execute", &signed(&key, json!({"still": "serving"})))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);

    // A config that does not parse is refused too.
    let config_path = dir.path().join("serve.toml");
    let good = std::fs::read_to_string(&config_path).unwrap();
    std::fs::write(&config_path, good.replace("[node]", "[node]\nidd = 1")).unwrap();
    let report = service.reload().await;
    assert_eq!(report.status, "refused");
    assert!(report.errors[0].contains("idd"), "{report:?}");
    std::fs::write(&config_path, &good).unwrap();

    // A new, valid policy reloads every lane under it.
    std::fs::write(
        dir.path().join("policy.toml"),
        "[default]\nevents = true\n[lanes.echo]\nmax_concurrency = 2\n",
    )
    .unwrap();
    let report = service.reload().await;
    assert_eq!(report.status, "reloaded", "{report:?}");
    assert!(report.policy_changed);
    assert!(
        report.lanes.iter().any(|l| l.lane_id == "echo"),
        "{report:?}"
    );
    let reply = http
        .post("/v1/execute", &signed(&key, json!({"after": "policy"})))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);

    let report = guarded(server.shutdown(Duration::from_secs(30))).await;
    assert_eq!(report.flush_error, None);
    let records = read_chain(&info.evidence_log);
    assert!(records.iter().any(|r| record_type(r) == "lane.activated"));
    assert_eq!(
        records
            .iter()
            .filter(|r| record_type(r) == "execution.completed")
            .count(),
        3
    );
}

#[tokio::test]
async fn a_bad_config_names_the_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("serve.toml");
    std::fs::write(
        &path,
        DEFAULT_CONFIG.replace("max_connections = 1024", "max_connections = 0"),
    )
    .unwrap();
    let error = ServeConfig::load(Some(&path)).unwrap_err().to_string();
    assert!(error.contains("serve.toml"), "{error}");
    assert!(error.contains("server.max_connections"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unwatched_plugin_directory_is_reloaded_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let config = served::setup(dir.path(), false);
    assert!(!config.plugins.watch);
    let server = served::start_loaded(config).await;
    let service = server.service().unwrap().clone();
    let lanes = ep_server::LaneAdmin::lanes(service.as_ref());
    let ids: Vec<_> = lanes.iter().map(|l| l.lane_id.as_str()).collect();
    // The plugin and the built-in lane the default policy serves.
    assert_eq!(ids, ["echo", "jsonrpc"], "{lanes:?}");
    assert_eq!(lanes[0].generation, 1);

    let staged = dir.path().join("plugins/echo.staged");
    std::fs::copy(guest("echo-v2"), &staged).unwrap();
    std::fs::rename(&staged, dir.path().join("plugins/echo.wasm")).unwrap();
    // Nothing watches the directory: the change waits for a reload, which swaps it into the
    // same lane as its next generation.
    let report = service.reload().await;
    assert_eq!(report.status, "reloaded", "{report:?}");
    assert!(!report.policy_changed);
    let echo = report.lanes.iter().find(|l| l.lane_id == "echo").unwrap();
    assert_eq!(echo.generation, 2, "{report:?}");
    assert_ne!(echo.digest, lanes[0].digest);

    let report = guarded(server.shutdown(Duration::from_secs(30))).await;
    assert_eq!(report.flush_error, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_signs_its_evidence_head_with_the_node_key_and_refuses_an_unsigned_one() {
    use ep_node::sinks::file_chain::{
        HeadKey, HeadStatus, VerifyOptions, head_path, verify_chain_with,
    };
    let dir = tempfile::tempdir().unwrap();
    let config = setup(dir.path(), true);
    let server = served::start_loaded(config.clone()).await;
    let info = server.service().unwrap().info().clone();
    let report = guarded(server.shutdown(Duration::from_secs(30))).await;
    assert_eq!(report.flush_error, None);

    assert_eq!(info.node_key, config.data_dir.join("node-key.json"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&info.node_key)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // The node key is the node's own, not the development authority key.
    let node_key = SigningKeyFile::load(&info.node_key).unwrap();
    let dev_key = SigningKeyFile::load(info.dev_key.as_ref().unwrap()).unwrap();
    assert_ne!(node_key.public_key_base64(), dev_key.public_key_base64());
    assert_eq!(node_key.public_key_base64(), info.node_public_key);
    for key in [
        HeadKey::from_key_file(&node_key),
        HeadKey::from_public_key_base64(&info.node_public_key).unwrap(),
    ] {
        let options = VerifyOptions {
            key: Some(key),
            ..VerifyOptions::default()
        };
        let report = verify_chain_with(&info.evidence_log, &options).unwrap();
        assert!(report.records > 0);
        assert!(
            matches!(&report.head, HeadStatus::Signed { key_id, verified: true, .. } if key_id == "node-local"),
            "{:?}",
            report.head
        );
    }

    // A head stripped of its signature (what someone without the key writes) is not adopted
    // by the next start.
    let head = head_path(&info.evidence_log);
    let mut value: Value = serde_json::from_str(&std::fs::read_to_string(&head).unwrap()).unwrap();
    let fields = value.as_object_mut().unwrap();
    fields.retain(|k, _| k == "count" || k == "last_hash");
    std::fs::write(&head, value.to_string()).unwrap();
    let error = guarded(start(config)).await.unwrap_err().to_string();
    assert!(
        error.contains("not signed") && error.contains("refusing to continue"),
        "{error}"
    );
}

/// The policy of the revocation test: `[lanes.http]` may reach `grants` (none: no grant).
fn http_policy(grants: &[&TestServer]) -> String {
    let patterns: Vec<String> = grants
        .iter()
        .map(|upstream| format!("\"http://127.0.0.1:{}\"", upstream.addr().port()))
        .collect();
    let mut policy = "[default]\nevents = true\n".to_owned();
    if !patterns.is_empty() {
        policy.push_str(&format!("[lanes.http]\nhttp = [{}]\n", patterns.join(", ")));
    }
    policy
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_reload_narrows_and_revokes_a_running_plugin_lanes_grant() {
    let (a, b) = (
        TestServer::start().await.unwrap(),
        TestServer::start().await.unwrap(),
    );
    let dir = tempfile::tempdir().unwrap();
    let config = served::setup(dir.path(), true);
    // The HTTP lane, served from the plugin directory.
    let http_lane = ep_builtin_lanes::all()
        .iter()
        .find(|lane| lane.name == "http")
        .unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::write(plugins.join("http.toml"), http_lane.manifest).unwrap();
    deploy(&plugins, "http", http_lane.wasm);
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, http_policy(&[&a, &b])).unwrap();
    served::use_test_token(&config);
    let server = served::start_loaded(config.clone()).await;
    let http = Http::new(&server.url());
    let fetch = |upstream: &TestServer| direct("http", json!({"url": upstream.url("/hello")}));

    for upstream in [&a, &b] {
        let reply = http.post("/v1/execute", &fetch(upstream)).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    assert_eq!((a.seen().len(), b.seen().len()), (1, 1));
    let lane = listed(&http, "http").await.unwrap();
    assert!(
        lane["source"].as_str().unwrap().ends_with("http.wasm"),
        "{lane}"
    );

    // Narrowed to `a`: from the reload on, `b` is out of reach.
    std::fs::write(&policy, http_policy(&[&a])).unwrap();
    let report = reload(&http).await;
    assert_eq!(report["status"], "reloaded", "{report}");
    assert_eq!(report["policy_changed"], true);
    let reply = http.post("/v1/execute", &fetch(&b)).await;
    assert_ne!(reply.status, 200, "{}", reply.body);
    let reply = http.post("/v1/execute", &fetch(&a)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!((a.seen().len(), b.seen().len()), (2, 1));

    // Revoked: the lane stops serving — gone from the lanes, from `describe`, and no later
    // request reaches the upstream.
    std::fs::write(&policy, http_policy(&[])).unwrap();
    let report = reload(&http).await;
    assert_eq!(report["status"], "reloaded", "{report}");
    let refused: Vec<&str> = report["refused"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["lane_id"] == "http")
        .map(|r| r["source"].as_str().unwrap())
        .collect();
    assert!(
        refused
            .iter()
            .any(|source| source.ends_with("plugins/http.wasm"))
            && refused.contains(&"<built-in>/http.wasm"),
        "{report}"
    );
    assert!(listed(&http, "http").await.is_none());
    let described = http.get("/v1/node").await.json();
    let names = |key: &str| -> Vec<Value> {
        described[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|entry| entry["lane_id"].clone())
            .collect()
    };
    assert!(
        !names("registered_lanes").contains(&json!("http")),
        "{described}"
    );
    assert!(
        !names("verified_targets").contains(&json!("http")),
        "{described}"
    );
    for _ in 0..5 {
        let reply = http.post("/v1/execute", &fetch(&a)).await;
        assert_eq!(reply.status, 404, "{}", reply.body);
    }
    assert_eq!((a.seen().len(), b.seen().len()), (2, 1));
    // The echo plugin, still granted, kept serving throughout.
    assert_eq!(listed(&http, "echo").await.unwrap()["generation"], 1);

    let report = guarded(server.shutdown(Duration::from_secs(30))).await;
    assert_eq!(report.flush_error, None);
    let records = read_chain(&config.evidence.log_path());
    let retired: Vec<&Value> = records
        .iter()
        .filter(|r| record_type(r) == "lane.retired")
        .map(record_payload)
        .collect();
    assert_eq!(retired.len(), 1, "{retired:?}");
    assert_eq!(retired[0]["lane_id"], "http");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_start_up_summary_and_reload_report_name_every_refused_lane() {
    let dir = tempfile::tempdir().unwrap();
    let config = served::setup(dir.path(), true);
    let plugins = dir.path().join("plugins");
    // Asks for logging, which the policy denies.
    std::fs::write(
        plugins.join("chatty.toml"),
        served::manifest("logging = true\n").replace("\"echo\"", "\"uses-logging\""),
    )
    .unwrap();
    std::fs::copy(guest("uses-logging"), plugins.join("chatty.wasm")).unwrap();
    std::fs::write(
        dir.path().join("policy.toml"),
        "[default]\nevents = true\nlogging = false\n",
    )
    .unwrap();
    served::use_test_token(&config);
    let server = served::start_loaded(config).await;
    let loaded = server.service().unwrap().loaded().await;
    let lines: Vec<String> = loaded.refused.iter().map(ToString::to_string).collect();
    let chatty = loaded
        .refused
        .iter()
        .find(|r| r.lane_id.as_deref() == Some("uses-logging"))
        .unwrap_or_else(|| panic!("the refused plugin is listed: {lines:?}"));
    assert!(chatty.source.ends_with("chatty.wasm"), "{chatty:?}");
    assert!(chatty.reason.contains("logging"), "{chatty:?}");
    // The built-in HTTP lane, which the policy grants no outbound HTTP, is listed too.
    assert!(
        loaded
            .refused
            .iter()
            .any(|r| r.source == "<built-in>/http.wasm"),
        "{lines:?}"
    );
    let report = reload(&Http::new(&server.url())).await;
    let refused = report["refused"].as_array().unwrap();
    assert_eq!(refused.len(), loaded.refused.len(), "{report}");
    assert!(
        refused.iter().any(|r| r["lane_id"] == "uses-logging"),
        "{report}"
    );
    let report = guarded(server.shutdown(Duration::from_secs(30))).await;
    assert_eq!(report.flush_error, None);
}

/// A plugin file whose manifest names a built-in lane holds that lane while the plugin
/// directory loads: a plugin that loads replaces the built-in lane, one that is refused (here a
/// corrupt component) hands it back. Once loaded, `/healthz` names nothing loading.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_claiming_a_built_in_lane_replaces_it_or_hands_it_back_once_loaded() {
    let http_lane = ep_builtin_lanes::all()
        .iter()
        .find(|lane| lane.name == "http")
        .unwrap();
    for (component, replaced) in [(http_lane.wasm, true), (b"\0asm corrupt".as_slice(), false)] {
        let dir = tempfile::tempdir().unwrap();
        let config = served::setup(dir.path(), false);
        let plugins = dir.path().join("plugins");
        std::fs::write(plugins.join("http.toml"), http_lane.manifest).unwrap();
        deploy(&plugins, "http", component);
        std::fs::write(
            dir.path().join("policy.toml"),
            "[default]\nevents = true\nlogging = true\n\
             [lanes.http]\nhttp = [\"http://127.0.0.1:9\"]\n",
        )
        .unwrap();
        served::use_test_token(&config);
        let server = served::start_loaded(config).await;
        let loaded = server.service().unwrap().loaded().await;
        assert!(loaded.served.iter().any(|l| l == "http"), "{loaded:?}");
        let refused_plugin = loaded
            .refused
            .iter()
            .any(|r| r.lane_id.as_deref() == Some("http") && r.source.ends_with("http.wasm"));
        assert_eq!(refused_plugin, !replaced, "{loaded:?}");
        let http = Http::new(&server.url());
        let lane = listed(&http, "http").await.unwrap();
        let source = lane["source"].as_str().unwrap();
        assert_eq!(source == "<built-in>/http.wasm", !replaced, "{lane}");
        if replaced {
            assert!(source.ends_with("plugins/http.wasm"), "{lane}");
        }
        let health = http.get("/healthz").await;
        assert_eq!(health.json(), json!({"status": "ok"}));
    }
}

/// The kernel's budget through `serve`: a request whose `deadline_at` has passed is answered
/// `504` `timeout` (cause `deadline_expired`) and the built-in HTTP lane never runs, so the
/// upstream sees no connection; the same request with a budget left goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_deadline_never_reaches_the_lane_or_its_upstream() {
    let upstream = TestServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = served::setup(dir.path(), false);
    std::fs::write(dir.path().join("policy.toml"), http_policy(&[&upstream])).unwrap();
    served::use_test_token(&config);
    let server = served::start_loaded(config).await;
    let http = Http::new(&server.url());
    let mut request = direct("http", json!({"url": upstream.url("/hello")}));
    request.metadata = obj(json!({"deadline_at": "2020-01-01T00:00:00Z"}));
    let reply = http.post("/v1/execute", &request).await;
    assert_eq!(reply.status, 504, "{}", reply.body);
    let error = &reply.json()["error"];
    assert_eq!(error["failure_class"], "timeout", "{error}");
    assert_eq!(error["details"]["cause"], "deadline_expired", "{error}");
    assert_eq!(upstream.connections(), 0, "the lane reached its upstream");

    request.metadata = obj(json!({"timeout_ms": 10_000}));
    let reply = http.post("/v1/execute", &request).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(upstream.connections(), 1);
}
