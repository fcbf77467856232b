//! Host bindings for the `execution-plane:lane@0.1.0` world, generated from `/wit` at build time
//! so the host and the guests can never disagree about the ABI. Exports are called with
//! `call_async` and imports are async and trappable: a host import may suspend the guest's fiber
//! (backpressure) or end the execution with a typed error (a limit hit).

/// The generated code (documented by the WIT's own doc comments where it has them).
#[allow(missing_docs)]
mod generated {
    wasmtime::component::bindgen!({
        world: "lane",
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

pub use generated::execution_plane::lane::{events, logging, types};
pub use generated::exports::execution_plane::lane::lane_adapter;
pub use generated::{Lane, LaneIndices, LanePre};
