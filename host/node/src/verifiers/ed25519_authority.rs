//! The built-in authority verifier: Ed25519-signed authority refs bound to one node and one
//! payload, with an expiry.
//!
//! The scheme (message, key files, trust store) lives in [`crate::authority`]. Checks run in a
//! fixed order and each failure is an `authority_rejected` rejection whose `details.check` names
//! the check that failed:
//!
//! | order | `check`            | refuses when                                                |
//! |-------|--------------------|-------------------------------------------------------------|
//! | 1     | `required_fields`  | ref, payload_hash, audience, issued_at, expires_at, metadata.key_id or metadata.signature is missing |
//! | 2     | `key_id`           | the key id is not in the trust store                        |
//! | 3     | `key_not_after`    | the trusted key is past its `not_after`                     |
//! | 4     | `signature`        | the signature does not decode or does not verify (strict)   |
//! | 5     | `audience`         | the ref is for another node                                 |
//! | 6     | `issued_at`        | unparsable, or later than now + clock skew                  |
//! | 7     | `expires_at`       | unparsable, or not after now                                |
//! | 8     | `validity_window`  | `expires_at` is not after `issued_at`                       |
//! | 9     | `payload_hash`     | the request payload hashes to something else (replay)       |
//!
//! The signature is checked before any claim is interpreted, so an attacker learns nothing from
//! the later checks about a ref they could not sign.
//!
//! ```
//! use std::time::Duration;
//! use ep_node::authority::{SigningKeyFile, TrustStore, sign};
//! use ep_node::verifiers::ed25519_authority::Ed25519AuthorityVerifier;
//!
//! let key = SigningKeyFile::from_seed("dev", [7u8; 32]);
//! let trust = TrustStore::from_toml_str(&key.public_entry()).unwrap();
//! let verifier = Ed25519AuthorityVerifier::new("node-a", trust)
//!     .with_clock_skew(Duration::from_secs(30));
//!
//! let payload = serde_json::Map::new();
//! let authority = sign(&key, &payload, "node-a", Duration::from_secs(60), chrono::Utc::now());
//! let claims = verifier.verify_ref(&authority, &payload).unwrap();
//! assert_eq!(claims["key_id"], "dev");
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use ep_contracts::boundary::{
    AdmissionRejection, AdmissionRequest, AuthorityRef, Map, RejectionReason,
};
use serde_json::Value;

use crate::authority::{
    AuthorityFields, Clock, SystemClock, TrustStore, decode_signature, format_rfc3339,
    parse_rfc3339, payload_hash, signing_message,
};
use crate::traits::AuthorityVerifier;

/// The id this verifier reports (recorded in descriptors and evidence).
pub const VERIFIER_ID: &str = "execution-plane:ed25519-authority:v1";

/// How far in the future `issued_at` may be before a ref is refused (issuer clock drift).
pub const DEFAULT_CLOCK_SKEW: Duration = Duration::from_secs(60);

/// Verifies Ed25519 authority refs against a trust store, for one node (the audience).
pub struct Ed25519AuthorityVerifier {
    node_id: String,
    trust: TrustStore,
    skew: TimeDelta,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for Ed25519AuthorityVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ed25519AuthorityVerifier")
            .field("node_id", &self.node_id)
            .field("trusted_keys", &self.trust.key_ids().collect::<Vec<_>>())
            .field("skew", &self.skew)
            .finish_non_exhaustive()
    }
}

impl Ed25519AuthorityVerifier {
    /// A verifier for node `node_id` (the required audience) trusting `trust`, with the system
    /// clock and [`DEFAULT_CLOCK_SKEW`].
    pub fn new(node_id: impl Into<String>, trust: TrustStore) -> Self {
        Self {
            node_id: node_id.into(),
            trust,
            skew: skew_delta(DEFAULT_CLOCK_SKEW),
            clock: Arc::new(SystemClock),
        }
    }

    /// Sets how far in the future `issued_at` may be.
    #[must_use]
    pub fn with_clock_skew(mut self, skew: Duration) -> Self {
        self.skew = skew_delta(skew);
        self
    }

    /// Replaces the clock (tests use [`crate::authority::ManualClock`]).
    #[must_use]
    pub fn with_clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The node id refs must name as their audience.
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// The keys this verifier trusts.
    pub fn trust_store(&self) -> &TrustStore {
        &self.trust
    }

