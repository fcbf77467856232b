//! A lane's outbound HTTP grant ([`HttpGrants`]) and a request's own narrowing of it
//! ([`RequestEgress`]). Effective = manifest ∩ operator policy ∩ request.

use std::fmt;

use ep_contracts::boundary::ExecutionRequest;
use serde_json::Value;

use super::address::Reach;
use super::pattern::{HttpPattern, PatternError, RequestTarget};

/// The URL patterns a lane generation may reach: `public` ones resolve to public addresses
/// only; `private` ones may also resolve to loopback, private, shared and link-local addresses.
/// An IP-literal pattern (in either list) reaches exactly its address, whatever it is.
///
/// One grant for every outbound transport: `http`/`https` patterns allow outbound HTTP
/// (`wasi:http`), `ws`/`wss` patterns the host-owned WebSocket client; the matcher compares
/// schemes, so neither ever allows the other.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpGrants {
    /// Patterns restricted to public addresses.
    pub public: Vec<HttpPattern>,
    /// Patterns whose names may resolve to private ranges (never metadata).
    pub private: Vec<HttpPattern>,
}

impl HttpGrants {
    /// Parses the two pattern lists of a manifest or policy.
    pub fn parse<S: AsRef<str>>(public: &[S], private: &[S]) -> Result<Self, PatternError> {
        let parse = |list: &[S]| {
            list.iter()
                .map(|text| HttpPattern::parse(text.as_ref()))
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(Self {
            public: parse(public)?,
            private: parse(private)?,
        }
        .normalized())
    }

    /// Nothing reachable.
    pub fn is_empty(&self) -> bool {
        self.public.is_empty() && self.private.is_empty()
    }

    /// Whether a pattern allows outbound HTTP (`http://` or `https://`).
    pub fn has_http(&self) -> bool {
        self.any_scheme(super::pattern::Scheme::is_http)
    }

    /// Whether a pattern allows WebSocket connections (`ws://` or `wss://`).
    pub fn has_websocket(&self) -> bool {
        self.any_scheme(super::pattern::Scheme::is_websocket)
    }

    fn any_scheme(&self, which: fn(super::pattern::Scheme) -> bool) -> bool {
        self.public
            .iter()
            .chain(&self.private)
            .any(|pattern| which(pattern.scheme))
    }

    /// What both allow. A private pattern keeps its private reach only when both sides grant
    /// it as private; otherwise the overlap is public-only.
    pub fn intersect(&self, other: &Self) -> Self {
        let pairs = |a: &[HttpPattern], b: &[HttpPattern]| -> Vec<HttpPattern> {
            a.iter()
                .flat_map(|x| b.iter().filter_map(move |y| x.intersect(y)))
                .collect()
        };
        let mut public = pairs(&self.public, &other.public);
        public.extend(pairs(&self.public, &other.private));
        public.extend(pairs(&self.private, &other.public));
        Self {
            public,
            private: pairs(&self.private, &other.private),
        }
        .normalized()
    }

    /// Sorted, without duplicates.
    pub(crate) fn normalized(mut self) -> Self {
        self.public.sort();
        self.public.dedup();
        self.private.sort();
        self.private.dedup();
        self
    }

    /// How far a request to `target` may go, or `None` when no pattern allows it.
    pub fn reach(&self, target: &RequestTarget) -> Option<Reach> {
        let all = || self.public.iter().chain(&self.private);
        if all().any(|p| p.matches(target) && p.names_address_of(target)) {
            return Some(Reach::Named);
        }
        if self.private.iter().any(|p| p.matches(target)) {
            return Some(Reach::Private);
        }
        self.public
            .iter()
            .any(|p| p.matches(target))
            .then_some(Reach::Public)
    }

    /// The patterns as text (`public` then `private`), for descriptions and evidence.
    pub fn describe(&self) -> Value {
        let texts = |list: &[HttpPattern]| list.iter().map(ToString::to_string).collect::<Vec<_>>();
        serde_json::json!({ "http": texts(&self.public), "http_private": texts(&self.private) })
    }
}

impl fmt::Display for HttpGrants {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (list, tag) in [(&self.public, ""), (&self.private, " (private)")] {
            for pattern in list {
                if !first {
                    f.write_str(", ")?;
                }
                first = false;
                write!(f, "{pattern}{tag}")?;
            }
        }
        if first {
            f.write_str("(none)")?;
        }
        Ok(())
    }
}

/// The key in `ExecutionRequest.metadata` with which a request narrows its lane's egress:
/// `"none"` (no outbound HTTP at all) or a list of patterns every request must also match.
pub const EGRESS_METADATA_KEY: &str = "egress";

/// What one request allows on top of its lane's grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestEgress {
    /// The lane's grant, unnarrowed.
    Lane,
    /// No outbound HTTP (`"egress": "none"`, or a `no_egress_policy` in the metadata).
    Nothing,
    /// Only requests that match a pattern of every one of these sets (the execution request's
    /// and its admission request's narrowing each add a set).
    Only(Vec<Vec<HttpPattern>>),
    /// The narrowing could not be read: fail closed, and say why.
    Invalid(String),
}

impl RequestEgress {
    /// Reads the narrowing from the request's metadata and from its admission request's
    /// metadata; both apply. Anything unreadable narrows to nothing.
    pub fn of(request: &ExecutionRequest) -> Self {
        let own = Self::of_metadata(&request.metadata);
        match request.admission_request.as_ref() {
            Some(admission) => own.and(Self::of_metadata(&admission.metadata)),
            None => own,
        }
    }

