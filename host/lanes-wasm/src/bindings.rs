//! Host bindings for both versions of the lane ABI, generated from `/wit` at build time so the
//! host and the guests can never disagree about it: `execution-plane:lane@0.2.0` (the files of
//! `wit/`) and the frozen `@0.1.0` (`wit/deps/lane-0.1.0/`), which components built before
//! 0.2.0 still target. Exports are called with `call_async` and imports are async and trappable:
//! a host import may suspend the guest's fiber (backpressure) or end the execution with a typed
//! error (a limit hit).
//!
//! 0.2.0's `types` interface is 0.1.0's, field for field, so its bindings reuse 0.1.0's Rust
//! types (`with`): one set of conversions serves both versions. Which version a component
//! targets is read from its exports when it loads ([`crate::abi`]).

/// The 0.1.0 world (the generated code is documented by the WIT's own doc comments).
#[allow(missing_docs)]
mod v1 {
    wasmtime::component::bindgen!({
        world: "execution-plane:lane/lane@0.1.0",
        path: "../../wit",
        imports: { default: async | trappable },
        exports: { default: async },
        with: {
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
            "wasi:http": wasmtime_wasi_http::p2::bindings::http,
        },
    });
}

/// The 0.2.0 world.
#[allow(missing_docs)]
mod v2 {
    wasmtime::component::bindgen!({
        world: "execution-plane:lane/lane@0.2.0",
        path: "../../wit",
        imports: { default: async | trappable },
        exports: { default: async },
        with: {
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
            "wasi:http": wasmtime_wasi_http::p2::bindings::http,
            "execution-plane:lane/types@0.2.0": super::v1::execution_plane::lane0_1_0::types,
            "execution-plane:lane/process@0.2.0.child": crate::capability::process::Child,
            "execution-plane:lane/websocket@0.2.0.connection": crate::capability::websocket::Connection,
        },
    });
}

pub use v1::execution_plane::lane0_1_0::{events, logging, types};
pub use v1::exports::execution_plane::lane0_1_0::lane_adapter;
pub use v1::{Lane, LanePre};

/// The 0.2.0 interfaces the host implements and the 0.2.0 exports it calls.
pub mod v2_0 {
    pub use super::v2::execution_plane::lane0_2_0::{
        events, http_egress, input, logging, process, websocket,
    };
    pub use super::v2::exports::execution_plane::lane0_2_0::lane_adapter;
    pub use super::v2::{Lane, LanePre};
}

/// The name of 0.1.0's `types` instance (0.2.0's is linked as an empty instance of its own).
pub const TYPES_0_2_0: &str = "execution-plane:lane/types@0.2.0";
