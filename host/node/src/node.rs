//! The node: registration tables (lanes, verifiers, sinks, the authority verifier, verified
//! targets and their client bindings) and the routing-table admission of targets
//! (`connect_target`). Admission lives in [`crate::admission`], dispatch and cancel in
//! [`crate::dispatch`], evidence in [`crate::evidence`].
//!
//! Every table sits behind a short-lived `std` lock: a lock is taken to read or swap entries and
//! released before any `.await`, so no lane, verifier, client or sink ever runs while a lock is
//! held and any number of executions proceed in parallel.
//!
//! ```
//! use std::sync::Arc;
//! use ep_node::node::Node;
//! use ep_node::sinks::memory::MemorySink;
//!
//! let node = Node::new("node-docs");
//! node.register_evidence_sink(Arc::new(MemorySink::new("memory")));
//! node.complete_registration();
//! assert!(node.describe().registration_complete);
//! ```

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{
    Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard, Weak,
};

use chrono::{DateTime, Utc};
use ep_contracts::boundary::{
    AdmissionRejection, LaneCapabilities, NodeDescriptor, RejectionReason, TargetAttestation,
    TargetDescriptor, VerifierSummary,
};
use ep_contracts::inspect::inspect;

use crate::execution::{ExecutionRecord, PendingRecords};
use crate::local_client::InProcessTargetClient;
use crate::traits::{
    AuthorityVerifier, ConnectOptions, EvidenceSink, LaneAdapter, TargetClient, TargetVerifier,
};

/// How many completed executions the node remembers for `cancel` unless the builder says
/// otherwise.
pub const DEFAULT_RECENT_EXECUTIONS: usize = 4096;

/// How long `shutdown` waits for records still being written before it flushes.
const SHUTDOWN_RECORD_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// A node host: registration tables plus admission, dispatch and evidence. Cheap to clone (all
/// clones share the same tables).
#[derive(Clone)]
pub struct Node {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("node_id", &self.inner.node_id)
            .finish_non_exhaustive()
    }
}

/// A handle that does not keep its [`Node`] alive: for parts the node itself holds (a lane that
/// records its own transitions as evidence), so no reference cycle outlives the node.
#[derive(Clone)]
pub struct WeakNode {
    inner: Weak<Inner>,
}

impl std::fmt::Debug for WeakNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WeakNode")
            .field("alive", &(self.inner.strong_count() > 0))
            .finish()
    }
}

impl WeakNode {
    /// The node, while any [`Node`] clone still exists.
    pub fn upgrade(&self) -> Option<Node> {
        self.inner.upgrade().map(|inner| Node { inner })
    }
}

/// The shared state behind every clone of a [`Node`].
pub(crate) struct Inner {
    pub(crate) node_id: String,
    pub(crate) registry: RwLock<Registry>,
    pub(crate) executions: Mutex<ExecutionTable>,
    /// The built-in client direct lower-lane-owner executions run through.
    pub(crate) direct_client: Arc<InProcessTargetClient>,
    /// Evidence records being written off the request path (an execution whose reader went
    /// away), which `shutdown` waits for before it flushes.
    pub(crate) pending: Arc<PendingRecords>,
}

/// The registration tables.
#[derive(Default)]
pub(crate) struct Registry {
    /// lane_id → adapter; re-registering a lane id replaces it.
    pub(crate) lanes: BTreeMap<String, Arc<dyn LaneAdapter>>,
    /// In registration order (the first that handles an attestation verifies it); an id
    /// registered again replaces the earlier one in place.
    pub(crate) target_verifiers: Vec<(String, Arc<dyn TargetVerifier>)>,
    /// In registration order; an id registered again replaces the earlier one in place.
    pub(crate) evidence_sinks: Vec<(String, Arc<dyn EvidenceSink>)>,
    /// The one authority verifier (replaceable).
    pub(crate) authority_verifier: Option<(String, Arc<dyn AuthorityVerifier>)>,
    pub(crate) registration_complete: bool,
    /// target_id → verified target, iterated in ascending target_id.
    pub(crate) targets: BTreeMap<String, TargetEntry>,
}

