//! The example lanes written in other languages, built in the test run with their own
//! toolchains and driven through the `execution-plane` binary: `examples/python-lane`
//! (componentize-py) and `examples/js-lane` (componentize-js), both word counters of the
//! `lane-events` world. Each is built into a temporary plugin directory beside its manifest,
//! then `lanes check`, a unary `exec --direct`, an `exec --stream` and a refused payload run
//! against it.
//!
//! The toolchains come from `PATH` when they are the pinned versions; otherwise the pinned
//! versions are installed into `target/foreign-tools` (`pip install --target`, `npm ci`), which
//! is where `.ci/run` puts them. Without python3 (with pip) or node and npm the tests fail and
//! say what to install: they never pass by skipping.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// The componentize-py the Python lane is built with (`examples/python-lane/README.md`).
const COMPONENTIZE_PY: &str = "0.25.1";
/// The npm package the JavaScript lane is built with; its version is pinned in
/// `examples/js-lane/package.json` (and its lock file).
const COMPONENTIZE_JS: &str = "@bytecodealliance/componentize-js";
/// The world both lanes target.
const WORLD: &str = "execution-plane:lane/lane-events@0.2.0";
/// What both lanes are given to count: runs of spaces, tabs and newlines, and non-ASCII words.
const TEXT: &str = "the quick  brown\tfox jumps\nover  the naïve café dog ";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository root above host/cli")
}

/// `target/foreign-tools` (beside `CARGO_TARGET_TMPDIR`, so a custom target dir is honoured).
fn tools_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("CARGO_TARGET_TMPDIR is inside the target directory")
        .join("foreign-tools")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs a build step; a failure panics with its command line and output.
fn run_step(cmd: &mut Command, what: &str) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: could not run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}): {cmd:?}\nstdout: {}\nstderr: {}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    out
}

/// The standard output of `tool args`, or `None` when it cannot be run or fails.
fn probe(tool: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(tool).args(args).output().ok()?;
    out.status.success().then(|| text(&out.stdout))
}

/// Fails the test, naming the package to install, when `tool args` cannot be run.
fn require(tool: &str, args: &[&str], package: &str) {
    assert!(
        probe(tool, args).is_some(),
        "the foreign-lane tests need `{tool}` on PATH, and `{tool} {}` failed: install \
         {package} (.ci/run installs it with apt-get)",
        args.join(" ")
    );
}

/// Installs into `final_dir` by running `install` on a fresh staging directory and renaming it
/// into place, so an interrupted install leaves nothing half-made behind.
fn install_into(final_dir: &Path, what: &str, install: impl FnOnce(&Path) -> Command) {
    let tools = tools_dir();
    std::fs::create_dir_all(&tools).expect("create target/foreign-tools");
    let staging =
        tempfile::tempdir_in(&tools).expect("a staging directory in target/foreign-tools");
    run_step(&mut install(staging.path()), what);
    if final_dir.exists() {
        std::fs::remove_dir_all(final_dir).expect("remove the outdated install");
    }
    std::fs::rename(staging.keep(), final_dir).expect("move the install into place");
}

// ---- toolchains

/// A `componentize-py` command: `PATH`'s when it is the pinned version, else the pinned one
/// from `target/foreign-tools/python` (installed there on first use).
fn componentize_py() -> Command {
    let wanted = format!("componentize-py {COMPONENTIZE_PY}");
    if probe("componentize-py", &["--version"]).is_some_and(|v| v.trim() == wanted) {
        return Command::new("componentize-py");
    }
    let target = tools_dir().join("python");
    let installed = target.join(format!("componentize_py-{COMPONENTIZE_PY}.dist-info"));
    require("python3", &["--version"], "python3");
    if !installed.is_dir() {
        require("python3", &["-m", "pip", "--version"], "python3-pip");
        install_into(&target, "pip install componentize-py", |staging| {
            let mut pip = Command::new("python3");
            pip.args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .arg("--target")
            .arg(staging)
            .arg(format!("componentize-py=={COMPONENTIZE_PY}"));
            pip
        });
    }
    let mut cmd = Command::new("python3");
    cmd.env("PYTHONPATH", &target).args([
        "-c",
        "import sys; from componentize_py import script; \
         sys.argv[0] = 'componentize-py'; sys.exit(script())",
    ]);
    cmd
}

