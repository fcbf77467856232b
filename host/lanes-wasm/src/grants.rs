//! Capability grants: linking is the grant. A lane's linker holds WASI p2 (scoped to nothing by
//! the per-store state), the type-only `types` interface, and each lane host interface only when
//! its grant is on. A component importing an interface that is not granted is refused at load,
//! before it ever runs, with an error naming the import.
//!
//! Grants: `events`, `logging`, and `http` (`wasi:http/outgoing-handler` and `wasi:http/types`,
//! linked only when the lane has at least one URL pattern; what each request may reach is
//! checked per request by [`crate::egress`]).

use wasmtime::Engine;
use wasmtime::component::{Component, HasSelf, Linker};

use crate::bindings::{events, logging, types};
use crate::egress::HttpGrants;
use crate::error::LoadError;
use crate::state::LaneState;

/// Import-name prefix of the lane world's `events` interface.
pub const EVENTS_IMPORT: &str = "execution-plane:lane/events@";
/// Import-name prefix of the lane world's `logging` interface.
pub const LOGGING_IMPORT: &str = "execution-plane:lane/logging@";
/// Import-name prefix of the `wasi:http` interfaces (`types`, `outgoing-handler`).
pub const HTTP_IMPORT: &str = "wasi:http/";

/// Which lane host interfaces a lane generation may import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grants {
    /// `events.emit` (execution events).
    pub events: bool,
    /// `logging.log` (forwarded to `tracing`).
    pub logging: bool,
    /// Outbound HTTP: the URL patterns it may reach (empty = `wasi:http` not linked).
    pub http: HttpGrants,
}

impl Default for Grants {
    /// Both granted: they only reach the host's own event buffer and logs.
    fn default() -> Self {
        Self {
            events: true,
            logging: true,
            http: HttpGrants::default(),
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
        }
    }

    /// These grants plus outbound HTTP to `http`.
    pub fn with_http(mut self, http: HttpGrants) -> Self {
        self.http = http;
        self
    }

    /// The grant name that allows `import`, when it is a lane host interface this grant lacks.
    fn missing_for(&self, import: &str) -> Option<&'static str> {
        if import.starts_with(EVENTS_IMPORT) && !self.events {
            return Some("events");
        }
        if import.starts_with(LOGGING_IMPORT) && !self.logging {
            return Some("logging");
        }
        if import.starts_with(HTTP_IMPORT) && self.http.is_empty() {
            return Some("http");
        }
        None
    }
}

/// A linker with WASI p2, `types`, and exactly the granted lane interfaces.
pub(crate) fn linker(engine: &Engine, grants: &Grants) -> wasmtime::Result<Linker<LaneState>> {
    let mut linker = Linker::<LaneState>::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    types::add_to_linker::<LaneState, HasSelf<LaneState>>(&mut linker, |state| state)?;
    if grants.events {
        events::add_to_linker::<LaneState, HasSelf<LaneState>>(&mut linker, |state| state)?;
    }
    if grants.logging {
        logging::add_to_linker::<LaneState, HasSelf<LaneState>>(&mut linker, |state| state)?;
    }
    if !grants.http.is_empty() {
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    }
    Ok(linker)
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