/// A verified target: its descriptor, the client bound to it and its parsed expiry.
#[derive(Clone)]
pub(crate) struct TargetEntry {
    pub(crate) descriptor: TargetDescriptor,
    pub(crate) client: Arc<dyn TargetClient>,
    pub(crate) expires_at: Option<DateTime<Utc>>,
}

impl TargetEntry {
    /// Whether the descriptor may still route at `now`.
    pub(crate) fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_none_or(|at| now < at)
    }
}

/// Running executions plus a bounded memory of recently completed ones (see
/// [`NodeBuilder::recent_executions`]).
pub(crate) struct ExecutionTable {
    pub(crate) running: HashMap<String, ExecutionRecord>,
    pub(crate) recent: HashMap<String, ExecutionRecord>,
    pub(crate) recent_order: VecDeque<String>,
    pub(crate) recent_capacity: usize,
}

impl ExecutionTable {
    fn new(recent_capacity: usize) -> Self {
        Self {
            running: HashMap::new(),
            recent: HashMap::new(),
            recent_order: VecDeque::new(),
            recent_capacity,
        }
    }

    /// Records a running execution.
    pub(crate) fn start(&mut self, reference: String, record: ExecutionRecord) {
        self.running.insert(reference, record);
    }

    /// Moves a running execution into the recent set, forgetting the oldest beyond capacity.
    pub(crate) fn finish(&mut self, reference: &str) {
        let Some(record) = self.running.remove(reference) else {
            return;
        };
        if self.recent_capacity == 0 {
            return;
        }
        while self.recent_order.len() >= self.recent_capacity {
            match self.recent_order.pop_front() {
                Some(oldest) => {
                    self.recent.remove(&oldest);
                }
                None => break,
            }
        }
        self.recent_order.push_back(reference.to_owned());
        self.recent.insert(reference.to_owned(), record);
    }

    /// The record of a running or recently completed execution.
    pub(crate) fn lookup(&self, reference: &str) -> Option<ExecutionRecord> {
        self.running
            .get(reference)
            .or_else(|| self.recent.get(reference))
            .cloned()
    }
}

/// Builds a [`Node`] (node id and how many completed executions stay cancellable).
#[derive(Debug, Clone)]
#[must_use]
pub struct NodeBuilder {
    node_id: Option<String>,
    recent_executions: usize,
}

impl Default for NodeBuilder {
    fn default() -> Self {
        Self {
            node_id: None,
            recent_executions: DEFAULT_RECENT_EXECUTIONS,
        }
    }
}

impl NodeBuilder {
    /// Sets the node id (default `node-<unix_ms>`, as upstream).
    pub fn node_id(mut self, node_id: impl Into<String>) -> Self {
        self.node_id = Some(node_id.into());
        self
    }

    /// How many ended executions stay known to `cancel` (default 4096), which then answers
    /// `execution_ended` instead of `unknown_execution_ref`. Running executions are always
    /// known; beyond this many ended ones the oldest are forgotten, so the table never grows
    /// without bound.
    pub fn recent_executions(mut self, count: usize) -> Self {
        self.recent_executions = count;
        self
    }

    /// Builds the node with empty tables and registration not complete.
    pub fn build(self) -> Node {
        let node_id = self
            .node_id
            .unwrap_or_else(|| format!("node-{}", ep_contracts::ids::unix_ms()));
        Node {
            inner: Arc::new_cyclic(|weak| Inner {
                node_id,
                registry: RwLock::new(Registry::default()),
                executions: Mutex::new(ExecutionTable::new(self.recent_executions)),
                direct_client: Arc::new(InProcessTargetClient::bound(WeakNode {
                    inner: weak.clone(),
                })),
                pending: Arc::default(),
            }),
        }
    }
}

impl Default for Node {
    /// A node with the upstream default id `node-<unix_ms>`.
    fn default() -> Self {
        NodeBuilder::default().build()
    }
}

impl Node {
    /// A node with `node_id` and default settings.
    pub fn new(node_id: impl Into<String>) -> Self {
        NodeBuilder::default().node_id(node_id).build()
    }

    /// A builder for the less common knobs.
    pub fn builder() -> NodeBuilder {
        NodeBuilder::default()
    }

    /// The node id reported by `describe` (and the audience authority refs name).
    pub fn node_id(&self) -> &str {
        &self.inner.node_id
    }

