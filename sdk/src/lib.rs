//! Write an Execution Plane lane as plain Rust: the protocol logic and nothing else.
//!
//! A lane is a `wasm32-wasip2` component that exports the `lane-adapter` interface of
//! `execution-plane:lane@0.1.0` (the `wit/` directory of the repository). This crate generates
//! those bindings once, maps the WIT records to idiomatic types ([`Request`], [`Outcome`],
//! [`Rejection`], [`Capabilities`], [`Event`]) and wires a [`Lane`] implementation to the exports
//! with [`export_lane!`]. A complete lane:
//!
//! ```
//! use execution_plane_sdk::{Capabilities, Lane, Outcome, Rejection, Request, export_lane, json, log};
//!
//! /// Greets whoever the payload names.
//! struct Greeter;
//!
//! impl Lane for Greeter {
//!     fn capabilities() -> Capabilities {
//!         Capabilities::new("example-greeter").protocol("greeting")
//!     }
//!
//!     fn validate(req: &Request) -> Result<(), Rejection> {
//!         req.payload_str("name")?; // a missing or non-string `name` is `invalid_lane_request`
//!         Ok(())
//!     }
//!
//!     fn execute(req: Request) -> Outcome {
//!         let name = req.payload_str("name").unwrap_or("world");
//!         log::info(&format!("greeting {name}"));
//!         Outcome::success(json!({ "greeting": format!("hello, {name}") }))
//!     }
//! }
//!
//! export_lane!(Greeter);
//! # fn main() {}
//! ```
//!
//! Build it with `cargo build --release --target wasm32-wasip2` from a crate whose `[lib]` has
//! `crate-type = ["cdylib"]`; the `.wasm` it produces is the component. `docs/lane-authoring.md`
//! covers manifests, grants and what the host guarantees.
//!
//! What the SDK does for you:
//!
//! * Parses `payload-json` into [`Request::payload`]. Text that is not a JSON object never reaches
//!   your code: `validate` and `stream` refuse it with `invalid_lane_request`, and `execute` ends
//!   with a `protocol_framing_failed` outcome.
//! * Runs your [`Lane::validate`] again before [`Lane::execute`] and [`Lane::stream`], so both may
//!   assume the request passed it even if a host skipped the check.
//! * Serves [`Lane::stream`] as the pull-based `event-stream` resource: the host asks for the next
//!   event only when its consumer is ready, and your [`EventSource`] produces it then.
//! * Makes outbound HTTP requests through the `wasi:http` import with [`http::send`]: a request
//!   builder, timeouts, a response body cap and typed errors ([`http::HttpError`]), with the
//!   host's grant check surfacing as [`http::HttpError::Denied`].
//! * On the host target (`cargo test`), [`events::emit`], the [`log`] functions and
//!   [`http::send`] go to [`testing`] instead of the host, so lanes are unit-testable natively.

mod capabilities;
pub mod events;
mod glue;
pub mod http;
pub mod input;
mod json;
pub mod jsonrpc;
pub mod log;
mod outcome;
pub mod process;
mod rejection;
mod request;
pub mod sse;
pub mod stream;
pub mod testing;
pub mod websocket;

pub use capabilities::Capabilities;
pub use outcome::{Failure, FailureClass, Outcome};
pub use rejection::Rejection;
pub use request::{PayloadError, Request};
pub use stream::{Event, EventSource};

/// JSON values and the `json!` macro, re-exported so a lane needs no direct `serde_json`
/// dependency.
pub use serde_json::{self, Map, Value, json};

/// The generated `lane` world bindings; [`export_lane!`] uses them, lane code never needs to.
#[doc(hidden)]
#[allow(
    unsafe_code,
    missing_docs,
    clippy::all,
    clippy::unwrap_used,
    clippy::panic
)]
pub mod bindings {
    // The WIT lives in the repository's `wit/` directory, one level above this crate; the path is
    // resolved against this crate's CARGO_MANIFEST_DIR, so it holds wherever the SDK is used from.
    wit_bindgen::generate!({
        world: "lane",
        path: "../wit",
        pub_export_macro: true,
        export_macro_name: "__export_lane_bindings",
        default_bindings_module: "execution_plane_sdk::bindings",
        generate_all,
    });
}

/// Support for [`export_lane!`]; not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::glue::{StreamState, capabilities, execute, stream, validate};
}

