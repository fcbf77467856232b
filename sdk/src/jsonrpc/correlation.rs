//! Correlation: the ids of requests still waiting for a response, so a response the lane never
//! asked for (or one answered twice) is caught as a protocol failure instead of being trusted.

use std::collections::HashSet;

use serde_json::Value;

/// The ids of outstanding requests.
///
/// Ids compare as JSON values with their type, as JSON-RPC requires the response to echo the
/// request's id exactly: `1`, `1.0` and `"1"` are three different ids, and a peer that answers
/// request `1` with id `1.0` does not match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pending {
    /// Each id's compact JSON text: `Value` is not `Hash`, and the text keeps `1`, `1.0` and
    /// `"1"` apart exactly as `Value` equality does.
    ids: HashSet<String>,
}

impl Pending {
    /// No outstanding requests.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that request `id` was sent; `false` if it was already outstanding, because two
    /// requests with one id cannot be told apart when their responses come back.
    #[must_use = "a duplicate id means the response cannot be matched; refuse to send it"]
    pub fn insert(&mut self, id: &Value) -> bool {
        self.ids.insert(id.to_string())
    }

    /// Settles request `id` because its response arrived; `false` if no such request is
    /// outstanding, which is a protocol failure the lane should report.
    #[must_use = "a response matching no request is a protocol failure"]
    pub fn take(&mut self, id: &Value) -> bool {
        self.ids.remove(&id.to_string())
    }

    /// Whether request `id` is still waiting for its response.
    #[must_use]
    pub fn contains(&self, id: &Value) -> bool {
        self.ids.contains(&id.to_string())
    }

    /// How many requests are waiting, so a lane knows whether it may stop reading.
    #[must_use]
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether no request is waiting.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn response_to_an_outstanding_request_matches_once() {
        let mut pending = Pending::new();
        assert!(pending.insert(&json!(1)));
        assert!(pending.insert(&json!("attempt://1")));
        assert_eq!(pending.len(), 2);
        assert!(pending.take(&json!(1)));
        assert!(
            !pending.take(&json!(1)),
            "a second response to one request does not match"
        );
        assert!(pending.contains(&json!("attempt://1")));
        assert!(pending.take(&json!("attempt://1")));
        assert!(pending.is_empty());
    }

    #[test]
    fn unknown_response_id_does_not_match() {
        let mut pending = Pending::new();
        assert!(pending.insert(&json!(1)));
        assert!(!pending.take(&json!(2)));
        assert!(!pending.take(&Value::Null));
        assert_eq!(pending.len(), 1);
    }

    #[test]
    fn ids_compare_with_their_json_type() {
        let mut pending = Pending::new();
        assert!(pending.insert(&json!(1)));
        assert!(!pending.take(&json!("1")));
        assert!(!pending.take(&json!(1.0)));
        assert!(pending.take(&json!(1)));
        assert!(pending.insert(&json!(1.0)));
        assert!(!pending.take(&json!(1)));
        assert!(pending.take(&json!(1.0)));
    }

    #[test]
    fn duplicate_outstanding_id_is_reported() {
        let mut pending = Pending::new();
        assert!(pending.insert(&json!(7)));
        assert!(!pending.insert(&json!(7)));
        assert!(pending.take(&json!(7)));
        assert!(
            pending.insert(&json!(7)),
            "an id may be reused once settled"
        );
    }
}
