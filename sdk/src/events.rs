//! Emitting events during an execution (the `events` import; the manifest must request
//! `events = true`).

use serde_json::Value;

use crate::Event;

/// Records an event of the current execution; the host may apply backpressure, so this may
/// block until it has room. `payload` should be an object (`null` crosses as `{}`, other values
/// as `{"value": ...}`).
///
/// On the host target (native `cargo test`) the event is recorded for
/// [`testing::take_events`](crate::testing::take_events) instead.
pub fn emit(event_type: &str, payload: &Value) {
    send(Event::new(event_type, payload.clone()));
}

#[cfg(target_arch = "wasm32")]
fn send(event: Event) {
    crate::bindings::execution_plane::lane0_2_0::events::emit(&crate::glue::event_to_wire(event));
}

#[cfg(not(target_arch = "wasm32"))]
fn send(event: Event) {
    crate::testing::record_event(event);
}
