use serde::{Deserialize, Deserializer, Serialize};

use super::{Map, RootVersion};

/// An opaque governance bundle authored upstream; carried, never enforced. Its `bundle_hash` is
/// copied into every evidence record as `policy_bundle_hash`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SandboxProfile {
    /// Always 1.
    pub contract_version: RootVersion,
    /// Reference to the profile.
    pub profile_ref: Option<String>,
    /// Hash of the bundle.
    pub bundle_hash: Option<String>,
    /// The bundle itself, opaque.
    pub opaque_bundle: serde_json::Value,
    /// Free-form metadata.
    pub metadata: Map,
}

crate::boundary_contract!(SandboxProfile, "sandbox_profile");

/// The isolation classes a caller accepts, in order of preference.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct AcceptableAttestation {
    /// Always 1.
    pub contract_version: RootVersion,
    /// Accepted classes (de-duplicated, order kept).
    pub classes: Vec<String>,
    /// Preference order (de-duplicated; defaults to `classes`).
    pub priority_order: Vec<String>,
}

#[derive(Deserialize)]
struct RawAcceptable {
    #[serde(default)]
    #[allow(dead_code)]
    contract_version: RootVersion,
    #[serde(default)]
    classes: Vec<String>,
    #[serde(default)]
    priority_order: Option<Vec<String>>,
}

impl<'de> Deserialize<'de> for AcceptableAttestation {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = RawAcceptable::deserialize(d)?;
        Ok(Self::new(raw.classes, raw.priority_order))
    }
}

fn dedup(items: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

impl AcceptableAttestation {
    /// Builds the set; `priority_order` defaults to `classes`; both are de-duplicated.
    pub fn new(classes: Vec<String>, priority_order: Option<Vec<String>>) -> Self {
        let classes = dedup(classes);
        let priority_order = dedup(priority_order.unwrap_or_else(|| classes.clone()));
        Self {
            contract_version: RootVersion,
            classes,
            priority_order,
        }
    }

    /// A set accepting exactly `classes`, in that order.
    pub fn of<I: IntoIterator<Item = S>, S: Into<String>>(classes: I) -> Self {
        Self::new(classes.into_iter().map(Into::into).collect(), None)
    }

    /// Whether nothing is accepted (such a request never matches a target).
    pub fn is_empty(&self) -> bool {
        self.classes.is_empty()
    }

    /// The accepted classes a target attests, best first.
    ///
    /// Walks `priority_order` keeping classes that are both accepted and attested; if that
    /// yields nothing, falls back to `classes` filtered by the attested set. Unlike upstream, a
    /// class in `priority_order` but not in `classes` is never returned: a caller's preference
    /// list cannot widen what it accepts.
    pub fn intersect(&self, attested: &[String]) -> Vec<String> {
        let accepted = |c: &&String| self.classes.contains(c) && attested.contains(c);
        let ordered: Vec<String> = self
            .priority_order
            .iter()
            .filter(accepted)
            .cloned()
            .collect();
        if !ordered.is_empty() {
            return ordered;
        }
        self.classes.iter().filter(accepted).cloned().collect()
    }
}

crate::boundary_contract!(AcceptableAttestation, "acceptable_attestation");

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Contract;
    use serde_json::json;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| (*x).to_owned()).collect()
    }

    #[test]
    fn dedupes_and_defaults_priority_to_classes() {
        let a = AcceptableAttestation::from_value(&json!({"classes": ["a", "b", "a"]})).unwrap();
        assert_eq!(a.classes, s(&["a", "b"]));
        assert_eq!(a.priority_order, s(&["a", "b"]));
    }

    #[test]
    fn intersect_follows_priority_order() {
        let a = AcceptableAttestation::new(s(&["a", "b", "c"]), Some(s(&["c", "a"])));
        assert_eq!(a.intersect(&s(&["a", "c"])), s(&["c", "a"]));
    }

    #[test]
    fn intersect_falls_back_to_classes_when_priority_matches_nothing() {
        let a = AcceptableAttestation::new(s(&["a", "b"]), Some(s(&["z"])));
        assert_eq!(a.intersect(&s(&["b"])), s(&["b"]));
    }

    #[test]
    fn priority_order_cannot_widen_accepted_classes() {
        let a = AcceptableAttestation::new(s(&["a"]), Some(s(&["strong", "a"])));
        assert_eq!(a.intersect(&s(&["strong"])), Vec::<String>::new());
        assert_eq!(a.intersect(&s(&["strong", "a"])), s(&["a"]));
    }

    #[test]
    fn empty_set_matches_nothing() {
        let a = AcceptableAttestation::default();
        assert!(a.is_empty());
        assert!(a.intersect(&s(&["a"])).is_empty());
    }

    #[test]
    fn non_list_classes_are_refused_naming_the_field() {
        let err = AcceptableAttestation::from_value(&json!({"classes": "a"})).unwrap_err();
        assert_eq!(err.field(), Some("classes"));
    }
}
