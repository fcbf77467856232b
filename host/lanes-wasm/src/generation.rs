//! One published generation of a hot-swappable lane ([`crate::swap::LaneSlot`]) and its
//! probation window: the first executions of a new generation are watched, and a generation
//! whose host faults (traps, memory or resource limits, broken output framing, failed
//! instantiation) reach the [`RollbackPolicy`] threshold is handed back for automatic rollback.
//!
//! Faults are the typed cause the runtime answers beside a result when the host ended the call
//! ([`Observed`]); a guest's own `failed` outcome has none and is never a fault, whatever its
//! details say.
//!
//! Besides the window, a generation counts **every** execution that runs on it ([`Running`]):
//! each one is counted when it starts, under the same lock that withdraws the generation, so
//! once a rollback has withdrawn it no execution can start on it any more and the count the
//! rollback records is final (executions still running then are reported as `running`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use ep_contracts::boundary::ResultStatus;
use serde_json::Value;

use crate::lane::{Observed, WasmLane};

/// Host fault causes that always count against a new generation.
pub const FAULT_CAUSES: [&str; 5] = [
    "trap",
    "memory_limit",
    "resource_limit",
    "invalid_json",
    "instantiation",
];

/// Causes that say nothing about a generation's health (the caller cancelled, or the lane was
/// busy): such executions are left out of the window entirely.
const UNCOUNTED_CAUSES: [&str; 2] = ["cancelled", "lane_saturated"];

/// When a new generation is rolled back automatically: among its first `window` counted
/// executions, as soon as at least `min_faults` have faulted and the faults are at least
/// `max_fault_ratio` of the executions counted so far.
///
/// ```
/// use ep_lanes_wasm::RollbackPolicy;
///
/// let policy = RollbackPolicy { window: 50, ..RollbackPolicy::default() };
/// assert_eq!((policy.min_faults, policy.max_fault_ratio), (3, 0.5));
/// assert_eq!(RollbackPolicy::disabled().window, 0);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RollbackPolicy {
    /// How many executions of a new generation are watched (its first N); 0 turns automatic
    /// rollback off.
    pub window: u32,
    /// Faults needed before the ratio is considered (at least 1).
    pub min_faults: u32,
    /// Share of the executions counted so far, in `(0, 1]`, at which the faults roll the
    /// generation back.
    pub max_fault_ratio: f64,
    /// Whether a missed deadline counts as a fault (off: a caller's short timeout is not the
    /// lane's fault). Either way it counts as an execution.
    pub count_deadlines: bool,
}

impl Default for RollbackPolicy {
    /// A window of 20 executions; rolled back at 50 % faults once there are at least 3.
    fn default() -> Self {
        Self {
            window: 20,
            min_faults: 3,
            max_fault_ratio: 0.5,
            count_deadlines: false,
        }
    }
}

impl RollbackPolicy {
    /// No automatic rollback (operators can still roll back).
    pub fn disabled() -> Self {
        Self {
            window: 0,
            ..Self::default()
        }
    }

    /// Why this policy cannot be used, if it cannot.
    pub(crate) fn problem(&self) -> Option<String> {
        if self.min_faults == 0 {
            return Some("min_faults must be at least 1".to_owned());
        }
        if !(self.max_fault_ratio > 0.0 && self.max_fault_ratio <= 1.0) {
            return Some(format!(
                "max_fault_ratio must be in (0, 1], got {}",
                self.max_fault_ratio
            ));
        }
        None
    }

    fn is_fault(&self, cause: &str) -> bool {
        FAULT_CAUSES.contains(&cause) || (self.count_deadlines && cause == "deadline")
    }
}

/// What a generation's probation window (or its whole life, see [`Generation::usage`]) has
/// seen.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultCounts {
    /// Executions counted (the window leaves cancelled and saturated ones out; the usage counts
    /// every execution that started on the generation).
    pub executions: u32,
    /// Of those, how many ended in a fault.
    pub faults: u32,
    /// Faults by `details.cause` (`trap`, `memory_limit`, ...).
    pub by_cause: BTreeMap<String, u32>,
}

impl FaultCounts {
    /// `{executions, faults, fault_causes}` for evidence.
    pub(crate) fn to_json(&self) -> Value {
        serde_json::json!({
            "executions": self.executions,
            "faults": self.faults,
            "fault_causes": self.by_cause,
        })
    }
}

/// What one observed execution means for its generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Nothing to do (still counting, window over, or not counted).
    Continue,
    /// The faults reached the threshold: roll this generation back (said once per generation).
    RollBack(FaultCounts),
}

struct Window {
    counts: FaultCounts,
    /// Decided (passed, or handed back for rollback): nothing more is counted.
    closed: bool,
}

/// Every execution of a generation, and whether it was withdrawn.
#[derive(Default)]
struct Books {
    /// Every execution started on it; faults among those that finished.
    usage: FaultCounts,
    /// Started and not finished yet.
    running: u32,
    withdrawn: bool,
}

