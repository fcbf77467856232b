//! Lane plugins with real components: manifests beside the `.wasm`, the operator's policy
//! narrowing grants and limits, and directories that hold good and bad plugins together.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::{Path, PathBuf};

use ep_lanes_wasm::{
    Grants, HostPolicy, LoadError, ManifestError, PluginError, PolicyError, WIT_PACKAGE,
    load_plugin, load_plugin_dir, testing::GUEST_WIT,
};
use ep_node::LaneAdapter;
use support::*;

/// Copies guest `guest` into `dir` as `<name>.wasm` and returns its path.
fn install(dir: &Path, guest_name: &str, name: &str) -> PathBuf {
    let path = dir.join(format!("{name}.wasm"));
    std::fs::copy(guest(guest_name), &path).unwrap();
    path
}

/// Writes `<name>.toml` in `dir`.
fn write_manifest(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(format!("{name}.toml")), text).unwrap();
}

/// A valid manifest for `lane_id` with `extra` appended.
fn manifest(lane_id: &str, extra: &str) -> String {
    format!("lane_id = \"{lane_id}\"\nversion = \"1.2.3\"\nwit_version = \"{GUEST_WIT}\"\n{extra}")
}

#[tokio::test]
async fn a_plugin_with_a_valid_manifest_loads_with_its_grants_and_limits() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let wasm = install(dir.path(), "echo", "echo");
    write_manifest(
        dir.path(),
        "echo",
        &manifest(
            "echo",
            "[grants]\nevents = true\n[limits]\nmax_memory_mb = 16\ntimeout_ms = 5000\nmax_concurrency = 4\n",
        ),
    );
    let lane = guarded(load_plugin(&rt, &wasm, &HostPolicy::default()))
        .await
        .unwrap();
    assert_eq!(lane.lane_id(), "echo");
    assert_eq!(
        lane.grants(),
        &Grants {
            logging: false,
            ..Grants::default()
        }
    );
    assert_eq!(lane.limits().max_memory_bytes, 16 << 20);
    assert_eq!(lane.limits().max_timeout.as_millis(), 5000);
    assert_eq!(lane.limits().max_concurrent, 4);
    let m = lane.manifest().expect("a plugin carries its manifest");
    assert_eq!(m.version.to_string(), "1.2.3");
    assert!(rt.is_loaded(lane.digest()));
}

#[tokio::test]
async fn a_missing_manifest_names_the_expected_path() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let wasm = install(dir.path(), "echo", "echo");
    let error = load_plugin(&rt, &wasm, &HostPolicy::default())
        .await
        .unwrap_err();
    let PluginError::ManifestMissing { expected, .. } = &error else {
        panic!("expected ManifestMissing, got {error:?}");
    };
    assert_eq!(expected, &dir.path().join("echo.toml"));
    assert!(
        error
            .to_string()
            .contains(&dir.path().join("echo.toml").display().to_string()),
        "{error}"
    );
}

#[tokio::test]
async fn malformed_toml_is_a_syntax_error_naming_the_file() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let wasm = install(dir.path(), "echo", "echo");
    write_manifest(dir.path(), "echo", "lane_id = \"echo\nversion = ");
    let error = load_plugin(&rt, &wasm, &HostPolicy::default())
        .await
        .unwrap_err();
    assert!(
        matches!(error, PluginError::Manifest(ManifestError::Syntax { .. })),
        "{error:?}"
    );
    assert!(error.to_string().contains("echo.toml"), "{error}");
    assert!(!error.to_string().contains('\n'), "{error}");
}

#[tokio::test]
async fn an_unknown_key_is_refused_naming_it() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let wasm = install(dir.path(), "echo", "echo");
    write_manifest(
        dir.path(),
        "echo",
        &manifest("echo", "[limits]\nmax_memroy_mb = 16\n"),
    );
    let error = load_plugin(&rt, &wasm, &HostPolicy::default())
        .await
        .unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("unknown field") && message.contains("max_memroy_mb"),
        "{message}"
    );
}

#[tokio::test]
async fn a_wrong_wit_version_names_both_versions() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let wasm = install(dir.path(), "echo", "echo");
    write_manifest(
        dir.path(),
        "echo",
        "lane_id = \"echo\"\nversion = \"0.1.0\"\nwit_version = \"execution-plane:lane@0.3.0\"\n",
    );
    let error = load_plugin(&rt, &wasm, &HostPolicy::default())
        .await
        .unwrap_err();
    let PluginError::Manifest(ManifestError::WitVersion {
        found, expected, ..
    }) = &error
    else {
        panic!("expected WitVersion, got {error:?}");
    };
    assert_eq!(found, "execution-plane:lane@0.3.0");
    assert_eq!(*expected, WIT_PACKAGE);
    let message = error.to_string();
    assert!(
        message.contains("execution-plane:lane@0.3.0") && message.contains(WIT_PACKAGE),
        "{message}"
    );
}

