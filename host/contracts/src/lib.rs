//! Execution Plane contracts: every value that crosses a boundary of the host, with validation in
//! the documented order and stable error wording. No I/O, no async runtime, no wasmtime, so
//! clients, tests and tools can depend on this crate alone.
//!
//! Two styles, as upstream:
//! * strict **packet contracts** (`*.v1` string versions) built through [`Contract::from_value`]
//!   with field validation in a fixed order ([`flow`], [`intents`], [`hazmat`], [`simulation`]);
//! * permissive **boundary values** (integer version 1) in [`boundary`], used by admission.
//!
//! ```
//! use ep_contracts::{Contract, boundary::AcceptableAttestation};
//!
//! let accepted: AcceptableAttestation =
//!     ep_contracts::parse(r#"{"classes": ["local-process-weak", "local-process-weak"]}"#)?;
//! assert_eq!(accepted.classes, ["local-process-weak"]);
//! assert_eq!(ep_contracts::parse::<AcceptableAttestation>(&ep_contracts::dump(&accepted))?, accepted);
//! # Ok::<(), ep_contracts::ContractError>(())
//! ```

pub mod boundary;
pub mod canonical;
pub mod contract;
pub mod error;
pub mod facts;
pub mod failure;
pub mod fields;
pub mod fixtures;
pub mod flow;
pub mod hazmat;
pub mod ids;
pub mod inspect;
pub mod intents;
pub mod lineage;
pub mod metadata;
pub mod registry;
pub mod simulation;
pub mod surface;
pub mod version;

pub use contract::{Contract, MAX_DOCUMENT_BYTES, dump, parse, parse_json};
pub use error::ContractError;
pub use failure::{Failure, FailureClass};
pub use lineage::Lineage;
