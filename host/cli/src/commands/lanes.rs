//! `lanes check` and `lanes list`: load WebAssembly lane plugins (component + manifest) under
//! the operator's policy, without registering them anywhere. `lanes list` on its own shows what
//! `serve` would serve on the same configuration: the built-in lanes and the plugin directory,
//! and the digests the host's state directory keeps withdrawn or quarantined. With `--remote`,
//! `lanes list`, `lanes reload`, `lanes rollback` and `lanes reinstate` administer a running
//! host (operator token).

use std::path::{Path, PathBuf};

use ep_lanes_wasm::{
    HostPolicy, PluginDirReport, RuntimeConfig, WasmLane, WasmRuntime, load_embedded, load_plugin,
    load_plugin_dir,
};
use ep_node::LaneAdapter;
use serde_json::{Value, json};

use crate::cli::LanesCommand;
use crate::error::CliError;
use crate::host::load_config;
use crate::output;

/// The runtime of the offline checks: the compiled lanes of a host kept in this directory
/// (`./.execution-plane/compiled`, when that state directory exists) are reused and kept, so a
/// check of a large lane compiles it once for the checks and the host alike; without one
/// nothing is written.
fn check_runtime() -> RuntimeConfig {
    match load_config(None) {
        Ok(config) if config.data_dir.is_dir() => config.runtime_config(),
        _ => RuntimeConfig::default(),
    }
}

/// Runs a `lanes` subcommand.
pub fn run(cmd: LanesCommand) -> Result<(), CliError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(CliError::msg)?;
    match cmd {
        LanesCommand::Check { file, policy } => {
            let policy = load_policy(policy.as_deref())?;
            runtime.block_on(async {
                let wasm = WasmRuntime::new(check_runtime()).map_err(CliError::msg)?;
                let lane = load_plugin(&wasm, &file, &policy)
                    .await
                    .map_err(|e| CliError::msg(one_line(&e.to_string())))?;
                output::json_pretty(&check_report(&lane)?)
            })
        }
        LanesCommand::List {
            remote: Some(url),
            operator_token_file,
            ..
        } => {
            let client = super::remote::operator_client_for(&url, operator_token_file.as_deref())?;
            let lanes = runtime
                .block_on(client.lanes())
                .map_err(|e| CliError::msg(format!("{url}: {e}")))?;
            super::remote::print_json(&lanes)
        }
        LanesCommand::Reload(operator) => {
            let client = super::remote::operator_client(&operator)?;
            let report = runtime
                .block_on(client.reload())
                .map_err(|e| CliError::msg(format!("{}: {e}", operator.remote)))?;
            super::remote::print_json(&report)?;
            // A refused reload left the old configuration serving: say so in the exit status
            // too, so a deploy script stops there.
            if report.get("status").and_then(|s| s.as_str()) == Some("refused") {
                let errors: Vec<&str> = report
                    .get("errors")
                    .and_then(|e| e.as_array())
                    .map(|e| e.iter().filter_map(|e| e.as_str()).collect())
                    .unwrap_or_default();
                return Err(CliError::msg(format!(
                    "{}: reload refused, the running configuration keeps serving: {}",
                    operator.remote,
                    errors.join("; ")
                )));
            }
            Ok(())
        }
        LanesCommand::Rollback { lane, operator } => {
            let client = super::remote::operator_client(&operator)?;
            let rolled = runtime
                .block_on(client.rollback(&lane))
                .map_err(|e| CliError::msg(format!("{}: {e}", operator.remote)))?;
            super::remote::print_json(&rolled)
        }
        LanesCommand::Reinstate {
            lane,
            digest,
            operator,
        } => {
            let client = super::remote::operator_client(&operator)?;
            let answer = runtime
                .block_on(client.reinstate(&lane, &digest))
                .map_err(|e| CliError::msg(format!("{}: {e}", operator.remote)))?;
            super::remote::print_json(&answer)
        }
        LanesCommand::List {
            plugins: Some(plugins),
            policy,
            state_dir,
            ..
        } => {
            let policy = load_policy(policy.as_deref())?;
            let withdrawn = withdrawals(state_dir.as_deref())?;
            runtime.block_on(async {
                let wasm = WasmRuntime::new(check_runtime()).map_err(CliError::msg)?;
                let report = load_plugin_dir(&wasm, &plugins, &policy).await;
                let refused = plugin_refusals(&report);
                print_listing(&report.loaded, &refused, &withdrawn)?;
                check_refusals(refused.len(), report.loaded.len(), &plugins)
            })
        }
        LanesCommand::List {
            policy,
            config,
            state_dir,
            ..
        } => {
            let config = load_config(config.as_deref())?;
            let policy = load_policy(policy.as_deref().or(config.policy.file.as_deref()))?;
            let withdrawn = withdrawals(Some(
                state_dir.as_deref().unwrap_or(config.data_dir.as_path()),
            ))?;
            runtime.block_on(async {
                let wasm = WasmRuntime::new(config.runtime_config()).map_err(CliError::msg)?;
                host_listing(&wasm, &config.plugins.dir, &policy, &withdrawn).await
            })
        }
    }
}

