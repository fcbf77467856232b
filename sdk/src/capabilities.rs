//! What a lane reports about itself when the host loads it.

use serde_json::{Map, Value};

/// What a lane can do, built with chained calls:
/// `Capabilities::new("example-echo").protocol("echo").with_stream()`.
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub struct Capabilities {
    lane_id: String,
    protocols: Vec<String>,
    surfaces: Vec<String>,
    supports_execute: bool,
    supports_stream: bool,
    metadata: Map<String, Value>,
}

impl Capabilities {
    /// A lane with id `lane_id` that supports `execute` and not `stream`; the id must match the
    /// one in the lane's manifest.
    pub fn new(lane_id: impl Into<String>) -> Self {
        Self {
            lane_id: lane_id.into(),
            protocols: Vec::new(),
            surfaces: Vec::new(),
            supports_execute: true,
            supports_stream: false,
            metadata: Map::new(),
        }
    }

    /// Adds a protocol the lane speaks (`http`, `jsonrpc`, ...), so routing can find it.
    pub fn protocol(mut self, protocol: impl Into<String>) -> Self {
        self.protocols.push(protocol.into());
        self
    }

    /// Adds a surface the lane runs on (`local`, ...).
    pub fn surface(mut self, surface: impl Into<String>) -> Self {
        self.surfaces.push(surface.into());
        self
    }

    /// Declares that the lane implements [`Lane::stream`](crate::Lane::stream).
    pub fn with_stream(mut self) -> Self {
        self.supports_stream = true;
        self
    }

    /// Declares that the lane only streams: the host will not route `execute` to it.
    pub fn without_execute(mut self) -> Self {
        self.supports_execute = false;
        self
    }

    /// Adds one free-form metadata entry shown by the node's `describe`.
    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }

    /// The lane id.
    pub fn lane_id(&self) -> &str {
        &self.lane_id
    }

    /// The protocols, in the order added.
    pub fn protocols(&self) -> &[String] {
        &self.protocols
    }

    /// The surfaces, in the order added.
    pub fn surfaces(&self) -> &[String] {
        &self.surfaces
    }

    /// Whether the lane supports `execute`.
    pub fn supports_execute(&self) -> bool {
        self.supports_execute
    }

    /// Whether the lane supports `stream`.
    pub fn supports_stream(&self) -> bool {
        self.supports_stream
    }

    /// The metadata object.
    pub fn metadata_map(&self) -> &Map<String, Value> {
        &self.metadata
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn new_supports_execute_only() {
        let c = Capabilities::new("x");
        assert_eq!(c.lane_id(), "x");
        assert!(c.supports_execute());
        assert!(!c.supports_stream());
        assert!(c.protocols().is_empty() && c.surfaces().is_empty() && c.metadata_map().is_empty());
    }

    #[test]
    fn builder_collects_protocols_surfaces_flags_and_metadata() {
        let c = Capabilities::new("x")
            .protocol("echo")
            .protocol("text")
            .surface("local")
            .with_stream()
            .without_execute()
            .metadata("author", "someone");
        assert_eq!(c.protocols(), ["echo", "text"]);
        assert_eq!(c.surfaces(), ["local"]);
        assert!(c.supports_stream() && !c.supports_execute());
        assert_eq!(
            Value::Object(c.metadata_map().clone()),
            json!({"author": "someone"})
        );
    }
}
