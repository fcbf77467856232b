//! The remote runtime client: [`RemoteRuntimeClient`] implements ep-node's
//! [`RuntimeClient`](ep_node::RuntimeClient) over the network API (`docs/api.md`), so a caller
//! swaps the in-process client for a node across the network without changing any code. It
//! depends on the contracts and the node's traits only (no wasmtime).
//!
//! ```no_run
//! use ep_contracts::boundary::AdmissionRequest;
//! use ep_node::RuntimeClient;
//! use ep_remote::RemoteRuntimeClient;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let client = RemoteRuntimeClient::builder("http://127.0.0.1:8750")
//!     .request_timeout(std::time::Duration::from_secs(30))
//!     .build()?;
//! let result = client.execute(AdmissionRequest::new("http")).await;
//! println!("{}", ep_contracts::dump(&result));
//! # Ok(()) }
//! ```
//!
//! Errors keep the API's meaning: a refusal is
//! [`RuntimeError::Rejected`](ep_node::RuntimeError::Rejected), cancel of an unknown ref is
//! [`RuntimeError::UnknownExecutionRef`](ep_node::RuntimeError::UnknownExecutionRef), other API
//! codes are [`RuntimeError::Remote`](ep_node::RuntimeError::Remote), and `execute` never
//! fails: without a result from the server it returns a `failed` one (`transport_failed`,
//! `remote_disconnect` or `timeout`) naming why.
//!
//! Beyond the trait: [`RemoteRuntimeClient::stream_items`] yields the stream's `result` frame
//! too, and the operator routes (`lanes`, `reload`, `rollback`, with the builder's
//! `operator_token`) plus `health` and `metrics` are plain async methods.

pub mod client;
pub mod error;
pub mod sse;
mod tokens;

pub use client::{
    OpenedItems, RemoteRuntimeClient, RemoteRuntimeClientBuilder, Rollback, StreamItem,
};
pub use error::{ApiError, BuildError, CallError, RemoteError};
