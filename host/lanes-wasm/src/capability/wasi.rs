//! WASI, linked by grant too. The base every lane may import: `wasi:io`, `wasi:clocks`,
//! `wasi:random` and `wasi:cli`'s environment, exit, stdio and terminal interfaces, all scoped
//! to nothing by the per-store context (no environment or arguments, stdin closed, stdout and
//! stderr a bounded tail). Two units on top, for toolchains whose runtime imports them:
//! `filesystem` (no directory preopened: it opens nothing) and `sockets` (every TCP, UDP socket
//! and name lookup refused). Either way a lane reaches the network only through `wasi:http`.

use wasmtime::component::{HasSelf, Linker};
use wasmtime_wasi::{WasiCtxView, WasiView};

use super::Unit;
use crate::bindings::types;
use crate::state::LaneState;

/// Import-name prefix of the `wasi:filesystem` interfaces.
pub const FILESYSTEM_IMPORT: &str = "wasi:filesystem/";
/// Import-name prefix of the `wasi:sockets` interfaces.
pub const SOCKETS_IMPORT: &str = "wasi:sockets/";

impl WasiView for LaneState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        let (ctx, table) = self.wasi_and_table();
        WasiCtxView { ctx, table }
    }
}

/// Links what every lane may import: the WASI base and the type-only `types` interface.
pub(crate) fn link_base(linker: &mut Linker<LaneState>) -> wasmtime::Result<()> {
    use wasmtime_wasi::cli::{WasiCli, WasiCliView as _};
    use wasmtime_wasi::p2::bindings::{cli, random};
    use wasmtime_wasi::random::WasiRandom;
    // io (error, poll, streams), clocks, random, and cli stdin/stdout/stderr.
    wasmtime_wasi::p2::add_to_linker_proxy_interfaces_async(linker)?;
    let l = &mut *linker;
    random::insecure::add_to_linker::<LaneState, WasiRandom>(l, |t| t.ctx().ctx.random())?;
    random::insecure_seed::add_to_linker::<LaneState, WasiRandom>(l, |t| t.ctx().ctx.random())?;
    cli::exit::add_to_linker::<LaneState, WasiCli>(l, LaneState::cli)?;
    cli::environment::add_to_linker::<LaneState, WasiCli>(l, LaneState::cli)?;
    cli::terminal_input::add_to_linker::<LaneState, WasiCli>(l, LaneState::cli)?;
    cli::terminal_output::add_to_linker::<LaneState, WasiCli>(l, LaneState::cli)?;
    cli::terminal_stdin::add_to_linker::<LaneState, WasiCli>(l, LaneState::cli)?;
    cli::terminal_stdout::add_to_linker::<LaneState, WasiCli>(l, LaneState::cli)?;
    cli::terminal_stderr::add_to_linker::<LaneState, WasiCli>(l, LaneState::cli)?;
    types::add_to_linker::<LaneState, HasSelf<LaneState>>(linker, |state| state)?;
    // 0.2.0's `types` has no functions and reuses 0.1.0's Rust types: an empty instance.
    linker.instance(crate::bindings::TYPES_0_2_0)?;
    super::input::link(linker)?;
    Ok(())
}

impl types::Host for LaneState {}

/// `wasi:filesystem`, granted by `[grants] filesystem`.
pub(crate) const FILESYSTEM: Unit = Unit {
    grant: "filesystem",
    imports: &[FILESYSTEM_IMPORT],
    granted: |grants| grants.filesystem,
    link: link_filesystem,
    optional_as: None,
};

fn link_filesystem(linker: &mut Linker<LaneState>) -> wasmtime::Result<()> {
    use wasmtime_wasi::filesystem::{WasiFilesystem, WasiFilesystemView as _};
    use wasmtime_wasi::p2::bindings::filesystem;
    filesystem::types::add_to_linker::<LaneState, WasiFilesystem>(linker, LaneState::filesystem)?;
    filesystem::preopens::add_to_linker::<LaneState, WasiFilesystem>(linker, LaneState::filesystem)
}

/// `wasi:sockets`, granted by `[grants] sockets`.
pub(crate) const SOCKETS: Unit = Unit {
    grant: "sockets",
    imports: &[SOCKETS_IMPORT],
    granted: |grants| grants.sockets,
    link: link_sockets,
    optional_as: None,
};

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
    sockets::ip_name_lookup::add_to_linker::<LaneState, WasiSockets>(l, LaneState::sockets)
}
