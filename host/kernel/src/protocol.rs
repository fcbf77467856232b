//! The lower protocols the kernel routes: a closed set, so an unknown protocol is a typed error
//! at planning time rather than a late failure in a lane.

/// A lower protocol the kernel can plan for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// Unary HTTP.
    Http,
    /// JSON-RPC framing and correlation.
    JsonRpc,
    /// One-shot or long-lived processes.
    Process,
}

impl Protocol {
    /// The route's protocol name for this protocol.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::JsonRpc => "jsonrpc",
            Self::Process => "process",
        }
    }

    /// The protocol a route names, when the kernel knows it.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "http" => Some(Self::Http),
            "jsonrpc" => Some(Self::JsonRpc),
            "process" => Some(Self::Process),
            _ => None,
        }
    }

    /// Whether route-configured lower simulation applies (§5.1: http and process only).
    pub fn supports_lower_simulation(self) -> bool {
        matches!(self, Self::Http | Self::Process)
    }
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
