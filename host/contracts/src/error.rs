//! The one error type every contract constructor returns, so callers can match on the cause and
//! show users a message that names the field and the reason.

use thiserror::Error;

/// Why a contract value was refused; `Display` carries the stable upstream wording tests match.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ContractError {
    /// The document is not valid JSON.
    #[error("malformed JSON at line {line}, column {column}: {message}")]
    MalformedJson {
        /// 1-based line of the syntax error.
        line: usize,
        /// 1-based column of the syntax error.
        column: usize,
        /// The parser's description.
        message: String,
    },
    /// The document exceeds the size cap ([`crate::MAX_DOCUMENT_BYTES`]).
    #[error("document is {actual} bytes, over the {limit}-byte limit")]
    TooLarge {
        /// Size of the refused document.
        actual: usize,
        /// The cap in force.
        limit: usize,
    },
    /// Attributes must be a JSON object.
    #[error("expected map attrs (a JSON object), got: {got}")]
    NotAnObject {
        /// The rendered input.
        got: String,
    },
    /// `contract_version` named another contract or an unknown version.
    #[error("expected contract_version {expected}, got: {got}")]
    VersionMismatch {
        /// The version this contract accepts, rendered (quoted for strings).
        expected: String,
        /// The rendered input.
        got: String,
    },
    /// A required (or present optional) string was missing, empty or not a string.
    #[error("{field} must be a non-empty string, got: {got}")]
    NonEmptyString {
        /// Field name.
        field: String,
        /// The rendered input.
        got: String,
    },
    /// A field must hold the named JSON kind (`string`, `map`, `list`, `boolean`, ...).
    #[error("{field} must be {expected}")]
    WrongType {
        /// Field name.
        field: String,
        /// What the field must be, with its article ("a map", "a non-negative integer").
        expected: &'static str,
    },
    /// A credential or resource reference is not an opaque handle (`scheme://...` or `urn:...`).
    #[error("{field} must be an opaque handle ref, got: {got}")]
    NotOpaqueRef {
        /// Field name.
        field: String,
        /// The rendered input.
        got: String,
    },
    /// A timestamp is not an ISO 8601 date-time with an offset.
    #[error("{field} must be ISO8601, got: {got}")]
    NotIso8601 {
        /// Field name.
        field: String,
        /// The rendered input.
        got: String,
    },
    /// A lineage map carried a key outside the canonical set.
    #[error("unknown lineage key: {key}")]
    UnknownLineageKey {
        /// The offending key.
        key: String,
    },
    /// A lineage key required by this contract is absent.
    #[error("lineage.{key} is required")]
    LineageKeyRequired {
        /// The missing key.
        key: &'static str,
    },
    /// A top-level field disagrees with its lineage copy.
    #[error("{field} must match lineage.{field}, got: {got}")]
    LineageMismatch {
        /// The field (`route_id` or `event_id`).
        field: &'static str,
        /// The rendered top-level value.
        got: String,
    },
    /// A failure class outside the frozen table.
    #[error("unknown failure_class: {got}")]
    UnknownFailureClass {
        /// The rendered input.
        got: String,
    },
    /// A contract-specific rule; `message` is the full user-facing text.
    #[error("{message}")]
    Rule {
        /// The field the rule is about (or the contract name for whole-value rules).
        field: String,
        /// The full message.
        message: String,
    },
}

impl ContractError {
    /// The field the error is about, when there is one.
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::MalformedJson { .. } | Self::TooLarge { .. } | Self::NotAnObject { .. } => None,
            Self::VersionMismatch { .. } => Some("contract_version"),
            Self::NonEmptyString { field, .. }
            | Self::WrongType { field, .. }
            | Self::NotOpaqueRef { field, .. }
            | Self::NotIso8601 { field, .. }
            | Self::Rule { field, .. } => Some(field),
            Self::UnknownLineageKey { .. } => Some("lineage"),
            Self::LineageKeyRequired { .. } => Some("lineage"),
            Self::LineageMismatch { field, .. } => Some(field),
            Self::UnknownFailureClass { .. } => Some("failure_class"),
        }
    }

    /// A contract-specific rule failure.
    pub fn rule(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Rule {
            field: field.into(),
            message: message.into(),
        }
    }
}
