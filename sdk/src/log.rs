//! Log lines attributed to the lane and the current execution (the `logging` import; the
//! manifest must request `logging = true`).

/// Log severity, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Step-by-step detail.
    Trace,
    /// Detail for diagnosing a lane.
    Debug,
    /// Normal operation.
    Info,
    /// Something unexpected that the lane handled.
    Warn,
    /// Something the lane could not handle.
    Error,
}

/// Writes one log line at `level`; the host attributes it to the lane and execution.
///
/// On the host target (native `cargo test`) the line is recorded for
/// [`testing::take_logs`](crate::testing::take_logs) instead.
pub fn log(level: Level, message: &str) {
    send(level, message);
}

/// Writes a `trace` line.
pub fn trace(message: &str) {
    log(Level::Trace, message);
}

/// Writes a `debug` line.
pub fn debug(message: &str) {
    log(Level::Debug, message);
}

/// Writes an `info` line.
pub fn info(message: &str) {
    log(Level::Info, message);
}

/// Writes a `warn` line.
pub fn warn(message: &str) {
    log(Level::Warn, message);
}

/// Writes an `error` line.
pub fn error(message: &str) {
    log(Level::Error, message);
}

#[cfg(target_arch = "wasm32")]
fn send(level: Level, message: &str) {
    use crate::bindings::execution_plane::lane0_2_0::logging;
    let level = match level {
        Level::Trace => logging::Level::Trace,
        Level::Debug => logging::Level::Debug,
        Level::Info => logging::Level::Info,
        Level::Warn => logging::Level::Warn,
        Level::Error => logging::Level::Error,
    };
    logging::log(level, message);
}

#[cfg(not(target_arch = "wasm32"))]
fn send(level: Level, message: &str) {
    crate::testing::record_log(level, message);
}
