//! The first-party lanes, embedded in the host binary: each lane's `wasm32-wasip2` component
//! (built from `plugins/` by this crate's build script) and its manifest, as static bytes and
//! text. Nothing here runs them; the wasm lane runtime (`ep-lanes-wasm`) loads them like any
//! plugin, so a built-in lane gets exactly the grants its manifest and the host policy allow.
//!
//! ```
//! let http = ep_builtin_lanes::http();
//! assert_eq!(http.name, "http");
//! assert!(http.wasm.starts_with(b"\0asm"));
//! assert!(http.manifest.contains("lane_id = \"http\""));
//! assert!(ep_builtin_lanes::all().iter().any(|lane| lane.name == "http"));
//! ```

/// One first-party lane: its component and its manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuiltinLane {
    /// The plugin name: the stem of `<name>.wasm` and `<name>.toml`, and the lane id.
    pub name: &'static str,
    /// The component, as built by `cargo build --release --target wasm32-wasip2`.
    pub wasm: &'static [u8],
    /// The manifest text (`plugins/<name>/<name>.toml`).
    pub manifest: &'static str,
}

impl BuiltinLane {
    /// `<name>.wasm`, the file name a plugin directory expects for the component.
    pub fn wasm_file_name(&self) -> String {
        format!("{}.wasm", self.name)
    }

    /// `<name>.toml`, the file name a plugin directory expects for the manifest.
    pub fn manifest_file_name(&self) -> String {
        format!("{}.toml", self.name)
    }
}

/// Every first-party lane, in a fixed order.
static ALL: [BuiltinLane; 4] = [
    BuiltinLane {
        name: "http",
        wasm: include_bytes!(concat!(env!("OUT_DIR"), "/http.wasm")),
        manifest: include_str!("../../../plugins/http/http.toml"),
    },
    BuiltinLane {
        name: "sse",
        wasm: include_bytes!(concat!(env!("OUT_DIR"), "/sse.wasm")),
        manifest: include_str!("../../../plugins/sse/sse.toml"),
    },
    BuiltinLane {
        name: "websocket",
        wasm: include_bytes!(concat!(env!("OUT_DIR"), "/websocket.wasm")),
        manifest: include_str!("../../../plugins/websocket/websocket.toml"),
    },
    BuiltinLane {
        name: "jsonrpc",
        wasm: include_bytes!(concat!(env!("OUT_DIR"), "/jsonrpc.wasm")),
        manifest: include_str!("../../../plugins/jsonrpc/jsonrpc.toml"),
    },
];

/// Every first-party lane.
pub fn all() -> &'static [BuiltinLane] {
    &ALL
}

/// The first-party lane named `name`, if there is one.
pub fn get(name: &str) -> Option<&'static BuiltinLane> {
    ALL.iter().find(|lane| lane.name == name)
}

/// The `http` lane: one HTTP request per execution, redirects followed (`plugins/README.md`).
pub fn http() -> &'static BuiltinLane {
    &ALL[0]
}

/// The `sse` lane: a server-sent event stream, reconnecting with `Last-Event-ID`
/// (`plugins/README.md`).
pub fn sse() -> &'static BuiltinLane {
    &ALL[1]
}

/// The `websocket` lane: a WebSocket session on a host-owned connection
/// (`plugins/README.md`).
pub fn websocket() -> &'static BuiltinLane {
    &ALL[2]
}

/// The `jsonrpc` lane: JSON-RPC calls and sessions over HTTP, WebSocket or a process's stdio
/// (`plugins/README.md`).
pub fn jsonrpc() -> &'static BuiltinLane {
    &ALL[3]
}
