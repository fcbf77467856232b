//! The `process` lane: a request's payload read, checked against the operator's policy, run as
//! a child process of the host, and reported as upstream reports it (inventory §8.6).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ep_contracts::boundary::{
    AdmissionRejection, ExecutionRequest, ExecutionResult, LaneCapabilities, Map, RejectionReason,
    ResultStatus,
};
use ep_contracts::{Failure, FailureClass};
use ep_lane_api::{CapabilityDenial, EventStream, ExecutionContext, LaneAdapter, LaneEvidence};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::launch::LocalLauncher;
use crate::payload::{LOCAL_SUBPROCESS, PayloadError, ProcessRequest};
use crate::policy::{Denied, ProcessPolicy};
use crate::run::{Captured, Ending, Invocation, LaunchError, Ran, preflight, run};
use crate::sandbox::{SANDBOXED_CLASS, Sandbox, SandboxError, UidLease, launcher};
use crate::simulation::{LOWER_SIMULATION, Scenario};
use crate::users;

/// The lane id process requests name.
pub const PROCESS_LANE_ID: &str = "process";
/// How long a process may run when neither the request nor its payload set a budget.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest a process may run, whatever the request asks.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(3600);

/// Why a request that reads does not reach a spawn: a classified failure before anything ran,
/// with the capability it denied, if the policy refused it.
pub(crate) struct Refusal {
    failure: Failure,
    denial: Option<Box<CapabilityDenial>>,
}

impl Refusal {
    fn failed(failure: Failure) -> Self {
        Self {
            failure,
            denial: None,
        }
    }

    /// The failure, with the denial (if any) reported to the execution's evidence.
    fn report(self, evidence: &LaneEvidence) -> Failure {
        if let Some(denial) = self.denial {
            evidence.denied(*denial);
        }
        self.failure
    }
}

/// A request ready to spawn, holding its process slot.
pub(crate) struct Prepared {
    pub(crate) asked: ProcessRequest,
    pub(crate) invocation: Invocation,
    pub(crate) slot: OwnedSemaphorePermit,
    /// The sandboxed execution's uid, held until it ends.
    pub(crate) lease: Option<UidLease>,
}

impl Prepared {
    /// How long it may run: what is left of the planned deadline (else 30 s), within the
    /// payload's own `timeout_ms` and never over an hour.
    pub(crate) fn limit(&self, ctx: &ExecutionContext) -> Duration {
        let limit = ctx.time_left(DEFAULT_TIMEOUT, MAX_TIMEOUT);
        self.asked.timeout.map_or(limit, |own| limit.min(own))
    }
}

/// The payload read, with its scenario when it asks for a lower simulation; or why it does not
/// read.
fn read_payload(
    request: &ExecutionRequest,
) -> Result<(ProcessRequest, Option<Scenario>), AdmissionRejection> {
    let asked = ProcessRequest::parse(&request.payload).map_err(|error| rejection(&error))?;
    if asked.surface_kind != LOWER_SIMULATION {
        return Ok((asked, None));
    }
    let scenario = Scenario::parse(&request.payload).map_err(|error| rejection(&error))?;
    Ok((asked, Some(scenario)))
}

fn rejected(request: &ExecutionRequest, rejection: &AdmissionRejection) -> ExecutionResult {
    ep_lane_api::rejected_result(
        request.execution_ref.clone(),
        request.provenance.clone(),
        rejection,
    )
}

/// The `launch_failed` failure of a process that did not start.
pub(crate) fn launch_failure(error: &LaunchError) -> Failure {
    let (reason, key, value) = match error {
        LaunchError::CwdNotFound(cwd) => ("cwd not found", "cwd", cwd.display().to_string()),
        LaunchError::CommandNotFound(command) => ("command not found", "command", command.clone()),
        LaunchError::Spawn(error) => ("process launch failed", "error", error.to_string()),
    };
    Failure::new(FailureClass::LaunchFailed, reason).with_detail(key, value)
}

