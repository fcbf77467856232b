//! [`WasmLane`]: one loaded lane generation. Loading compiles the component (through the
//! runtime's cache), refuses imports its grants lack, pre-instantiates it, and probes
//! `capabilities` once. It then implements the node's `LaneAdapter`: every execution runs in a
//! fresh `Store` instantiated from the `InstancePre` (`validate_and_execute` runs the guest's
//! `validate` and `execute` in that one store; a bare `validate` or a `stream` gets its own), so
//! a fault ends only that call, and the lane and every other execution carry on.
//!
//! Deadlines are enforced twice: the epoch callback interrupts a guest running wasm past its
//! deadline, and a tokio timeout around the call ends a guest blocked in a host call (which
//! epochs cannot reach). Cancellation drops the call and its store.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use ep_contracts::boundary::{
    AdmissionRejection, ExecutionEvent, ExecutionRef, ExecutionRequest, ExecutionResult,
    LaneCapabilities, Map, RejectionReason, ResultStatus,
};
use ep_lane_api::{EventStream, ExecutionContext, LaneAdapter, LaneEvidence, rejected_result};
use serde_json::{Value, json};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::timeout_at;
use wasmtime::Store;

use crate::abi::{AbiVersion, Guest, Pre};
use crate::capability::ExecutionLog;
use crate::capability::process::{LaneProcesses, ProcessState};
use crate::convert;
use crate::digests::DigestRegistration;
use crate::egress::hooks::LaneHttpHooks;
use crate::egress::{LaneEgress, RequestEgress};
use crate::engine::WasmRuntime;
use crate::error::LoadError;
use crate::fault::{Fault, Phase, classify};
use crate::grants::{self, Grants};
use crate::limits::{LaneGate, LaneLimits};
use crate::manifest::LaneManifest;
use crate::state::{Attribution, LaneState};

/// Where a lane component comes from.
#[derive(Debug, Clone)]
pub enum LaneSource {
    /// The component's bytes.
    Bytes(Arc<[u8]>),
    /// A `.wasm` component file.
    Path(PathBuf),
}

impl From<Vec<u8>> for LaneSource {
    fn from(bytes: Vec<u8>) -> Self {
        Self::Bytes(bytes.into())
    }
}

impl From<&[u8]> for LaneSource {
    fn from(bytes: &[u8]) -> Self {
        Self::Bytes(bytes.into())
    }
}

impl From<PathBuf> for LaneSource {
    fn from(path: PathBuf) -> Self {
        Self::Path(path)
    }
}

impl From<&Path> for LaneSource {
    fn from(path: &Path) -> Self {
        Self::Path(path.to_owned())
    }
}

/// A loaded lane generation: a pre-instantiated component, its probed capabilities and digest.
/// Register it with a node through [`crate::register_wasm_lane`].
pub struct WasmLane {
    core: Arc<LaneCore>,
    runtime: WasmRuntime,
    capabilities: LaneCapabilities,
    grants: Grants,
    imports: Vec<String>,
    manifest: Option<LaneManifest>,
    _registration: DigestRegistration,
}

impl std::fmt::Debug for WasmLane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmLane")
            .field("lane_id", &self.core.lane_id)
            .field("component_digest", &self.core.digest)
            .finish_non_exhaustive()
    }
}

/// What a call needs, shareable with the validate bridge and with streams.
pub(crate) struct LaneCore {
    pub(crate) lane_id: Arc<str>,
    pub(crate) digest: String,
    pre: Pre,
    /// The lane ABI the component targets.
    pub(crate) abi: AbiVersion,
    pub(crate) limits: LaneLimits,
    slots: Arc<Semaphore>,
    instantiations: Arc<AtomicU64>,
    pub(crate) gate: LaneGate,
    /// Present when the generation is granted outbound HTTP.
    egress: Option<Arc<LaneEgress>>,
    /// Present when the generation is granted `process`.
    processes: Option<Arc<LaneProcesses>>,
    /// Whether its capabilities say it executes (a streaming-only lane is refused before any
    /// instance is made).
    executes: bool,
}

