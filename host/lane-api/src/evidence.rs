//! Typed lane evidence: what a lane refused while it ran an execution, handed to the node as
//! values (never JSON the node would have to recognise by a `kind` string). The node records
//! each denial as a `capability.denied` record of its own and shows it in the execution's
//! evidence.

use std::sync::{Arc, Mutex, PoisonError};

use ep_contracts::boundary::Map;
use serde_json::Value;

/// Most denials one execution keeps (a guest that retries a refused call in a loop must not
/// grow the host's memory or the evidence log without bound).
pub const MAX_DENIALS: usize = 32;

/// A capability a lane refused at run time: an egress destination, a command, a directory.
#[derive(Debug, Clone, PartialEq)]
pub struct CapabilityDenial {
    /// The capability family (`http`, `command`, `cwd`, `env`, `user`, ...).
    pub capability: String,
    /// Why, in words a user can act on.
    pub reason: String,
    /// Shapes and fingerprints of what was asked for (never payloads, paths with tokens or
    /// environment values).
    pub detail: Map,
}

impl CapabilityDenial {
    /// A denial of `capability` for `reason`, with no detail yet.
    pub fn new(capability: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            capability: capability.into(),
            reason: reason.into(),
            detail: Map::new(),
        }
    }

    /// The same denial with `key` set to `value` in its detail.
    #[must_use]
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.detail.insert(key.to_owned(), value.into());
        self
    }

    /// The evidence entry of the denial by lane `lane_id` (`kind: capability.denied`).
    pub fn to_value(&self, lane_id: &str) -> Value {
        let mut entry = Map::new();
        entry.insert("kind".to_owned(), Value::from(CAPABILITY_DENIED));
        entry.insert(
            "capability".to_owned(),
            Value::from(self.capability.as_str()),
        );
        entry.insert("lane_id".to_owned(), Value::from(lane_id));
        entry.insert("reason".to_owned(), Value::from(self.reason.as_str()));
        for (key, value) in &self.detail {
            entry.entry(key.clone()).or_insert_with(|| value.clone());
        }
        Value::Object(entry)
    }
}

/// The evidence type (and entry kind) of a refused capability.
pub const CAPABILITY_DENIED: &str = "capability.denied";

/// Where a lane reports the evidence of one execution; the node that planned the execution
/// holds the other end. Clones share the same record.
#[derive(Debug, Clone, Default)]
pub struct LaneEvidence {
    inner: Arc<Mutex<Reported>>,
}

#[derive(Debug, Default)]
struct Reported {
    denials: Vec<CapabilityDenial>,
    dropped: u64,
}

impl LaneEvidence {
    /// Reports a refused capability (past [`MAX_DENIALS`] it is only counted).
    pub fn denied(&self, denial: CapabilityDenial) {
        let mut reported = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if reported.denials.len() < MAX_DENIALS {
            reported.denials.push(denial);
        } else {
            reported.dropped += 1;
        }
    }

    /// The denials reported since the last call, oldest first.
    pub fn take_denials(&self) -> Vec<CapabilityDenial> {
        let mut reported = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        std::mem::take(&mut reported.denials)
    }

    /// How many denials were reported past [`MAX_DENIALS`] and kept only as a count.
    pub fn dropped(&self) -> u64 {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_denial_reads_as_one_capability_denied_entry_and_clones_share_the_record() {
        let evidence = LaneEvidence::default();
        let lane_side = evidence.clone();
        lane_side.denied(
            CapabilityDenial::new("http", "destination not granted")
                .with("destination", "http://10.0.0.1:80")
                // A detail may not overwrite the fixed keys.
                .with("kind", "forged"),
        );
        let denials = evidence.take_denials();
        assert_eq!(denials.len(), 1);
        let entry = denials[0].to_value("http");
        assert_eq!(entry["kind"], CAPABILITY_DENIED);
        assert_eq!(entry["capability"], "http");
        assert_eq!(entry["lane_id"], "http");
        assert_eq!(entry["reason"], "destination not granted");
        assert_eq!(entry["destination"], "http://10.0.0.1:80");
        assert!(evidence.take_denials().is_empty(), "taken once");
    }

    #[test]
    fn denials_past_the_cap_are_counted_not_kept() {
        let evidence = LaneEvidence::default();
        for n in 0..MAX_DENIALS + 5 {
            evidence.denied(CapabilityDenial::new("http", format!("attempt {n}")));
        }
        assert_eq!(evidence.take_denials().len(), MAX_DENIALS);
        assert_eq!(evidence.dropped(), 5);
    }
}
