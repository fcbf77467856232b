//! `exec`: one execution in an in-process node with the built-in lanes (and any plugins) or
//! the local `process` lane (`--allow-command`, `--allow-cwd` on top of `[process]`), or on a
//! running host (`--remote`, optionally `--stream`), printing the `ExecutionResult` as JSON.
//! Exit 0 when it succeeded, 1 when it failed or was rejected.
//!
//! The in-process node is the one `serve` would run on the same configuration (`--config`, or
//! the embedded defaults): its node id and trust store, its policy and plugin directory, and
//! its state directory, so evidence goes to the same log (`<data_dir>/evidence/evidence.jsonl`),
//! its head signed with the same node key (`<data_dir>/node-key.json`).
//!
//! Governed mode (`--authority-key`) signs a single-use authority ref over the whole request for
//! the node's id; the node verifies it against the configured trust store like any caller's.
//! Direct mode
//! (`--direct`) runs as the lane's direct lower-lane owner and skips governed admission: an
//! explicit choice, never a default.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ep_contracts::Contract;
use ep_contracts::boundary::{
    AcceptableAttestation, AdmissionRequest, ExecutionRef, Map, Provenance, ResultStatus,
};
use ep_contracts::simulation::NoEgressPolicy;
use ep_lanes_wasm::egress::HttpGrants;
use ep_lanes_wasm::{
    HostPolicy, RuntimeConfig, WASM_ENGINE_CLASS, WasmLane, WasmRuntime, load_embedded,
    load_plugin_dir, register_wasm_lane,
};
use ep_node::authority::{SigningKeyFile, sign_request};
use ep_node::dispatch::rejected_result;
use ep_node::sinks::file_chain::{ChainError, FileChainSink};
use ep_node::verifiers::local_sandboxed::LOCAL_SANDBOXED_CLASS;
use ep_node::{Input, LaneAdapter, RuntimeClient, RuntimeError};
use ep_placement_local::{PROCESS_LANE_ID, ProcessPolicy};
use ep_remote::StreamItem;
use ep_server::service::{local_launcher, register_process_lane};
use futures::StreamExt;
use serde_json::{Value, json};

use crate::cli::ExecArgs;
use crate::commands::lanes::{load_policy, one_line};
use crate::error::CliError;
use crate::host::{build_node, load_config};
use crate::output;

/// What to do when no mode is chosen.
const MODE_HINT: &str = "choose a mode: --authority-key <file> (governed, verified against the \
                         trust store) or --direct (direct lower-lane owner, no governed admission)";

/// Validity of the authority ref `exec` signs in governed mode.
const REF_TTL: Duration = Duration::from_secs(120);

