//! The one egress decision. Every outbound transport of a lane — `wasi:http` requests (each
//! redirect hop the guest follows) and host-owned WebSocket connections — asks [`decide`] before
//! it connects: the request's own narrowing (`metadata.egress`) first, then the lane's grant
//! ([`super::HttpGrants::reach`]). A refusal is a [`Denial`] whose reason is the same word
//! whichever transport asked, recorded the same way ([`super::log::EgressLog::deny`]) and shown as
//! the same `capability.denied` evidence; what passes gets the [`Reach`] the resolved-address
//! screen (`super::client::GuardedConnector`) then enforces, which refuses with
//! [`Denial::address_not_allowed`].

use std::sync::Arc;

use serde_json::{Value, json};

use super::LaneEgress;
use super::address::Reach;
use super::client::AddressDenied;
use super::grants::RequestEgress;
use super::pattern::RequestTarget;

/// The import family asking, named in the `capability` of its denials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Capability {
    /// Outbound HTTP (`wasi:http`).
    Http,
    /// The host-owned WebSocket client (`execution-plane:lane/websocket`).
    WebSocket,
}

impl Capability {
    /// `http` or `websocket`: the `capability` of a `capability.denied` record.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::WebSocket => "websocket",
        }
    }
}

/// Why a connection was refused: a reason from the fixed list (`docs/egress.md`) and its
/// detail for evidence.
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub(crate) struct Denial {
    /// `invalid_destination`, `request_egress_invalid`, `request_denies_egress`,
    /// `outside_request_egress`, `no_http_grant`, `no_matching_grant` or `address_not_allowed`.
    pub(crate) reason: &'static str,
    /// What the evidence record carries beside the reason.
    pub(crate) detail: Value,
}

impl Denial {
    fn new(reason: &'static str, detail: Value) -> Self {
        Self { reason, detail }
    }

    /// The resolved-address screen refused every address of the destination's name.
    pub(crate) fn address_not_allowed(reach: Reach, denied: &AddressDenied) -> Self {
        let addresses: Vec<Value> = denied
            .addresses
            .iter()
            .map(|(ip, class)| json!({ "address": ip.to_string(), "class": class.as_str() }))
            .collect();
        Self::new(
            "address_not_allowed",
            json!({ "reach": reach.as_str(), "addresses": addresses }),
        )
    }
}

/// A destination [`decide`] let through: where, on which lane egress, how far.
#[derive(Debug)]
pub(crate) struct Allowed<'a> {
    /// The checked destination.
    pub(crate) target: &'a RequestTarget,
    /// The lane's egress (its grants and its clients).
    pub(crate) egress: Arc<LaneEgress>,
    /// How far the matched grant lets the connection go.
    pub(crate) reach: Reach,
}

/// Whether an execution may connect to `target` (`None` when its URL had no host the host can
/// check), under the request's `narrowing` and the lane's `egress` (`None`: no pattern at all).
/// The checks run in this order, each with its reason.
pub(crate) fn decide<'a>(
    target: Option<&'a RequestTarget>,
    narrowing: &RequestEgress,
    egress: Option<&Arc<LaneEgress>>,
) -> Result<Allowed<'a>, Denial> {
    let Some(target) = target else {
        return Err(Denial::new("invalid_destination", json!({})));
    };
    if !narrowing.allows(target) {
        return Err(match narrowing {
            RequestEgress::Invalid(why) => {
                Denial::new("request_egress_invalid", json!({ "error": why }))
            }
            RequestEgress::Nothing => Denial::new("request_denies_egress", json!({})),
            RequestEgress::Lane | RequestEgress::Only(_) => {
                Denial::new("outside_request_egress", json!({}))
            }
        });
    }
    let Some(egress) = egress else {
        return Err(Denial::new("no_http_grant", json!({})));
    };
    let Some(reach) = egress.grants.reach(target) else {
        return Err(Denial::new(
            "no_matching_grant",
            json!({ "grants": egress.grants.to_string() }),
        ));
    };
    Ok(Allowed {
        target,
        egress: Arc::clone(egress),
        reach,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::egress::{EgressConfig, HttpGrants, HttpPattern};

    fn target(url: &str) -> RequestTarget {
        RequestTarget::from_uri(&url.parse().unwrap()).unwrap()
    }

    fn egress(public: &[&str]) -> Arc<LaneEgress> {
        let grants = HttpGrants::parse(public, &[]).unwrap();
        Arc::new(LaneEgress::new(grants, &EgressConfig::default(), 1 << 20).unwrap())
    }

    fn reason(result: Result<Allowed<'_>, Denial>) -> &'static str {
        match result {
            Ok(allowed) => panic!("allowed {}", allowed.target),
            Err(denial) => denial.reason,
        }
    }

    #[test]
    fn every_transport_gets_the_same_reasons_in_the_same_order() {
        let lane = egress(&["http://127.0.0.1:*", "ws://127.0.0.1:*"]);
        let only = RequestEgress::Only(vec![vec![HttpPattern::parse("ws://127.0.0.1:9").unwrap()]]);
        for url in ["http://127.0.0.1:9/", "ws://127.0.0.1:9/"] {
            let t = target(url);
            let lane_wide = RequestEgress::Lane;
            assert_eq!(
                reason(decide(None, &lane_wide, Some(&lane))),
                "invalid_destination"
            );
            let invalid = RequestEgress::Invalid("bad".into());
            assert_eq!(
                reason(decide(Some(&t), &invalid, Some(&lane))),
                "request_egress_invalid"
            );
            let nothing = RequestEgress::Nothing;
            assert_eq!(
                reason(decide(Some(&t), &nothing, Some(&lane))),
                "request_denies_egress"
            );
            assert_eq!(reason(decide(Some(&t), &lane_wide, None)), "no_http_grant");
            let allowed = decide(Some(&t), &lane_wide, Some(&lane)).unwrap();
            assert_eq!(allowed.reach, Reach::Named);
        }
        // The narrowing compares schemes like the grant does.
        assert_eq!(
            reason(decide(
                Some(&target("http://127.0.0.1:9/")),
                &only,
                Some(&lane)
            )),
            "outside_request_egress"
        );
        assert!(decide(Some(&target("ws://127.0.0.1:9/")), &only, Some(&lane)).is_ok());
        // A ws pattern never allows http, nor the reverse.
        let ws_only = egress(&["ws://127.0.0.1:*"]);
        assert_eq!(
            reason(decide(
                Some(&target("http://127.0.0.1:9/")),
                &RequestEgress::Lane,
                Some(&ws_only)
            )),
            "no_matching_grant"
        );
        let http_only = egress(&["http://127.0.0.1:*"]);
        let denied = decide(
            Some(&target("ws://127.0.0.1:9/")),
            &RequestEgress::Lane,
            Some(&http_only),
        )
        .unwrap_err();
        assert_eq!(denied.reason, "no_matching_grant");
        assert_eq!(denied.detail, json!({ "grants": "http://127.0.0.1:*" }));
    }
}
