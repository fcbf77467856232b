//! `execution-plane lanes check` and `lanes list` end to end, with real lane components built by
//! `ep_lanes_wasm::testing`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const WIT: &str = "execution-plane:lane@0.1.0";

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_execution-plane"))
        .args(args)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// Copies guest `guest` into `dir` as `<name>.wasm`, with manifest `manifest` when given.
fn install(dir: &Path, guest: &str, name: &str, manifest: Option<&str>) -> PathBuf {
    let built = ep_lanes_wasm::testing::build_guest(guest).unwrap_or_else(|e| panic!("{e}"));
    let path = dir.join(format!("{name}.wasm"));
    std::fs::copy(built, &path).unwrap();
    if let Some(manifest) = manifest {
        std::fs::write(dir.join(format!("{name}.toml")), manifest).unwrap();
    }
    path
}

fn manifest(lane_id: &str, extra: &str) -> String {
    format!("lane_id = \"{lane_id}\"\nversion = \"0.3.1\"\nwit_version = \"{WIT}\"\n{extra}")
}

fn arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn lanes_check_prints_the_effective_plugin_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = install(
        dir.path(),
        "echo",
        "echo",
        Some(&manifest(
            "echo",
            "[grants]\nevents = true\n[limits]\nmax_memory_mb = 64\ntimeout_ms = 5000\n",
        )),
    );
    let policy = dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        "[lanes.echo]\nmax_memory_mb = 16\nmax_concurrency = 2\n",
    )
    .unwrap();

    let o = run(&["lanes", "check", arg(&wasm), "--policy", arg(&policy)]);
    assert_eq!(o.status.code(), Some(0), "stderr: {}", text(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["lane_id"], "echo");
    assert_eq!(v["wit_version"], WIT);
    assert!(v["digest"].as_str().unwrap().starts_with("sha256:"));
    assert_eq!(v["capabilities"]["lane_id"], "echo");
    assert_eq!(v["grants"]["events"], true);
    assert_eq!(v["grants"]["logging"], false);
    assert_eq!(v["grants"]["http"], serde_json::json!([]));
    assert_eq!(v["grants"]["process"], serde_json::json!([]));
    let imports: Vec<&str> = v["imports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_str().unwrap())
        .collect();
    assert!(
        imports
            .iter()
            .any(|i| i.starts_with("execution-plane:lane/events@")),
        "{imports:?}"
    );
    assert!(
        !imports.iter().any(|i| i.starts_with("wasi:http/")),
        "{imports:?}"
    );
    assert_eq!(v["limits"]["max_memory_mb"], 16);
    assert_eq!(v["limits"]["timeout_ms"], 5000);
    assert_eq!(v["limits"]["max_concurrency"], 2);
}

#[test]
fn lanes_check_of_a_bad_plugin_is_one_error_line() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = install(
        dir.path(),
        "echo",
        "echo",
        Some(&manifest("someone-else", "")),
    );
    let o = run(&["lanes", "check", arg(&wasm)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(o.stdout.is_empty());
    let err = text(&o.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(lines[0].starts_with("error: "), "{err}");
    // echo imports `events`, which this manifest does not ask for.
    assert!(lines[0].contains("grant `events`"), "{err}");

    let missing = install(dir.path(), "echo", "orphan", None);
    let o = run(&["lanes", "check", arg(&missing)]);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(
        err.starts_with("error: ") && err.contains("orphan.toml"),
        "{err}"
    );
}

#[test]
fn lanes_check_refuses_a_bad_policy_file() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = install(
        dir.path(),
        "echo",
        "echo",
        Some(&manifest("echo", "[grants]\nevents = true\n")),
    );
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, "[lanes.echo]\nevnets = true\n").unwrap();
    let o = run(&["lanes", "check", arg(&wasm), "--policy", arg(&policy)]);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("evnets"), "{err}");
}

