//! Errors of the wasm lane runtime: building the runtime ([`EngineError`]) and loading a lane
//! generation ([`LoadError`]). Faults *during* an execution are never errors here: they become a
//! failed `ExecutionResult` (the fault table is in the crate docs).

use std::path::PathBuf;

use thiserror::Error;

/// The runtime could not be built.
#[derive(Debug, Error)]
pub enum EngineError {
    /// A [`crate::RuntimeConfig`] value is out of range.
    #[error("invalid wasm runtime config: {0}")]
    InvalidConfig(String),
    /// wasmtime refused the engine configuration.
    #[error("cannot create the wasmtime engine: {0}")]
    Engine(String),
    /// A runtime thread (the epoch ticker) could not start.
    #[error("cannot start the wasm runtime's {thread} thread: {source}")]
    Thread {
        /// Which thread.
        thread: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// A lane generation could not be loaded; the message names the component digest and the cause.
#[derive(Debug, Error)]
pub enum LoadError {
    /// The component file could not be read.
    #[error("cannot read lane component {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The bytes are not WebAssembly at all.
    #[error("lane artifact {digest} is not a wasm component: {reason}")]
    NotAComponent {
        /// `sha256:` digest of the bytes.
        digest: String,
        /// What is wrong with them.
        reason: String,
    },
    /// The bytes are a core module; lanes must be components.
    #[error(
        "lane artifact {digest} is a core wasm module, not a component; build the lane for \
         wasm32-wasip2 so the linker emits a component"
    )]
    CoreModule {
        /// `sha256:` digest of the bytes.
        digest: String,
    },
    /// wasmtime could not validate or compile the component.
    #[error("lane component {digest} does not compile: {message}")]
    Compile {
        /// `sha256:` digest of the component.
        digest: String,
        /// wasmtime's reason.
        message: String,
    },
    /// The component imports a host interface this lane is not granted.
    #[error(
        "lane component {digest} imports `{import}`, which is not granted to this lane; grant \
         `{grant}` or rebuild the lane without that import"
    )]
    ImportNotGranted {
        /// `sha256:` digest of the component.
        digest: String,
        /// The import's full name (`execution-plane:lane/logging@0.1.0`).
        import: String,
        /// The grant that would allow it.
        grant: &'static str,
    },
    /// The component imports something this host does not provide at all.
    #[error(
        "lane component {digest} imports `{import}`, which this host does not provide: {message}"
    )]
    UnsatisfiedImport {
        /// `sha256:` digest of the component.
        digest: String,
        /// The import's name, or `unknown` when wasmtime's message names none of them.
        import: String,
        /// wasmtime's reason.
        message: String,
    },
    /// The component does not export the `lane-adapter` interface of the lane world.
    #[error("lane component {digest} does not export the lane world's `lane-adapter`: {message}")]
    NotALane {
        /// `sha256:` digest of the component.
        digest: String,
        /// wasmtime's reason.
        message: String,
    },
    /// Instantiating the component or calling `capabilities` failed.
    #[error("lane component {digest} failed its capabilities probe ({cause}): {message}")]
    Probe {
        /// `sha256:` digest of the component.
        digest: String,
        /// The fault cause (`trap`, `deadline`, `instantiation`, ...).
        cause: String,
        /// The precise reason.
        message: String,
    },
    /// `capabilities` returned an empty lane id.
    #[error(
        "lane component {digest} reports an empty lane_id; its capabilities must name the lane"
    )]
    EmptyLaneId {
        /// `sha256:` digest of the component.
        digest: String,
    },
    /// `capabilities` returned metadata that is not a JSON object.
    #[error("lane component {digest} capabilities metadata-json is not a JSON object: {message}")]
    BadCapabilities {
        /// `sha256:` digest of the component.
        digest: String,
        /// Why it does not parse.
        message: String,
    },
    /// A runtime task (the compile worker) failed.
    #[error("wasm runtime task failed while loading {digest}: {message}")]
    Internal {
        /// `sha256:` digest of the component.
        digest: String,
        /// What failed.
        message: String,
    },
}

/// Joins an error and its sources into one line, bounded to `max` bytes (on a char boundary).
pub(crate) fn error_chain(error: &wasmtime::Error, max: usize) -> String {
    let mut text = String::new();
    for (index, cause) in error.chain().enumerate() {
        if index > 0 {
            text.push_str(": ");
        }
        text.push_str(&cause.to_string());
    }
    truncate(text, max)
}

/// `text` cut to at most `max` bytes on a char boundary, with `…` when cut.
pub(crate) fn truncate(mut text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while end > 0 && !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push('…');
    text
}