/// What a generation was loaded from, kept so a rollback can keep a copy of the generation it
/// restores (it serves again after a restart even when its file was replaced).
#[derive(Debug, Clone)]
pub(crate) struct Artifact {
    /// The component bytes.
    pub(crate) bytes: Arc<[u8]>,
    /// The plugin manifest's text, when it came with one.
    pub(crate) manifest: Option<String>,
}

/// A generation's usage when it was withdrawn: every execution that started on it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    /// Every execution that started (faults among those that had finished).
    pub counts: FaultCounts,
    /// Of those, how many were still running (they finish on the withdrawn generation).
    pub running: u32,
}

/// A published generation: its number in the lane's history, the loaded [`WasmLane`], where it
/// came from, and its probation window. Executions hold it (`Arc`) for as long as they run,
/// so it is dropped when it is neither serving, kept for rollback, nor running anything.
pub struct Generation {
    number: u64,
    lane: Arc<WasmLane>,
    source: String,
    artifact: Option<Artifact>,
    window: Mutex<Window>,
    books: Mutex<Books>,
    withdrawn: AtomicBool,
}

/// One execution running on a generation: counted when it starts ([`Generation::begin`]),
/// its outcome counted by [`Running::finish`]; dropped unfinished (a stream, or a caller that
/// gave up) it only stops counting as running.
pub(crate) struct Running {
    generation: Arc<Generation>,
    done: bool,
}

impl Running {
    /// The generation it runs on.
    pub(crate) fn generation(&self) -> &Arc<Generation> {
        &self.generation
    }

    /// Counts `result` (in the usage and in the probation window) and says whether the
    /// generation must go.
    /// A refused execution (`rejected`: it never ran) is taken back out of the usage and not
    /// counted in the window.
    pub(crate) fn finish(mut self, observed: &Observed, policy: &RollbackPolicy) -> Verdict {
        if observed.result.status == ResultStatus::Rejected {
            self.uncount();
            return Verdict::Continue;
        }
        self.done = true;
        let cause = observed.fault;
        {
            let mut books = self.generation.books();
            books.running = books.running.saturating_sub(1);
            if let Some(cause) = cause.filter(|cause| policy.is_fault(cause)) {
                books.usage.faults += 1;
                *books.usage.by_cause.entry(cause.to_owned()).or_default() += 1;
            }
        }
        self.generation.lock().observe(cause, policy)
    }
}

impl Running {
    /// Takes an execution that never ran (refused before it started) back out of the usage.
    pub(crate) fn uncount(mut self) {
        self.done = true;
        let mut books = self.generation.books();
        books.running = books.running.saturating_sub(1);
        books.usage.executions = books.usage.executions.saturating_sub(1);
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if !self.done {
            let mut books = self.generation.books();
            books.running = books.running.saturating_sub(1);
        }
    }
}