/// The version of `@bytecodealliance/componentize-js` that `examples/js-lane/package.json` pins.
fn componentize_js_pin(lane: &Path) -> String {
    let manifest = std::fs::read(lane.join("package.json")).expect("examples/js-lane/package.json");
    let manifest: Value = serde_json::from_slice(&manifest).expect("package.json is JSON");
    let pin = manifest["devDependencies"][COMPONENTIZE_JS]
        .as_str()
        .expect("package.json pins componentize-js in devDependencies");
    assert!(
        pin.chars().all(|c| c.is_ascii_digit() || c == '.'),
        "componentize-js must be pinned to an exact version, got {pin:?}"
    );
    pin.to_owned()
}

/// The version of componentize-js installed under `prefix/node_modules`, if any.
fn installed_componentize_js(prefix: &Path) -> Option<String> {
    let manifest = prefix
        .join("node_modules")
        .join(COMPONENTIZE_JS)
        .join("package.json");
    let manifest: Value = serde_json::from_slice(&std::fs::read(manifest).ok()?).ok()?;
    manifest["version"].as_str().map(str::to_owned)
}

/// The `node_modules/.bin` holding the pinned componentize-js: the lane's own (after `npm ci`
/// in `examples/js-lane`), else `target/foreign-tools/npm`'s (installed there from the lane's
/// lock file when it holds another version or another lock file).
fn componentize_js_bin(lane: &Path) -> PathBuf {
    require("node", &["--version"], "nodejs");
    require("npm", &["--version"], "npm");
    let pin = componentize_js_pin(lane);
    match installed_componentize_js(lane) {
        Some(v) if v == pin => return lane.join("node_modules/.bin"),
        // `npm run build` would put this one first on PATH.
        Some(v) => panic!(
            "examples/js-lane/node_modules holds {COMPONENTIZE_JS} {v}, not the pinned {pin}: \
             run `npm ci` there, or remove it"
        ),
        None => {}
    }
    let prefix = tools_dir().join("npm");
    let locked = |dir: &Path| std::fs::read(dir.join("package-lock.json")).ok();
    let current = installed_componentize_js(&prefix).as_deref() == Some(pin.as_str())
        && locked(&prefix).is_some()
        && locked(&prefix) == locked(lane);
    if !current {
        install_into(&prefix, "npm ci (componentize-js)", |staging| {
            for file in ["package.json", "package-lock.json"] {
                std::fs::copy(lane.join(file), staging.join(file)).expect("copy the npm manifest");
            }
            let mut npm = Command::new("npm");
            npm.args(["ci", "--no-audit", "--no-fund", "--prefix"])
                .arg(staging);
            npm
        });
    }
    prefix.join("node_modules/.bin")
}

// ---- building the lanes

/// A plugin directory holding one freshly built lane, and a working directory whose
/// `.execution-plane` state keeps the lane compiled between the commands.
struct Built {
    _dir: tempfile::TempDir,
    plugins: PathBuf,
    work: PathBuf,
    lane_id: &'static str,
    language: &'static str,
}

impl Built {
    fn new(lane_id: &'static str, language: &'static str) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let plugins = dir.path().join("plugins");
        let work = dir.path().join("work");
        std::fs::create_dir(&plugins).expect("create the plugin directory");
        std::fs::create_dir_all(work.join(".execution-plane")).expect("create the state dir");
        Self {
            _dir: dir,
            plugins,
            work,
            lane_id,
            language,
        }
    }

    fn wasm(&self) -> PathBuf {
        self.plugins.join(format!("{}.wasm", self.lane_id))
    }

    /// Copies the lane's manifest from `example` beside its component.
    fn install_manifest(&self, example: &Path) {
        let name = format!("{}.toml", self.lane_id);
        std::fs::copy(example.join(&name), self.plugins.join(&name)).expect("copy the manifest");
    }

    /// Asserts the component is a component (not a core module) of a plausible size.
    fn assert_component(&self) {
        let bytes = std::fs::read(self.wasm()).expect("the built component");
        assert!(
            bytes.starts_with(b"\0asm\x0d\0\x01\0"),
            "{} is not a wasm component",
            self.wasm().display()
        );
    }
}

