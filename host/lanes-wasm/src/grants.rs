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
//! network only through `wasi:http`, under its `http` grant.

use wasmtime::Engine;
use wasmtime::component::{Component, Linker};

use crate::egress::HttpGrants;
use crate::error::LoadError;
use crate::state::LaneState;

pub use crate::capability::events::EVENTS_IMPORT;
pub use crate::capability::http::HTTP_IMPORT;
pub use crate::capability::logging::LOGGING_IMPORT;
pub use crate::capability::wasi::{FILESYSTEM_IMPORT, SOCKETS_IMPORT};

/// Which lane host interfaces a lane generation may import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grants {
    /// `events.emit` (execution events).
    pub events: bool,
    /// `logging.log` (forwarded to `tracing`).
    pub logging: bool,
    /// Outbound HTTP: the URL patterns it may reach (empty = `wasi:http` not linked).
    pub http: HttpGrants,
    /// `wasi:filesystem` may be linked (with no directory preopened).
    pub filesystem: bool,
    /// `wasi:sockets` may be linked (every socket and name lookup refused).
    pub sockets: bool,
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
        }
    }

    /// These grants plus outbound HTTP to `http`.
    pub fn with_http(mut self, http: HttpGrants) -> Self {
        self.http = http;
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
