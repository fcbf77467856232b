//! Capability grants: linking is the grant, for WASI too (each grant's unit is a module of
//! `crate::capability`). A lane's linker holds the WASI p2
//! interfaces every lane may use (`wasi:io`, `wasi:clocks`, `wasi:random`, and `wasi:cli`'s
//! environment, exit, stdio and terminal interfaces, all scoped to nothing by the per-store
//! state), the type-only `types` interface, and each other interface only when its grant is on.
//! A component importing an interface that is not granted is refused at load, before it ever
//! runs, with an error naming the import.
//!
//! Grants: `events`, `logging`, `http` (`wasi:http/outgoing-handler` and `wasi:http/types`,
//! linked only when the lane has at least one URL pattern; what each request may reach is
//! checked per request by [`crate::egress`]), and `filesystem` (`wasi:filesystem/types` and
//! `preopens`, for toolchains whose runtime imports them: it opens nothing, no directory is
//! preopened) and `sockets` (`wasi:sockets`, for the same toolchains: it reaches nothing, every
//! TCP, UDP and name lookup is refused by the per-store state). Either way a lane reaches the
//! network only through `wasi:http` (its `http` grant's `http://` / `https://` patterns) and the
//! host-owned WebSocket client (ABI 0.2.0's `websocket`, its `ws://` / `wss://` patterns), both
//! checked by [`crate::egress`]. `process` (ABI 0.2.0's `process`
//! interface, linked only when the lane has at least one command) names the commands a lane may
//! start through the host's process launcher, which checks its own `[process]` policy again.

use wasmtime::Engine;
use wasmtime::component::{Component, Linker};

use crate::egress::HttpGrants;
use crate::error::LoadError;
use crate::state::LaneState;

pub use crate::capability::events::EVENTS_IMPORT;
pub use crate::capability::http::HTTP_IMPORT;
pub use crate::capability::logging::LOGGING_IMPORT;
pub use crate::capability::process::PROCESS_IMPORT;
pub use crate::capability::wasi::{FILESYSTEM_IMPORT, SOCKETS_IMPORT};
pub use crate::capability::websocket::WEBSOCKET_IMPORT;

/// Which lane host interfaces a lane generation may import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grants {
    /// `events.emit` (execution events).
    pub events: bool,
    /// `logging.log` (forwarded to `tracing`).
    pub logging: bool,
    /// Outbound connections: the URL patterns it may reach (`wasi:http` is linked when one is
    /// `http://` / `https://`, `websocket` when one is `ws://` / `wss://`).
    pub http: HttpGrants,
    /// `wasi:filesystem` may be linked (with no directory preopened).
    pub filesystem: bool,
    /// `wasi:sockets` may be linked (every socket and name lookup refused).
    pub sockets: bool,
    /// Commands (names or absolute paths, as the lane names them) it may start through the
    /// host's process launcher (empty = `process` not linked).
    pub process: Vec<String>,
    /// Grants the lane runs without (`"http"`, `"process"`): linked even when the policy
    /// leaves them empty, every use then denied at run time. For lanes whose transports are
    /// alternatives (`jsonrpc` over HTTP, WebSocket or stdio).
    pub optional: Vec<String>,
}

impl Default for Grants {
    /// Both granted: they only reach the host's own event buffer and logs.
    fn default() -> Self {
        Self {
            events: true,
            logging: true,
            http: HttpGrants::default(),
            filesystem: false,
            sockets: false,
            process: Vec::new(),
            optional: Vec::new(),
        }
    }
}

impl Grants {
    /// Nothing but WASI-scoped-to-nothing: the narrowest grant.
    pub fn none() -> Self {
        Self {
            events: false,
            logging: false,
            http: HttpGrants::default(),
            filesystem: false,
            sockets: false,
            process: Vec::new(),
            optional: Vec::new(),
        }
    }

    /// These grants plus outbound HTTP to `http`.
    pub fn with_http(mut self, http: HttpGrants) -> Self {
        self.http = http;
        self
    }

    /// These grants plus starting the commands `process` (names or absolute paths).
    pub fn with_process<S: Into<String>>(mut self, process: impl IntoIterator<Item = S>) -> Self {
        self.process = process.into_iter().map(Into::into).collect();
        self
    }

    /// The grant name that allows `import`, when it is a lane host interface this grant lacks.
    fn missing_for(&self, import: &str) -> Option<&'static str> {
        crate::capability::missing_for(self, import)
    }
}

/// A linker with the WASI base, `types`, and exactly the granted interfaces.
pub(crate) fn linker(engine: &Engine, grants: &Grants) -> wasmtime::Result<Linker<LaneState>> {
    crate::capability::linker(engine, grants)
}

/// Refuses a component that imports a lane interface its grants lack.
pub(crate) fn check_imports(
    engine: &Engine,
    component: &Component,
    grants: &Grants,
    digest: &str,
) -> Result<(), LoadError> {
    let ty = component.component_type();
    for (import, _) in ty.imports(engine) {
        if let Some(grant) = grants.missing_for(import) {
            return Err(LoadError::ImportNotGranted {
                digest: digest.to_owned(),
                import: import.to_owned(),
                grant,
            });
        }
    }
    Ok(())
}

/// Maps a failed `instantiate_pre` to a typed error naming the unsatisfied import.
pub(crate) fn unsatisfied(
    engine: &Engine,
    component: &Component,
    grants: &Grants,
    digest: &str,
    error: &wasmtime::Error,
) -> LoadError {
    let message = crate::error::error_chain(error, 2048);
    let ty = component.component_type();
    let import = ty
        .imports(engine)
        .map(|(name, _)| name)
        .find(|name| message.contains(name))
        .unwrap_or("unknown")
        .to_owned();
    if let Some(grant) = grants.missing_for(&import) {
        return LoadError::ImportNotGranted {
            digest: digest.to_owned(),
            import,
            grant,
        };
    }
    LoadError::UnsatisfiedImport {
        digest: digest.to_owned(),
        import,
        message,
    }
}