/// What one store may do with outbound HTTP and processes: the request's narrowing, whether
/// it may start processes, and the log its evidence (denials included) goes to.
#[derive(Debug, Clone)]
pub(crate) struct EgressScope {
    pub(crate) narrowing: Arc<RequestEgress>,
    pub(crate) processes: bool,
    pub(crate) log: Arc<ExecutionLog>,
}

impl EgressScope {
    /// No outbound HTTP and no process at all (load probes and `validate`, which must not do
    /// I/O).
    pub(crate) fn nothing() -> Self {
        Self {
            narrowing: Arc::new(RequestEgress::Nothing),
            processes: false,
            log: Arc::default(),
        }
    }

    /// The request's own narrowing of the lane's grant.
    pub(crate) fn of(request: &ExecutionRequest) -> Self {
        Self {
            narrowing: Arc::new(RequestEgress::of(request)),
            processes: true,
            log: Arc::default(),
        }
    }
}

impl WasmLane {
    /// Loads a lane generation with the default grants (`events` and `logging`).
    pub async fn load(
        runtime: &WasmRuntime,
        source: impl Into<LaneSource>,
        limits: LaneLimits,
    ) -> Result<Self, LoadError> {
        Self::load_with_grants(runtime, source, limits, Grants::default()).await
    }

    /// Loads a lane generation that may import only what `grants` allows. The lane's memory
    /// limit is capped by the runtime's `max_memory_per_instance`.
    pub async fn load_with_grants(
        runtime: &WasmRuntime,
        source: impl Into<LaneSource>,
        mut limits: LaneLimits,
        grants: Grants,
    ) -> Result<Self, LoadError> {
        let bytes: Arc<[u8]> = match source.into() {
            LaneSource::Bytes(bytes) => bytes,
            LaneSource::Path(path) => tokio::fs::read(&path)
                .await
                .map_err(|source| LoadError::Read { path, source })?
                .into(),
        };
        let digest = ep_contracts::canonical::sha256_ref(&bytes);
        check_header(&bytes, &digest)?;
        let engine = runtime.engine();
        let component = runtime
            .inner
            .cache
            .get_or_compile(engine, &digest, bytes)
            .await?;
        grants::check_imports(engine, &component, &grants, &digest)?;
        let imports: Vec<String> = component
            .component_type()
            .imports(engine)
            .map(|(name, _)| name.to_owned())
            .collect();
        let linker = grants::linker(engine, &grants).map_err(|e| LoadError::Internal {
            digest: digest.clone(),
            message: format!("cannot build the lane linker: {e}"),
        })?;
        let instance_pre = linker
            .instantiate_pre(&component)
            .map_err(|e| grants::unsatisfied(engine, &component, &grants, &digest, &e))?;
        let abi = AbiVersion::of(engine, &component).ok_or_else(|| LoadError::NotALane {
            digest: digest.clone(),
            message: format!(
                "it exports no `lane-adapter` of a lane ABI this host implements ({})",
                AbiVersion::ALL.map(AbiVersion::package).join(", ")
            ),
        })?;
        let pre = Pre::new(instance_pre, abi).map_err(|e| LoadError::NotALane {
            digest: digest.clone(),
            message: crate::error::error_chain(&e, 2048),
        })?;
        limits.max_memory_bytes = limits
            .max_memory_bytes
            .min(runtime.config().max_memory_per_instance);
        let egress = if grants.http.is_empty() {
            None
        } else {
            let egress = LaneEgress::new(
                grants.http.clone(),
                &runtime.config().egress,
                limits.max_response_bytes,
            )
            .map_err(|message| LoadError::Internal {
                digest: digest.clone(),
                message,
            })?;
            Some(Arc::new(egress))
        };
        let processes = (!grants.process.is_empty()).then(|| {
            Arc::new(LaneProcesses::new(
                grants.process.clone(),
                runtime.config().process_launcher.clone(),
            ))
        });
        let mut core = LaneCore {
            lane_id: Arc::from("(loading)"),
            digest: digest.clone(),
            pre,
            abi,
            gate: LaneGate::new(&limits),
            limits,
            slots: Arc::clone(&runtime.inner.slots),
            instantiations: Arc::clone(&runtime.inner.instantiations),
            egress,
            processes,
            executes: true,
        };
        let capabilities = core.probe().await?;
        core.executes = capabilities.supports_execute;
        let lane_id = capabilities.lane_id.clone().unwrap_or_default();
        if lane_id.is_empty() {
            return Err(LoadError::EmptyLaneId { digest });
        }
        core.lane_id = Arc::from(lane_id.as_str());
        let registration = runtime.inner.digests.register(&digest, &lane_id);
        tracing::info!(lane_id, component_digest = digest, "wasm lane loaded");
        Ok(Self {
            core: Arc::new(core),
            runtime: runtime.clone(),
            capabilities,
            grants,
            imports,
            manifest: None,
            _registration: registration,
        })
    }

