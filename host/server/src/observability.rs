//! Log setup for `serve`: human lines or one JSON object per line on stderr, at the configured
//! level (`EXECUTION_PLANE_LOG` overrides it). Every API request and every execution has its
//! own `tracing` span (`request`: request id, method, path, route, status; `execution`: lane,
//! execution ref, generation digest, status), so a JSON log line carries them as fields.

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber; a second call (or one after another subscriber was set) is
/// a no-op and answers `false`.
pub fn init_tracing(format: LogFormat, level: &str) -> bool {
    let filter = EnvFilter::try_from_env("EXECUTION_PLANE_LOG")
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init()
            .is_ok(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .try_init()
            .is_ok(),
    }
}
