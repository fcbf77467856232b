//! What one execution did with the network, for evidence: the refusals of every transport (one
//! list, the same record whichever transport was refused) and each transport's counters —
//! outbound HTTP's `{requests, denied}` and the WebSocket client's [`WsCounts`]. Never a payload
//! byte; a destination's path only as a fingerprint (it may carry tokens).

use std::sync::{Mutex, MutexGuard, PoisonError};

use ep_lane_api::CapabilityDenial;
use serde::Serialize;

use super::decision::{Capability, Denial};
use super::pattern::RequestTarget;
use crate::state::Attribution;

/// Denials kept per execution (the rest are counted).
const MAX_DENIALS_KEPT: usize = 16;

/// Close codes kept per execution (the rest are counted in the connections' totals).
const MAX_CLOSES_KEPT: usize = 16;

/// What one execution did with outbound connections: counters and the denials, for evidence.
#[derive(Debug, Default)]
pub(crate) struct EgressLog {
    inner: Mutex<LogInner>,
}

#[derive(Debug, Default)]
struct LogInner {
    /// HTTP requests sent or denied.
    requests: u64,
    /// HTTP requests denied.
    denied: u64,
    websocket: WsCounts,
    denials: Vec<CapabilityDenial>,
    /// The most recent HTTP denial's reason and destination, for the guest to ask about.
    last: Option<(String, Option<String>)>,
}

/// What one execution's WebSocket connections did (`websocket: {...}` in its evidence entry).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct WsCounts {
    /// Connections opened (upgrades the server accepted).
    pub(crate) connections: u64,
    /// Connections refused by the egress policy.
    pub(crate) denied: u64,
    /// Connections allowed but not opened: connect, TLS or the upgrade failed.
    pub(crate) failed: u64,
    /// Text and binary messages sent.
    pub(crate) messages_sent: u64,
    /// Text and binary messages received.
    pub(crate) messages_received: u64,
    /// Payload bytes of the messages sent.
    pub(crate) bytes_sent: u64,
    /// Payload bytes of the messages received.
    pub(crate) bytes_received: u64,
    /// Pings the host answered.
    pub(crate) pings_answered: u64,
    /// Each close frame, in order, with who sent it (the first [`MAX_CLOSES_KEPT`]).
    pub(crate) closes: Vec<WsClose>,
}

/// One close frame of a connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct WsClose {
    /// `lane` (the guest's `close`), `peer` (the server's close frame) or `host` (`1001` when
    /// the connection was dropped, `1009` for a message over the cap).
    pub(crate) by: &'static str,
    /// The close code (`1005` when the peer's frame carried none).
    pub(crate) code: u16,
}

impl WsCounts {
    /// Records a close frame (the first [`MAX_CLOSES_KEPT`] are kept).
    pub(crate) fn closed(&mut self, by: &'static str, code: u16) {
        if self.closes.len() < MAX_CLOSES_KEPT {
            self.closes.push(WsClose { by, code });
        }
    }
}

/// A destination as evidence names it: `scheme://host:port`, never the path.
pub(crate) fn destination(target: &RequestTarget) -> String {
    format!(
        "{}://{}:{}",
        target.scheme.as_str(),
        target.host,
        target.port
    )
}

impl EgressLog {
    fn lock(&self) -> MutexGuard<'_, LogInner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts one HTTP request sent.
    pub(crate) fn sent(&self) {
        self.lock().requests += 1;
    }

    /// Records a refused connection of `capability` to `target` (`None`: its URL had no
    /// checkable host) and counts it against that capability.
    pub(crate) fn deny(
        &self,
        who: &Attribution,
        capability: Capability,
        target: Option<&RequestTarget>,
        denial: &Denial,
    ) {
        let destination = target.map(destination);
        let reason = denial.reason;
        tracing::warn!(
            lane_id = &*who.lane_id,
            execution_ref = who.execution_ref.as_str(),
            capability = capability.as_str(),
            destination,
            reason,
            "outbound connection denied"
        );
        let mut inner = self.lock();
        match capability {
            Capability::Http => {
                inner.requests += 1;
                inner.denied += 1;
                inner.last = Some((reason.to_owned(), destination.clone()));
            }
            Capability::WebSocket => inner.websocket.denied += 1,
        }
        if inner.denials.len() < MAX_DENIALS_KEPT {
            // The path may carry tokens: only its fingerprint enters evidence.
            let path = target.map(|t| ep_contracts::canonical::sha256_ref(t.path.as_bytes()));
            inner.denials.push(
                CapabilityDenial::new(capability.as_str(), reason)
                    .with("destination", destination)
                    .with("path_sha256", path)
                    .with("detail", denial.detail.clone()),
            );
        }
    }

    /// The denials kept since the last call (the counters stay).
    pub(crate) fn take_denials(&self) -> Vec<CapabilityDenial> {
        std::mem::take(&mut self.lock().denials)
    }

    /// The reason and destination of the most recent HTTP denial (kept however many were
    /// counted).
    pub(crate) fn last_denial(&self) -> Option<(String, Option<String>)> {
        self.lock().last.clone()
    }

    /// HTTP `(requests, denied)` so far.
    pub(crate) fn counts(&self) -> (u64, u64) {
        let inner = self.lock();
        (inner.requests, inner.denied)
    }

    /// Updates the WebSocket counters.
    pub(crate) fn websocket(&self, update: impl FnOnce(&mut WsCounts)) {
        update(&mut self.lock().websocket);
    }

    /// The WebSocket counters so far.
    pub(crate) fn websocket_counts(&self) -> WsCounts {
        self.lock().websocket.clone()
    }
}
