//! The `logging` capability: `logging.log`, a guest's log lines forwarded to `tracing`
//! (target `ep_lanes_wasm::guest`) with the lane and execution attached, each line cut at
//! 4096 bytes, at most `max_log_lines` per execution (the rest counted, in
//! evidence as `dropped_log_lines`).

use wasmtime::component::{HasSelf, Linker};

use super::Unit;
use crate::bindings::{logging, v2_0};
use crate::limits::LaneLimits;
use crate::state::{Attribution, LaneState};

/// Import-name prefix of the lane world's `logging` interface.
pub const LOGGING_IMPORT: &str = "execution-plane:lane/logging@";

/// Bytes of one guest log line kept (the rest is cut).
const MAX_LOG_LINE_BYTES: usize = 4096;

/// The unit: granted by `[grants] logging`.
pub(crate) const LOGGING: Unit = Unit {
    grant: "logging",
    imports: &[LOGGING_IMPORT],
    granted: |grants| grants.logging,
    link: link_logging,
    optional_as: None,
};

/// Links both ABI versions' `logging` (one line budget behind them).
fn link_logging(linker: &mut Linker<LaneState>) -> wasmtime::Result<()> {
    logging::add_to_linker::<LaneState, HasSelf<LaneState>>(linker, |state| state)?;
    v2_0::logging::add_to_linker::<LaneState, HasSelf<LaneState>>(linker, |state| state)
}

/// Who logs, and how many lines one execution may log.
pub(crate) struct LogContext {
    who: Attribution,
    lines: usize,
    dropped: usize,
    max_lines: usize,
}

impl logging::Host for LaneState {
    async fn log(&mut self, level: logging::Level, message: String) -> wasmtime::Result<()> {
        let log = &mut self.caps.log;
        if log.lines >= log.max_lines {
            log.dropped += 1;
            return Ok(());
        }
        log.lines += 1;
        let message = crate::error::truncate(message, MAX_LOG_LINE_BYTES);
        let lane_id: &str = &log.who.lane_id;
        let execution_ref = log.who.execution_ref.as_str();
        match level {
            logging::Level::Trace => {
                tracing::trace!(target: "ep_lanes_wasm::guest", lane_id, execution_ref, "{message}");
            }
            logging::Level::Debug => {
                tracing::debug!(target: "ep_lanes_wasm::guest", lane_id, execution_ref, "{message}");
            }
            logging::Level::Info => {
                tracing::info!(target: "ep_lanes_wasm::guest", lane_id, execution_ref, "{message}");
            }
            logging::Level::Warn => {
                tracing::warn!(target: "ep_lanes_wasm::guest", lane_id, execution_ref, "{message}");
            }
            logging::Level::Error => {
                tracing::error!(target: "ep_lanes_wasm::guest", lane_id, execution_ref, "{message}");
            }
        }
        Ok(())
    }
}

impl v2_0::logging::Host for LaneState {
    async fn log(&mut self, level: v2_0::logging::Level, message: String) -> wasmtime::Result<()> {
        use v2_0::logging::Level as V2;
        let level = match level {
            V2::Trace => logging::Level::Trace,
            V2::Debug => logging::Level::Debug,
            V2::Info => logging::Level::Info,
            V2::Warn => logging::Level::Warn,
            V2::Error => logging::Level::Error,
        };
        logging::Host::log(self, level, message).await
    }
}

impl LogContext {
    pub(crate) fn new(who: Attribution, limits: &LaneLimits) -> Self {
        Self {
            who,
            lines: 0,
            dropped: 0,
            max_lines: limits.max_log_lines,
        }
    }

    /// Log lines dropped beyond the per-execution cap (evidence: `dropped_log_lines`).
    pub(crate) fn dropped(&self) -> usize {
        self.dropped
    }
}
