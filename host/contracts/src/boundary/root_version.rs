use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::version::{ROOT_CONTRACT_VERSION, normalize_root_version};

/// The root contract version marker: always `1` on output; input must normalize to 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct RootVersion;

impl Serialize for RootVersion {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(ROOT_CONTRACT_VERSION)
    }
}

impl<'de> Deserialize<'de> for RootVersion {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(d)?;
        if value.is_null() || normalize_root_version(&value) == Some(ROOT_CONTRACT_VERSION) {
            Ok(RootVersion)
        } else {
            Err(serde::de::Error::custom(format!(
                "unsupported contract_version {}, supported: {ROOT_CONTRACT_VERSION}",
                crate::inspect::inspect(&value)
            )))
        }
    }
}