/// What the launcher said when it could not apply the sandbox (it exits 125 with one line).
fn sandbox_refused(ran: &Ran) -> Option<String> {
    if ran.ending != Ending::Exited(crate::exit::Exit::Code(launcher::REFUSED_EXIT)) {
        return None;
    }
    launcher::refusal(&ran.stderr.bytes)
}

/// The local process lane.
pub struct ProcessLane {
    policy: ProcessPolicy,
    slots: Arc<Semaphore>,
    sandbox: Option<Arc<Sandbox>>,
}

impl std::fmt::Debug for ProcessLane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessLane")
            .field("policy", &self.policy)
            .field("sandboxed", &self.sandbox.is_some())
            .finish_non_exhaustive()
    }
}

impl ProcessLane {
    /// A lane that runs what `policy` grants.
    pub fn new(policy: ProcessPolicy) -> Self {
        let slots = Arc::new(Semaphore::new(policy.max_processes));
        Self {
            policy,
            slots,
            sandbox: None,
        }
    }

    /// The same lane (same policy, same process slots) with every process run in `sandbox`:
    /// the `local-process-sandboxed` target's.
    pub fn sandboxed(&self, sandbox: Arc<Sandbox>) -> Self {
        Self {
            policy: self.policy.clone(),
            slots: Arc::clone(&self.slots),
            sandbox: Some(sandbox),
        }
    }

    /// The policy it enforces.
    pub fn policy(&self) -> &ProcessPolicy {
        &self.policy
    }

    /// The launcher of this lane's twin for wasm lanes granted `process`: the same policy, the
    /// same process slots (`max_processes` counts both) and the same sandbox (none when this
    /// lane is not sandboxed).
    pub fn launcher(&self) -> LocalLauncher {
        LocalLauncher::new(
            self.policy.clone(),
            Arc::clone(&self.slots),
            self.sandbox.clone(),
        )
    }
}