    /// A [`WeakNode`] for parts the node holds that need to reach it back.
    ///
    /// ```
    /// use ep_node::node::Node;
    ///
    /// let node = Node::new("node-docs");
    /// let weak = node.downgrade();
    /// assert_eq!(weak.upgrade().map(|n| n.node_id().to_owned()).as_deref(), Some("node-docs"));
    /// drop(node);
    /// assert!(weak.upgrade().is_none());
    /// ```
    pub fn downgrade(&self) -> WeakNode {
        WeakNode {
            inner: Arc::downgrade(&self.inner),
        }
    }

    pub(crate) fn read_registry(&self) -> RwLockReadGuard<'_, Registry> {
        // A panic elsewhere never leaves the tables half-written (every write is a single
        // insert or swap), so a poisoned lock is safe to keep using.
        self.inner
            .registry
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn write_registry(&self) -> RwLockWriteGuard<'_, Registry> {
        self.inner
            .registry
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn executions(&self) -> MutexGuard<'_, ExecutionTable> {
        self.inner
            .executions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a lane under its `lane_id()`; a lane with the same id is replaced.
    pub fn register_lane(&self, lane: Arc<dyn LaneAdapter>) {
        let lane_id = lane.lane_id().to_owned();
        tracing::debug!(lane_id, "lane registered");
        self.write_registry().lanes.insert(lane_id, lane);
    }

    /// The lane registered under `lane_id` now.
    pub(crate) fn lane(&self, lane_id: &str) -> Option<Arc<dyn LaneAdapter>> {
        self.read_registry().lanes.get(lane_id).map(Arc::clone)
    }

    /// A new in-process target running this node's registered lanes (what
    /// [`ep_lane_api::LaneHost::connect_in_process`] routes a target to).
    pub fn in_process_client(&self) -> Arc<InProcessTargetClient> {
        Arc::new(InProcessTargetClient::bound(self.downgrade()))
    }

    /// Whether a lane `lane_id` is registered now (a host that loads lanes while it serves
    /// tells "still loading" from "never served" with it).
    pub fn has_lane(&self, lane_id: &str) -> bool {
        self.read_registry().lanes.contains_key(lane_id)
    }

    /// Unregisters the lane `lane_id` (a lane the host stops serving); whether one was
    /// registered. Executions already admitted to it finish; later requests for it are refused
    /// as `lane_not_registered`.
    pub fn unregister_lane(&self, lane_id: &str) -> bool {
        tracing::debug!(lane_id, "lane unregistered");
        self.write_registry().lanes.remove(lane_id).is_some()
    }

    /// Removes the target `target_id` from the routing table (no request is routed to it any
    /// more, and `describe` no longer lists it); whether it was there.
    pub fn disconnect_target(&self, target_id: &str) -> bool {
        tracing::debug!(target_id, "target disconnected");
        self.write_registry().targets.remove(target_id).is_some()
    }

    /// Registers a target verifier; verifiers are consulted in registration order and an id
    /// registered again replaces the earlier verifier in its place.
    pub fn register_target_verifier(&self, verifier: Arc<dyn TargetVerifier>) {
        let id = verifier.verifier_id().to_owned();
        tracing::debug!(verifier_id = id, "target verifier registered");
        upsert(&mut self.write_registry().target_verifiers, id, verifier);
    }

    /// Registers an evidence sink; every evidence record goes to every sink.
    pub fn register_evidence_sink(&self, sink: Arc<dyn EvidenceSink>) {
        let id = sink.sink_id().to_owned();
        tracing::debug!(sink_id = id, "evidence sink registered");
        upsert(&mut self.write_registry().evidence_sinks, id, sink);
    }

    /// Sets the authority verifier governed admission uses (replacing any earlier one).
    pub fn register_authority_verifier(&self, verifier: Arc<dyn AuthorityVerifier>) {
        let id = verifier.verifier_id().to_owned();
        tracing::debug!(verifier_id = id, "authority verifier registered");
        self.write_registry().authority_verifier = Some((id, verifier));
    }

    /// Marks registration complete: governed admission is refused until then. No checks are
    /// made and registration calls stay accepted afterwards (as upstream).
    pub fn complete_registration(&self) {
        self.write_registry().registration_complete = true;
    }

