//! Prometheus metrics (`GET /metrics`). Counters of what the node did are fed by an
//! [`EvidenceSink`] ([`MetricsSink`]) from the very records the node emits, so every path
//! (API, in-process callers, lane transitions from the plugin watch) is counted the same way and
//! nothing is counted twice. The same sink remembers which executions are running, which the
//! shutdown drain needs to cancel the ones that outlive it.
//!
//! Gauges that describe the present (lane generations, queue depths, in-flight counts, wasm
//! instantiations) are read when scraped.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use ep_contracts::boundary::Evidence;
use ep_node::{EvidenceSink, SinkError};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use serde_json::Value;

use crate::api::LaneStatus;

/// Label pairs of one series.
type Labels = Vec<(String, String)>;

/// The id the metrics sink registers under.
pub const METRICS_SINK_ID: &str = "ep-server-metrics";

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn latency_histogram() -> Histogram {
    // 1 ms .. ~65 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

/// Every metric the service exports.
pub struct Metrics {
    registry: Registry,
    admissions: Family<Labels, Counter>,
    executions: Family<Labels, Counter>,
    latency: Family<Labels, Histogram, fn() -> Histogram>,
    cancellations: Family<Labels, Counter>,
    grant_denials: Family<Labels, Counter>,
    lane_transitions: Family<Labels, Counter>,
    lane_generation: Family<Labels, Gauge>,
    lane_queue: Family<Labels, Gauge>,
    in_flight: Family<Labels, Gauge>,
    requests: Family<Labels, Counter>,
    wasm_instantiations: Counter,
    instantiations_seen: AtomicU64,
    /// Running executions by ref: when they started and their lane.
    running: Mutex<HashMap<String, (Instant, String)>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// A registry with every metric registered at zero.
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::with_prefix("ep");
        let admissions = Family::<Labels, Counter>::default();
        registry.register(
            "admissions",
            "Admission decisions by outcome (accepted, rejected) and rejection reason",
            admissions.clone(),
        );
        let executions = Family::<Labels, Counter>::default();
        registry.register(
            "executions",
            "Executions ended, by lane, kind (execute, stream) and result status",
            executions.clone(),
        );
        let latency =
            Family::<Labels, Histogram, fn() -> Histogram>::new_with_constructor(latency_histogram);
        registry.register(
            "execution_duration_seconds",
            "Execution latency from dispatch to result, by lane and kind",
            latency.clone(),
        );
        let cancellations = Family::<Labels, Counter>::default();
        registry.register(
            "cancellations",
            "execution.cancelled records, by cause (request, client_disconnected, shutdown)",
            cancellations.clone(),
        );
        let grant_denials = Family::<Labels, Counter>::default();
        registry.register(
            "grant_denials",
            "Capability requests a lane's grants refused, by lane, capability and reason",
            grant_denials.clone(),
        );
        let lane_transitions = Family::<Labels, Counter>::default();
        registry.register(
            "lane_transitions",
            "Lane transitions (lane.activated, lane.rejected, lane.rolled_back, lane.reinstated, \
             lane.retired) by lane",
            lane_transitions.clone(),
        );
        let lane_generation = Family::<Labels, Gauge>::default();
        registry.register(
            "lane_generation",
            "The generation number serving each hot-swappable lane, labelled with its digest",
            lane_generation.clone(),
        );
        let lane_queue = Family::<Labels, Gauge>::default();
        registry.register(
            "lane_queue_depth",
            "Executions waiting for a turn in each lane's concurrency gate",
            lane_queue.clone(),
        );
        let in_flight = Family::<Labels, Gauge>::default();
        registry.register(
            "executions_in_flight",
            "Executions running now, by kind (execute, stream)",
            in_flight.clone(),
        );
        let requests = Family::<Labels, Counter>::default();
        registry.register(
            "http_requests",
            "API requests answered, by route and status code",
            requests.clone(),
        );
        let wasm_instantiations = Counter::default();
        registry.register(
            "wasm_instantiations",
            "Wasm component instances created (one per execution, stream, probe or validate)",
            wasm_instantiations.clone(),
        );
        Arc::new(Self {
            registry,
            admissions,
            executions,
            latency,
            cancellations,
            grant_denials,
            lane_transitions,
            lane_generation,
            lane_queue,
            in_flight,
            requests,
            wasm_instantiations,
            instantiations_seen: AtomicU64::new(0),
            running: Mutex::new(HashMap::new()),
        })
    }

    fn running(&self) -> MutexGuard<'_, HashMap<String, (Instant, String)>> {
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The sink that feeds these metrics from the node's evidence.
    pub fn sink(self: &Arc<Self>) -> MetricsSink {
        MetricsSink {
            metrics: Arc::clone(self),
        }
    }

    /// Refs of the unary executions running now (started, not completed).
    pub fn running_executions(&self) -> Vec<String> {
        self.running().keys().cloned().collect()
    }

    /// How many unary executions are running now.
    pub fn executions_in_flight(&self) -> usize {
        self.running().len()
    }

    /// Counts one API answer.
    pub fn count_request(&self, route: &str, status: u16) {
        self.requests
            .get_or_create(&labels(&[
                ("route", route),
                ("status", &status.to_string()),
            ]))
            .inc();
    }

    /// Counts a stream that ended, with its status and duration.
    pub fn count_stream(&self, lane: &str, status: &str, duration: Duration) {
        self.executions
            .get_or_create(&labels(&[
                ("lane", lane),
                ("kind", "stream"),
                ("status", status),
            ]))
            .inc();
        self.latency
            .get_or_create(&labels(&[("lane", lane), ("kind", "stream")]))
            .observe(duration.as_secs_f64());
    }

    /// Updates the metrics from one evidence record.
    pub fn observe(&self, evidence: &Evidence) {
        let kind = evidence.evidence_type.as_deref().unwrap_or_default();
        let lane = evidence.lane_id.as_deref().unwrap_or_default();
        let text = |key: &str| {
            evidence
                .payload
                .get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        // Streams are counted by the API when they end (`count_stream`), with their own
        // statuses; the node's records of them are not unary executions.
        let is_stream = text("kind") == "stream";
        match kind {
            "execution.started" | "execution.completed" if is_stream => {}
            "admission.accepted" => {
                self.admissions
                    .get_or_create(&labels(&[("outcome", "accepted"), ("reason", "")]))
                    .inc();
            }
            "admission.rejected" => {
                self.admissions
                    .get_or_create(&labels(&[
                        ("outcome", "rejected"),
                        ("reason", &text("reason")),
                    ]))
                    .inc();
            }
            "execution.started" => {
                if let Some(reference) = &evidence.execution_ref {
                    self.running().insert(
                        reference.as_str().to_owned(),
                        (Instant::now(), lane.to_owned()),
                    );
                }
            }
            "execution.completed" => {
                let started = evidence
                    .execution_ref
                    .as_ref()
                    .and_then(|r| self.running().remove(r.as_str()));
                self.executions
                    .get_or_create(&labels(&[
                        ("lane", lane),
                        ("kind", "execute"),
                        ("status", &text("status")),
                    ]))
                    .inc();
                if let Some((at, _)) = started {
                    self.latency
                        .get_or_create(&labels(&[("lane", lane), ("kind", "execute")]))
                        .observe(at.elapsed().as_secs_f64());
                }
            }
            "execution.cancelled" => {
                let cause = evidence
                    .payload
                    .get("cause")
                    .and_then(Value::as_str)
                    .unwrap_or("request");
                self.cancellations
                    .get_or_create(&labels(&[("cause", cause)]))
                    .inc();
            }
            "capability.denied" => {
                self.grant_denials
                    .get_or_create(&labels(&[
                        ("lane", lane),
                        ("capability", &text("capability")),
                        ("reason", &text("reason")),
                    ]))
                    .inc();
            }
            "lane.activated" | "lane.rejected" | "lane.rolled_back" | "lane.reinstated"
            | "lane.retired" => {
                self.lane_transitions
                    .get_or_create(&labels(&[("lane", lane), ("transition", kind)]))
                    .inc();
            }
            _ => {}
        }
    }

    /// The Prometheus text of every metric, with the present-state gauges read now.
    pub fn encode(
        &self,
        lanes: &[LaneStatus],
        streams_in_flight: usize,
        wasm_instantiations: Option<u64>,
    ) -> String {
        self.lane_generation.clear();
        self.lane_queue.clear();
        for lane in lanes {
            let generation = i64::try_from(lane.generation).unwrap_or(i64::MAX);
            self.lane_generation
                .get_or_create(&labels(&[
                    ("lane", &lane.lane_id),
                    ("digest", &lane.digest),
                ]))
                .set(generation);
            self.lane_queue
                .get_or_create(&labels(&[("lane", &lane.lane_id)]))
                .set(i64::try_from(lane.queued).unwrap_or(i64::MAX));
        }
        let as_i64 = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        self.in_flight
            .get_or_create(&labels(&[("kind", "execute")]))
            .set(as_i64(self.executions_in_flight()));
        self.in_flight
            .get_or_create(&labels(&[("kind", "stream")]))
            .set(as_i64(streams_in_flight));
        if let Some(now) = wasm_instantiations {
            let before = self.instantiations_seen.swap(now, Ordering::SeqCst);
            self.wasm_instantiations.inc_by(now.saturating_sub(before));
        }
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut text, &self.registry);
        text
    }
}

