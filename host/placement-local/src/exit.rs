//! How a process ended, normalized as upstream does (inventory §8.7): `success` (code 0),
//! `exit` (a non-zero code), `signal` (killed by a signal), or `error` (it never ran).

use std::os::unix::process::ExitStatusExt as _;
use std::process::ExitStatus;

use serde_json::{Value, json};

/// How a process ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// Exit code 0.
    Success,
    /// A non-zero exit code.
    Code(i32),
    /// Ended by this signal.
    Signal(i32),
}

impl Exit {
    /// The normalized exit of `status`.
    pub fn of(status: ExitStatus) -> Self {
        match (status.code(), status.signal()) {
            (Some(0), _) => Self::Success,
            (Some(code), _) => Self::Code(code),
            (None, Some(signal)) => Self::Signal(signal),
            // Neither a code nor a signal (not on Linux): report it as a failure code.
            (None, None) => Self::Code(-1),
        }
    }

    /// Whether the process succeeded.
    pub fn succeeded(&self) -> bool {
        *self == Self::Success
    }

    /// `{status, code, signal}` as upstream reports it.
    pub fn to_value(&self) -> Value {
        match self {
            Self::Success => json!({"status": "success", "code": 0, "signal": null}),
            Self::Code(code) => json!({"status": "exit", "code": code, "signal": null}),
            Self::Signal(signal) => json!({"status": "signal", "code": null, "signal": signal}),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_signals_normalize_as_upstream() {
        // A raw wait status: exit code in the high byte, signal in the low bits.
        assert_eq!(Exit::of(ExitStatus::from_raw(0)), Exit::Success);
        assert_eq!(Exit::of(ExitStatus::from_raw(3 << 8)), Exit::Code(3));
        assert_eq!(Exit::of(ExitStatus::from_raw(9)), Exit::Signal(9));
        assert!(Exit::Success.succeeded() && !Exit::Code(1).succeeded());
        assert_eq!(Exit::Code(3).to_value()["status"], "exit");
        assert_eq!(Exit::Signal(15).to_value()["signal"], 15);
    }
}