    /// The lane ABI version the component targets.
    pub fn abi(&self) -> AbiVersion {
        self.core.abi
    }

    /// The `sha256:` digest of the component bytes.
    pub fn digest(&self) -> &str {
        &self.core.digest
    }

    /// The limits every call of this generation runs under.
    pub fn limits(&self) -> &LaneLimits {
        &self.core.limits
    }

    /// Executions of this generation waiting for a turn in its concurrency gate now: the
    /// queue depth an operator's metrics show.
    pub fn queued(&self) -> usize {
        self.core.gate.waiting()
    }

    /// The grants it was linked with.
    pub fn grants(&self) -> &Grants {
        &self.grants
    }

    /// The interfaces the component imports (what `lanes check` shows an operator).
    pub fn imports(&self) -> &[String] {
        &self.imports
    }

    /// The plugin manifest it was loaded with ([`crate::plugins::load_plugin`]), if any.
    pub fn manifest(&self) -> Option<&LaneManifest> {
        self.manifest.as_ref()
    }

    /// Records the plugin manifest this generation was loaded with.
    pub(crate) fn with_manifest(mut self, manifest: LaneManifest) -> Self {
        self.manifest = Some(manifest);
        self
    }

    /// The runtime it was loaded through.
    pub fn runtime(&self) -> &WasmRuntime {
        &self.runtime
    }

    /// Host metadata of this generation: `component_digest` and `engine`.
    pub fn host_metadata(&self) -> Map {
        host_metadata(&self.core.digest)
    }
}

fn host_metadata(digest: &str) -> Map {
    let mut metadata = Map::new();
    metadata.insert("component_digest".to_owned(), Value::from(digest));
    metadata.insert("engine".to_owned(), Value::from(crate::ENGINE));
    metadata
}

/// Refuses bytes that are not a component before handing them to the compiler.
fn check_header(bytes: &[u8], digest: &str) -> Result<(), LoadError> {
    let not_a_component = |reason: &str| LoadError::NotAComponent {
        digest: digest.to_owned(),
        reason: reason.to_owned(),
    };
    if bytes.len() < 8 || !bytes.starts_with(b"\0asm") {
        return Err(not_a_component(
            "it does not start with the wasm magic number (\\0asm)",
        ));
    }
    match (bytes[6], bytes[7]) {
        (1, 0) => Ok(()),
        (0, 0) => Err(LoadError::CoreModule {
            digest: digest.to_owned(),
        }),
        (low, high) => Err(not_a_component(&format!(
            "unknown wasm binary layer {}",
            u16::from_le_bytes([low, high])
        ))),
    }
}

