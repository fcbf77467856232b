//! Real loopback servers for the tests and benchmarks of the host crates: a scripted SSE
//! origin ([`sse`]), a WebSocket echo peer ([`websocket`]) and JSON-RPC 2.0 peers over HTTP,
//! WebSocket and stdio ([`jsonrpc`]).
//!
//! Each server binds `127.0.0.1` on a fresh port, runs on the caller's tokio runtime, records
//! what it saw so tests can assert on it, and stops — aborting every connection — when its
//! handle drops. A misbehaving client never panics a server task: it is logged with `tracing`
//! and its connection dropped.
//!
//! ```
//! use ep_test_servers::sse::{SseConnection, SseScript, SseServer, event};
//!
//! # fn main() -> std::io::Result<()> {
//! let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//! runtime.block_on(async {
//!     let server = SseServer::start(
//!         SseScript::new()
//!             .connection(SseConnection::new().chunk(event(Some("1"), None, "hello")).then_drop())
//!             .connection(SseConnection::new().chunk(event(Some("2"), None, "again"))),
//!     )?;
//!     assert!(server.url().starts_with("http://127.0.0.1:"));
//!     // … point the client under test at `server.url()`, then:
//!     assert!(server.requests().is_empty());
//!     Ok(())
//! })
//! # }
//! ```
//!
//! The stdio peer is also the binary `ep-jsonrpc-peer` (`jsonrpc::run_stdio_peer`); other
//! crates build it with `cargo build -p ep-test-servers --bin ep-jsonrpc-peer`.

pub mod jsonrpc;
mod listen;
mod record;
pub mod sse;
pub mod websocket;

pub use jsonrpc::{
    JsonRpcBehaviour, JsonRpcHttpRequest, JsonRpcHttpServer, JsonRpcWsHandshake, JsonRpcWsRecord,
    JsonRpcWsServer, run_stdio_peer,
};
pub use sse::{SseConnection, SseEnding, SseRequest, SseScript, SseServer};
pub use websocket::{WsClose, WsConnection, WsEchoServer, WsFrame, WsFrameKind, WsOptions};