    /// Admits a target into the routing table: the first registered verifier whose `handles`
    /// is true verifies the attestation, and its descriptor is stored under its `target_id`
    /// (replacing any target with that id) with `client` as the target's binding.
    ///
    /// Claims in the attestation are never trusted; only the descriptor counts. Hardening
    /// beyond upstream, each refused as `target_attestation_unverifiable`:
    /// * the descriptor's `verifier_id` must be the id of the verifier that minted it;
    /// * the descriptor's classes must all be among the verifier's `capability_classes`
    ///   (the message names the extra classes);
    /// * `expires_at`, when present, must be RFC 3339 and still in the future.
    ///
    /// A target whose descriptor expires after connecting stays in the table but never routes
    /// again and is no longer listed by `describe`. The lane need not be registered yet.
    pub async fn connect_target(
        &self,
        attestation: TargetAttestation,
        client: Arc<dyn TargetClient>,
        options: ConnectOptions,
    ) -> Result<TargetDescriptor, AdmissionRejection> {
        let verifier = self.verifier_for(&attestation)?;
        let descriptor = verifier.verify(&attestation, &options).await?;
        check_descriptor_verifier(&descriptor, verifier.as_ref())?;
        check_descriptor_classes(&descriptor, verifier.as_ref())?;
        let expires_at = check_descriptor_expiry(&descriptor, Utc::now())?;
        tracing::debug!(
            target_id = descriptor.target_id,
            lane_id = descriptor.lane_id,
            verifier_id = descriptor.verifier_id,
            "target connected"
        );
        let entry = TargetEntry {
            descriptor: descriptor.clone(),
            client,
            expires_at,
        };
        self.write_registry()
            .targets
            .insert(descriptor.target_id.clone(), entry);
        Ok(descriptor)
    }

    /// [`Node::connect_target`] with the node's own in-process target, which runs each
    /// request on the lane registered under its lane id.
    pub async fn connect_in_process(
        &self,
        attestation: TargetAttestation,
        options: ConnectOptions,
    ) -> Result<TargetDescriptor, AdmissionRejection> {
        self.connect_target(attestation, self.in_process_client(), options)
            .await
    }

    fn verifier_for(
        &self,
        attestation: &TargetAttestation,
    ) -> Result<Arc<dyn TargetVerifier>, AdmissionRejection> {
        let verifiers: Vec<Arc<dyn TargetVerifier>> = self
            .read_registry()
            .target_verifiers
            .iter()
            .map(|(_, v)| Arc::clone(v))
            .collect();
        verifiers
            .into_iter()
            .find(|v| v.handles(attestation))
            .ok_or_else(|| {
                let kind = attestation.attestation_type.as_deref().unwrap_or("nil");
                unverifiable(format!(
                    "no target verifier handles attestation type {}",
                    inspect_str(kind)
                ))
            })
    }

    /// What the node is and can run: lanes (capabilities with `lane_id` set to the
    /// registration key, ascending), target verifiers (registration order), verified targets
    /// that can still route (ascending target id), the authority verifier id, the registration
    /// flag and the contract range `{min: 1, max: 1}`.
    pub fn describe(&self) -> NodeDescriptor {
        let (lanes, verifiers, targets, authority, complete) = {
            let registry = self.read_registry();
            let now = Utc::now();
            (
                registry
                    .lanes
                    .iter()
                    .map(|(id, lane)| (id.clone(), Arc::clone(lane)))
                    .collect::<Vec<_>>(),
                registry
                    .target_verifiers
                    .iter()
                    .map(|(id, v)| (id.clone(), Arc::clone(v)))
                    .collect::<Vec<_>>(),
                registry
                    .targets
                    .values()
                    .filter(|t| t.is_live(now))
                    .map(|t| t.descriptor.clone())
                    .collect::<Vec<_>>(),
                registry
                    .authority_verifier
                    .as_ref()
                    .map(|(id, _)| id.clone()),
                registry.registration_complete,
            )
        };
        NodeDescriptor {
            node_id: Some(self.inner.node_id.clone()),
            registered_lanes: lanes
                .into_iter()
                .map(|(id, lane)| LaneCapabilities {
                    lane_id: Some(id),
                    ..lane.capabilities()
                })
                .collect(),
            registered_target_verifiers: verifiers
                .into_iter()
                .map(|(id, v)| VerifierSummary {
                    verifier_id: id,
                    attestation_types: v.attestation_types(),
                    capability_classes: v.capability_classes(),
                })
                .collect(),
            verified_targets: targets,
            authority_verifier: authority,
            registration_complete: complete,
            ..NodeDescriptor::default()
        }
    }

