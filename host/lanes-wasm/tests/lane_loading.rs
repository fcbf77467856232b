//! Loading lane generations: grants decide which imports link, malformed artifacts are typed
//! errors, and the artifact cache compiles a digest once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use ep_contracts::boundary::ResultStatus;
use ep_lanes_wasm::{Grants, LaneLimits, LoadError, WasmLane};
use ep_node::LaneAdapter;
use serde_json::json;
use support::*;

#[tokio::test]
async fn a_component_importing_ungranted_logging_is_refused_naming_the_import() {
    let rt = runtime();
    let grants = Grants {
        logging: false,
        ..Grants::default()
    };
    let error =
        WasmLane::load_with_grants(&rt, guest("uses-logging"), LaneLimits::default(), grants)
            .await
            .expect_err("logging is not granted");
    match &error {
        LoadError::ImportNotGranted { import, grant, .. } => {
            assert_eq!(import, "execution-plane:lane/logging@0.1.0");
            assert_eq!(*grant, "logging");
        }
        other => panic!("expected ImportNotGranted, got {other:?}"),
    }
    let message = error.to_string();
    assert!(
        message.contains("imports `execution-plane:lane/logging@0.1.0`, which is not granted"),
        "{message}"
    );
    // Nothing was registered for the refused generation.
    assert!(!rt.is_loaded(&ep_contracts::canonical::sha256_ref(
        &std::fs::read(guest("uses-logging")).unwrap()
    )));
}

#[tokio::test]
async fn the_same_component_runs_when_logging_is_granted() {
    let rt = runtime();
    let lane = load(&rt, "uses-logging", LaneLimits::default()).await;
    let result = guarded(lane.execute(request(None, json!({})), ctx())).await;
    assert_eq!(result.status, ResultStatus::Succeeded, "{result:?}");
    assert_eq!(result.output["logged"], true);
}

