//! Capability grants: linking is the grant, for WASI too. A lane's linker holds the WASI p2
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
/// Import-name prefix of the `wasi:filesystem` interfaces.
pub const FILESYSTEM_IMPORT: &str = "wasi:filesystem/";
/// Import-name prefix of the `wasi:sockets` interfaces.
pub const SOCKETS_IMPORT: &str = "wasi:sockets/";

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
        if import.starts_with(EVENTS_IMPORT) && !self.events {
            return Some("events");
        }
        if import.starts_with(LOGGING_IMPORT) && !self.logging {
            return Some("logging");
        }
        if import.starts_with(HTTP_IMPORT) && self.http.is_empty() {
            return Some("http");
        }
        if import.starts_with(FILESYSTEM_IMPORT) && !self.filesystem {
            return Some("filesystem");
        }
        if import.starts_with(SOCKETS_IMPORT) && !self.sockets {
            return Some("sockets");
        }
        None
    }
}

/// The WASI interfaces every lane may import: io, clocks, random, and the cli subset (its
/// environment and arguments are empty, stdin is closed, stdout and stderr are a bounded tail).
fn link_wasi(linker: &mut Linker<LaneState>) -> wasmtime::Result<()> {
    use wasmtime_wasi::WasiView as _;
    use wasmtime_wasi::cli::{WasiCli, WasiCliView as _};
    use wasmtime_wasi::p2::bindings::{cli, random};
    use wasmtime_wasi::random::WasiRandom;
    // io (error, poll, streams), clocks, random, and cli stdin/stdout/stderr.
    wasmtime_wasi::p2::add_to_linker_proxy_interfaces_async(linker)?;
    let l = linker;
    random::insecure::add_to_linker::<LaneState, WasiRandom>(l, |t| t.ctx().ctx.random())?;
    random::insecure_seed::add_to_linker::<LaneState, WasiRandom>(l, |t| t.ctx().ctx.random())?;
    cli::exit::add_to_linker::<LaneState, WasiCli>(l, LaneState::cli)?;
    cli::environment::add_to_linker::<LaneState, WasiCli>(l, LaneState::cli)?;
    cli::terminal_input::add_to_linker::<LaneState, WasiCli>(l, LaneState::cli)?;
    cli::terminal_output::add_to_linker::<LaneState, WasiCli>(l, LaneState::cli)?;
    cli::terminal_stdin::add_to_linker::<LaneState, WasiCli>(l, LaneState::cli)?;
    cli::terminal_stdout::add_to_linker::<LaneState, WasiCli>(l, LaneState::cli)?;
    cli::terminal_stderr::add_to_linker::<LaneState, WasiCli>(l, LaneState::cli)?;
    Ok(())
}

/// `wasi:filesystem`, with no directory preopened (the per-store state preopens none).
fn link_filesystem(linker: &mut Linker<LaneState>) -> wasmtime::Result<()> {
    use wasmtime_wasi::filesystem::{WasiFilesystem, WasiFilesystemView as _};
    use wasmtime_wasi::p2::bindings::filesystem;
    filesystem::types::add_to_linker::<LaneState, WasiFilesystem>(linker, LaneState::filesystem)?;
    filesystem::preopens::add_to_linker::<LaneState, WasiFilesystem>(
        linker,
        LaneState::filesystem,
    )?;
    Ok(())
}

/// `wasi:sockets`, where every TCP and UDP socket and every name lookup is refused (the
/// per-store state allows none).
fn link_sockets(linker: &mut Linker<LaneState>) -> wasmtime::Result<()> {
    use wasmtime_wasi::p2::bindings::sockets;
    use wasmtime_wasi::sockets::{WasiSockets, WasiSocketsView as _};
    let l = linker;
    let options = sockets::network::LinkOptions::default();
    sockets::tcp::add_to_linker::<LaneState, WasiSockets>(l, LaneState::sockets)?;
    sockets::udp::add_to_linker::<LaneState, WasiSockets>(l, LaneState::sockets)?;
    sockets::udp_create_socket::add_to_linker::<LaneState, WasiSockets>(l, LaneState::sockets)?;
    sockets::tcp_create_socket::add_to_linker::<LaneState, WasiSockets>(l, LaneState::sockets)?;
    sockets::instance_network::add_to_linker::<LaneState, WasiSockets>(l, LaneState::sockets)?;
    sockets::network::add_to_linker::<LaneState, WasiSockets>(l, &options, LaneState::sockets)?;
    sockets::ip_name_lookup::add_to_linker::<LaneState, WasiSockets>(l, LaneState::sockets)?;
    Ok(())
}

/// A linker with the WASI subset, `types`, and exactly the granted interfaces.
pub(crate) fn linker(engine: &Engine, grants: &Grants) -> wasmtime::Result<Linker<LaneState>> {
    let mut linker = Linker::<LaneState>::new(engine);
    link_wasi(&mut linker)?;
    if grants.filesystem {
        link_filesystem(&mut linker)?;
    }
    if grants.sockets {
        link_sockets(&mut linker)?;
    }
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
