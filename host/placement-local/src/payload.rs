//! A process request's payload (inventory §8.5 / §8.6 keys), read and checked in upstream's
//! order: `command` (a non-blank string), `argv` (strings), `env` (string values), `timeout_ms`,
//! `stderr_mode` (`separate` | `stdout`), `close_stdin`, `user`, the placement surface, then the
//! rest. A payload that does not read is refused before anything runs, naming the field.

use std::collections::BTreeMap;
use std::time::Duration;

use ep_contracts::boundary::Map;

use crate::pty::TerminalSize;
use serde_json::Value;

/// Where stderr goes in the combined `output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StderrMode {
    /// `output` is stdout alone.
    Separate,
    /// `output` interleaves stderr with stdout as they arrive.
    Stdout,
}

/// How a streaming run delivers stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StdoutMode {
    /// One `process.stdout` event per line (§8.8 framing).
    Line,
    /// The same lines, one `process.stdout_lines` event per read (`lines`: the lines it
    /// completed), for output too fast for an event per line.
    LineBatch,
    /// One `process.data` event per chunk read.
    Raw,
}

/// What a streaming run takes besides the one-shot keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamOptions {
    /// `stdout_mode` (`line`).
    pub stdout_mode: StdoutMode,
    /// `max_recoverable_line_bytes` (16 MiB): the longest line delivered whole.
    pub max_line_bytes: usize,
    /// `max_stderr_buffer_size` (256 KiB): the stderr tail kept for the exit event.
    pub stderr_tail_bytes: usize,
    /// `headless_timeout_ms` (30 s): how long the run waits for a consumer that stopped
    /// reading before it ends the process.
    pub headless_timeout: Duration,
}

impl Default for StreamOptions {
    fn default() -> Self {
        Self {
            stdout_mode: StdoutMode::Line,
            max_line_bytes: 16 << 20,
            stderr_tail_bytes: 256 << 10,
            headless_timeout: Duration::from_secs(30),
        }
    }
}

/// The one placement surface this crate runs.
pub const LOCAL_SUBPROCESS: &str = "local_subprocess";

/// A process request, as read from its payload.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessRequest {
    /// The program: a name resolved on the policy's path, or an absolute path.
    pub command: String,
    /// Its arguments (after the program).
    pub argv: Vec<String>,
    /// Variables set for it (on top of what the policy passes through, or of nothing with
    /// `clear_env`).
    pub env: BTreeMap<String, String>,
    /// Its working directory; the policy's first root when absent.
    pub cwd: Option<String>,
    /// Bytes written to its stdin.
    pub stdin: Option<Vec<u8>>,
    /// Start from an empty environment.
    pub clear_env: bool,
    /// Where stderr goes in `output`.
    pub stderr_mode: StderrMode,
    /// Close stdin after writing (EOF); otherwise it stays open until the process ends.
    pub close_stdin: bool,
    /// The payload's own budget (the planned deadline still bounds it).
    pub timeout: Option<Duration>,
    /// The user to run as (root hosts only, when the policy grants it).
    pub user: Option<String>,
    /// The placement surface asked for (`local_subprocess` when absent).
    pub surface_kind: String,
    /// What a streaming run takes.
    pub stream: StreamOptions,
    /// A terminal of this size to run on (`pty: true`, `rows`, `cols`).
    pub pty: Option<TerminalSize>,
}

/// Why a payload does not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("payload.{field} {problem}")]
pub struct PayloadError {
    /// The payload key.
    pub field: &'static str,
    /// What is wrong with it, and what it takes.
    pub problem: String,
}

fn bad(field: &'static str, problem: impl Into<String>) -> PayloadError {
    PayloadError {
        field,
        problem: problem.into(),
    }
}

fn string_list(payload: &Map, field: &'static str) -> Result<Vec<String>, PayloadError> {
    match payload.get(field) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::String(text) => Ok(text.clone()),
                other => Err(bad(
                    field,
                    format!("must hold only strings (found {other})"),
                )),
            })
            .collect(),
        Some(other) => Err(bad(
            field,
            format!("must be a list of strings (found {other})"),
        )),
    }
}

fn flag(payload: &Map, field: &'static str, default: bool) -> Result<bool, PayloadError> {
    match payload.get(field) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(value)) => Ok(*value),
        Some(other) => Err(bad(field, format!("must be true or false (found {other})"))),
    }
}

