//! Execution Plane node: registration tables, governed admission, dispatch and evidence.

pub mod admission;
pub mod authority;
pub mod budget;
pub mod dispatch;
pub mod error;
pub mod evidence;
pub mod execution;
mod lane_host;
pub mod local_client;
pub mod node;
pub mod simulation;
pub mod sinks;
pub mod traits;
pub mod verifiers;

pub use dispatch::{Canceller, OpenStream};
pub use ep_lane_api::{
    CancelSignal, CapabilityDenial, Deadline, Input, InputSlot, LaneEvidence, LaneHost,
    WeakLaneHost,
};
pub use error::{RuntimeError, SinkError, TargetError};
pub use execution::{
    ExecutionToken, STREAM_COMPLETED_EVENT, StreamEnding, event_failure, stream_end_result,
};
pub use traits::{
    AuthorityVerifier, ConnectOptions, Dispatch, EventStream, EvidenceSink, ExecutionContext,
    LaneAdapter, RuntimeClient, TargetClient, TargetVerifier,
};