fn rejection(error: &PayloadError) -> AdmissionRejection {
    let mut rejection =
        AdmissionRejection::new(RejectionReason::InvalidLaneRequest, error.to_string());
    rejection.details.insert(
        "field".to_owned(),
        format!("payload.{}", error.field).into(),
    );
    rejection
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn failed(
    request: &ExecutionRequest,
    failure: Failure,
    output: Map,
    evidence: Vec<Value>,
) -> ExecutionResult {
    ExecutionResult {
        status: ResultStatus::Failed,
        error: Some(failure.to_value()),
        output,
        evidence,
        provenance: request.provenance.clone(),
        ..ExecutionResult::succeeded(request.execution_ref.clone(), Map::new())
    }
}

/// The captured bytes as text, or as base64 (`<key>_base64`) when they are not UTF-8.
fn put_bytes(out: &mut Map, key: &str, captured: &Captured) {
    crate::stream::insert_bytes(out, key, &captured.bytes);
    if captured.truncated() {
        out.insert(format!("{key}_truncated"), true.into());
    }
}

fn invocation_value(request: &ProcessRequest, cwd: &Path) -> Value {
    json!({
        "command": request.command,
        "argv": request.argv,
        "cwd": cwd.display().to_string(),
        "env_keys": request.env.keys().collect::<Vec<_>>(),
        "clear_env": request.clear_env,
        "user": request.user,
    })
}

/// The child's environment under `policy`: the inherited host variables (unless `clear_env`),
/// then the request's.
pub(crate) fn environment(
    policy: &ProcessPolicy,
    request: &ProcessRequest,
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = if request.clear_env {
        Vec::new()
    } else {
        policy
            .inherit_env
            .iter()
            .filter_map(|name| std::env::var(name).ok().map(|v| (name.clone(), v)))
            .collect()
    };
    env.retain(|(name, _)| !request.env.contains_key(name));
    env.extend(request.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    env
}

impl ProcessLane {
    /// The child's environment: the inherited host variables (unless `clear_env`), then the
    /// request's.
    fn environment(&self, request: &ProcessRequest) -> Vec<(String, String)> {
        environment(&self.policy, request)
    }

    fn denied(
        &self,
        request: &ExecutionRequest,
        asked: &ProcessRequest,
        denied: &Denied,
    ) -> Refusal {
        tracing::info!(
            execution_ref = request.execution_ref.as_str(),
            capability = denied.capability(),
            %denied,
            "process request denied by policy"
        );
        let denial = CapabilityDenial::new(denied.capability(), denied.to_string())
            .with("command_sha256", sha256(asked.command.as_bytes()));
        Refusal {
            failure: Failure::new(FailureClass::PolicyDenied, denied.to_string())
                .with_detail("cause", "process_policy")
                .with_detail("capability", denied.capability()),
            denial: Some(Box::new(denial)),
        }
    }

    /// Everything before a spawn of the request `asked`: the surface, the policy, the user, the
    /// program and a process slot; or why not.
    fn prepare(
        &self,
        request: &ExecutionRequest,
        asked: ProcessRequest,
    ) -> Result<Prepared, Refusal> {
        if asked.surface_kind != LOCAL_SUBPROCESS {
            return Err(Refusal::failed(
                Failure::new(
                    FailureClass::PlacementUnavailable,
                    "unsupported placement surface",
                )
                .with_detail("surface_kind", asked.surface_kind.clone()),
            ));
        }
        let granted = self
            .policy
            .check(&asked)
            .map_err(|denied| self.denied(request, &asked, &denied))?;
        let launch_failed = |reason: &str, details: Value| {
            let mut failure = Failure::new(FailureClass::LaunchFailed, reason);
            if let Value::Object(map) = details {
                for (key, value) in map {
                    failure = failure.with_detail(&key, value);
                }
            }
            Refusal::failed(failure)
        };
        if self.sandbox.is_some() && asked.user.is_some() {
            return Err(launch_failed(
                "a sandboxed process runs as the sandbox's own uid",
                json!({"user": asked.user, "sandbox": SANDBOXED_CLASS}),
            ));
        }
        if asked.pty.is_some() && asked.user.is_some() {
            return Err(launch_failed(
                "user switching is not supported on a terminal",
                json!({"user": asked.user}),
            ));
        }
        let user = match &asked.user {
            None => None,
            Some(user) if !rustix::process::getuid().is_root() => {
                return Err(launch_failed(
                    "user switch requires root",
                    json!({"user": user, "required_privilege": "root"}),
                ));
            }
            Some(user) => match users::lookup(user) {
                Some(ids) => Some(ids),
                None => return Err(launch_failed("no such user", json!({"user": user}))),
            },
        };
        let Some(program) = granted.program.clone() else {
            return Err(launch_failed(
                "command not found",
                json!({"command": asked.command}),
            ));
        };
        let Ok(slot) = Arc::clone(&self.slots).try_acquire_owned() else {
            return Err(Refusal::failed(
                Failure::new(
                    FailureClass::PlacementUnavailable,
                    "the host runs as many processes as [process] max_processes allows",
                )
                .with_detail("cause", "process_limit")
                .with_detail("max_processes", self.policy.max_processes as u64),
            ));
        };
        let mut invocation = Invocation {
            program,
            argv: asked.argv.clone(),
            cwd: granted.cwd.clone(),
            env: self.environment(&asked),
            stdin: asked.stdin.clone(),
            close_stdin: asked.close_stdin,
            stderr_mode: asked.stderr_mode,
            user,
            max_output_bytes: usize::try_from(self.policy.max_output_bytes).unwrap_or(usize::MAX),
        };
        let lease = match &self.sandbox {
            None => None,
            Some(sandbox) => {
                // The launcher exists; what it starts is checked here, before it is wrapped.
                preflight(&invocation).map_err(|error| Refusal::failed(launch_failure(&error)))?;
                sandbox.wrap(&mut invocation).map_err(|error| match error {
                    SandboxError::NoUid => Refusal::failed(
                        Failure::new(FailureClass::PlacementUnavailable, error.to_string())
                            .with_detail("cause", "sandbox_uids"),
                    ),
                    other => Refusal::failed(
                        Failure::new(FailureClass::LaunchFailed, other.to_string())
                            .with_detail("sandbox", SANDBOXED_CLASS),
                    ),
                })?
            }
        };
        Ok(Prepared {
            asked,
            invocation,
            slot,
            lease,
        })
    }

    /// The result of a `lower_simulation` request: its scenario played back, nothing spawned.
    fn simulate(
        &self,
        request: &ExecutionRequest,
        asked: &ProcessRequest,
        scenario: &Scenario,
    ) -> ExecutionResult {
        let captured = |frames: &[String]| {
            let bytes = frames.concat().into_bytes();
            Captured {
                total: bytes.len() as u64,
                bytes,
            }
        };
        let stdout = captured(&scenario.stdout);
        let stderr = captured(&scenario.stderr);
        let output = match asked.stderr_mode {
            crate::payload::StderrMode::Separate => stdout.clone(),
            crate::payload::StderrMode::Stdout => {
                captured(&[scenario.stdout.concat(), scenario.stderr.concat()])
            }
        };
        let ran = Ran {
            ending: Ending::Exited(scenario.exit.clone()),
            stdout,
            stderr,
            output,
            duration: Duration::ZERO,
        };
        let cwd = Path::new(asked.cwd.as_deref().unwrap_or(""));
        let mut result = self.report(request, asked, cwd, &ran, Duration::ZERO);
        result.evidence = vec![scenario.evidence(&sha256(asked.command.as_bytes()))];
        result
    }

    async fn run_request(
        &self,
        request: &ExecutionRequest,
        ctx: &ExecutionContext,
    ) -> ExecutionResult {
        let (asked, scenario) = match read_payload(request) {
            Ok(read) => read,
            Err(rejection) => return rejected(request, &rejection),
        };
        if let Some(scenario) = scenario {
            return self.simulate(request, &asked, &scenario);
        }
        let prepared = match self.prepare(request, asked) {
            Ok(prepared) => prepared,
            Err(refusal) => {
                let failure = refusal.report(&ctx.evidence);
                return failed(request, failure, Map::new(), Vec::new());
            }
        };
        let limit = prepared.limit(ctx);
        let (asked, invocation) = (&prepared.asked, &prepared.invocation);
        let ran = match asked.pty {
            Some(size) => crate::pty::run(invocation, size, limit, &ctx.cancel).await,
            None => run(invocation, limit, &ctx.cancel).await,
        };
        match ran {
            Ok(ran) => match self.sandbox.as_ref().and_then(|_| sandbox_refused(&ran)) {
                Some(said) => {
                    let failure = Failure::new(
                        FailureClass::LaunchFailed,
                        "the sandbox could not be applied",
                    )
                    .with_detail("sandbox", SANDBOXED_CLASS)
                    .with_detail("error", said);
                    failed(request, failure, Map::new(), Vec::new())
                }
                None => self.report(request, asked, &invocation.cwd, &ran, limit),
            },
            Err(error) => failed(request, launch_failure(&error), Map::new(), Vec::new()),
        }
    }

    /// What evidence and capabilities say of its sandbox.
    fn sandbox_name(&self) -> &'static str {
        if self.sandbox.is_some() {
            SANDBOXED_CLASS
        } else {
            "none"
        }
    }

    fn report(
        &self,
        request: &ExecutionRequest,
        asked: &ProcessRequest,
        cwd: &Path,
        ran: &Ran,
        limit: Duration,
    ) -> ExecutionResult {
        let mut output = Map::new();
        output.insert("invocation".to_owned(), invocation_value(asked, cwd));
        put_bytes(&mut output, "stdout", &ran.stdout);
        put_bytes(&mut output, "stderr", &ran.stderr);
        put_bytes(&mut output, "output", &ran.output);
        let exit = match &ran.ending {
            Ending::Exited(exit) => exit.to_value(),
            Ending::TimedOut | Ending::Cancelled => Value::Null,
        };
        output.insert("exit".to_owned(), exit.clone());
        let duration_ms = u64::try_from(ran.duration.as_millis()).unwrap_or(u64::MAX);
        let evidence = vec![json!({
            "kind": "process.run",
            "placement": LOCAL_SUBPROCESS,
            "command_sha256": sha256(asked.command.as_bytes()),
            "sandbox": self.sandbox_name(),
            "argv_count": asked.argv.len(),
            "exit": exit,
            "stdout_bytes": ran.stdout.total,
            "stderr_bytes": ran.stderr.total,
            "duration_ms": duration_ms,
        })];
        output.insert("duration_ms".to_owned(), duration_ms.into());
        let failure = match &ran.ending {
            Ending::Exited(exit) if exit.succeeded() => None,
            Ending::Exited(_) => Some(
                Failure::new(
                    FailureClass::SemanticRuntimeFailed,
                    "the process exited unsuccessfully",
                )
                .with_detail("cause", "exit_status")
                .with_detail("exit", exit),
            ),
            Ending::TimedOut => Some(
                Failure::new(FailureClass::Timeout, "execution timed out")
                    .with_detail("cause", "deadline")
                    .with_detail(
                        "timeout_ms",
                        u64::try_from(limit.as_millis()).unwrap_or(u64::MAX),
                    ),
            ),
            Ending::Cancelled => Some(
                Failure::new(FailureClass::Cancellation, "the execution was cancelled")
                    .with_detail("cause", "cancelled"),
            ),
        };
        match failure {
            None => ExecutionResult {
                output,
                evidence,
                provenance: request.provenance.clone(),
                ..ExecutionResult::succeeded(request.execution_ref.clone(), Map::new())
            },
            Some(failure) => failed(request, failure, output, evidence),
        }
    }
}

#[async_trait]
impl LaneAdapter for ProcessLane {
    fn lane_id(&self) -> &str {
        PROCESS_LANE_ID
    }

    fn capabilities(&self) -> LaneCapabilities {
        let mut metadata = Map::new();
        metadata.insert("placement".to_owned(), "local".into());
        metadata.insert("sandbox".to_owned(), self.sandbox_name().into());
        LaneCapabilities {
            lane_id: Some(PROCESS_LANE_ID.to_owned()),
            protocols: vec!["process".to_owned()],
            surfaces: vec![LOCAL_SUBPROCESS.to_owned()],
            supports_execute: true,
            supports_stream: true,
            metadata,
            ..LaneCapabilities::default()
        }
    }

    async fn validate(&self, request: &ExecutionRequest) -> Result<(), AdmissionRejection> {
        read_payload(request).map(|_| ())
    }

    async fn execute(&self, request: ExecutionRequest, ctx: ExecutionContext) -> ExecutionResult {
        self.run_request(&request, &ctx).await
    }

    async fn stream(
        &self,
        request: ExecutionRequest,
        ctx: ExecutionContext,
    ) -> Result<EventStream, AdmissionRejection> {
        let (asked, scenario) = read_payload(&request)?;
        if let Some(scenario) = scenario {
            let evidence = vec![scenario.evidence(&sha256(asked.command.as_bytes()))];
            return Ok(crate::stream::played(&request, &scenario, evidence));
        }
        match self.prepare(&request, asked) {
            Ok(prepared) => Ok(crate::stream::start(prepared, &request, ctx)),
            Err(refusal) => {
                let failure = refusal.report(&ctx.evidence);
                Ok(crate::stream::refused(&request, &failure))
            }
        }
    }
}