/// `lanes list` on a configuration: the plugin directory's lanes (when it exists), then the
/// built-in lanes no plugin replaces, as `serve` assembles them. Exit 1 only when a plugin is
/// refused: a built-in lane the policy leaves out (the HTTP lane without an HTTP grant) is the
/// policy's decision, listed with its reason.
async fn host_listing(
    wasm: &WasmRuntime,
    dir: &Path,
    policy: &HostPolicy,
    withdrawn: &[ep_lanes_wasm::Withdrawal],
) -> Result<(), CliError> {
    let (mut served, mut refused, plugins) = if dir.is_dir() {
        let report = load_plugin_dir(wasm, dir, policy).await;
        let refused = plugin_refusals(&report);
        let plugins = report.loaded.len() + refused.len();
        (report.loaded, refused, plugins)
    } else {
        (Vec::new(), Vec::new(), 0)
    };
    let plugin_refused = refused.len();
    for builtin in ep_builtin_lanes::all() {
        if served.iter().any(|lane| lane.lane_id() == builtin.name) {
            continue;
        }
        match load_embedded(wasm, builtin.name, builtin.wasm, builtin.manifest, policy).await {
            Ok(lane) => served.push(lane),
            Err(error) => refused.push((
                format!("<built-in>/{}", builtin.wasm_file_name()),
                one_line(&error.to_string()),
            )),
        }
    }
    served.sort_by(|a, b| a.lane_id().cmp(b.lane_id()));
    print_listing(&served, &refused, withdrawn)?;
    check_refusals(plugin_refused, plugins - plugin_refused, dir)
}

/// `(file name, one-line reason)` for every refused plugin of `report`.
fn plugin_refusals(report: &PluginDirReport) -> Vec<(String, String)> {
    report
        .refused
        .iter()
        .map(|(path, error)| {
            let file = path.file_name().map_or_else(
                || path.display().to_string(),
                |name| name.to_string_lossy().into_owned(),
            );
            (file, one_line(&error.to_string()))
        })
        .collect()
}

/// One `lane\tversion\tdigest[\tstate]` line per lane, one line per withdrawn or quarantined
/// digest, then one `refused\tname\treason` line each.
fn print_listing(
    served: &[WasmLane],
    refused: &[(String, String)],
    withdrawn: &[ep_lanes_wasm::Withdrawal],
) -> Result<(), CliError> {
    for lane in served {
        let version = lane
            .manifest()
            .map_or_else(String::new, |m| m.version.to_string());
        let state = withdrawn
            .iter()
            .find(|w| w.lane_id == lane.lane_id() && w.digest == lane.digest())
            .map_or_else(String::new, |w| format!("\t{}", w.state));
        output::line(format_args!(
            "{}\t{version}\t{}{state}",
            lane.lane_id(),
            lane.digest()
        ))?;
    }
    for w in withdrawn {
        output::line(format_args!(
            "{}\t{}\t{}\trolled back {} (generation {}); `lanes reinstate {} {}` re-admits it",
            w.state, w.lane_id, w.digest, w.at, w.generation, w.lane_id, w.digest
        ))?;
    }
    for (name, reason) in refused {
        output::line(format_args!("refused\t{name}\t{reason}"))?;
    }
    Ok(())
}

/// Exit 1 when plugins of `dir` were refused.
fn check_refusals(refused: usize, loaded: usize, dir: &Path) -> Result<(), CliError> {
    if refused == 0 {
        return Ok(());
    }
    Err(CliError::msg(format!(
        "{refused} of {} lane plugins in {} refused",
        refused + loaded,
        PathBuf::from(dir).display()
    )))
}

/// Where `serve` keeps its state on its defaults.
const DEFAULT_STATE_DIR: &str = ".execution-plane";

/// The withdrawn and quarantined lane digests a host keeps in `state_dir` (its `data_dir`;
/// `.execution-plane` when not given): none when it keeps none.
fn withdrawals(state_dir: Option<&Path>) -> Result<Vec<ep_lanes_wasm::Withdrawal>, CliError> {
    let dir = state_dir
        .unwrap_or(Path::new(DEFAULT_STATE_DIR))
        .join(ep_server::service::WITHDRAWALS_DIR);
    ep_lanes_wasm::Withdrawals::open(&dir)
        .map(|store| store.all())
        .map_err(|e| CliError::msg(one_line(&e.to_string())))
}

/// The policy file, or the built-in default policy.
pub(crate) fn load_policy(path: Option<&Path>) -> Result<HostPolicy, CliError> {
    match path {
        None => Ok(HostPolicy::default()),
        Some(path) => HostPolicy::load(path).map_err(|e| CliError::msg(one_line(&e.to_string()))),
    }
}

/// What `lanes check` prints.
fn check_report(lane: &WasmLane) -> Result<Value, CliError> {
    let capabilities = serde_json::to_value(lane.capabilities()).map_err(CliError::msg)?;
    let grants = lane.grants();
    let http = grants.http.describe();
    let limits = lane.limits();
    Ok(json!({
        "lane_id": lane.lane_id(),
        "version": lane.manifest().map(|m| m.version.to_string()),
        "digest": lane.digest(),
        "capabilities": capabilities,
        "imports": lane.imports(),
        "grants": {
            "events": grants.events,
            "logging": grants.logging,
            "http": http["http"],
            "http_private": http["http_private"],
            "filesystem": grants.filesystem,
            "sockets": grants.sockets,
            "process": grants.process,
            "optional": grants.optional,
        },
        "limits": {
            "max_memory_mb": limits.max_memory_bytes >> 20,
            "timeout_ms": u64::try_from(limits.max_timeout.as_millis()).unwrap_or(u64::MAX),
            "max_concurrency": limits.max_concurrent,
        },
        "wit_version": lane.abi().package(),
    }))
}

/// `text` on one line: line breaks and tabs become spaces (output lines are tab-separated).
pub(crate) fn one_line(text: &str) -> String {
    text.split(['\n', '\r', '\t'])
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}
