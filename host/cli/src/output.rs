//! Everything the commands print on stdout goes through here, so a reader that stopped reading
//! (`execution-plane exec ... | head -c 100`) ends the program quietly, as `cat` and `rg` do,
//! instead of panicking on a broken pipe.

use std::fmt::Display;
use std::io::Write as _;
use std::path::PathBuf;

use crate::error::CliError;

/// Prints `text` and a newline on stdout, flushed at once.
pub fn line(text: impl Display) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")
        .and_then(|()| out.flush())
        .map_err(stdout_error)
}

/// Prints `value` as pretty JSON.
pub fn json_pretty(value: &impl serde::Serialize) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value).map_err(CliError::msg)?;
    line(text)
}

/// A stdout write error: [`CliError::StdoutClosed`] when the reader went away.
fn stdout_error(error: std::io::Error) -> CliError {
    if error.kind() == std::io::ErrorKind::BrokenPipe {
        CliError::StdoutClosed
    } else {
        CliError::Io {
            path: PathBuf::from("<stdout>"),
            source: error,
        }
    }
}