/// Runs `exec`; `Ok(true)` when the execution succeeded.
pub fn run(args: ExecArgs) -> Result<bool, CliError> {
    if !args.direct && args.authority_key.is_none() {
        return Err(CliError::msg(MODE_HINT));
    }
    let payload = read_payload(&args.payload)?;
    if let Some(url) = &args.remote {
        return run_remote(&args, url, payload);
    }
    let config = load_config(args.config.as_deref())?;
    let mut policy = load_policy(args.policy.as_deref().or(config.policy.file.as_deref()))?;
    let plugins = args.plugins.clone().or_else(|| {
        config
            .plugins
            .dir
            .is_dir()
            .then(|| config.plugins.dir.clone())
    });
    let http = HttpGrants::parse(&args.allow_http, &args.allow_http_private)
        .map_err(|e| CliError::msg(one_line(&e.to_string())))?;
    if !http.is_empty() {
        policy.grant_http(&args.lane, &http);
    }
    if !args.allow_command.is_empty() {
        // A wasm lane granted `process` may start them too (its manifest ∩ this grant).
        policy.grant_process(&args.lane, &args.allow_command);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(CliError::msg)?;
    runtime.block_on(async {
        let node = build_node(&config)?;
        let evidence = args
            .evidence
            .clone()
            .unwrap_or_else(|| config.evidence.log_path());
        let evidence_dir = evidence.parent().filter(|d| !d.as_os_str().is_empty());
        for dir in [Some(config.data_dir.as_path()), evidence_dir]
            .into_iter()
            .flatten()
        {
            std::fs::create_dir_all(dir).map_err(|source| CliError::Io {
                path: dir.to_owned(),
                source,
            })?;
        }
        let key = ep_server::service::node_key(&config.data_dir, &config.node.id)
            .map_err(CliError::msg)?;
        let sink = FileChainSink::open_with(&evidence, config.evidence.sink_options(key)).map_err(
            |e| match e {
                ChainError::Locked { .. } => CliError::msg(format!(
                    "{e} (a running `serve`? run the execution there with --remote <url>, or pass \
                 --evidence <another file>)"
                )),
                other => CliError::msg(other),
            },
        )?;
        node.register_evidence_sink(Arc::new(sink));
        if args.lane == PROCESS_LANE_ID {
            register_process_lane(&node, process_policy(&args, &config)?)
                .await
                .map_err(CliError::msg)?;
        } else {
            // A lane granted `process` starts its children under the same policy (and sandbox,
            // when configured) as the process lane.
            let mut processes = process_policy(&args, &config)?;
            processes.sandbox.enabled = config.process.sandbox.enabled;
            let runtime_config = RuntimeConfig {
                process_launcher: Some(local_launcher(processes).await as _),
                ..config.runtime_config()
            };
            let wasm = WasmRuntime::new(runtime_config).map_err(CliError::msg)?;
            let lane = lane_for(&wasm, &args.lane, plugins.as_deref(), &policy).await?;
            register_wasm_lane(&node, Arc::new(lane))
                .await
                .map_err(|e| CliError::msg(format!("registering lane {}: {e}", args.lane)))?;
        }
        let request = admission_request(&args, node.node_id(), payload)?;
        if args.stream {
            let streamed = stream_local(&node, request, args.stdin).await;
            let _ = node.shutdown().await;
            return streamed;
        }
        let result = node.execute(request).await;
        let _ = node.shutdown().await;
        output::json_pretty(&result.to_value())?;
        Ok(result.status == ResultStatus::Succeeded)
    })
}

/// The config's `[process]` policy widened by `--allow-command` and `--allow-cwd` (the given
/// directories first, so the first one is where a process without `cwd` runs).
fn process_policy(
    args: &ExecArgs,
    config: &ep_server::ServeConfig,
) -> Result<ProcessPolicy, CliError> {
    let mut policy = config.process.clone();
    policy.commands.extend(args.allow_command.iter().cloned());
    let mut cwd = Vec::new();
    for dir in &args.allow_cwd {
        cwd.push(std::path::absolute(dir).map_err(|source| CliError::Io {
            path: dir.clone(),
            source,
        })?);
    }
    cwd.append(&mut policy.cwd);
    policy.cwd = cwd;
    // The sandbox is probed (a launcher started) only for a caller that may use it.
    if !args
        .class
        .iter()
        .any(|class| class == LOCAL_SANDBOXED_CLASS)
    {
        policy.sandbox.enabled = false;
    }
    Ok(policy)
}

/// `exec --remote`: the same request, run by a host started with `serve`. Governed mode signs
/// the ref for the host's node id (from its descriptor); direct mode needs the host's operator
/// token.
fn run_remote(args: &ExecArgs, url: &str, payload: Map) -> Result<bool, CliError> {
    let client = if args.direct {
        super::remote::operator_client_for(url, args.operator_token_file.as_deref())?
    } else {
        super::remote::client(url)?
    };
    super::remote::runtime()?.block_on(async {
        let node_id = if args.direct {
            String::new()
        } else {
            let descriptor = client
                .describe()
                .await
                .map_err(|e| CliError::msg(format!("{url}: {e}")))?;
            descriptor.node_id.unwrap_or_default()
        };
        let request = admission_request(args, &node_id, payload)?;
        if args.stream {
            return stream_remote(&client, request, args.stdin).await;
        }
        let result = client.execute(request).await;
        output::json_pretty(&result.to_value())?;
        Ok(result.status == ResultStatus::Succeeded)
    })
}

/// `exec --remote --stream`: each event as a JSON line as it arrives, then the result (or the
/// rejection, as a `rejected` result) as the last line.
async fn stream_remote(
    client: &ep_remote::RemoteRuntimeClient,
    request: AdmissionRequest,
    forward_stdin: bool,
) -> Result<bool, CliError> {
    let provenance = request.provenance.clone();
    let mut items = match client.open_items(request).await {
        Ok(opened) => {
            if forward_stdin {
                let reference = opened.execution_ref.clone().ok_or_else(|| {
                    CliError::msg("the host did not name the execution; --stdin needs its ref")
                })?;
                tokio::spawn(forward_input(client.clone(), reference));
            }
            opened.items
        }
        Err(RuntimeError::Rejected(rejection)) => {
            let result = rejected_result(ExecutionRef::mint(), provenance, &rejection);
            output::line(result.to_value())?;
            return Ok(false);
        }
        Err(e) => return Err(CliError::msg(e)),
    };
    while let Some(item) = items.next().await {
        match item {
            // A closed stdout ends the loop, dropping the stream: the host sees the reader go.
            StreamItem::Event(event) => output::line(event.to_value())?,
            StreamItem::Result(result) => {
                output::line(result.to_value())?;
                return Ok(result.status == ResultStatus::Succeeded);
            }
            StreamItem::Cut(why) => {
                return Err(CliError::msg(format!(
                    "the stream ended without its result: {why}"
                )));
            }
        }
    }
    Err(CliError::msg("the stream ended without its result"))
}

/// `exec --stream` in process: the node's stream of the execution, each event as a JSON line
/// as it arrives, then the result (as the API's `result` frame reports it).
async fn stream_local(
    node: &ep_node::node::Node,
    request: AdmissionRequest,
    forward_stdin: bool,
) -> Result<bool, CliError> {
    let provenance = request.provenance.clone();
    let open = match node.open_stream(request).await {
        Ok(open) => open,
        Err(RuntimeError::Rejected(rejection)) => {
            let result = rejected_result(ExecutionRef::mint(), provenance, &rejection);
            output::line(result.to_value())?;
            return Ok(false);
        }
        Err(e) => return Err(CliError::msg(e)),
    };
    if forward_stdin {
        let client = ep_node::local_client::LocalRuntimeClient::new(node.clone());
        tokio::spawn(forward_input(client, open.execution_ref.clone()));
    }
    let mut events = open.events;
    let mut ending = ep_node::StreamEnding::default();
    while let Some(event) = events.next().await {
        ending.observe(&event);
        output::line(event.to_value())?;
    }
    let result = ending.result(&open.execution_ref, &provenance);
    output::line(result.to_value())?;
    Ok(result.status == ResultStatus::Succeeded)
}

/// Sends this command's stdin to the execution `reference` as it arrives, then its end.
/// Stops quietly when the execution no longer takes input (it ended).
async fn forward_input<C: RuntimeClient>(client: C, reference: ExecutionRef) {
    let (chunks, mut arriving) = tokio::sync::mpsc::channel::<Vec<u8>>(16);
    // Reading stdin blocks: a thread of its own feeds the channel.
    std::thread::spawn(move || {
        use std::io::Read as _;
        let mut stdin = std::io::stdin().lock();
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            match stdin.read(&mut buffer) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if chunks.blocking_send(buffer[..n].to_vec()).is_err() {
                        return;
                    }
                }
            }
        }
    });
    while let Some(chunk) = arriving.recv().await {
        if let Err(error) = client.send_input(&reference, Input::Data(chunk)).await {
            tracing::debug!(%error, "stdin no longer forwarded");
            return;
        }
    }
    if let Err(error) = client.send_input(&reference, Input::End).await {
        tracing::debug!(%error, "the end of stdin was not delivered");
    }
}

