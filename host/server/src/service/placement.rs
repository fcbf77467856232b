//! The local process placement: the `process` lane on the local weak target, and beside it the
//! sandboxed target when this host's kernel was seen to enforce the sandbox.

use std::sync::Arc;

use ep_node::ConnectOptions;
use ep_node::local_client::InProcessTargetClient;
use ep_node::node::Node;
use ep_node::verifiers::local_sandboxed::LocalSandboxedVerifier;
use ep_node::verifiers::local_weak::{LocalWeakVerifier, MintOptions};
use ep_placement_local::sandbox::{Enforcement, Sandbox, SandboxError};
use ep_placement_local::{LocalLauncher, ProcessLane, ProcessPolicy};

use crate::error::ServeError;

/// What the process placement offers: always the weak class; the sandboxed class only with
/// the probe that saw it enforced.
#[derive(Debug)]
pub struct ProcessPlacement {
    /// The sandbox as the probe saw it, or why `local-process-sandboxed` is not offered.
    pub sandbox: Result<Enforcement, SandboxError>,
    /// Starts the processes of wasm lanes granted `process`: the process lane's policy and
    /// process slots, sandboxed when the sandboxed class is offered.
    pub launcher: Arc<LocalLauncher>,
}

impl ProcessPlacement {
    /// One line for the operator: what the sandboxed class is, or why it is not offered.
    pub fn sandbox_summary(&self) -> String {
        match &self.sandbox {
            Ok(enforcement) => format!(
                "local-process-sandboxed offered (landlock ABI {}, seccomp, rlimits{})",
                enforcement.landlock_abi,
                if enforcement.user.is_some() {
                    ", a uid per execution"
                } else {
                    ""
                }
            ),
            Err(error) => format!("local-process-sandboxed not offered: {error}"),
        }
    }
}

fn refused(rejection: ep_contracts::boundary::AdmissionRejection) -> ServeError {
    ServeError::Placement {
        placement: "local process",
        message: format!(
            "its target was refused: {}",
            rejection.message.unwrap_or(rejection.reason)
        ),
    }
}

/// The sandbox `policy` configures, or why there is none.
fn sandbox_of(policy: &ProcessPolicy) -> Result<Sandbox, SandboxError> {
    match policy.sandbox.launcher.clone() {
        Some(launcher) if policy.sandbox.enabled => {
            Ok(Sandbox::new(policy.sandbox.clone(), launcher))
        }
        Some(_) => Err(SandboxError::Disabled),
        None => Err(SandboxError::NotApplied(
            "no launcher: set [process.sandbox] launcher".to_owned(),
        )),
    }
}

/// A process launcher for wasm lanes granted `process` on a host that registers no process
/// lane (`exec` of a wasm lane): `policy`, sandboxed when its sandbox is configured and the
/// probe saw it hold, as `serve` would run it.
pub async fn local_launcher(policy: ProcessPolicy) -> Arc<LocalLauncher> {
    let sandbox = sandbox_of(&policy);
    let lane = ProcessLane::new(policy);
    let probed = match sandbox {
        Ok(sandbox) => sandbox.probe().await.map(|_| sandbox),
        Err(error) => Err(error),
    };
    match probed {
        Ok(sandbox) => Arc::new(lane.sandboxed(Arc::new(sandbox)).launcher()),
        Err(error) => {
            tracing::debug!(%error, "lane processes run unsandboxed");
            Arc::new(lane.launcher())
        }
    }
}

/// Registers the `process` lane under `policy` on the local weak target (`local-process`,
/// class `local-process-weak`: it claims no sandbox); then probes the sandbox and, only when
/// every part of it held, registers the sandboxed target (`local-process-sandboxed`), whose
/// client runs a sandboxed lane of its own under the same policy and process cap. The
/// placement's launcher (for wasm lanes granted `process`) is the sandboxed lane's when the
/// sandbox is offered, the weak lane's otherwise.
pub async fn register_process_lane(
    node: &Node,
    policy: ProcessPolicy,
) -> Result<ProcessPlacement, ServeError> {
    let sandbox = sandbox_of(&policy);
    let lane = Arc::new(ProcessLane::new(policy));
    node.register_lane(Arc::clone(&lane) as Arc<dyn ep_node::traits::LaneAdapter>);
    let attestation = LocalWeakVerifier::mint_attestation(&MintOptions::default());
    node.connect_in_process(attestation, ConnectOptions::default())
        .await
        .map_err(refused)?;
    let sandbox = match sandbox {
        Ok(sandbox) => sandbox
            .probe()
            .await
            .map(|enforcement| (sandbox, enforcement)),
        Err(error) => Err(error),
    };
    let (sandbox, enforcement) = match sandbox {
        Ok(probed) => probed,
        Err(error) => {
            tracing::warn!(%error, "local-process-sandboxed is not offered");
            return Ok(ProcessPlacement {
                sandbox: Err(error),
                launcher: Arc::new(lane.launcher()),
            });
        }
    };
    let report = match serde_json::to_value(&enforcement) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    let verifier = LocalSandboxedVerifier::new(report);
    let attestation = verifier.mint_attestation();
    node.register_target_verifier(Arc::new(verifier));
    let lane = lane.sandboxed(Arc::new(sandbox));
    let launcher = Arc::new(lane.launcher());
    node.connect_target(
        attestation,
        Arc::new(InProcessTargetClient::owning(Arc::new(lane))),
        ConnectOptions::default(),
    )
    .await
    .map_err(refused)?;
    tracing::info!(
        landlock_abi = enforcement.landlock_abi,
        "local-process-sandboxed offered"
    );
    Ok(ProcessPlacement {
        sandbox: Ok(enforcement),
        launcher,
    })
}