/// A fresh store and instance, with a pooled slot held for as long as the store lives.
pub(crate) struct Instance {
    pub(crate) store: Store<LaneState>,
    pub(crate) lane: Guest,
    pub(crate) _slot: OwnedSemaphorePermit,
}

impl LaneCore {
    /// Waits (until `deadline`) for an instance slot, then instantiates in a fresh store.
    pub(crate) async fn instantiate(
        &self,
        execution_ref: &ExecutionRef,
        deadline: Instant,
        timeout: Duration,
        egress: EgressScope,
    ) -> Result<Instance, Fault> {
        let slot = match timeout_at(deadline.into(), Arc::clone(&self.slots).acquire_owned()).await
        {
            Err(_) => {
                return Err(Fault::Deadline {
                    timeout,
                    phase: Phase::InstanceSlot,
                });
            }
            Ok(Err(_)) => {
                return Err(Fault::Instantiation {
                    message: "the wasm runtime is shutting down".to_owned(),
                });
            }
            Ok(Ok(slot)) => slot,
        };
        let who = Attribution {
            lane_id: Arc::clone(&self.lane_id),
            execution_ref: execution_ref.clone(),
        };
        let hooks = LaneHttpHooks::new(
            self.egress.clone(),
            egress.narrowing,
            deadline,
            Arc::clone(&egress.log.http),
            who.clone(),
        );
        let processes = ProcessState::new(
            self.processes.clone(),
            Arc::clone(&egress.log.process),
            who.clone(),
            egress.processes,
        );
        let state = LaneState::new(who, &self.limits, deadline, hooks, processes);
        let mut store = state.into_store(self.pre.engine(), &self.limits);
        self.instantiations.fetch_add(1, Ordering::Relaxed);
        let instantiated = timeout_at(deadline.into(), self.pre.instantiate(&mut store)).await;
        match instantiated {
            Err(_) => Err(Fault::Deadline {
                timeout,
                phase: Phase::Running,
            }),
            Ok(Err(error)) => Err(match classify(&error, store.data(), timeout) {
                fault @ Fault::Deadline { .. } => fault,
                _ => Fault::Instantiation {
                    message: crate::error::error_chain(&error, 2048),
                },
            }),
            Ok(Ok(lane)) => Ok(Instance {
                store,
                lane,
                _slot: slot,
            }),
        }
    }

    /// Instantiates once and calls `capabilities` (load-time probe).
    async fn probe(&self) -> Result<LaneCapabilities, LoadError> {
        let probe_error = |fault: Fault| {
            let failure = fault.failure("(probe)");
            LoadError::Probe {
                digest: self.digest.clone(),
                cause: fault.cause().to_owned(),
                message: failure
                    .details
                    .get("message")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .or(failure.reason)
                    .unwrap_or_default(),
            }
        };
        let timeout = self.limits.validate_timeout;
        let deadline = Instant::now() + timeout;
        let mut instance = self
            .instantiate(
                &ExecutionRef::from_string("probe"),
                deadline,
                timeout,
                EgressScope::nothing(),
            )
            .await
            .map_err(probe_error)?;
        let call = instance.lane.capabilities(&mut instance.store);
        let answer = timeout_at(deadline.into(), call).await;
        let raw = match answer {
            Err(_) => {
                return Err(probe_error(Fault::Deadline {
                    timeout,
                    phase: Phase::Running,
                }));
            }
            Ok(Err(error)) => {
                return Err(probe_error(classify(
                    &error,
                    instance.store.data(),
                    timeout,
                )));
            }
            Ok(Ok(raw)) => raw,
        };
        convert::capabilities(raw, &host_metadata(&self.digest)).map_err(|fault| {
            LoadError::BadCapabilities {
                digest: self.digest.clone(),
                message: match fault {
                    Fault::InvalidJson { message, .. } => message,
                    other => other.cause().to_owned(),
                },
            }
        })
    }

