//! Errors of the node's boundaries, each with a message a user can act on.

use ep_contracts::boundary::AdmissionRejection;
use thiserror::Error;

/// An evidence sink could not record or flush.
#[derive(Debug, Error)]
pub enum SinkError {
    /// The underlying file or device failed.
    #[error("evidence sink {sink_id}: {source}")]
    Io {
        /// The sink.
        sink_id: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The record could not be encoded.
    #[error("evidence sink {sink_id}: cannot encode record: {message}")]
    Encode {
        /// The sink.
        sink_id: String,
        /// Why.
        message: String,
    },
}

pub use ep_lane_api::TargetError;

/// A runtime-client call failed.
#[derive(Debug, Error)]
pub enum RuntimeError {
    /// Admission refused the request.
    #[error("rejected: {0}")]
    Rejected(AdmissionRejection),
    /// `cancel` named an execution the node does not know (or, over the API, one the caller
    /// may not name: the two are not told apart).
    #[error("unknown_execution_ref: {0}")]
    UnknownExecutionRef(String),
    /// `cancel` named an execution that has already ended; nothing was recorded.
    #[error("execution_ended: execution {0} has already ended; there is nothing to cancel")]
    ExecutionEnded(String),
    /// `send_input` named an execution that takes no input: not a stream, a lane that reads
    /// none, or input that has ended.
    #[error(
        "input_not_accepted: execution {0} takes no input (only a running stream whose lane reads input does, until its input ends)"
    )]
    InputNotAccepted(String),
    /// `send_input` waited [`crate::dispatch::INPUT_WAIT`] for the lane to take the inputs
    /// sent before; nothing was sent.
    #[error(
        "input_busy: execution {0} has not taken the input sent before it; retry once it has read more"
    )]
    InputBusy(String),
    /// The target failed to cancel.
    #[error(transparent)]
    Target(#[from] TargetError),
    /// A remote node could not be reached.
    #[error("transport: {0}")]
    Transport(String),
    /// A remote node answered with an API error no other variant names (see `docs/api.md`),
    /// so callers keep the status and the stable code instead of a flattened string.
    #[error("remote {status} {code}: {message}")]
    Remote {
        /// The HTTP status.
        status: u16,
        /// The API code or rejection reason of the error envelope.
        code: String,
        /// The server's message.
        message: String,
    },
}
