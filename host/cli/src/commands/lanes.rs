//! `lanes check` and `lanes list`: load WebAssembly lane plugins (component + manifest) under
//! the operator's policy, without registering them anywhere (`lanes list` also shows the
//! digests a host's state directory keeps withdrawn or quarantined). With `--remote`,
//! `lanes list`, `lanes reload`, `lanes rollback` and `lanes reinstate` administer a running
//! host (operator token).

use std::path::Path;

use ep_lanes_wasm::{
    HostPolicy, RuntimeConfig, WIT_PACKAGE, WasmLane, WasmRuntime, load_plugin, load_plugin_dir,
};
use ep_node::LaneAdapter;
use serde_json::{Value, json};

use crate::cli::LanesCommand;
use crate::error::CliError;

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
                let wasm = WasmRuntime::new(RuntimeConfig::default()).map_err(CliError::msg)?;
                let lane = load_plugin(&wasm, &file, &policy)
                    .await
                    .map_err(|e| CliError::msg(one_line(&e.to_string())))?;
                let text =
                    serde_json::to_string_pretty(&check_report(&lane)?).map_err(CliError::msg)?;
                println!("{text}");
                Ok(())
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
            plugins,
            policy,
            state_dir,
            ..
        } => {
            let Some(plugins) = plugins else {
                return Err(CliError::msg(
                    "lanes list needs --plugins <dir> or --remote <url>",
                ));
            };
            let policy = load_policy(policy.as_deref())?;
            let withdrawn = withdrawals(state_dir.as_deref())?;
            runtime.block_on(async {
                let wasm = WasmRuntime::new(RuntimeConfig::default()).map_err(CliError::msg)?;
                let report = load_plugin_dir(&wasm, &plugins, &policy).await;
                for lane in &report.loaded {
                    let version = lane
                        .manifest()
                        .map_or_else(String::new, |m| m.version.to_string());
                    let state = withdrawn
                        .iter()
                        .find(|w| w.lane_id == lane.lane_id() && w.digest == lane.digest())
                        .map_or_else(String::new, |w| format!("\t{}", w.state));
                    println!("{}\t{version}\t{}{state}", lane.lane_id(), lane.digest());
                }
                for w in &withdrawn {
                    println!(
                        "{}\t{}\t{}\trolled back {} (generation {}); `lanes reinstate {} {}` re-admits it",
                        w.state, w.lane_id, w.digest, w.at, w.generation, w.lane_id, w.digest
                    );
                }
                for (path, error) in &report.refused {
                    let file = path.file_name().map_or_else(
                        || path.display().to_string(),
                        |name| name.to_string_lossy().into_owned(),
                    );
                    println!("refused\t{file}\t{}", one_line(&error.to_string()));
                }
                if report.refused.is_empty() {
                    Ok(())
                } else {
                    Err(CliError::msg(format!(
                        "{} of {} lane plugins in {} refused",
                        report.refused.len(),
                        report.refused.len() + report.loaded.len(),
                        plugins.display()
                    )))
                }
            })
        }
    }
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
fn load_policy(path: Option<&Path>) -> Result<HostPolicy, CliError> {
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
        },
        "limits": {
            "max_memory_mb": limits.max_memory_bytes >> 20,
            "timeout_ms": u64::try_from(limits.max_timeout.as_millis()).unwrap_or(u64::MAX),
            "max_concurrency": limits.max_concurrent,
        },
        "wit_version": WIT_PACKAGE,
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
