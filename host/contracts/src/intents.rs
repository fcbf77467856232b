//! Family execution intents (§2.5): what one lower family needs to run, wrapped around the
//! family-neutral [`ExecutionIntentEnvelope`]. Payload interiors (`headers`, `request`, ...)
//! are carried as maps: upstream declares them provisional, so they are not narrowed here.
//!
//! ```
//! use ep_contracts::{Contract, intents::{ProcessExecutionIntent, StderrMode}, fixtures};
//!
//! let mut attrs = fixtures::flow::process_execution_intent();
//! attrs["argv"] = serde_json::json!(["--system-prompt", ""]);
//! let intent = ProcessExecutionIntent::from_value(&attrs)?;
//! assert_eq!(intent.argv, ["--system-prompt", ""]);
//! assert_eq!(intent.stderr_mode, StderrMode::Separate);
//! assert!(intent.close_stdin);
//! # Ok::<(), ep_contracts::ContractError>(())
//! ```

use serde::Serialize;
use serde_json::{Map, Value};

use crate::contract::{Contract, dump_packet};
use crate::error::ContractError;
use crate::fields::{self, Attrs};
use crate::flow::{ExecutionIntentEnvelope, serialize_contract};

/// Reads the required `envelope` attrs into the typed envelope; a missing or non-object value
/// is `envelope must be a map`, inner errors keep their own field names.
fn read_envelope(attrs: &Attrs<'_>) -> Result<ExecutionIntentEnvelope, ContractError> {
    match attrs.get("envelope") {
        Some(v @ Value::Object(_)) => ExecutionIntentEnvelope::from_value(v),
        _ => Err(ContractError::WrongType {
            field: "envelope".to_owned(),
            expected: "a map",
        }),
    }
}

/// A unary (or streaming) HTTP request intent (`http_execution_intent.v1`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HttpExecutionIntent {
    /// The family-neutral envelope.
    #[serde(serialize_with = "serialize_contract")]
    pub envelope: ExecutionIntentEnvelope,
    /// Request shape (`request_response`).
    pub request_shape: String,
    /// Stream mode (`unary`, `sse`).
    pub stream_mode: String,
    /// Request headers.
    pub headers: Map<String, Value>,
    /// Request body: any JSON value, including a string of raw text; `null` when absent.
    pub body: Value,
    /// Egress surface description (`{"surface_kind": "https"}`).
    pub egress_surface: Map<String, Value>,
    /// Timeouts; the kernel reads `request_timeout_ms`.
    pub timeouts: Map<String, Value>,
    /// Retry class (`safe_idempotent`, ...).
    pub retry_class: Option<String>,
}

impl HttpExecutionIntent {
    /// `timeouts.request_timeout_ms` when it is a positive integer.
    pub fn request_timeout_ms(&self) -> Option<u64> {
        self.timeouts
            .get("request_timeout_ms")
            .and_then(Value::as_u64)
            .filter(|ms| *ms > 0)
    }
}

impl Contract for HttpExecutionIntent {
    const NAME: &'static str = "http_execution_intent.v1";

    fn from_value(value: &Value) -> Result<Self, ContractError> {
        let attrs = Attrs::new(value)?;
        attrs.check_version(Self::NAME)?;
        Ok(Self {
            envelope: read_envelope(&attrs)?,
            request_shape: attrs.required_string("request_shape")?,
            stream_mode: attrs.required_string("stream_mode")?,
            headers: attrs.optional_map("headers")?,
            body: attrs.any("body"),
            egress_surface: attrs.optional_map("egress_surface")?,
            timeouts: attrs.optional_map("timeouts")?,
            retry_class: attrs.optional_string("retry_class")?,
        })
    }

    fn to_value(&self) -> Value {
        dump_packet(self, Self::NAME)
    }
}

/// Where a process's stderr goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StderrMode {
    /// Captured separately from stdout (the default).
    #[default]
    Separate,
    /// Merged into stdout.
    Stdout,
}

impl StderrMode {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Separate => "separate",
            Self::Stdout => "stdout",
        }
    }

    /// The mode for a wire name; only `separate` and `stdout` exist.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "separate" => Some(Self::Separate),
            "stdout" => Some(Self::Stdout),
            _ => None,
        }
    }
}

