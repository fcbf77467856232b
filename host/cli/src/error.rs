//! The CLI's error: one line for the user, exit code 1.

use std::path::PathBuf;

use thiserror::Error;

/// Why a command failed.
#[derive(Debug, Error)]
pub enum CliError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Input over the document cap.
    #[error("{path}: document is over the {limit}-byte limit")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The cap.
        limit: usize,
    },
    /// Stdout was closed by its reader (`| head`): the program ends quietly, exit 0.
    #[error("stdout was closed")]
    StdoutClosed,
    /// Any other failure, already worded for the user.
    #[error("{0}")]
    Message(String),
}

impl CliError {
    /// An error worded for the user.
    pub fn msg(message: impl std::fmt::Display) -> Self {
        Self::Message(message.to_string())
    }
}