/// The lane `lane_id`: from the plugin directory when it has it (a plugin replaces the built-in
/// lane of the same id), else the built-in lane. Other lanes are not loaded.
async fn lane_for(
    wasm: &WasmRuntime,
    lane_id: &str,
    plugins: Option<&Path>,
    policy: &HostPolicy,
) -> Result<WasmLane, CliError> {
    let mut refusals = Vec::new();
    if let Some(dir) = plugins {
        let report = load_plugin_dir(wasm, dir, policy).await;
        if let Some(lane) = report.loaded.into_iter().find(|l| l.lane_id() == lane_id) {
            return Ok(lane);
        }
        refusals.extend(
            report
                .refused
                .into_iter()
                .map(|(path, e)| format!("{}: {}", path.display(), one_line(&e.to_string()))),
        );
    }
    for builtin in ep_builtin_lanes::all() {
        let lane = load_embedded(wasm, builtin.name, builtin.wasm, builtin.manifest, policy).await;
        match lane {
            Ok(lane) if lane.lane_id() == lane_id => return Ok(lane),
            Ok(_) => {}
            Err(e) => refusals.push(one_line(&e.to_string())),
        }
    }
    let mut message = format!("no lane {lane_id:?}: not built in and not in the plugin directory");
    if !refusals.is_empty() {
        message.push_str(&format!(
            " (refused: {}); outbound HTTP is denied unless granted: pass --allow-http PATTERN \
             or a --policy that grants it",
            refusals.join("; ")
        ));
    }
    Err(CliError::msg(message))
}