fn text(payload: &Map, field: &'static str) -> Result<Option<String>, PayloadError> {
    match payload.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(value)) if !value.trim().is_empty() => Ok(Some(value.clone())),
        Some(other) => Err(bad(
            field,
            format!("must be a non-empty string (found {other})"),
        )),
    }
}

impl ProcessRequest {
    /// Reads `payload`, or names the first field that does not read.
    pub fn parse(payload: &Map) -> Result<Self, PayloadError> {
        let command = match payload.get("command") {
            Some(Value::String(command)) if !command.trim().is_empty() => command.clone(),
            Some(other) => {
                return Err(bad(
                    "command",
                    format!("must be a non-blank string (found {other})"),
                ));
            }
            None => return Err(bad("command", "is required: the program to run")),
        };
        let argv = string_list(payload, "argv")?;
        let env = match payload.get("env") {
            None | Some(Value::Null) => BTreeMap::new(),
            Some(Value::Object(map)) => map
                .iter()
                .map(|(key, value)| match value {
                    Value::String(value) if !key.is_empty() && !key.contains('=') => {
                        Ok((key.clone(), value.clone()))
                    }
                    _ => Err(bad(
                        "env",
                        format!(
                            "must map variable names (no `=`) to strings (found {key:?}: {value})"
                        ),
                    )),
                })
                .collect::<Result<_, _>>()?,
            Some(other) => return Err(bad("env", format!("must be an object (found {other})"))),
        };
        let timeout = match payload.get("timeout_ms") {
            None | Some(Value::Null) => None,
            Some(value) => match value.as_u64() {
                Some(ms) => Some(Duration::from_millis(ms)),
                None => {
                    return Err(bad(
                        "timeout_ms",
                        format!("must be a whole number of milliseconds (found {value})"),
                    ));
                }
            },
        };
        let stderr_mode = match payload.get("stderr_mode") {
            None | Some(Value::Null) => StderrMode::Separate,
            Some(Value::String(mode)) if mode == "separate" => StderrMode::Separate,
            Some(Value::String(mode)) if mode == "stdout" => StderrMode::Stdout,
            Some(other) => {
                return Err(bad(
                    "stderr_mode",
                    format!("must be \"separate\" or \"stdout\" (found {other})"),
                ));
            }
        };
        let close_stdin = flag(payload, "close_stdin", true)?;
        let user = text(payload, "user")?;
        let surface_kind = surface_kind(payload)?;
        let cwd = text(payload, "cwd")?;
        let clear_env = flag(payload, "clear_env", false)?;
        let stdin = match payload.get("stdin") {
            None | Some(Value::Null) => None,
            Some(Value::String(text)) => Some(text.as_bytes().to_vec()),
            Some(value @ (Value::Object(_) | Value::Array(_))) => {
                Some(serde_json::to_vec(value).map_err(|e| bad("stdin", e.to_string()))?)
            }
            Some(other) => Some(other.to_string().into_bytes()),
        };
        let stream = stream_options(payload)?;
        let pty = if flag(payload, "pty", false)? {
            let side = |field: &'static str, default: u16| -> Result<u16, PayloadError> {
                match positive(payload, field)? {
                    None => Ok(default),
                    Some(n) => u16::try_from(n)
                        .map_err(|_| bad(field, format!("must be at most 65535 (found {n})"))),
                }
            };
            let size = TerminalSize::default();
            Some(TerminalSize {
                rows: side("rows", size.rows)?,
                cols: side("cols", size.cols)?,
            })
        } else {
            None
        };
        Ok(Self {
            command,
            argv,
            env,
            cwd,
            stdin,
            clear_env,
            stderr_mode,
            close_stdin,
            timeout,
            user,
            surface_kind,
            stream,
            pty,
        })
    }
}

fn positive(payload: &Map, field: &'static str) -> Result<Option<u64>, PayloadError> {
    match payload.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value.as_u64().filter(|n| *n > 0).map(Some).ok_or_else(|| {
            bad(
                field,
                format!("must be a positive whole number (found {value})"),
            )
        }),
    }
}