#[tokio::test]
async fn a_lane_id_mismatch_names_both_ids_and_unloads_the_component() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let wasm = install(dir.path(), "echo", "echo");
    write_manifest(
        dir.path(),
        "echo",
        &manifest("not-echo", "[grants]\nevents = true\n"),
    );
    let error = load_plugin(&rt, &wasm, &HostPolicy::default())
        .await
        .unwrap_err();
    let PluginError::LaneIdMismatch {
        manifest_lane_id,
        component_lane_id,
        ..
    } = &error
    else {
        panic!("expected LaneIdMismatch, got {error:?}");
    };
    assert_eq!(manifest_lane_id, "not-echo");
    assert_eq!(component_lane_id, "echo");
    let message = error.to_string();
    assert!(
        message.contains("\"not-echo\"") && message.contains("\"echo\""),
        "{message}"
    );
    let digest = ep_contracts::canonical::sha256_ref(&std::fs::read(&wasm).unwrap());
    assert!(
        !rt.is_loaded(&digest),
        "a refused generation is not attested"
    );
}

#[tokio::test]
async fn a_grant_the_policy_denies_refuses_the_plugin_naming_the_grant() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let wasm = install(dir.path(), "uses-logging", "uses-logging");
    write_manifest(
        dir.path(),
        "uses-logging",
        &manifest("uses-logging", "[grants]\nevents = true\nlogging = true\n"),
    );
    let policy =
        HostPolicy::parse("[lanes.uses-logging]\nlogging = false\n", "policy.toml").unwrap();
    let error = load_plugin(&rt, &wasm, &policy).await.unwrap_err();
    let PluginError::Policy {
        source: PolicyError::GrantDenied { grant, lane_id, .. },
        ..
    } = &error
    else {
        panic!("expected GrantDenied, got {error:?}");
    };
    assert_eq!(*grant, "logging");
    assert_eq!(lane_id, "uses-logging");
    assert!(error.to_string().contains("`logging` grant"), "{error}");
}

#[tokio::test]
async fn a_component_importing_more_than_its_manifest_asks_for_is_refused() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let wasm = install(dir.path(), "uses-logging", "uses-logging");
    write_manifest(
        dir.path(),
        "uses-logging",
        &manifest("uses-logging", "[grants]\nevents = true\n"),
    );
    let error = load_plugin(&rt, &wasm, &HostPolicy::default())
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            PluginError::Load {
                source: LoadError::ImportNotGranted {
                    grant: "logging",
                    ..
                },
                ..
            }
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn the_policy_lowers_limits_but_never_raises_them() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let wasm = install(dir.path(), "echo", "echo");
    write_manifest(
        dir.path(),
        "echo",
        &manifest(
            "echo",
            "[grants]\nevents = true\n[limits]\nmax_memory_mb = 64\ntimeout_ms = 1000\n",
        ),
    );
    let policy = HostPolicy::parse(
        "[lanes.echo]\nmax_memory_mb = 16\ntimeout_ms = 60000\n",
        "policy.toml",
    )
    .unwrap();
    let lane = load_plugin(&rt, &wasm, &policy).await.unwrap();
    assert_eq!(lane.limits().max_memory_bytes, 16 << 20);
    assert_eq!(lane.limits().max_timeout.as_millis(), 1000);
}

#[tokio::test]
async fn a_directory_loads_the_good_plugins_and_reports_every_bad_one() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    // Good.
    install(dir.path(), "echo", "a-echo");
    write_manifest(
        dir.path(),
        "a-echo",
        &manifest("echo", "[grants]\nevents = true\n"),
    );
    // No manifest.
    install(dir.path(), "echo", "b-orphan");
    // Policy denies logging.
    install(dir.path(), "uses-logging", "c-logging");
    write_manifest(
        dir.path(),
        "c-logging",
        &manifest("uses-logging", "[grants]\nlogging = true\n"),
    );
    // Not a plugin at all.
    std::fs::write(dir.path().join("notes.txt"), "ignored").unwrap();
    let policy = HostPolicy::parse("[default]\nlogging = false\n", "policy.toml").unwrap();

    let report = guarded(load_plugin_dir(&rt, dir.path(), &policy)).await;
    assert_eq!(report.loaded.len(), 1);
    assert_eq!(report.loaded[0].lane_id(), "echo");
    assert_eq!(report.refused.len(), 2);
    assert_eq!(report.refused[0].0, dir.path().join("b-orphan.wasm"));
    assert!(
        matches!(report.refused[0].1, PluginError::ManifestMissing { .. }),
        "{:?}",
        report.refused[0].1
    );
    assert_eq!(report.refused[1].0, dir.path().join("c-logging.wasm"));
    assert!(
        report.refused[1].1.to_string().contains("`logging` grant"),
        "{}",
        report.refused[1].1
    );
}

#[tokio::test]
async fn an_unreadable_directory_is_one_refusal() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let report = load_plugin_dir(&rt, &missing, &HostPolicy::default()).await;
    assert!(report.loaded.is_empty());
    assert_eq!(report.refused.len(), 1);
    assert_eq!(report.refused[0].0, missing);
    assert!(matches!(report.refused[0].1, PluginError::ReadDir { .. }));
}
