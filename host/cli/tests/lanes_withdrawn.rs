//! `execution-plane lanes list --plugins <dir> --state-dir <dir>` shows the digests a host's
//! state directory keeps out of service: the plugin whose file holds one is marked, and every
//! withdrawn or quarantined digest gets a line of its own.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

const WIT: &str = "execution-plane:lane@0.1.0";

#[test]
fn lanes_list_marks_a_quarantined_plugin_from_the_state_dir() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let built = ep_lanes_wasm::testing::build_guest("echo").unwrap_or_else(|e| panic!("{e}"));
    std::fs::copy(&built, plugins.join("echo.wasm")).unwrap();
    std::fs::write(
        plugins.join("echo.toml"),
        format!(
            "lane_id = \"echo\"\nversion = \"1.0.0\"\nwit_version = \"{WIT}\"\n[grants]\nevents = true\n"
        ),
    )
    .unwrap();
    let digest = ep_contracts::canonical::sha256_ref(&std::fs::read(&built).unwrap());
    // What `serve` writes to <data_dir>/lanes after an automatic rollback of that digest.
    let state = dir.path().join("state");
    std::fs::create_dir_all(state.join("lanes")).unwrap();
    let withdrawals = serde_json::json!({
        "format": 1,
        "withdrawn": [{
            "lane_id": "echo",
            "digest": digest,
            "state": "quarantined",
            "at": "2025-01-01T00:00:00.000000Z",
            "generation": 2,
            "source": "plugins/echo.wasm",
            "restored_digest": "sha256:00",
        }],
    });
    std::fs::write(
        state.join("lanes/withdrawals.json"),
        withdrawals.to_string(),
    )
    .unwrap();

    let output = Command::new(env!("CARGO_BIN_EXE_execution-plane"))
        .args(["lanes", "list", "--plugins"])
        .arg(&plugins)
        .arg("--state-dir")
        .arg(&state)
        .output()
        .unwrap();
    let out = String::from_utf8(output.stdout).unwrap();
    assert!(output.status.success(), "{out}");
    let lines: Vec<Vec<&str>> = out.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(
        lines[0],
        ["echo", "1.0.0", digest.as_str(), "quarantined"],
        "{out}"
    );
    assert_eq!(
        &lines[1][..3],
        ["quarantined", "echo", digest.as_str()],
        "{out}"
    );
    assert!(lines[1][3].contains("lanes reinstate echo"), "{out}");

    // A state directory that is not a withdrawals store is refused, naming the file.
    std::fs::write(state.join("lanes/withdrawals.json"), "{").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_execution-plane"))
        .args(["lanes", "list", "--plugins"])
        .arg(&plugins)
        .arg("--state-dir")
        .arg(&state)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let err = String::from_utf8(output.stderr).unwrap();
    assert!(err.contains("withdrawals.json"), "{err}");
}