    /// Verifies `authority` for `payload` at the clock's now; returns the verified claims
    /// `{key_id, ref, audience, issued_at, expires_at}`.
    pub fn verify_ref(
        &self,
        authority: &AuthorityRef,
        payload: &Map,
    ) -> Result<Map, AdmissionRejection> {
        let now = self.clock.now();

        // 1. Required fields.
        let (fields, key_id, signature) = required_fields(authority)?;

        // 2-3. Known, unexpired key.
        let Some(trusted) = self.trust.get(key_id) else {
            return Err(reject(
                "key_id",
                format!(
                    "authority ref is signed with unknown key id {key_id:?} ({} keys trusted); \
                     add its public key to the node's trust store or sign with a trusted key",
                    self.trust.len()
                ),
            ));
        };
        if let Some(not_after) = trusted.not_after
            && now > not_after
        {
            return Err(reject(
                "key_not_after",
                format!(
                    "trusted key {key_id:?} expired at {} (not_after); rotate to a new key and \
                     update the trust store",
                    format_rfc3339(not_after)
                ),
            ));
        }

        // 4. Signature over the canonical message.
        let signature = decode_signature(signature).map_err(|reason| {
            reject(
                "signature",
                format!("{reason}; re-issue the ref with a valid signature"),
            )
        })?;
        let message = signing_message(key_id, &fields);
        if trusted
            .public_key
            .verify_strict(message.as_bytes(), &signature)
            .is_err()
        {
            return Err(reject(
                "signature",
                format!(
                    "authority ref signature does not verify with key {key_id:?}: the ref was \
                     altered after signing or signed by another key; re-issue it"
                ),
            ));
        }

        // 5. Audience.
        if fields.audience != self.node_id {
            return Err(reject(
                "audience",
                format!(
                    "authority ref is for audience {:?} but this node is {:?}; request a ref \
                     issued for node {:?}",
                    fields.audience, self.node_id, self.node_id
                ),
            ));
        }

        // 6. Not issued in the future.
        let issued_at = parse_rfc3339(&fields.issued_at).map_err(|reason| {
            reject(
                "issued_at",
                format!("authority ref issued_at {reason}; re-issue the ref"),
            )
        })?;
        let latest_issue = now
            .checked_add_signed(self.skew)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        if issued_at > latest_issue {
            return Err(reject(
                "issued_at",
                format!(
                    "authority ref issued_at {} is in the future (node clock {}, allowed skew \
                     {}s); check the issuer's clock and re-issue",
                    fields.issued_at,
                    format_rfc3339(now),
                    self.skew.num_seconds()
                ),
            ));
        }

        // 7. Not expired.
        let expires_at = parse_rfc3339(&fields.expires_at).map_err(|reason| {
            reject(
                "expires_at",
                format!("authority ref expires_at {reason}; re-issue the ref"),
            )
        })?;
        if expires_at <= now {
            return Err(reject(
                "expires_at",
                format!(
                    "authority ref expired at {} (node clock {}); request a fresh ref",
                    fields.expires_at,
                    format_rfc3339(now)
                ),
            ));
        }

        // 8. A positive validity window.
        if expires_at <= issued_at {
            return Err(reject(
                "validity_window",
                format!(
                    "authority ref expires_at {} is not after issued_at {}; re-issue it with a \
                     positive lifetime",
                    fields.expires_at, fields.issued_at
                ),
            ));
        }

        // 9. Bound to this payload.
        let actual = payload_hash(payload);
        if fields.payload_hash != actual {
            return Err(reject(
                "payload_hash",
                format!(
                    "authority ref authorizes payload {} but the request payload hashes to \
                     {actual}; a ref cannot be reused for another payload, sign this payload",
                    fields.payload_hash
                ),
            ));
        }

        Ok(claims(key_id, fields))
    }
}

#[async_trait]
impl AuthorityVerifier for Ed25519AuthorityVerifier {
    fn verifier_id(&self) -> &str {
        VERIFIER_ID
    }

    async fn verify(
        &self,
        authority: &AuthorityRef,
        request: &AdmissionRequest,
    ) -> Result<Map, AdmissionRejection> {
        self.verify_ref(authority, &request.payload)
            .map_err(|rejection| rejection.for_request(request.request_id.clone()))
    }
}

fn skew_delta(skew: Duration) -> TimeDelta {
    TimeDelta::from_std(skew).unwrap_or(TimeDelta::MAX)
}

fn reject(check: &str, message: String) -> AdmissionRejection {
    AdmissionRejection::new(RejectionReason::AuthorityRejected, message)
        .with_detail("check", check)
        .with_detail("verifier_id", VERIFIER_ID)
}

/// Check 1: every field the signature covers is present; returns them with key id and signature.
fn required_fields(
    authority: &AuthorityRef,
) -> Result<(AuthorityFields, &str, &str), AdmissionRejection> {
    let mut missing: Vec<&str> = Vec::new();
    let mut take = |name: &'static str, value: Option<&str>| -> String {
        match value {
            Some(v) if !v.is_empty() => v.to_owned(),
            _ => {
                missing.push(name);
                String::new()
            }
        }
    };
    let fields = AuthorityFields {
        reference: take("ref", authority.reference.as_deref()),
        payload_hash: take("payload_hash", authority.payload_hash.as_deref()),
        audience: take("audience", authority.audience.as_deref()),
        issued_at: take("issued_at", authority.issued_at.as_deref()),
        expires_at: take("expires_at", authority.expires_at.as_deref()),
    };
    let key_id = metadata_str(authority, "key_id");
    let signature = metadata_str(authority, "signature");
    if key_id.is_none() {
        missing.push("metadata.key_id");
    }
    if signature.is_none() {
        missing.push("metadata.signature");
    }
    match (key_id, signature) {
        (Some(key_id), Some(signature)) if missing.is_empty() => Ok((fields, key_id, signature)),
        _ => Err(reject(
            "required_fields",
            format!(
                "authority ref is missing {}; issue it with a signer that sets ref, payload_hash, \
                 audience, issued_at, expires_at and metadata.key_id/metadata.signature",
                missing.join(", ")
            ),
        )
        .with_detail(
            "missing",
            Value::Array(missing.iter().map(|m| Value::from(*m)).collect()),
        )),
    }
}

fn metadata_str<'a>(authority: &'a AuthorityRef, key: &str) -> Option<&'a str> {
    match authority.metadata.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Some(s.as_str()),
        _ => None,
    }
}

fn claims(key_id: &str, fields: AuthorityFields) -> Map {
    let mut map = Map::new();
    map.insert("key_id".to_owned(), Value::from(key_id));
    map.insert("ref".to_owned(), Value::from(fields.reference));
    map.insert("audience".to_owned(), Value::from(fields.audience));
    map.insert("issued_at".to_owned(), Value::from(fields.issued_at));
    map.insert("expires_at".to_owned(), Value::from(fields.expires_at));
    map
}
