//! Outbound connections for lanes: grant patterns, the address policy, the request's own
//! narrowing, the one decision every transport asks ([`decision`]), the pooled client and its
//! connector, the `wasi:http` send hook, and the log that becomes evidence. Outbound HTTP and
//! the host-owned WebSocket client (`crate::capability::websocket`) share all of it.
//!
//! A lane generation granted `http` gets a [`LaneEgress`]: its effective patterns (manifest ∩
//! operator policy) and its pooled clients. Each execution's store gets a send hook holding
//! that, the request's narrowing (`metadata.egress`), the execution's deadline and a log that
//! ends up as evidence.

pub mod address;
pub(crate) mod client;
pub(crate) mod decision;
pub mod grants;
pub(crate) mod hooks;
pub(crate) mod log;
pub mod pattern;

pub use address::{AddressClass, Reach};
pub use client::{AddressDenied, EgressConfig};
pub use grants::{EGRESS_METADATA_KEY, HttpGrants, RequestEgress};
pub use pattern::{HttpPattern, PatternError, RequestTarget, Scheme};

use client::EgressClients;

/// What a lane generation granted `http` may reach, and the clients it reaches it with.
#[derive(Debug)]
pub(crate) struct LaneEgress {
    pub(crate) grants: HttpGrants,
    pub(crate) clients: EgressClients,
    pub(crate) max_response_bytes: u64,
}

impl LaneEgress {
    /// Clients for `grants` under the runtime's egress settings.
    pub(crate) fn new(
        grants: HttpGrants,
        config: &EgressConfig,
        max_response_bytes: u64,
    ) -> Result<Self, String> {
        let clients = EgressClients::new(config)
            .map_err(|e| format!("cannot set up TLS for outbound http: {e}"))?;
        Ok(Self {
            grants,
            clients,
            max_response_bytes,
        })
    }
}