/// Builds `examples/python-lane` as its README does, from a copy of its module: componentize-py
/// leaves a `__pycache__` beside the module it imports, which stays out of the source tree.
fn build_python_lane() -> Built {
    let built = Built::new("example-python", "python");
    let repo = repo();
    let example = repo.join("examples/python-lane");
    let source = built.work.join("python-lane");
    std::fs::create_dir(&source).expect("create the source copy");
    std::fs::copy(example.join("app.py"), source.join("app.py")).expect("copy app.py");
    run_step(
        componentize_py()
            .args(["-d", "wit", "-w", WORLD, "componentize", "-p"])
            .arg(&source)
            .args(["app", "-o"])
            .arg(built.wasm())
            .current_dir(&repo),
        "componentize-py (examples/python-lane)",
    );
    built.assert_component();
    built.install_manifest(&example);
    built
}

fn build_js_lane() -> Built {
    let built = Built::new("example-js", "javascript");
    let lane = repo().join("examples/js-lane");
    let bin = componentize_js_bin(&lane);
    let path = std::env::join_paths(std::iter::once(bin).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))
    .expect("a PATH with componentize-js");
    run_step(
        Command::new("npm")
            .args(["run", "--silent", "build", "--", "--out"])
            .arg(built.wasm())
            .env("PATH", path)
            .current_dir(&lane),
        "npm run build (examples/js-lane)",
    );
    built.assert_component();
    built.install_manifest(&lane);
    built
}

// ---- driving them

fn cli(work: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_execution-plane"))
        .args(args)
        .current_dir(work)
        .output()
        .expect("run execution-plane")
}

fn json_out(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            text(&o.stdout),
            text(&o.stderr)
        )
    })
}

fn json_lines(o: &Output) -> Vec<Value> {
    text(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect()
}

fn exec(built: &Built, payload: &str, extra: &[&str]) -> Output {
    let plugins = built.plugins.to_str().expect("a UTF-8 temp path");
    let mut args = vec![
        "exec",
        "--lane",
        built.lane_id,
        "--plugins",
        plugins,
        "--direct",
        "--payload",
        payload,
    ];
    args.extend_from_slice(extra);
    cli(&built.work, &args)
}

fn events_of<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["event_type"] == kind).collect()
}

/// `lanes check` loads the plugin with its manifest: the lane's own capabilities, the 0.2.0
/// ABI, the `events` import its world has and no `wasi:http`.
fn lanes_check_loads_the_lane(built: &Built) {
    let wasm = built.wasm();
    let o = cli(
        &built.work,
        &["lanes", "check", wasm.to_str().expect("a UTF-8 path")],
    );
    assert_eq!(o.status.code(), Some(0), "stderr: {}", text(&o.stderr));
    let v = json_out(&o);
    assert_eq!(v["lane_id"], built.lane_id, "{v}");
    assert_eq!(v["wit_version"], "execution-plane:lane@0.2.0", "{v}");
    let caps = &v["capabilities"];
    assert_eq!(caps["lane_id"], built.lane_id, "{v}");
    assert_eq!(caps["protocols"], serde_json::json!(["words"]), "{v}");
    assert_eq!(caps["supports_execute"], true, "{v}");
    assert_eq!(caps["supports_stream"], true, "{v}");
    assert_eq!(caps["metadata"]["language"], built.language, "{v}");
    assert!(
        v["digest"]
            .as_str()
            .is_some_and(|d| d.starts_with("sha256:")),
        "{v}"
    );
    let imports: Vec<&str> = v["imports"]
        .as_array()
        .expect("imports")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        imports.contains(&"execution-plane:lane/events@0.2.0"),
        "{imports:?}"
    );
    assert!(
        !imports.iter().any(|i| i.starts_with("wasi:http/")),
        "{imports:?}"
    );
}

