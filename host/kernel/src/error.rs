//! Why a dispatch could not be planned. Every check of route validation is a variant, so
//! callers can tell a bad route from a bad intent from a mismatch between them.

use ep_contracts::ContractError;
use ep_contracts::surface::SurfaceError;
use thiserror::Error;

/// A planning failure; nothing was dispatched.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum KernelError {
    /// The route is not a valid `execution_route.v1`.
    #[error("invalid route: {0}")]
    Route(ContractError),
    /// The route names a protocol the kernel does not plan for.
    #[error("unsupported lower protocol in Wave 1: {0:?}")]
    UnsupportedProtocol(String),
    /// The intent is not a valid intent of the route's protocol.
    #[error("invalid intent: {0}")]
    Intent(ContractError),
    /// The placement surface is invalid.
    #[error("{0}")]
    Surface(SurfaceError),
    /// Envelope family ≠ route family.
    #[error("intent envelope family {intent:?} does not match route family {route:?}")]
    FamilyMismatch {
        /// The envelope's family.
        intent: String,
        /// The route's family.
        route: String,
    },
    /// Envelope protocol ≠ route protocol.
    #[error("intent envelope protocol {intent:?} does not match route protocol {route:?}")]
    ProtocolMismatch {
        /// The envelope's protocol.
        intent: String,
        /// The route's protocol.
        route: String,
    },
    /// Envelope idempotency key ≠ route lineage idempotency key.
    #[error("intent idempotency_key does not match route lineage")]
    IdempotencyMismatch,
    /// Envelope trace id ≠ route lineage trace id.
    #[error("intent trace_id must match route lineage.trace_id, got: {got:?}")]
    TraceIdMismatch {
        /// The envelope's trace id.
        got: String,
    },
    /// The surface's placement family ≠ the route's placement family.
    #[error("route placement {placement:?} does not match surface {surface:?}")]
    PlacementMismatch {
        /// The route's placement family.
        placement: String,
        /// The surface kind.
        surface: String,
    },
}
