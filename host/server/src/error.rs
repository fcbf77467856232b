//! Why the service could not start: each variant names the thing, the reason and what to do.

use std::path::PathBuf;

use thiserror::Error;

use crate::config::ConfigError;

/// The service could not be built or could not listen.
#[derive(Debug, Error)]
pub enum ServeError {
    /// The configuration was refused.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A state file or directory could not be created, read or written.
    #[error("{}: {source}; check that the path is writable (see data_dir in docs/config.md)", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The listen address could not be bound.
    #[error(
        "cannot listen on {addr}: {source}; choose another [server] listen address or stop the process using it"
    )]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The authority key or trust store could not be prepared.
    #[error("authority: {0}")]
    Authority(String),
    /// The evidence log could not be opened.
    #[error("evidence log {}: {message}; run `execution-plane evidence verify` on it", path.display())]
    Evidence {
        /// The log file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// The operator policy file was refused.
    #[error("{0}")]
    Policy(String),
    /// The wasm runtime could not start.
    #[error("wasm runtime: {0}")]
    Wasm(String),
    /// A native placement could not be set up (its target refused by its verifier).
    #[error("placement {placement}: {message}")]
    Placement {
        /// Which placement.
        placement: &'static str,
        /// Why.
        message: String,
    },
    /// The withdrawn and quarantined lane digests could not be read.
    #[error(transparent)]
    Withdrawals(#[from] ep_lanes_wasm::WithdrawalsError),
}