/// A unary execution counts the words and emits `words.counted` with the count.
fn unary_exec_counts_the_words(built: &Built) {
    let expected = TEXT.split_whitespace().count();
    let payload = serde_json::json!({ "text": TEXT }).to_string();
    let o = exec(built, &payload, &[]);
    assert_eq!(o.status.code(), Some(0), "stderr: {}", text(&o.stderr));
    let result = json_out(&o);
    assert_eq!(result["status"], "succeeded", "{result}");
    assert_eq!(result["output"]["count"], expected, "{result}");
    assert_eq!(result["output"]["language"], built.language, "{result}");
    let events = result["events"].as_array().expect("events");
    let counted = events_of(events, "words.counted");
    assert_eq!(counted.len(), 1, "{result}");
    assert_eq!(counted[0]["payload"]["count"], expected, "{result}");
    assert_eq!(
        result["evidence"][0]["kind"], "wasm_lane.execution",
        "{result}"
    );
}

/// A stream is one `words.word` event per word, in order and numbered from 1, then
/// `lane.completed` with the count, and the result line last.
fn stream_emits_each_word_then_completes(built: &Built) {
    let words: Vec<&str> = TEXT.split_whitespace().collect();
    let payload = serde_json::json!({ "text": TEXT }).to_string();
    let o = exec(built, &payload, &["--stream"]);
    assert_eq!(o.status.code(), Some(0), "stderr: {}", text(&o.stderr));
    let lines = json_lines(&o);
    let streamed: Vec<(u64, &str)> = events_of(&lines, "words.word")
        .iter()
        .map(|e| {
            (
                e["payload"]["index"].as_u64().expect("an index"),
                e["payload"]["word"].as_str().expect("a word"),
            )
        })
        .collect();
    let expected: Vec<(u64, &str)> = (1..).zip(words.iter().copied()).collect();
    assert_eq!(streamed, expected, "{lines:?}");
    let completed = events_of(&lines, "lane.completed");
    assert_eq!(completed.len(), 1, "{lines:?}");
    assert_eq!(
        completed[0]["payload"]["output"]["count"],
        words.len(),
        "{lines:?}"
    );
    let result = lines.last().expect("a result line");
    assert!(result.get("event_type").is_none(), "{result}");
    assert_eq!(result["status"], "succeeded", "{result}");
    assert_eq!(result["output"]["count"], words.len(), "{result}");
}

/// A payload without a string `text` is refused by the lane's `validate`, unary and streamed:
/// exit 1, a `rejected` result with the lane's `invalid_lane_request` and the field it names,
/// and nothing counted.
fn bad_payload_is_refused_by_the_lane(built: &Built) {
    for payload in [r#"{"text":42}"#, r#"{"words":"one two"}"#] {
        for extra in [&[][..], &["--stream"][..]] {
            let o = exec(built, payload, extra);
            assert_eq!(
                o.status.code(),
                Some(1),
                "{payload} {extra:?}: {}",
                text(&o.stderr)
            );
            let result = if extra.is_empty() {
                json_out(&o)
            } else {
                let lines = json_lines(&o);
                assert!(
                    events_of(&lines, "words.word").is_empty(),
                    "{payload} {extra:?}: {lines:?}"
                );
                lines.last().cloned().expect("a result line")
            };
            assert_eq!(
                result["status"], "rejected",
                "{payload} {extra:?}: {result}"
            );
            let error = &result["error"];
            assert_eq!(error["reason"], "invalid_lane_request", "{result}");
            assert_eq!(error["details"]["field"], "text", "{result}");
            assert!(
                error["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("text")),
                "{result}"
            );
            assert!(result["output"].get("count").is_none(), "{result}");
            if let Some(events) = result["events"].as_array() {
                assert!(events_of(events, "words.counted").is_empty(), "{result}");
            }
        }
    }
}

fn word_counter_behaves(built: &Built) {
    lanes_check_loads_the_lane(built);
    unary_exec_counts_the_words(built);
    stream_emits_each_word_then_completes(built);
    bad_payload_is_refused_by_the_lane(built);
}

#[test]
fn python_lane_built_with_componentize_py_counts_streams_and_refuses_bad_payloads() {
    word_counter_behaves(&build_python_lane());
}

#[test]
fn js_lane_built_with_componentize_js_counts_streams_and_refuses_bad_payloads() {
    word_counter_behaves(&build_js_lane());
}