    /// Runs the guest's `validate` in an instance of its own (`LaneAdapter::validate`;
    /// `validate_and_execute` validates in the execution's instance), for at most the lane's
    /// `validate_timeout`.
    async fn validate(&self, request: &ExecutionRequest) -> Result<(), AdmissionRejection> {
        let timeout = self
            .limits
            .default_timeout
            .min(self.limits.max_timeout)
            .min(self.limits.validate_timeout);
        let deadline = Instant::now() + timeout;
        let wit = convert::wit_request(request, &self.lane_id, timeout);
        match self
            .instantiate(
                &request.execution_ref,
                deadline,
                timeout,
                EgressScope::nothing(),
            )
            .await
        {
            Err(fault) => Err(self.unvalidated(&fault)),
            Ok(mut instance) => self.call_validate(&mut instance, &wit, deadline).await,
        }
    }

    /// Calls the guest's `validate` in `instance`, closed to outbound HTTP and cut at
    /// `deadline`; then gives the store back the request's narrowing and deadline. A guest
    /// fault refuses the request (`invalid_lane_request` with the typed failure in details).
    async fn call_validate(
        &self,
        instance: &mut Instance,
        wit: &crate::bindings::types::ExecutionRequest,
        deadline: Instant,
    ) -> Result<(), AdmissionRejection> {
        let timeout = deadline.saturating_duration_since(Instant::now());
        let (narrowing, processes, execution_deadline) = instance.store.data_mut().enter_phase(
            Arc::new(RequestEgress::Nothing),
            false,
            deadline,
        );
        let call = instance.lane.validate(&mut instance.store, wit);
        let fault = match timeout_at(deadline.into(), call).await {
            Ok(Ok(Ok(()))) => {
                instance
                    .store
                    .data_mut()
                    .enter_phase(narrowing, processes, execution_deadline);
                return Ok(());
            }
            Ok(Ok(Err(rejection))) => return Err(convert::rejection(rejection)),
            Ok(Err(error)) => classify(&error, instance.store.data(), timeout),
            Err(_) => Fault::Deadline {
                timeout,
                phase: Phase::Running,
            },
        };
        Err(self.unvalidated(&fault))
    }

    /// The rejection of a request whose validation faulted.
    fn unvalidated(&self, fault: &Fault) -> AdmissionRejection {
        let failure = self.failure(fault);
        AdmissionRejection::new(
            RejectionReason::InvalidLaneRequest,
            format!(
                "lane {} could not validate the request: {}",
                self.lane_id,
                failure.reason.clone().unwrap_or_default()
            ),
        )
        .with_detail("cause", fault.cause())
        .with_detail("failure", failure.to_value())
    }

    /// The typed failure of `fault`, with the component digest in its details.
    pub(crate) fn failure(&self, fault: &Fault) -> ep_contracts::Failure {
        fault
            .failure(&self.lane_id)
            .with_detail("component_digest", self.digest.as_str())
    }

    /// The evidence entry attached to every result of this generation.
    fn evidence(
        &self,
        started: Instant,
        metrics: Option<&Map>,
        state: Option<&LaneState>,
    ) -> Value {
        json!({
            "kind": "wasm_lane.execution",
            "lane_id": &*self.lane_id,
            "component_digest": self.digest,
            "engine": crate::ENGINE,
            "duration_ms": started.elapsed().as_millis() as u64,
            "metrics": metrics.cloned().map_or(Value::Null, Value::Object),
            "dropped_log_lines": state.map_or(0, LaneState::dropped_log_lines),
        })
    }