/// The admission request: governed (signed ref, acceptable classes) or direct.
fn admission_request(
    args: &ExecArgs,
    node_id: &str,
    payload: Map,
) -> Result<AdmissionRequest, CliError> {
    let mut request = AdmissionRequest::new(args.lane.as_str());
    request.operation = args.operation.clone();
    request.payload = payload;
    if let Some(ms) = args.timeout_ms {
        request.metadata.insert("timeout_ms".to_owned(), json!(ms));
    }
    if let Some(path) = &args.simulate {
        request.metadata.insert(
            ep_node::simulation::LOWER_SIMULATION_KEY.to_owned(),
            Value::Object(read_scenario(path)?),
        );
    }
    if args.direct {
        request.provenance =
            Provenance::direct_lower_lane_owner("execution-plane exec", Map::new());
        return Ok(request);
    }
    let Some(key_path) = &args.authority_key else {
        return Err(CliError::msg(MODE_HINT));
    };
    let key = SigningKeyFile::load(key_path).map_err(CliError::msg)?;
    let classes: Vec<&str> = if args.class.is_empty() {
        vec![WASM_ENGINE_CLASS]
    } else {
        args.class.iter().map(String::as_str).collect()
    };
    request.acceptable_attestation = AcceptableAttestation::of(classes);
    // Signed last: the ref covers the whole request as it is sent.
    request.authority_ref = Some(sign_request(
        &key,
        &request,
        node_id,
        REF_TTL,
        chrono::Utc::now(),
    ));
    Ok(request)
}

/// `--simulate`: the scenario file, a JSON object; without a `no_egress_policy` it gets the
/// default lower boundary policy.
fn read_scenario(path: &Path) -> Result<Map, CliError> {
    let document = crate::input::read_document(Some(path))?;
    let mut scenario = match serde_json::from_str::<Value>(&document) {
        Ok(Value::Object(map)) => map,
        Ok(other) => {
            return Err(CliError::msg(format!(
                "--simulate {}: a scenario is a JSON object, not {}",
                path.display(),
                kind(&other)
            )));
        }
        Err(e) => {
            return Err(CliError::msg(format!(
                "--simulate {}: not JSON: {e}",
                path.display()
            )));
        }
    };
    scenario
        .entry("no_egress_policy")
        .or_insert_with(|| NoEgressPolicy::default_lower_boundary_policy().to_value());
    Ok(scenario)
}

/// `--payload`: a JSON object, `@file`, or `@-` for stdin.
fn read_payload(text: &str) -> Result<Map, CliError> {
    let document = match text.strip_prefix('@') {
        Some(path) => crate::input::read_document(Some(Path::new(path)))?,
        None => text.to_owned(),
    };
    match serde_json::from_str::<Value>(&document) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(CliError::msg(format!(
            "--payload must be a JSON object, not {}",
            kind(&other)
        ))),
        Err(e) => Err(CliError::msg(format!("--payload is not JSON: {e}"))),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
