//! The built-in authority verifier: Ed25519-signed, single-use authority refs bound to one node
//! and one whole admission request, with an expiry.
//!
//! The scheme (message, key files, trust store) lives in [`crate::authority`]. Checks run in a
//! fixed order and each failure is an `authority_rejected` rejection whose `details.check` names
//! the check that failed:
//!
//! | order | `check`            | refuses when                                                |
//! |-------|--------------------|-------------------------------------------------------------|
//! | 1     | `required_fields`  | ref, payload_hash, audience, issued_at, expires_at, metadata.key_id, metadata.nonce, metadata.request_hash or metadata.signature is missing |
//! | 2     | `key_id`           | the key id is not in the trust store                        |
//! | 3     | `key_not_after`    | the trusted key is past its `not_after`                     |
//! | 4     | `signature`        | the signature does not decode or does not verify (strict)   |
//! | 5     | `audience`         | the ref is for another node                                 |
//! | 6     | `issued_at`        | unparsable, or later than now + clock skew                  |
//! | 7     | `expires_at`       | unparsable, or not after now                                |
//! | 8     | `validity_window`  | `expires_at` is not after `issued_at`                       |
//! | 9     | `lifetime`         | `expires_at - issued_at` is longer than the longest lifetime accepted (1 h by default) |
//! | 10    | `issued_before_start` | the ref was issued before this verifier started (a restart forgets which refs were used) |
//! | 11    | `payload_hash`     | the request payload hashes to something else                |
//! | 12    | `request_hash`     | the request (lane, operation, metadata, classes, …) hashes to something else |
//! | 13    | `replayed`         | a ref with this key id and nonce was already dispatched     |
//! | 14    | `replay_memory_full` | (on dispatch) the memory of used refs is full of unexpired refs |
//!
//! The signature is checked before any claim is interpreted, so an attacker learns nothing from
//! the later checks about a ref they could not sign.
//!
//! **Single use.** `verify` (admission, including `/v1/admit`) checks that the nonce is unused;
//! `consume` (a dispatch: execute or stream) remembers it, atomically, so of two dispatches of
//! one ref exactly one runs. Used nonces are kept in memory until their refs expire, in bounded
//! memory ([`Ed25519AuthorityVerifier::with_replay_capacity`]). The memory does not survive a
//! restart; instead a verifier refuses refs issued before it was created, so a ref used before
//! a restart cannot be used again after it (callers sign fresh refs after a restart).
//!
//! ```
//! use std::time::Duration;
//! use ep_contracts::boundary::AdmissionRequest;
//! use ep_node::authority::{SigningKeyFile, TrustStore, authorize};
//! use ep_node::verifiers::ed25519_authority::Ed25519AuthorityVerifier;
//!
//! let key = SigningKeyFile::from_seed("dev", [7u8; 32]);
//! let trust = TrustStore::from_toml_str(&key.public_entry()).unwrap();
//! let verifier = Ed25519AuthorityVerifier::new("node-a", trust)
//!     .with_clock_skew(Duration::from_secs(30));
//!
//! let request = authorize(&key, AdmissionRequest::new("http"), "node-a",
//!     Duration::from_secs(60), chrono::Utc::now());
//! let authority = request.authority_ref.clone().unwrap();
//! let claims = verifier.verify_ref(&authority, &request).unwrap();
//! assert_eq!(claims["key_id"], "dev");
//! verifier.consume_ref(&claims).unwrap();
//! assert!(verifier.verify_ref(&authority, &request).is_err(), "single use");
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
    parse_rfc3339, payload_hash, request_hash, signing_message,
};
use crate::traits::AuthorityVerifier;
use crate::verifiers::replay::{DEFAULT_REPLAY_CAPACITY, Refused, ReplayCache};

/// The id this verifier reports (recorded in descriptors and evidence).
pub const VERIFIER_ID: &str = "execution-plane:ed25519-authority:v1";

/// How far in the future `issued_at` may be before a ref is refused (issuer clock drift).
pub const DEFAULT_CLOCK_SKEW: Duration = Duration::from_secs(60);

/// The longest lifetime (`expires_at - issued_at`) a ref may have unless configured otherwise:
/// used nonces are remembered this long at most.
pub const DEFAULT_MAX_LIFETIME: Duration = Duration::from_secs(3600);