    /// Runs `execute` to an `ExecutionResult` (never a panic, never an error). With
    /// `validate`, the guest's `validate` runs first in the same instance (under the validate
    /// deadline, closed to I/O), and a refusal is a `rejected` result: one instance per
    /// execution instead of two.
    async fn execute(
        &self,
        request: ExecutionRequest,
        ctx: ExecutionContext,
        validate: bool,
    ) -> Observed {
        if !self.executes {
            let rejection = AdmissionRejection::new(
                RejectionReason::NotSupported,
                format!(
                    "lane {} is a streaming lane and does not execute; open a stream instead \
                     (POST /v1/stream, `execution-plane exec --stream`)",
                    self.lane_id
                ),
            )
            .with_detail("lane_id", &*self.lane_id);
            let result = rejected_result(request.execution_ref, request.provenance, &rejection);
            return Observed::answered(result);
        }
        let started = Instant::now();
        let timeout = convert::timeout_for(&ctx, &self.limits);
        let deadline = started + timeout;
        let wit = convert::wit_request(&request, &self.lane_id, timeout);
        let scope = EgressScope::of(&request);
        let log = Arc::clone(&scope.log);
        let work = async {
            let _turn = match timeout_at(deadline.into(), self.gate.enter()).await {
                Err(_) => {
                    return Run::fault(Fault::Deadline {
                        timeout,
                        phase: Phase::Queued,
                    });
                }
                Ok(Err(saturated)) => {
                    return Run::fault(Fault::Saturated {
                        max_concurrent: saturated.max_concurrent,
                        max_queued: saturated.max_queued,
                    });
                }
                Ok(Ok(turn)) => turn,
            };
            let mut instance = match self
                .instantiate(&request.execution_ref, deadline, timeout, scope.clone())
                .await
            {
                Ok(instance) => instance,
                Err(fault) => return Run::fault(fault),
            };
            if validate {
                let validate_by = deadline.min(started + self.limits.validate_timeout);
                if let Err(rejection) = self.call_validate(&mut instance, &wit, validate_by).await {
                    return Run::refused(rejection);
                }
            }
            let call = instance.lane.execute(&mut instance.store, &wit);
            let answer = timeout_at(deadline.into(), call).await;
            let answer = match answer {
                Ok(Ok(raw)) => convert::outcome(raw),
                Ok(Err(error)) => Err(classify(&error, instance.store.data(), timeout)),
                Err(_) => Err(Fault::Deadline {
                    timeout,
                    phase: Phase::Running,
                }),
            };
            let events = instance.store.data_mut().caps.events.drain();
            Run {
                answer: Answer::Ran(answer),
                events,
                state: Some(instance.store.into_data()),
            }
        };
        let run = tokio::select! {
            biased;
            () = ctx.cancel.cancelled() => Run::fault(Fault::Cancelled),
            run = work => run,
        };
        self.result(request, started, run, &log, &ctx.evidence)
    }

    fn result(
        &self,
        request: ExecutionRequest,
        started: Instant,
        run: Run,
        log: &ExecutionLog,
        evidence: &LaneEvidence,
    ) -> Observed {
        let Run {
            answer,
            events,
            state,
        } = run;
        let answer = match answer {
            Answer::Refused(rejection) => {
                let result = rejected_result(request.execution_ref, request.provenance, &rejection);
                return Observed::answered(result);
            }
            Answer::Ran(answer) => answer,
        };
        let mut result = ExecutionResult {
            execution_ref: request.execution_ref,
            provenance: request.provenance,
            events,
            ..ExecutionResult::default()
        };
        let mut fault_cause = None;
        match answer {
            Ok(outcome) => {
                result.evidence =
                    vec![self.evidence(started, Some(&outcome.metrics), state.as_ref())];
                result.output = outcome.output;
                result.status = if outcome.succeeded {
                    ResultStatus::Succeeded
                } else {
                    ResultStatus::Failed
                };
                result.error = outcome.failure.map(|failure| failure.to_value());
            }
            Err(fault) => {
                tracing::debug!(
                    lane_id = &*self.lane_id,
                    execution_ref = result.execution_ref.as_str(),
                    cause = fault.cause(),
                    "wasm execution failed"
                );
                let mut entry = self.evidence(started, None, state.as_ref());
                entry["fault"] = Value::from(fault.cause());
                result.evidence = vec![entry];
                // Hot swap counts these per generation (`crate::generation`).
                fault_cause = Some(fault.cause());
                result.status = ResultStatus::Failed;
                result.error = Some(self.failure(&fault).to_value());
            }
        }
        if self.egress.is_some() {
            let entry = result.evidence.first_mut().and_then(Value::as_object_mut);
            crate::capability::http::report(&log.http, entry, evidence);
        }
        if let Some(egress) = &self.egress
            && egress.grants.has_websocket()
        {
            let entry = result.evidence.first_mut().and_then(Value::as_object_mut);
            crate::capability::websocket::report(&log.http, entry);
        }
        if self.processes.is_some() {
            let entry = result.evidence.first_mut().and_then(Value::as_object_mut);
            crate::capability::process::report(&log.process, entry, evidence);
        }
        Observed {
            result,
            fault: fault_cause,
        }
    }
}