#[test]
fn lanes_list_reports_loaded_and_refused_plugins() {
    let dir = tempfile::tempdir().unwrap();
    install(
        dir.path(),
        "echo",
        "a-echo",
        Some(&manifest("echo", "[grants]\nevents = true\n")),
    );
    install(dir.path(), "echo", "b-orphan", None);
    install(
        dir.path(),
        "uses-logging",
        "c-logging",
        Some(&manifest("uses-logging", "[grants]\nlogging = true\n")),
    );
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, "[default]\nlogging = false\n").unwrap();

    let o = run(&[
        "lanes",
        "list",
        "--plugins",
        arg(dir.path()),
        "--policy",
        arg(&policy),
    ]);
    assert_eq!(o.status.code(), Some(1), "stderr: {}", text(&o.stderr));
    let out = text(&o.stdout);
    let lines: Vec<Vec<&str>> = out.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert_eq!(lines[0][0], "echo");
    assert_eq!(lines[0][1], "0.3.1");
    assert!(lines[0][2].starts_with("sha256:"), "{out}");
    assert_eq!(&lines[1][..2], ["refused", "b-orphan.wasm"]);
    assert!(lines[1][2].contains("no manifest"), "{out}");
    assert_eq!(&lines[2][..2], ["refused", "c-logging.wasm"]);
    assert!(lines[2][2].contains("`logging` grant"), "{out}");
    assert!(lines.iter().all(|l| l.len() == 3), "{out}");
    assert!(text(&o.stderr).contains("2 of 3"), "{}", text(&o.stderr));

    // Only the good plugin: exit 0.
    std::fs::remove_file(dir.path().join("b-orphan.wasm")).unwrap();
    std::fs::remove_file(dir.path().join("c-logging.wasm")).unwrap();
    let o = run(&["lanes", "list", "--plugins", arg(dir.path())]);
    assert_eq!(o.status.code(), Some(0), "stderr: {}", text(&o.stderr));
    assert_eq!(text(&o.stdout).lines().count(), 1);
}

fn run_in(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_execution-plane"))
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap()
}

#[test]
fn lanes_list_with_no_flags_lists_what_serve_would_serve() {
    let dir = tempfile::tempdir().unwrap();
    // A fresh directory: the built-in lanes that need outbound HTTP, each left out by the
    // default policy (none granted), with the reason; not an error. `jsonrpc`, whose transports
    // are optional, is served with none of them (each refused when used).
    let o = run_in(&["lanes", "list"], dir.path());
    assert_eq!(o.status.code(), Some(0), "stderr: {}", text(&o.stderr));
    let out = text(&o.stdout);
    let lines: Vec<Vec<&str>> = out.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(lines[0][0], "jsonrpc", "{out}");
    let refused: Vec<&str> = lines[1..].iter().map(|line| line[1]).collect();
    assert_eq!(
        refused,
        [
            "<built-in>/http.wasm",
            "<built-in>/sse.wasm",
            "<built-in>/websocket.wasm"
        ],
        "{out}"
    );
    for line in &lines[1..] {
        assert_eq!(line[0], "refused", "{out}");
        assert!(line[2].contains("outbound http"), "{out}");
    }

    // With a policy that grants it somewhere, the HTTP lane is served; `./plugins` (the
    // default `[plugins] dir`) adds its lanes, a refused plugin fails the listing.
    std::fs::write(
        dir.path().join("policy.toml"),
        "[default]\nevents = true\n[lanes.http]\nhttp = [\"https://example.com\"]\n",
    )
    .unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    install(
        &plugins,
        "echo",
        "echo",
        Some(&manifest("echo", "[grants]\nevents = true\n")),
    );
    let o = run_in(&["lanes", "list", "--policy", "policy.toml"], dir.path());
    assert_eq!(o.status.code(), Some(0), "stderr: {}", text(&o.stderr));
    let out = text(&o.stdout);
    // The built-in lanes the policy grants nothing stay refused beside them.
    let served: Vec<&str> = out.lines().filter(|l| !l.starts_with("refused")).collect();
    let ids: Vec<&str> = served
        .iter()
        .map(|l| l.split('\t').next().unwrap())
        .collect();
    assert_eq!(ids, ["echo", "http", "jsonrpc"], "{out}");
    assert!(
        served
            .iter()
            .all(|l| l.split('\t').nth(2).unwrap().starts_with("sha256:"))
    );
    assert_eq!(
        out.lines().filter(|l| l.starts_with("refused")).count(),
        2,
        "{out}"
    );

    // The same from a config file naming the policy, as `serve --config` would read it.
    std::fs::write(
        dir.path().join("serve.toml"),
        "[policy]\nfile = \"policy.toml\"\n",
    )
    .unwrap();
    let o = run_in(&["lanes", "list", "--config", "serve.toml"], dir.path());
    assert_eq!(o.status.code(), Some(0), "stderr: {}", text(&o.stderr));
    // The same lanes (refusals name the policy file as the config resolved it).
    let via_config = text(&o.stdout);
    let served_via_config: Vec<&str> = via_config
        .lines()
        .filter(|l| !l.starts_with("refused"))
        .collect();
    assert_eq!(served_via_config, served);
    assert_eq!(via_config.lines().count(), out.lines().count());

    install(&plugins, "echo", "orphan", None);
    let o = run_in(&["lanes", "list", "--policy", "policy.toml"], dir.path());
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stdout).contains("refused\torphan.wasm"),
        "{}",
        text(&o.stdout)
    );
    assert!(
        text(&o.stderr).contains("1 of 2 lane plugins"),
        "{}",
        text(&o.stderr)
    );
}