/// A lane: the protocol logic behind the `lane-adapter` exports. Implement it on a unit struct
/// and hand that struct to [`export_lane!`].
///
/// Every function is called in a fresh instance per execution, so a lane keeps no state between
/// calls and needs no locking.
pub trait Lane {
    /// What the lane can do; the host reads it when it loads the component.
    fn capabilities() -> Capabilities;

    /// Refuses a request the lane cannot run, before any I/O. The default accepts everything.
    ///
    /// The SDK calls it again before [`Lane::execute`] and [`Lane::stream`], so keep it pure and
    /// cheap: check the payload, don't touch the network.
    fn validate(req: &Request) -> Result<(), Rejection> {
        let _ = req;
        Ok(())
    }

    /// Runs a request that passed [`Lane::validate`] to completion. The default fails with
    /// `not_supported`, which is right for streaming-only lanes (the host refuses `execute` for
    /// a lane whose capabilities say `without_execute()` before the guest is called at all).
    fn execute(req: Request) -> Outcome {
        let _ = req;
        Outcome::failed(
            FailureClass::SemanticRuntimeFailed,
            "not_supported",
            json!({"message": "this lane streams; open a stream instead"}),
        )
    }

    /// Starts a stream of events for a request that passed [`Lane::validate`]. The default
    /// refuses with `not_supported`, which is right for unary lanes.
    fn stream(req: Request) -> Result<Box<dyn EventSource>, Rejection> {
        let _ = req;
        Err(Rejection::not_supported(
            "this lane does not stream; call execute instead",
        ))
    }
}

/// Exports a [`Lane`] implementation as the component's `lane-adapter`: invoke it once, at the
/// top level of the lane crate, with the type that implements [`Lane`].
///
/// ```
/// # use execution_plane_sdk::{Capabilities, Lane, Outcome, Request, json};
/// struct Noop;
/// impl Lane for Noop {
///     fn capabilities() -> Capabilities { Capabilities::new("noop") }
///     fn execute(_: Request) -> Outcome { Outcome::success(json!({})) }
/// }
/// execution_plane_sdk::export_lane!(Noop);
/// # fn main() {}
/// ```
///
/// The expansion contains the `unsafe extern "C"` entry points the component model calls; they
/// carry `#[allow(unsafe_code)]`, so a lane crate may `#![deny(unsafe_code)]` (not `forbid`).
/// They are emitted only when building for `wasm32`, so a lane crate may also be an `rlib`
/// (`crate-type = ["cdylib", "rlib"]`) that native tests link.
#[macro_export]
macro_rules! export_lane {
    ($lane:ty) => {
        #[allow(unsafe_code)]
        const _: () = {
            struct __ExecutionPlaneLaneExport;

            impl $crate::bindings::exports::execution_plane::lane0_2_0::lane_adapter::Guest
                for __ExecutionPlaneLaneExport
            {
                type EventStream = $crate::__private::StreamState;

                fn capabilities()
                -> $crate::bindings::exports::execution_plane::lane0_2_0::lane_adapter::LaneCapabilities
                {
                    $crate::__private::capabilities::<$lane>()
                }

                fn validate(
                    request: $crate::bindings::exports::execution_plane::lane0_2_0::lane_adapter::ExecutionRequest,
                ) -> ::core::result::Result<
                    (),
                    $crate::bindings::exports::execution_plane::lane0_2_0::lane_adapter::Rejection,
                > {
                    $crate::__private::validate::<$lane>(request)
                }

                fn execute(
                    request: $crate::bindings::exports::execution_plane::lane0_2_0::lane_adapter::ExecutionRequest,
                ) -> $crate::bindings::exports::execution_plane::lane0_2_0::lane_adapter::Outcome {
                    $crate::__private::execute::<$lane>(request)
                }

                fn stream(
                    request: $crate::bindings::exports::execution_plane::lane0_2_0::lane_adapter::ExecutionRequest,
                ) -> ::core::result::Result<
                    $crate::bindings::exports::execution_plane::lane0_2_0::lane_adapter::EventStream,
                    $crate::bindings::exports::execution_plane::lane0_2_0::lane_adapter::Rejection,
                > {
                    $crate::__private::stream::<$lane>(request)
                }
            }

            // The component-model entry points exist only in the wasm build: their names
            // (`execution-plane:lane/lane-adapter@0.2.0#execute`, ...) are no native symbols, and
            // a native `cdylib` (`crate-type = ["cdylib", "rlib"]`, for `cargo test`) could not
            // link them.
            #[cfg(target_arch = "wasm32")]
            $crate::bindings::__export_lane_bindings!(
                __ExecutionPlaneLaneExport with_types_in $crate::bindings
            );
        };
    };
}
