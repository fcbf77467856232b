//! Raw-fact vocabulary (§2.3): hand-off statuses, local spool modes, the failure classes, and
//! the deterministic ids of hand-off receipts and pressure/reconnect/lane-churn facts, so every
//! producer names the same fact the same way.
//!
//! ```
//! use ep_contracts::facts;
//!
//! assert_eq!(facts::handoff_receipt_id("route-1", "handoff-1")?, "receipt:route-1:handoff-1");
//! assert_eq!(facts::pressure_fact_id("route-1", "lane-1", 0)?, "pressure:route-1:lane-1:0");
//! assert!(facts::lane_churn_fact_id("", "lane-1", 0).is_err());
//! # Ok::<(), ep_contracts::ContractError>(())
//! ```

use serde_json::Value;

use crate::error::ContractError;
use crate::failure::FailureClass;
use crate::inspect::inspect;

/// Outcome of a hand-off to the layer above.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HandoffStatus {
    /// `accepted`
    Accepted,
    /// `rejected`
    Rejected,
    /// `unknown`
    Unknown,
}

impl HandoffStatus {
    /// All statuses in canonical order.
    pub const ALL: [HandoffStatus; 3] = [Self::Accepted, Self::Rejected, Self::Unknown];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Rejected => "rejected",
            Self::Unknown => "unknown",
        }
    }

    /// The status for a wire name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

impl std::fmt::Display for HandoffStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether facts may be spooled locally when the layer above is unreachable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LocalSpoolMode {
    /// `disabled`
    Disabled,
    /// `emergency_only`
    EmergencyOnly,
}

impl LocalSpoolMode {
    /// All modes in canonical order.
    pub const ALL: [LocalSpoolMode; 2] = [Self::Disabled, Self::EmergencyOnly];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disabled => "disabled",
            Self::EmergencyOnly => "emergency_only",
        }
    }

    /// The mode for a wire name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == name)
    }
}

impl std::fmt::Display for LocalSpoolMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The hand-off statuses: `accepted`, `rejected`, `unknown`.
pub fn handoff_statuses() -> [HandoffStatus; 3] {
    HandoffStatus::ALL
}

/// The local spool modes: `disabled`, `emergency_only`.
pub fn local_spool_modes() -> [LocalSpoolMode; 2] {
    LocalSpoolMode::ALL
}

/// The 13 failure classes in their frozen order.
pub fn failure_classes() -> [FailureClass; 13] {
    FailureClass::ALL
}

/// A non-empty part, with the same wording as every other required string.
fn non_empty<'a>(field: &str, value: &'a str) -> Result<&'a str, ContractError> {
    if value.is_empty() {
        return Err(ContractError::NonEmptyString {
            field: field.to_owned(),
            got: inspect(&Value::String(String::new())),
        });
    }
    Ok(value)
}

/// `receipt:<route_id>:<handoff_ref>`; both parts must be non-empty.
pub fn handoff_receipt_id(route_id: &str, handoff_ref: &str) -> Result<String, ContractError> {
    let route_id = non_empty("handoff_receipt.route_id", route_id)?;
    let handoff_ref = non_empty("handoff_receipt.handoff_ref", handoff_ref)?;
    Ok(format!("receipt:{route_id}:{handoff_ref}"))
}

fn fact_id(kind: &str, route_id: &str, lane_ref: &str, seq: u64) -> Result<String, ContractError> {
    let route_id = non_empty("fact.route_id", route_id)?;
    let lane_ref = non_empty("fact.lane_ref", lane_ref)?;
    Ok(format!("{kind}:{route_id}:{lane_ref}:{seq}"))
}

/// `pressure:<route_id>:<lane_ref>:<seq>`.
pub fn pressure_fact_id(route_id: &str, lane_ref: &str, seq: u64) -> Result<String, ContractError> {
    fact_id("pressure", route_id, lane_ref, seq)
}

/// `reconnect:<route_id>:<lane_ref>:<seq>`.
pub fn reconnect_fact_id(
    route_id: &str,
    lane_ref: &str,
    seq: u64,
) -> Result<String, ContractError> {
    fact_id("reconnect", route_id, lane_ref, seq)
}

/// `lane_churn:<route_id>:<lane_ref>:<seq>`.
pub fn lane_churn_fact_id(
    route_id: &str,
    lane_ref: &str,
    seq: u64,
) -> Result<String, ContractError> {
    fact_id("lane_churn", route_id, lane_ref, seq)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handoff_and_raw_fact_helpers_stay_canonical() {
        let statuses: Vec<&str> = handoff_statuses().iter().map(|s| s.as_str()).collect();
        assert_eq!(statuses, ["accepted", "rejected", "unknown"]);
        let modes: Vec<&str> = local_spool_modes().iter().map(|m| m.as_str()).collect();
        assert_eq!(modes, ["disabled", "emergency_only"]);
        assert_eq!(failure_classes().len(), 13);
        assert_eq!(
            handoff_receipt_id("route-1", "handoff-1").unwrap(),
            "receipt:route-1:handoff-1"
        );
        assert_eq!(
            pressure_fact_id("route-1", "lane-1", 0).unwrap(),
            "pressure:route-1:lane-1:0"
        );
        assert_eq!(
            reconnect_fact_id("route-1", "lane-1", 2).unwrap(),
            "reconnect:route-1:lane-1:2"
        );
        assert_eq!(
            lane_churn_fact_id("route-1", "lane-1", 3).unwrap(),
            "lane_churn:route-1:lane-1:3"
        );
    }

    #[test]
    fn empty_parts_are_rejected_naming_the_part() {
        let cases = [
            (
                handoff_receipt_id("", "h"),
                r#"handoff_receipt.route_id must be a non-empty string, got: """#,
            ),
            (
                handoff_receipt_id("r", ""),
                r#"handoff_receipt.handoff_ref must be a non-empty string, got: """#,
            ),
            (
                pressure_fact_id("", "l", 0),
                r#"fact.route_id must be a non-empty string, got: """#,
            ),
            (
                reconnect_fact_id("r", "", 0),
                r#"fact.lane_ref must be a non-empty string, got: """#,
            ),
            (
                lane_churn_fact_id("r", "", 1),
                r#"fact.lane_ref must be a non-empty string, got: """#,
            ),
        ];
        for (result, expected) in cases {
            assert_eq!(result.unwrap_err().to_string(), expected);
        }
    }

    #[test]
    fn wire_names_parse_back() {
        for s in HandoffStatus::ALL {
            assert_eq!(HandoffStatus::parse(s.as_str()), Some(s));
        }
        for m in LocalSpoolMode::ALL {
            assert_eq!(LocalSpoolMode::parse(m.as_str()), Some(m));
        }
        assert_eq!(HandoffStatus::parse("maybe"), None);
    }
}
