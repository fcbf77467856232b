//! The lane API: what a lane (wasm or native) or a placement implements, and what the node hands
//! it to run one execution. Lanes and placements depend on this crate, never on the node: the
//! node is one host of lanes, and a remote agent or a test harness can be another.
//!
//! * [`LaneAdapter`]: a lane's capabilities, its (async) validation, and unary and streaming
//!   runs.
//! * [`ExecutionContext`]: what comes with a request: the cancel signal, the deadline the
//!   kernel planned for it, the caller's input and the [`LaneEvidence`] handle.
//! * [`Deadline`]: when an execution must end, as a typed value (not metadata).
//! * [`Input`] / [`InputSlot`]: a caller's input to a running execution (stdin bytes, end of
//!   input, interrupt).
//! * [`CapabilityDenial`] / [`LaneEvidence`]: what a lane refused, as typed values.
//! * [`TargetVerifier`] / [`TargetClient`] / [`Dispatch`]: where an execution runs, attested.
//! * [`LaneHost`]: what a host offers the lane crates it loads.
//! * [`ProcessLauncher`] / [`LaunchedChild`]: how a lane starts a local process (its stdio as
//!   `tokio` byte streams) without knowing the placement that runs it.

mod cancel;
mod context;
mod evidence;
mod host;
mod input;
mod lane;
mod launch;
mod target;

pub use cancel::CancelSignal;
pub use context::{Deadline, ExecutionContext};
pub use evidence::{CAPABILITY_DENIED, CapabilityDenial, LaneEvidence, MAX_DENIALS};
pub use host::{LaneHost, WeakLaneHost};
pub use input::{INPUT_BUFFER, Input, InputSlot};
pub use lane::{EventStream, LaneAdapter, STREAM_COMPLETED_EVENT, rejected_result};
pub use launch::{
    ChildControl, ChildOutput, ChildStdin, ExitStatus, LaunchError, LaunchRequest, LaunchedChild,
    ProcessLauncher,
};
pub use target::{ConnectOptions, Dispatch, TargetClient, TargetError, TargetVerifier};