/// Verifies Ed25519 authority refs against a trust store, for one node (the audience).
pub struct Ed25519AuthorityVerifier {
    node_id: String,
    trust: TrustStore,
    skew: TimeDelta,
    clock: Arc<dyn Clock>,
    max_lifetime: TimeDelta,
    /// Refs issued before this are refused (the verifier's start).
    not_before: DateTime<Utc>,
    replay: ReplayCache,
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
            max_lifetime: skew_delta(DEFAULT_MAX_LIFETIME),
            not_before: SystemClock.now(),
            replay: ReplayCache::new(DEFAULT_REPLAY_CAPACITY),
        }
    }

    /// Sets the longest ref lifetime accepted (default [`DEFAULT_MAX_LIFETIME`]).
    #[must_use]
    pub fn with_max_lifetime(mut self, lifetime: Duration) -> Self {
        self.max_lifetime = skew_delta(lifetime);
        self
    }

    /// Sets how many used, unexpired refs are remembered (default 1,000,000, about 40 MB at
    /// most); when full, new refs are refused until old ones expire.
    #[must_use]
    pub fn with_replay_capacity(mut self, capacity: usize) -> Self {
        self.replay = ReplayCache::new(capacity);
        self
    }

    /// Accepts refs issued from `instant` on (default: when the verifier was made). A host
    /// that persists its used nonces elsewhere may move it back.
    #[must_use]
    pub fn with_not_before(mut self, instant: DateTime<Utc>) -> Self {
        self.not_before = instant;
        self
    }

    /// Sets how far in the future `issued_at` may be.
    #[must_use]
    pub fn with_clock_skew(mut self, skew: Duration) -> Self {
        self.skew = skew_delta(skew);
        self
    }

    /// Replaces the clock (tests use [`crate::authority::ManualClock`]).
    #[must_use]
    /// The verifier's start (refs issued before it are refused) moves to the new clock's now.
    pub fn with_clock(mut self, clock: impl Clock + 'static) -> Self {
        self.not_before = clock.now();
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

    /// Verifies `authority` for `request` at the clock's now; returns the verified claims
    /// `{key_id, ref, audience, issued_at, expires_at, nonce}`. Does not use the ref up: see
    /// [`Ed25519AuthorityVerifier::consume_ref`].
    pub fn verify_ref(
        &self,
        authority: &AuthorityRef,
        request: &AdmissionRequest,
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

        // 9. A bounded lifetime, so used nonces need not be remembered for long.
        if expires_at - issued_at > self.max_lifetime {
            return Err(reject(
                "lifetime",
                format!(
                    "authority ref lives from {} to {}, longer than the {}s this node accepts; \
                     re-issue it with a shorter ttl",
                    fields.issued_at,
                    fields.expires_at,
                    self.max_lifetime.num_seconds()
                ),
            ));
        }

        // 10. Issued since this verifier started: refs used before a restart stay used.
        if issued_at < self.not_before {
            return Err(reject(
                "issued_before_start",
                format!(
                    "authority ref was issued at {}, before this node started at {}; refs from \
                     before a restart are refused (the node cannot know whether they were \
                     used); issue a fresh ref",
                    fields.issued_at,
                    format_rfc3339(self.not_before)
                ),
            ));
        }

        // 11. Bound to this payload.
        let actual = payload_hash(&request.payload);
        if fields.payload_hash != actual {
            return Err(reject(
                "payload_hash",
                format!(
                    "authority ref authorizes payload {} but the request payload hashes to \
                     {actual}; a ref cannot be reused for another payload, sign this request",
                    fields.payload_hash
                ),
            ));
        }

        // 12. Bound to the whole request.
        let actual = request_hash(request);
        if fields.request_hash != actual {
            return Err(reject(
                "request_hash",
                format!(
                    "authority ref authorizes request {} but this request hashes to {actual}: \
                     its lane, operation, metadata, acceptable classes or another field differ \
                     from what was signed; sign this exact request",
                    fields.request_hash
                ),
            ));
        }

        // 13. Not used before.
        if self.replay.seen(key_id, &fields.nonce, now) {
            return Err(replayed(&fields.reference));
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
        self.verify_ref(authority, request)
            .map_err(|rejection| rejection.for_request(request.request_id.clone()))
    }

    async fn consume(
        &self,
        claims: &Map,
        request: &AdmissionRequest,
    ) -> Result<(), AdmissionRejection> {
        self.consume_ref(claims)
            .map_err(|rejection| rejection.for_request(request.request_id.clone()))
    }
}

impl Ed25519AuthorityVerifier {
    /// Uses up a verified ref (its claims from [`Ed25519AuthorityVerifier::verify_ref`]): a
    /// second dispatch with the same key id and nonce is refused until the ref expires.
    pub fn consume_ref(&self, claims: &Map) -> Result<(), AdmissionRejection> {
        let text = |key: &str| claims.get(key).and_then(Value::as_str).unwrap_or_default();
        let expires_at = parse_rfc3339(text("expires_at"))
            .map_err(|reason| reject("expires_at", format!("authority ref expires_at {reason}")))?;
        match self
            .replay
            .remember(text("key_id"), text("nonce"), expires_at, self.clock.now())
        {
            Ok(()) => Ok(()),
            Err(Refused::Replayed) => Err(replayed(text("ref"))),
            Err(Refused::Full) => Err(reject(
                "replay_memory_full",
                "the node remembers as many unexpired authority refs as it may; retry when \
                 older refs expire, or have refs issued with a shorter ttl"
                    .to_owned(),
            )),
        }
    }
}

fn replayed(reference: &str) -> AdmissionRejection {
    reject(
        "replayed",
        format!(
            "authority ref {reference:?} was already used: a ref authorizes one execution; \
             issue a fresh ref for each request"
        ),
    )
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
        nonce: take("metadata.nonce", metadata_str(authority, "nonce")),
        request_hash: take(
            "metadata.request_hash",
            metadata_str(authority, "request_hash"),
        ),
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
                 audience, issued_at, expires_at and metadata.key_id/nonce/request_hash/signature \
                 (`execution-plane authority sign --request`)",
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
    map.insert("nonce".to_owned(), Value::from(fields.nonce));
    map
}
