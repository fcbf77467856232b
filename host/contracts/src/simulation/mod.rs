//! Phase-6 lower-simulation and evidence contracts: the no-egress policy, simulation scenarios and
//! their evidence, the bounded evidence boundary that is the only outcome shape safe to persist,
//! the adapter-selection policy, and the recursive raw-evidence scan that guards them.
//!
//! ```
//! use ep_contracts::Contract;
//! use ep_contracts::fixtures::simulation as fx;
//! use ep_contracts::simulation::{ExecutionEvidenceBoundary, FromOutcomeOptions, LowerSimulationEvidence};
//!
//! let evidence = LowerSimulationEvidence::from_value(&fx::lower_simulation_evidence())?;
//! let outcome = fx::http_outcome_with_raw_body();
//! let boundary =
//!     ExecutionEvidenceBoundary::from_outcome(&outcome, &evidence, FromOutcomeOptions::default())?;
//! let dump = boundary.to_value().to_string();
//! assert!(dump.contains(r#""raw_payload_shape":["body","headers","status_code"]"#));
//! assert!(!dump.contains("raw provider body"));
//!
//! let leak = serde_json::json!({"details": [{"prompt": "hi"}]});
//! assert_eq!(
//!     ep_contracts::simulation::scan_raw_evidence(&leak).unwrap_err().to_string(),
//!     "raw durable evidence is forbidden at details.0.prompt"
//! );
//! # Ok::<(), ep_contracts::ContractError>(())
//! ```

// What every section uses (each section module takes it with `use super::*`).
use serde_json::{Map, Value};

use crate::canonical::is_sha256_ref;
use crate::contract::Contract;
use crate::error::ContractError;
use crate::fields::{Attrs, EnumWording, non_empty_string, opaque_ref, put_opt};
use crate::inspect::inspect;
use crate::lineage::{Lineage, ROUTE_LINEAGE_KEYS};

mod adapter_selection;
mod boundary;
mod evidence;
mod no_egress;
mod raw_scan;
mod scenario;
mod shared;

pub use adapter_selection::*;
pub use boundary::*;
pub use evidence::*;
pub use no_egress::*;
pub use raw_scan::*;
pub use scenario::*;
pub use shared::*;