impl std::fmt::Debug for Generation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Generation")
            .field("number", &self.number)
            .field("component_digest", &self.lane.digest())
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl Generation {
    pub(crate) fn new(
        number: u64,
        lane: WasmLane,
        source: String,
        artifact: Option<Artifact>,
        policy: &RollbackPolicy,
    ) -> Self {
        Self {
            number,
            lane: Arc::new(lane),
            source,
            artifact,
            window: Mutex::new(Window::new(policy)),
            books: Mutex::new(Books::default()),
            withdrawn: AtomicBool::new(false),
        }
    }

    /// Its number in the lane's history (1 for the first; a rollback serves an older number
    /// again, the next publish gets a fresh one).
    pub fn number(&self) -> u64 {
        self.number
    }

    /// The `sha256:` digest of its component.
    pub fn digest(&self) -> &str {
        self.lane.digest()
    }

    /// The loaded lane.
    pub fn lane(&self) -> &Arc<WasmLane> {
        &self.lane
    }

    /// Where it came from: the component file's path, or `bytes`.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// What its probation window has counted so far.
    pub fn fault_counts(&self) -> FaultCounts {
        self.lock().counts.clone()
    }

    /// Every execution that started on it so far (faults among those that finished), and how
    /// many are running now.
    pub fn usage(&self) -> Usage {
        let books = self.books();
        Usage {
            counts: books.usage.clone(),
            running: books.running,
        }
    }

    /// Whether it was rolled back (no execution starts on it any more).
    pub fn is_withdrawn(&self) -> bool {
        self.withdrawn.load(Ordering::Acquire)
    }

    /// What it was loaded from, when that was kept.
    pub(crate) fn artifact(&self) -> Option<&Artifact> {
        self.artifact.as_ref()
    }

    /// Counts an execution starting on it; none once it is withdrawn.
    pub(crate) fn begin(self: &Arc<Self>) -> Option<Running> {
        let mut books = self.books();
        if books.withdrawn {
            return None;
        }
        books.usage.executions += 1;
        books.running += 1;
        Some(Running {
            generation: Arc::clone(self),
            done: false,
        })
    }

    /// Counts an execution starting on it even if it was withdrawn (only when no other
    /// generation can take it).
    pub(crate) fn begin_anyway(self: &Arc<Self>) -> Running {
        let mut books = self.books();
        books.usage.executions += 1;
        books.running += 1;
        Running {
            generation: Arc::clone(self),
            done: false,
        }
    }

    /// Withdraws it: from now on [`Generation::begin`] refuses, so the usage returned counts
    /// every execution that will ever have run on it.
    pub(crate) fn withdraw(&self) -> Usage {
        let mut books = self.books();
        books.withdrawn = true;
        self.withdrawn.store(true, Ordering::Release);
        Usage {
            counts: books.usage.clone(),
            running: books.running,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Window> {
        // Every update is a few integer writes under the lock; a poisoned window is still
        // consistent enough to keep counting.
        self.window.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn books(&self) -> MutexGuard<'_, Books> {
        // As for the window: a few integer writes under the lock.
        self.books.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Window {
    fn new(policy: &RollbackPolicy) -> Self {
        Self {
            counts: FaultCounts::default(),
            closed: policy.window == 0,
        }
    }

    /// Counts one execution that ended with the host fault `cause` (none: the guest answered).
    fn observe(&mut self, cause: Option<&str>, policy: &RollbackPolicy) -> Verdict {
        if self.closed || cause.is_some_and(|cause| UNCOUNTED_CAUSES.contains(&cause)) {
            return Verdict::Continue;
        }
        let counts = &mut self.counts;
        counts.executions += 1;
        if let Some(cause) = cause.filter(|cause| policy.is_fault(cause)) {
            counts.faults += 1;
            *counts.by_cause.entry(cause.to_owned()).or_default() += 1;
        }
        let over = counts.faults >= policy.min_faults
            && f64::from(counts.faults) >= policy.max_fault_ratio * f64::from(counts.executions);
        if over {
            self.closed = true;
            return Verdict::RollBack(self.counts.clone());
        }
        if counts.executions >= policy.window {
            self.closed = true;
        }
        Verdict::Continue
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds causes through a fresh window and returns the verdicts.
    fn run(policy: &RollbackPolicy, causes: &[Option<&str>]) -> Vec<Verdict> {
        let mut window = Window::new(policy);
        causes
            .iter()
            .map(|cause| window.observe(*cause, policy))
            .collect()
    }

    fn rolled_back_at(verdicts: &[Verdict]) -> Option<usize> {
        verdicts
            .iter()
            .position(|v| matches!(v, Verdict::RollBack(_)))
    }

    #[test]
    fn three_traps_in_a_row_roll_back_at_the_third() {
        let verdicts = run(&RollbackPolicy::default(), &[Some("trap"); 5]);
        assert_eq!(rolled_back_at(&verdicts), Some(2));
        let Verdict::RollBack(counts) = &verdicts[2] else {
            unreachable!()
        };
        assert_eq!((counts.executions, counts.faults), (3, 3));
        assert_eq!(counts.by_cause["trap"], 3);
        // Said once: the window is closed afterwards.
        assert_eq!(verdicts[3..], [Verdict::Continue, Verdict::Continue]);
    }

    #[test]
    fn faults_below_the_ratio_or_the_minimum_do_not_roll_back() {
        let policy = RollbackPolicy::default();
        let mostly_fine = [
            None,
            None,
            Some("trap"),
            None,
            None,
            Some("memory_limit"),
            None,
        ];
        assert_eq!(rolled_back_at(&run(&policy, &mostly_fine)), None);
        let two_faults = [Some("trap"), Some("trap")];
        assert_eq!(rolled_back_at(&run(&policy, &two_faults)), None);
    }

    #[test]
    fn guest_failures_cancellations_saturation_and_deadlines_are_not_faults() {
        let policy = RollbackPolicy::default();
        let causes = [
            Some("cancelled"),
            Some("lane_saturated"),
            Some("deadline"),
            Some("deadline"),
            Some("deadline"),
            None,
        ];
        let mut window = Window::new(&policy);
        for cause in causes {
            assert_eq!(window.observe(cause, &policy), Verdict::Continue);
        }
        assert_eq!((window.counts.executions, window.counts.faults), (4, 0));
        let strict = RollbackPolicy {
            count_deadlines: true,
            ..RollbackPolicy::default()
        };
        assert_eq!(
            rolled_back_at(&run(&strict, &[Some("deadline"); 3])),
            Some(2)
        );
    }

    #[test]
    fn the_window_closes_after_its_executions() {
        let policy = RollbackPolicy {
            window: 4,
            ..RollbackPolicy::default()
        };
        let late = [
            None,
            None,
            None,
            None,
            Some("trap"),
            Some("trap"),
            Some("trap"),
        ];
        assert_eq!(rolled_back_at(&run(&policy, &late)), None);
        assert_eq!(
            rolled_back_at(&run(&RollbackPolicy::disabled(), &[Some("trap"); 5])),
            None
        );
    }

    #[test]
    fn unusable_policies_are_named() {
        let zero = RollbackPolicy {
            min_faults: 0,
            ..RollbackPolicy::default()
        };
        assert!(zero.problem().unwrap().contains("min_faults"));
        let ratio = RollbackPolicy {
            max_fault_ratio: 1.5,
            ..RollbackPolicy::default()
        };
        assert!(ratio.problem().unwrap().contains("max_fault_ratio"));
        assert!(RollbackPolicy::default().problem().is_none());
    }
}