    /// Both narrowings at once.
    fn and(self, other: Self) -> Self {
        match (self, other) {
            (invalid @ Self::Invalid(_), _) | (_, invalid @ Self::Invalid(_)) => invalid,
            (Self::Nothing, _) | (_, Self::Nothing) => Self::Nothing,
            (Self::Lane, other) | (other, Self::Lane) => other,
            (Self::Only(mut a), Self::Only(b)) => {
                a.extend(b);
                Self::Only(a)
            }
        }
    }

    fn of_metadata(metadata: &ep_contracts::boundary::Map) -> Self {
        if metadata.contains_key("no_egress_policy") {
            return Self::Nothing;
        }
        match metadata.get(EGRESS_METADATA_KEY) {
            None | Some(Value::Null) => Self::Lane,
            Some(Value::String(text)) if text == "none" || text == "deny" => Self::Nothing,
            Some(Value::Array(items)) => {
                let mut patterns = Vec::with_capacity(items.len());
                for item in items {
                    let Some(text) = item.as_str() else {
                        return Self::Invalid(format!(
                            "metadata.{EGRESS_METADATA_KEY} holds a non-string entry"
                        ));
                    };
                    match HttpPattern::parse(text) {
                        Ok(pattern) => patterns.push(pattern),
                        Err(error) => return Self::Invalid(error.to_string()),
                    }
                }
                Self::Only(vec![patterns])
            }
            Some(other) => Self::Invalid(format!(
                "metadata.{EGRESS_METADATA_KEY} must be \"none\" or a list of patterns, not {other}"
            )),
        }
    }

    /// Whether the request's narrowing lets `target` through (the lane's grant is checked
    /// separately).
    pub fn allows(&self, target: &RequestTarget) -> bool {
        match self {
            Self::Lane => true,
            Self::Nothing | Self::Invalid(_) => false,
            Self::Only(sets) => sets
                .iter()
                .all(|patterns| patterns.iter().any(|p| p.matches(target))),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn target(url: &str) -> RequestTarget {
        RequestTarget::from_uri(&url.parse().unwrap()).unwrap()
    }

    #[test]
    fn reach_prefers_named_then_private_then_public() {
        let grants = HttpGrants::parse(
            &["https://*.example.com", "http://127.0.0.1:*"],
            &["http://svc.internal:8080"],
        )
        .unwrap();
        assert_eq!(
            grants.reach(&target("https://a.example.com/")),
            Some(Reach::Public)
        );
        assert_eq!(
            grants.reach(&target("http://127.0.0.1:9/")),
            Some(Reach::Named)
        );
        assert_eq!(
            grants.reach(&target("http://svc.internal:8080/")),
            Some(Reach::Private)
        );
        assert_eq!(grants.reach(&target("http://localhost:9/")), None);
        assert_eq!(grants.reach(&target("https://example.com/")), None);
    }

    #[test]
    fn grants_tell_which_transports_they_allow() {
        let http = HttpGrants::parse(&["https://a.test"], &[] as &[&str]).unwrap();
        assert!(http.has_http() && !http.has_websocket());
        let ws = HttpGrants::parse(&[] as &[&str], &["ws://svc.internal:*"]).unwrap();
        assert!(!ws.has_http() && ws.has_websocket());
        assert!(!HttpGrants::default().has_http() && !HttpGrants::default().has_websocket());
        assert_eq!(
            ws.reach(&target("ws://svc.internal:9/")),
            Some(Reach::Private)
        );
        assert_eq!(ws.reach(&target("http://svc.internal:9/")), None);
    }

    #[test]
    fn intersection_with_a_policy_narrows_and_downgrades_private() {
        let manifest = HttpGrants::parse(&["https://*:*"], &["http://*:*"]).unwrap();
        let policy = HttpGrants::parse(
            &["https://api.example.com", "http://svc.internal:8080"],
            &[] as &[&str],
        )
        .unwrap();
        let effective = manifest.intersect(&policy);
        assert_eq!(
            effective.to_string(),
            "http://svc.internal:8080, https://api.example.com"
        );
        assert!(effective.private.is_empty());
        let both_private = manifest
            .intersect(&HttpGrants::parse(&[] as &[&str], &["http://svc.internal:*"]).unwrap());
        assert_eq!(both_private.to_string(), "http://svc.internal:* (private)");
        assert!(manifest.intersect(&HttpGrants::default()).is_empty());
    }

    #[test]
    fn request_narrowing_reads_metadata_and_fails_closed() {
        let mut request = ExecutionRequest::default();
        assert_eq!(RequestEgress::of(&request), RequestEgress::Lane);
        request
            .metadata
            .insert("egress".into(), Value::from("none"));
        assert_eq!(RequestEgress::of(&request), RequestEgress::Nothing);
        request.metadata.insert(
            "egress".into(),
            serde_json::json!(["http://127.0.0.1:8080/api"]),
        );
        let only = RequestEgress::of(&request);
        assert!(only.allows(&target("http://127.0.0.1:8080/api/x")));
        assert!(!only.allows(&target("http://127.0.0.1:8080/other")));
        request
            .metadata
            .insert("egress".into(), serde_json::json!(["nope"]));
        assert!(matches!(
            RequestEgress::of(&request),
            RequestEgress::Invalid(_)
        ));
        assert!(!RequestEgress::of(&request).allows(&target("http://127.0.0.1:8080/api")));
        request
            .metadata
            .insert("egress".into(), serde_json::json!(5));
        assert!(matches!(
            RequestEgress::of(&request),
            RequestEgress::Invalid(_)
        ));
        request.metadata.remove("egress");
        request
            .metadata
            .insert("no_egress_policy".into(), serde_json::json!({}));
        assert_eq!(RequestEgress::of(&request), RequestEgress::Nothing);
    }
}