/// The streaming keys (§8.9 options): `stdout_mode`, `max_recoverable_line_bytes`,
/// `max_stderr_buffer_size`, `headless_timeout_ms`.
fn stream_options(payload: &Map) -> Result<StreamOptions, PayloadError> {
    let mut options = StreamOptions::default();
    match payload.get("stdout_mode") {
        None | Some(Value::Null) => {}
        Some(Value::String(mode)) if mode == "line" => options.stdout_mode = StdoutMode::Line,
        Some(Value::String(mode)) if mode == "raw" => options.stdout_mode = StdoutMode::Raw,
        Some(Value::String(mode)) if mode == "line_batch" => {
            options.stdout_mode = StdoutMode::LineBatch;
        }
        Some(other) => {
            return Err(bad(
                "stdout_mode",
                format!("must be \"line\", \"line_batch\" or \"raw\" (found {other})"),
            ));
        }
    }
    let size = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
    if let Some(n) = positive(payload, "max_recoverable_line_bytes")? {
        options.max_line_bytes = size(n);
    }
    if let Some(n) = positive(payload, "max_stderr_buffer_size")? {
        options.stderr_tail_bytes = size(n);
    }
    if let Some(ms) = positive(payload, "headless_timeout_ms")? {
        options.headless_timeout = Duration::from_millis(ms);
    }
    Ok(options)
}

/// `execution_surface.surface_kind`, else `surface_kind`, else `local_subprocess`.
fn surface_kind(payload: &Map) -> Result<String, PayloadError> {
    let nested = match payload.get("execution_surface") {
        None | Some(Value::Null) => None,
        Some(Value::Object(surface)) => match surface.get("surface_kind") {
            None | Some(Value::Null) => None,
            Some(Value::String(kind)) => Some(kind.clone()),
            Some(other) => {
                return Err(bad(
                    "execution_surface",
                    format!("surface_kind must be a string (found {other})"),
                ));
            }
        },
        Some(other) => {
            return Err(bad(
                "execution_surface",
                format!("must be an object (found {other})"),
            ));
        }
    };
    match nested {
        Some(kind) => Ok(kind),
        None => Ok(text(payload, "surface_kind")?.unwrap_or_else(|| LOCAL_SUBPROCESS.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    fn parse(value: Value) -> Result<ProcessRequest, PayloadError> {
        match value {
            Value::Object(map) => ProcessRequest::parse(&map),
            _ => unreachable!("tests pass objects"),
        }
    }

    #[test]
    fn a_full_payload_reads_with_upstream_defaults() {
        let request = parse(json!({"command": "sh", "argv": ["-c", "true"]})).unwrap();
        assert_eq!(request.argv, ["-c", "true"]);
        assert!(request.close_stdin && !request.clear_env);
        assert_eq!(request.stderr_mode, StderrMode::Separate);
        assert_eq!(request.surface_kind, LOCAL_SUBPROCESS);
        let request = parse(json!({
            "command": "cat", "env": {"A": "1"}, "cwd": "/tmp", "stdin": {"k": 1},
            "clear_env": true, "stderr_mode": "stdout", "close_stdin": false,
            "timeout_ms": 25, "execution_surface": {"surface_kind": "ssh_exec"}
        }))
        .unwrap();
        assert_eq!(request.env["A"], "1");
        assert_eq!(request.stdin.as_deref(), Some(br#"{"k":1}"#.as_slice()));
        assert_eq!(request.timeout, Some(Duration::from_millis(25)));
        assert_eq!(request.surface_kind, "ssh_exec");
    }

    #[test]
    fn the_first_field_that_does_not_read_is_named_in_upstream_order() {
        for (payload, field) in [
            (json!({}), "command"),
            (json!({"command": "  "}), "command"),
            (
                json!({"command": "sh", "argv": ["-c", 1], "env": 5}),
                "argv",
            ),
            (json!({"command": "sh", "env": {"A": 1}}), "env"),
            (json!({"command": "sh", "env": {"A=B": "1"}}), "env"),
            (json!({"command": "sh", "timeout_ms": -1}), "timeout_ms"),
            (
                json!({"command": "sh", "stderr_mode": "merged"}),
                "stderr_mode",
            ),
            (
                json!({"command": "sh", "close_stdin": "yes"}),
                "close_stdin",
            ),
            (json!({"command": "sh", "user": ""}), "user"),
            (
                json!({"command": "sh", "execution_surface": 3}),
                "execution_surface",
            ),
            (json!({"command": "sh", "cwd": 7}), "cwd"),
            (json!({"command": "sh", "clear_env": 1}), "clear_env"),
            (json!({"command": "sh", "pty": "yes"}), "pty"),
            (json!({"command": "sh", "pty": true, "rows": 0}), "rows"),
        ] {
            assert_eq!(
                parse(payload.clone()).unwrap_err().field,
                field,
                "{payload}"
            );
        }
    }
}
