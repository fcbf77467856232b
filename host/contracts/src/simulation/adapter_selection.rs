//! `AdapterSelectionPolicy.v1`: which adapter a surface may select.

use super::*;

/// Where an adapter (real or simulated) may be selected: owner registries and install profiles.
pub const SELECTION_SURFACES: [&str; 6] = [
    "application_config",
    "adapter_registry",
    "transport_registry",
    "provider_registry",
    "backend_manifest",
    "profile_registry_install",
];

/// How the lower adapter is chosen: only through owner registries or install-time profiles,
/// never through a public request-time `simulation` selector.
#[derive(Debug, Clone, PartialEq)]
pub struct AdapterSelectionPolicy {
    /// One of [`SELECTION_SURFACES`].
    pub selection_surface: String,
    /// Always `execution_plane`.
    pub owner_repo: String,
    /// The owner-side configuration key; never `simulation` nor `*.simulation*`.
    pub config_key: String,
    /// What is selected when the key is unset.
    pub default_value_when_unset: String,
    /// What happens when the configuration is wrong (fail closed).
    pub fail_closed_action_when_misconfigured: String,
}

impl AdapterSelectionPolicy {
    /// The exact `contract_version` string.
    pub const VERSION: &'static str = "ExecutionPlane.AdapterSelectionPolicy.v1";
}

impl Contract for AdapterSelectionPolicy {
    const NAME: &'static str = Self::VERSION;

    fn from_value(value: &Value) -> Result<Self, ContractError> {
        let attrs = Attrs::new(value)?;
        attrs.forbid_keys(
            &["simulation"],
            "public simulation selector is forbidden; use owner registry configuration",
        )?;
        let selection_surface = attrs.one_of(
            "selection_surface",
            &SELECTION_SURFACES,
            EnumWording::UnsupportedValue,
        )?;
        let config_key = attrs.required_string("config_key")?;
        if config_key == "simulation" || config_key.contains(".simulation") {
            return Err(ContractError::rule(
                "config_key",
                "config_key must not be a public simulation selector",
            ));
        }
        attrs.check_version(Self::VERSION)?;
        let owner_repo = exactly(&attrs, "owner_repo", OWNER_REPO)?;
        let default_value_when_unset = attrs.required_string("default_value_when_unset")?;
        let fail_closed_action_when_misconfigured =
            attrs.required_string("fail_closed_action_when_misconfigured")?;
        Ok(Self {
            selection_surface,
            owner_repo,
            config_key,
            default_value_when_unset,
            fail_closed_action_when_misconfigured,
        })
    }

    fn to_value(&self) -> Value {
        let mut map = Map::new();
        put_version(&mut map, Self::VERSION);
        put(
            &mut map,
            "selection_surface",
            self.selection_surface.clone(),
        );
        put(&mut map, "owner_repo", self.owner_repo.clone());
        put(&mut map, "config_key", self.config_key.clone());
        put(
            &mut map,
            "default_value_when_unset",
            self.default_value_when_unset.clone(),
        );
        put(
            &mut map,
            "fail_closed_action_when_misconfigured",
            self.fail_closed_action_when_misconfigured.clone(),
        );
        Value::Object(map)
    }
}
