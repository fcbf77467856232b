//! Execution Plane's network service: the HTTP API of `docs/api.md` (HTTP/1.1 and h2c on one
//! port) in front of a [`Node`](ep_node::node::Node), with Prometheus metrics, graceful
//! shutdown, configuration reloads and the service assembly `execution-plane serve` runs.
//!
//! Two entry points: [`serve_node`] serves any node however it was assembled (tests and
//! embedders), [`start`] builds the whole service from a [`ServeConfig`] and serves it.
//!
//! ```no_run
//! use std::time::Duration;
//! use ep_node::node::Node;
//! use ep_server::{ApiOptions, serve_node};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let node = Node::new("node-docs");
//! node.complete_registration();
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let server = serve_node(node, ApiOptions::default(), listener).await?;
//! println!("serving on {}", server.url());
//! let report = server.shutdown(Duration::from_secs(5)).await;
//! assert_eq!(report.cancelled, 0);
//! # Ok(())
//! # }
//! ```
//!
//! Module map: [`config`] (the `serve` configuration), [`service`] (node, evidence, wasm lanes,
//! plugins and policy from a config; reloads), [`api`] (router, handlers, errors, SSE, body
//! limits, connections), [`metrics`] (the Prometheus registry and the evidence sink that feeds
//! it), [`lifecycle`] (signals, drain, shutdown), [`observability`] (log setup).

pub mod api;
pub mod config;
pub mod error;
pub mod lifecycle;
pub mod metrics;
pub mod observability;
pub mod service;

pub use api::{
    ApiOptions, LaneAdmin, LaneStatus, RefusedLane, Reinstated, ReloadReport, ServerLimits,
    SlotAdmin, serve_node,
};
pub use config::{ConfigError, LogFormat, ServeConfig};
pub use error::ServeError;
pub use lifecycle::{RunningServer, ShutdownReport};
pub use service::{LoadReport, Service, StartupInfo, start};