/// Feeds [`Metrics`] from the node's evidence (registered as sink [`METRICS_SINK_ID`]).
#[derive(Debug, Clone)]
pub struct MetricsSink {
    metrics: Arc<Metrics>,
}

#[async_trait]
impl EvidenceSink for MetricsSink {
    fn sink_id(&self) -> &str {
        METRICS_SINK_ID
    }

    async fn emit(&self, evidence: &Evidence) -> Result<(), SinkError> {
        self.metrics.observe(evidence);
        if evidence.evidence_type.as_deref() == Some("execution.started") {
            annotate_span(evidence);
        }
        Ok(())
    }

    async fn flush(&self) -> Result<(), SinkError> {
        Ok(())
    }
}

tokio::task_local! {
    /// Set around a unary execution by the API: whether `execution.started` filled in its span,
    /// so the handler records the execution ref and digest only when it did not (a field
    /// recorded twice appears twice, in logs and in exported traces).
    pub(crate) static SPAN_ANNOTATED: std::cell::Cell<bool>;
}

/// The node emits `execution.started` inside the API's `execution` span: fill in what only the
/// node knows by then (execution ref, target, generation digest). Fields the current span does
/// not declare are ignored, so other callers are unaffected.
fn annotate_span(evidence: &Evidence) {
    let _ = SPAN_ANNOTATED.try_with(|annotated| annotated.set(true));
    let span = tracing::Span::current();
    if let Some(reference) = &evidence.execution_ref {
        span.record("execution_ref", reference.as_str());
    }
    if let Some(target) = &evidence.target_id {
        span.record("target", target.as_str());
    }
    if let Some(digest) = evidence
        .payload
        .get("target_descriptor")
        .and_then(|d| d.get("metadata"))
        .and_then(|m| m.get("component_digest"))
        .and_then(Value::as_str)
    {
        span.record("generation_digest", digest);
    }
}
