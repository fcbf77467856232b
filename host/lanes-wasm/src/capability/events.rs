//! The `events` capability: `events.emit`, a guest's execution events, kept in a buffer
//! bounded in count and bytes (a guest past either bound ends its own execution with a
//! `resource_limit` fault; a payload that is not a JSON object with `invalid_json`).

use ep_contracts::boundary::{ExecutionEvent, ExecutionRef, Map};
use wasmtime::component::{HasSelf, Linker};

use super::Unit;
use crate::bindings::{events, types, v2_0};
use crate::limits::LaneLimits;
use crate::state::{HostFault, LaneState};

/// Import-name prefix of the lane world's `events` interface.
pub const EVENTS_IMPORT: &str = "execution-plane:lane/events@";

/// The unit: granted by `[grants] events`.
pub(crate) const EVENTS: Unit = Unit {
    grant: "events",
    imports: &[EVENTS_IMPORT],
    granted: |grants| grants.events,
    link: link_events,
    optional_as: None,
};

/// Links both ABI versions' `events` (one buffer behind them).
fn link_events(linker: &mut Linker<LaneState>) -> wasmtime::Result<()> {
    events::add_to_linker::<LaneState, HasSelf<LaneState>>(linker, |state| state)?;
    v2_0::events::add_to_linker::<LaneState, HasSelf<LaneState>>(linker, |state| state)
}

/// The execution's events, bounded in count and bytes.
pub(crate) struct EventBuffer {
    execution_ref: ExecutionRef,
    events: Vec<ExecutionEvent>,
    bytes: usize,
    max_events: usize,
    max_bytes: usize,
}

impl EventBuffer {
    pub(crate) fn new(execution_ref: ExecutionRef, limits: &LaneLimits) -> Self {
        Self {
            execution_ref,
            events: Vec::new(),
            bytes: 0,
            max_events: limits.max_events,
            max_bytes: limits.max_event_bytes,
        }
    }

    /// Takes the buffered events and resets the budget (a stream's budget is per pull).
    pub(crate) fn drain(&mut self) -> Vec<ExecutionEvent> {
        self.bytes = 0;
        std::mem::take(&mut self.events)
    }

    fn push(&mut self, event: types::Event) -> Result<(), HostFault> {
        if self.events.len() >= self.max_events {
            return Err(HostFault::TooManyEvents {
                limit: self.max_events,
            });
        }
        let bytes = self
            .bytes
            .saturating_add(event.payload_json.len() + event.event_type.len());
        if bytes > self.max_bytes {
            return Err(HostFault::EventBytes {
                limit: self.max_bytes,
            });
        }
        let payload: Map =
            serde_json::from_str(&event.payload_json).map_err(|e| HostFault::EventNotJson {
                event_type: crate::error::truncate(event.event_type.clone(), 128),
                message: e.to_string(),
            })?;
        self.bytes = bytes;
        self.events.push(ExecutionEvent::new(
            self.execution_ref.clone(),
            event.event_type,
            payload,
        ));
        Ok(())
    }
}

impl events::Host for LaneState {
    async fn emit(&mut self, event: types::Event) -> wasmtime::Result<()> {
        match self.caps.events.push(event) {
            Ok(()) => Ok(()),
            Err(fault) => {
                self.fault = Some(fault.clone());
                Err(wasmtime::Error::new(fault))
            }
        }
    }
}

impl v2_0::events::Host for LaneState {
    async fn emit(&mut self, event: types::Event) -> wasmtime::Result<()> {
        events::Host::emit(self, event).await
    }
}