impl std::fmt::Display for StderrMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A one-shot or long-lived process launch intent (`process_execution_intent.v1`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProcessExecutionIntent {
    /// The family-neutral envelope.
    #[serde(serialize_with = "serialize_contract")]
    pub envelope: ExecutionIntentEnvelope,
    /// Program to run.
    pub command: String,
    /// Arguments; empty strings are legitimate arguments and kept.
    pub argv: Vec<String>,
    /// Environment projected into the process.
    pub env_projection: Map<String, Value>,
    /// Working directory.
    pub cwd: Option<String>,
    /// Stdin payload: any JSON value, `null` when absent.
    pub stdin: Value,
    /// Start from an empty environment (default false).
    pub clear_env: bool,
    /// User to run as.
    pub user: Option<String>,
    /// Stdio mode (`pipe`, `pty`).
    pub stdio_mode: String,
    /// Where stderr goes (default [`StderrMode::Separate`]).
    pub stderr_mode: StderrMode,
    /// Close stdin after writing the payload (default true).
    pub close_stdin: bool,
    /// Placement surface attrs (`execution_surface.v1`); empty means local subprocess.
    pub execution_surface: Map<String, Value>,
    /// Shutdown policy (`graceful_timeout_ms`, ...).
    pub shutdown_policy: Map<String, Value>,
}

impl Contract for ProcessExecutionIntent {
    const NAME: &'static str = "process_execution_intent.v1";

    fn from_value(value: &Value) -> Result<Self, ContractError> {
        let attrs = Attrs::new(value)?;
        attrs.check_version(Self::NAME)?;
        Ok(Self {
            envelope: read_envelope(&attrs)?,
            command: attrs.required_string("command")?,
            argv: attrs.list("argv", |v| fields::plain_string("argv", v))?,
            env_projection: attrs.optional_map("env_projection")?,
            cwd: attrs.optional_string("cwd")?,
            stdin: attrs.any("stdin"),
            clear_env: attrs.boolean("clear_env", false)?,
            user: attrs.optional_string("user")?,
            stdio_mode: attrs.required_string("stdio_mode")?,
            stderr_mode: match attrs.optional_string("stderr_mode")? {
                None => StderrMode::Separate,
                Some(name) => StderrMode::parse(&name).ok_or_else(|| {
                    ContractError::rule(
                        "stderr_mode",
                        r#"stderr_mode must be "separate" or "stdout""#,
                    )
                })?,
            },
            close_stdin: attrs.boolean("close_stdin", true)?,
            execution_surface: attrs.optional_map("execution_surface")?,
            shutdown_policy: attrs.optional_map("shutdown_policy")?,
        })
    }

    fn to_value(&self) -> Value {
        dump_packet(self, Self::NAME)
    }
}

/// A JSON-RPC exchange intent; its envelope uses family `process`, protocol `jsonrpc`
/// (`jsonrpc_execution_intent.v1`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JsonRpcExecutionIntent {
    /// The family-neutral envelope.
    #[serde(serialize_with = "serialize_contract")]
    pub envelope: ExecutionIntentEnvelope,
    /// Transport binding (`{"mode": "stdio"}`).
    pub transport_binding: Map<String, Value>,
    /// Protocol schema (`{"schema": "jsonrpc-2.0"}`).
    pub protocol_schema: Map<String, Value>,
    /// The request (`{"method": .., "params": ..}`).
    pub request: Map<String, Value>,
    /// Session policy (`{"attachable": true}`).
    pub session_policy: Map<String, Value>,
}

impl Contract for JsonRpcExecutionIntent {
    const NAME: &'static str = "jsonrpc_execution_intent.v1";

    fn from_value(value: &Value) -> Result<Self, ContractError> {
        let attrs = Attrs::new(value)?;
        attrs.check_version(Self::NAME)?;
        Ok(Self {
            envelope: read_envelope(&attrs)?,
            transport_binding: attrs.optional_map("transport_binding")?,
            protocol_schema: attrs.optional_map("protocol_schema")?,
            request: attrs.optional_map("request")?,
            session_policy: attrs.optional_map("session_policy")?,
        })
    }

    fn to_value(&self) -> Value {
        dump_packet(self, Self::NAME)
    }
}
