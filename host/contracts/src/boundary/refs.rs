use serde::{Deserialize, Serialize};

use super::{Map, RootVersion};

/// An opaque execution reference minted per accepted admission (`exec-<32 hex>`: 128 random bits).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct ExecutionRef {
    /// Always 1.
    pub contract_version: RootVersion,
    /// The opaque reference.
    #[serde(rename = "ref")]
    pub reference: String,
}

impl ExecutionRef {
    /// A fresh, unguessable reference.
    pub fn mint() -> Self {
        Self::from_string(crate::ids::execution_ref())
    }

    /// Wraps an existing reference string.
    pub fn from_string(reference: impl Into<String>) -> Self {
        Self {
            contract_version: RootVersion,
            reference: reference.into(),
        }
    }

    /// The reference string.
    pub fn as_str(&self) -> &str {
        &self.reference
    }
}

impl Default for ExecutionRef {
    fn default() -> Self {
        Self::mint()
    }
}

impl std::fmt::Display for ExecutionRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reference)
    }
}

crate::boundary_contract!(ExecutionRef, "execution_ref");

/// Proof of a caller's authority, interpreted only by the registered authority verifier.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthorityRef {
    /// Always 1.
    pub contract_version: RootVersion,
    /// The opaque reference.
    #[serde(rename = "ref")]
    pub reference: Option<String>,
    /// `sha256:` hash of the request payload this ref authorizes.
    pub payload_hash: Option<String>,
    /// The node the ref is for.
    pub audience: Option<String>,
    /// When it was issued (RFC 3339).
    pub issued_at: Option<String>,
    /// When it stops being valid (RFC 3339).
    pub expires_at: Option<String>,
    /// Verifier-specific data (key id, signature).
    pub metadata: Map,
}

crate::boundary_contract!(AuthorityRef, "authority_ref");