    /// Waits (up to 10 s) for the records of executions that ended off the request path, then
    /// flushes every evidence sink (all of them, even after a failure) and returns the first
    /// error. Call it before the process exits so durable sinks lose nothing.
    pub async fn shutdown(&self) -> Result<(), crate::error::SinkError> {
        if !self.inner.pending.settle(SHUTDOWN_RECORD_WAIT).await {
            tracing::warn!(
                pending = self.inner.pending.count(),
                "evidence records still being written at shutdown; flushing without them"
            );
        }
        let sinks = self.sinks();
        let mut first_error = None;
        for sink in sinks {
            if let Err(error) = sink.flush().await {
                tracing::warn!(sink_id = sink.sink_id(), %error, "evidence sink flush failed");
                first_error.get_or_insert(error);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// A snapshot of the registered sinks, in registration order.
    pub(crate) fn sinks(&self) -> Vec<Arc<dyn EvidenceSink>> {
        self.read_registry()
            .evidence_sinks
            .iter()
            .map(|(_, s)| Arc::clone(s))
            .collect()
    }
}

fn upsert<T: ?Sized>(entries: &mut Vec<(String, Arc<T>)>, id: String, value: Arc<T>) {
    match entries.iter_mut().find(|(existing, _)| *existing == id) {
        Some(slot) => slot.1 = value,
        None => entries.push((id, value)),
    }
}

fn unverifiable(message: String) -> AdmissionRejection {
    AdmissionRejection::new(RejectionReason::TargetAttestationUnverifiable, message)
}

fn inspect_str(s: &str) -> String {
    inspect(&serde_json::Value::String(s.to_owned()))
}

/// A descriptor must name the verifier that minted it.
fn check_descriptor_verifier(
    descriptor: &TargetDescriptor,
    verifier: &dyn TargetVerifier,
) -> Result<(), AdmissionRejection> {
    if descriptor.verifier_id == verifier.verifier_id() {
        return Ok(());
    }
    Err(unverifiable(format!(
        "descriptor verifier_id {} does not match verifier {}",
        inspect_str(&descriptor.verifier_id),
        inspect_str(verifier.verifier_id())
    ))
    .with_detail("verifier_id", verifier.verifier_id()))
}

/// A descriptor may only carry classes its verifier can attest.
fn check_descriptor_classes(
    descriptor: &TargetDescriptor,
    verifier: &dyn TargetVerifier,
) -> Result<(), AdmissionRejection> {
    let allowed = verifier.capability_classes();
    let extra: Vec<String> = descriptor
        .attested_capability_classes
        .iter()
        .filter(|c| !allowed.contains(c))
        .cloned()
        .collect();
    if extra.is_empty() {
        return Ok(());
    }
    Err(unverifiable(format!(
        "verifier {} cannot attest classes {}",
        inspect_str(verifier.verifier_id()),
        inspect(&serde_json::Value::from(extra.clone()))
    ))
    .with_detail("unattested_classes", extra))
}

/// A descriptor's `expires_at`, when present, must parse and lie in the future.
fn check_descriptor_expiry(
    descriptor: &TargetDescriptor,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, AdmissionRejection> {
    let Some(raw) = descriptor.expires_at.as_deref() else {
        return Ok(None);
    };
    let at = DateTime::parse_from_rfc3339(raw)
        .map_err(|_| {
            unverifiable(format!(
                "descriptor expires_at is not an RFC 3339 time: {}",
                inspect_str(raw)
            ))
        })?
        .with_timezone(&Utc);
    if at <= now {
        return Err(unverifiable(format!(
            "descriptor for target {} expired at {}",
            inspect_str(&descriptor.target_id),
            inspect_str(raw)
        )));
    }
    Ok(Some(at))
}
