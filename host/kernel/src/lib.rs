//! Execution Plane kernel: pure route validation, dispatch planning, raw facts and lower
//! simulation. No I/O and no async runtime: protocol I/O is supplied by a [`ProtocolDriver`].
//!
//! ```
//! use ep_contracts::fixtures::flow::{http_execution_intent, http_execution_route};
//! use ep_kernel::{DispatchOptions, Protocol, build_dispatch};
//!
//! let plan = build_dispatch(&http_execution_intent(), &http_execution_route(), &DispatchOptions::default())?;
//! assert_eq!(plan.protocol, Protocol::Http);
//! assert!(plan.placement_surface.is_none());
//! # Ok::<(), ep_kernel::KernelError>(())
//! ```

pub mod error;
pub mod execute;
pub mod facts;
pub mod lane_support;
pub mod plan;
pub mod protocol;
pub mod simulation;
pub mod timeout;

pub use error::KernelError;
pub use execute::{KernelResult, ProtocolDriver, execute};
pub use facts::Execution;
pub use plan::{DispatchOptions, DispatchPlan, Intent, build_dispatch};
pub use protocol::Protocol;
pub use timeout::{DEFAULT_TIMEOUT_MS, Timeout};
