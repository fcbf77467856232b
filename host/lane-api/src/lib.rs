//! The lane API: what a lane (wasm or native) or a placement implements, and what the node hands
//! it to run one execution. Lanes and placements depend on this crate, never on the node: the
//! node is one host of lanes, and a remote agent or a test harness can be another.
//!
//! * [`LaneAdapter`]: a lane's capabilities, its (async) validation, and unary and streaming
//!   runs.
//! * [`ExecutionContext`]: what comes with a request: the cancel signal and the deadline the
//!   kernel planned for it.
//! * [`Deadline`]: when an execution must end, as a typed value (not metadata).
//! * [`Input`] / [`InputSlot`]: a caller's input to a running execution (stdin bytes, end of
//!   input, interrupt).

mod cancel;
mod context;
mod input;
mod lane;

pub use cancel::CancelSignal;
pub use context::{Deadline, ExecutionContext};
pub use input::{INPUT_BUFFER, Input, InputSlot};
pub use lane::{EventStream, LaneAdapter, rejected_result};