#[tokio::test]
async fn a_lane_that_imports_nothing_ungranted_loads_under_narrow_grants() {
    let rt = runtime();
    // echo imports events but not logging.
    let lane = WasmLane::load_with_grants(
        &rt,
        guest("echo"),
        LaneLimits::default(),
        Grants {
            logging: false,
            ..Grants::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(lane.lane_id(), "echo");
    let error =
        WasmLane::load_with_grants(&rt, guest("echo"), LaneLimits::default(), Grants::none())
            .await
            .expect_err("events is not granted");
    assert!(
        matches!(&error, LoadError::ImportNotGranted { import, grant: "events", .. }
            if import == "execution-plane:lane/events@0.1.0"),
        "{error:?}"
    );
}

#[tokio::test]
async fn bytes_that_are_not_wasm_are_a_typed_load_error() {
    let rt = runtime();
    let error = WasmLane::load(&rt, b"definitely not wasm".to_vec(), LaneLimits::default())
        .await
        .unwrap_err();
    assert!(
        matches!(error, LoadError::NotAComponent { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("wasm magic number"), "{error}");
}

#[tokio::test]
async fn a_core_module_is_refused_as_not_a_component() {
    let rt = runtime();
    let core_module = b"\0asm\x01\x00\x00\x00".to_vec();
    let error = WasmLane::load(&rt, core_module, LaneLimits::default())
        .await
        .unwrap_err();
    assert!(matches!(error, LoadError::CoreModule { .. }), "{error:?}");
}

#[tokio::test]
async fn a_truncated_component_is_a_compile_error() {
    let rt = runtime();
    let mut bytes = std::fs::read(guest("echo")).unwrap();
    bytes.truncate(bytes.len() / 2);
    let error = WasmLane::load(&rt, bytes, LaneLimits::default())
        .await
        .unwrap_err();
    match &error {
        LoadError::Compile { digest, message } => {
            assert!(digest.starts_with("sha256:"));
            assert!(!message.is_empty());
        }
        other => panic!("expected Compile, got {other:?}"),
    }
}

#[tokio::test]
async fn a_missing_file_is_a_read_error_naming_the_path() {
    let rt = runtime();
    let path = std::path::Path::new("/nonexistent/lane.wasm");
    let error = WasmLane::load(&rt, path, LaneLimits::default())
        .await
        .unwrap_err();
    assert!(matches!(error, LoadError::Read { .. }), "{error:?}");
    assert!(error.to_string().contains("/nonexistent/lane.wasm"));
}

#[tokio::test]
async fn the_artifact_cache_compiles_a_digest_once() {
    let rt = runtime();
    assert_eq!(rt.compilations(), 0);
    let from_path = load(&rt, "echo", LaneLimits::default()).await;
    assert_eq!(rt.compilations(), 1);
    let bytes = std::fs::read(guest("echo")).unwrap();
    let from_bytes = WasmLane::load(&rt, bytes, LaneLimits::default())
        .await
        .unwrap();
    assert_eq!(
        rt.compilations(),
        1,
        "the same digest is not compiled twice"
    );
    assert_eq!(from_path.digest(), from_bytes.digest());
    // Concurrent loads of one new digest share one compilation.
    let (a, b) = tokio::join!(
        WasmLane::load(&rt, guest("trap"), LaneLimits::default()),
        WasmLane::load(&rt, guest("trap"), LaneLimits::default()),
    );
    a.unwrap();
    b.unwrap();
    assert_eq!(rt.compilations(), 2);
    // Both generations serve.
    let result = guarded(from_bytes.execute(request(None, json!({"x": 1})), ctx())).await;
    assert_eq!(result.status, ResultStatus::Succeeded);
}

/// A runtime like [`runtime`] that keeps compiled components in `dir`.
fn runtime_keeping_compiled(dir: &std::path::Path) -> ep_lanes_wasm::WasmRuntime {
    ep_lanes_wasm::WasmRuntime::new(ep_lanes_wasm::RuntimeConfig {
        compiled_dir: Some(dir.to_path_buf()),
        max_instances: 8,
        ..ep_lanes_wasm::RuntimeConfig::default()
    })
    .unwrap()
}

#[tokio::test]
async fn a_restarted_runtime_loads_compiled_lanes_from_disk_instead_of_compiling() {
    let dir = tempfile::tempdir().unwrap();
    let compiled = dir.path().join("compiled");
    let first = runtime_keeping_compiled(&compiled);
    let lane = load(&first, "echo", LaneLimits::default()).await;
    assert_eq!((first.compilations(), first.compiled_loads()), (1, 0));
    let artifacts: Vec<_> = std::fs::read_dir(&compiled)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(artifacts.len(), 1, "{artifacts:?}");
    let name = artifacts[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let hex = lane.digest().strip_prefix("sha256:").unwrap();
    assert!(name.starts_with(hex) && name.ends_with(".cwasm"), "{name}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&compiled).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the directory is private: {mode:o}");
    }

    // A new runtime (a restart) over the same directory compiles nothing, and the lane serves.
    let second = runtime_keeping_compiled(&compiled);
    let again = load(&second, "echo", LaneLimits::default()).await;
    assert_eq!((second.compilations(), second.compiled_loads()), (0, 1));
    let result = guarded(again.execute(request(None, json!({"x": 1})), ctx())).await;
    assert_eq!(result.status, ResultStatus::Succeeded);

    // A damaged artifact is refused by wasmtime, compiled again and replaced.
    std::fs::write(&artifacts[0], b"not a compiled component").unwrap();
    let third = runtime_keeping_compiled(&compiled);
    let rebuilt = load(&third, "echo", LaneLimits::default()).await;
    assert_eq!((third.compilations(), third.compiled_loads()), (1, 0));
    let result = guarded(rebuilt.execute(request(None, json!({"x": 2})), ctx())).await;
    assert_eq!(result.status, ResultStatus::Succeeded);
    let fourth = runtime_keeping_compiled(&compiled);
    load(&fourth, "echo", LaneLimits::default()).await;
    assert_eq!((fourth.compilations(), fourth.compiled_loads()), (0, 1));
}

#[tokio::test]
async fn a_loaded_digest_is_forgotten_when_its_last_generation_drops() {
    let rt = runtime();
    let first = load(&rt, "echo", LaneLimits::default()).await;
    let second = load(&rt, "echo", LaneLimits::default()).await;
    let digest = first.digest().to_owned();
    assert!(rt.is_loaded(&digest));
    drop(first);
    assert!(rt.is_loaded(&digest));
    drop(second);
    assert!(!rt.is_loaded(&digest));
}

#[test]
fn the_engine_version_constant_matches_the_workspace_wasmtime_requirement() {
    let root = ep_lanes_wasm::testing::repo_root();
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let requirement = format!("version = \"={}\"", ep_lanes_wasm::WASMTIME_VERSION);
    for krate in ["wasmtime", "wasmtime-wasi"] {
        let line = manifest
            .lines()
            .find(|line| line.starts_with(&format!("{krate} = ")))
            .unwrap_or_else(|| panic!("{krate} is not a workspace dependency"));
        assert!(line.contains(&requirement), "{line} must pin {requirement}");
    }
    assert_eq!(
        ep_lanes_wasm::WASM_ENGINE_CLASS,
        format!("wasm-engine:wasmtime@{}", ep_lanes_wasm::WASMTIME_VERSION)
    );
}

#[tokio::test]
async fn a_component_that_cannot_instantiate_within_its_limits_fails_its_probe() {
    let rt = runtime();
    let limits = LaneLimits {
        // Less than the guest's initial linear memory.
        max_memory_bytes: 64 << 10,
        ..LaneLimits::default()
    };
    let error = WasmLane::load(&rt, guest("echo"), limits)
        .await
        .unwrap_err();
    match &error {
        LoadError::Probe { cause, message, .. } => {
            assert_eq!(cause, "instantiation");
            assert!(!message.is_empty());
        }
        other => panic!("expected Probe, got {other:?}"),
    }
    assert!(
        error
            .to_string()
            .contains("failed its capabilities probe (instantiation)")
    );
}

#[tokio::test]
async fn wasi_sockets_needs_its_grant_and_then_reaches_nothing() {
    let rt = runtime();
    let listener = std::net::TcpListener::bind("127.0.0.1:9").ok();
    let error = WasmLane::load_with_grants(
        &rt,
        guest("uses-sockets"),
        LaneLimits::default(),
        Grants::default(),
    )
    .await
    .expect_err("sockets is not granted");
    assert!(
        matches!(&error, LoadError::ImportNotGranted { import, grant: "sockets", .. }
            if import.starts_with("wasi:sockets/")),
        "{error:?}"
    );
    let granted = Grants {
        sockets: true,
        ..Grants::default()
    };
    let lane =
        WasmLane::load_with_grants(&rt, guest("uses-sockets"), LaneLimits::default(), granted)
            .await
            .unwrap();
    let result = guarded(lane.execute(request(None, json!({})), ctx())).await;
    assert_eq!(result.status, ResultStatus::Succeeded, "{result:?}");
    assert_eq!(result.output["reached"], false, "every socket is refused");
    if let Some(listener) = listener {
        listener.set_nonblocking(true).unwrap();
        assert!(
            listener.accept().is_err(),
            "the lane reached a loopback port"
        );
    }
}

#[tokio::test]
async fn wasi_filesystem_needs_its_grant_and_then_opens_nothing() {
    let rt = runtime();
    let error = WasmLane::load_with_grants(
        &rt,
        guest("uses-filesystem"),
        LaneLimits::default(),
        Grants::default(),
    )
    .await
    .expect_err("filesystem is not granted");
    assert!(
        matches!(&error, LoadError::ImportNotGranted { import, grant: "filesystem", .. }
            if import.starts_with("wasi:filesystem/")),
        "{error:?}"
    );
    let granted = Grants {
        filesystem: true,
        ..Grants::default()
    };
    let lane = WasmLane::load_with_grants(
        &rt,
        guest("uses-filesystem"),
        LaneLimits::default(),
        granted,
    )
    .await
    .unwrap();
    let result = guarded(lane.execute(request(None, json!({})), ctx())).await;
    assert_eq!(result.status, ResultStatus::Succeeded, "{result:?}");
    assert_eq!(result.output["reached"], false, "no directory is preopened");
}