/// A result with the host fault that ended it, if one did (what hot swap counts against a
/// generation), as a typed value beside the result.
#[derive(Debug)]
pub(crate) struct Observed {
    pub(crate) result: ExecutionResult,
    /// The fault's `details.cause` (`trap`, `memory_limit`, ...).
    pub(crate) fault: Option<&'static str>,
}

impl Observed {
    fn answered(result: ExecutionResult) -> Self {
        Self {
            result,
            fault: None,
        }
    }
}

/// What one execution produced.
struct Run {
    answer: Answer,
    events: Vec<ExecutionEvent>,
    state: Option<LaneState>,
}

/// Whether the guest ran the request, and how that went.
enum Answer {
    /// Its `validate` refused the request.
    Refused(AdmissionRejection),
    /// It ran (or faulted trying).
    Ran(Result<convert::Outcome, Fault>),
}

impl Run {
    fn fault(fault: Fault) -> Self {
        Self {
            answer: Answer::Ran(Err(fault)),
            events: Vec::new(),
            state: None,
        }
    }

    fn refused(rejection: AdmissionRejection) -> Self {
        Self {
            answer: Answer::Refused(rejection),
            events: Vec::new(),
            state: None,
        }
    }
}

impl WasmLane {
    /// Runs the request (the guest's `validate` first when `validate`), answering the host
    /// fault that ended it beside the result.
    pub(crate) async fn run_observed(
        &self,
        request: ExecutionRequest,
        ctx: ExecutionContext,
        validate: bool,
    ) -> Observed {
        self.core.execute(request, ctx, validate).await
    }
}

#[async_trait]
impl LaneAdapter for WasmLane {
    fn lane_id(&self) -> &str {
        &self.core.lane_id
    }

    fn capabilities(&self) -> LaneCapabilities {
        self.capabilities.clone()
    }

    /// Runs the guest's `validate` in a fresh store, for at most the lane's
    /// `validate_timeout`. A guest fault refuses the request as `invalid_lane_request` with
    /// `details.cause` and the typed `details.failure`.
    async fn validate(&self, request: &ExecutionRequest) -> Result<(), AdmissionRejection> {
        self.core.validate(request).await
    }

    async fn execute(&self, request: ExecutionRequest, ctx: ExecutionContext) -> ExecutionResult {
        self.core.execute(request, ctx, false).await.result
    }

    /// Validates and executes in one fresh store: the guest's `validate` then its `execute`.
    async fn validate_and_execute(
        &self,
        request: ExecutionRequest,
        ctx: ExecutionContext,
    ) -> ExecutionResult {
        self.core.execute(request, ctx, true).await.result
    }

    async fn stream(
        &self,
        request: ExecutionRequest,
        ctx: ExecutionContext,
    ) -> Result<EventStream, AdmissionRejection> {
        crate::stream::open(Arc::clone(&self.core), request, ctx).await
    }
}
