//! The payload of a `jsonrpc` execution or session, checked before any I/O (upstream's
//! binding keys): `request` (an object with a string `method`, a bare method name, or a
//! `[method, params]` pair; required for `execute`, optional first message of a stream),
//! `transport_binding` (`{"mode": "stdio" | "http" | "websocket", "url"?, "framing"?:
//! "ndjson" | "content-length", "headers"?, "subprotocols"?}`, default `{"mode": "stdio"}`),
//! `command`, `argv`, `env`, `cwd` (stdio), `timeout_ms`, `ready` (`{"method": name}`: wait
//! for that notification before sending) and `peer_requests` (`"reject"` (default) or an object
//! of method → result answered to the peer's requests).

use execution_plane_sdk::http::Url;
use execution_plane_sdk::jsonrpc::Framing;
use execution_plane_sdk::{Rejection, Request, Value};

type Map = execution_plane_sdk::Map<String, Value>;

/// The longest `timeout_ms` accepted (the host's deadline bounds every call anyway).
pub const MAX_TIMEOUT_MS: u64 = 3_600_000;
/// Largest frame accepted from a peer.
pub const MAX_FRAME_BYTES: usize = 16 << 20;

/// How the lane reaches the peer.
#[derive(Debug, Clone, PartialEq)]
pub enum Binding {
    /// A local process started through the host (`process` grant), speaking on its stdio.
    Stdio {
        command: String,
        argv: Vec<String>,
        env: Vec<(String, String)>,
        cwd: Option<String>,
        framing: Framing,
    },
    /// One HTTP POST per message; the response body is the answer.
    Http {
        url: Url,
        headers: Vec<(String, String)>,
    },
    /// One text frame per message.
    WebSocket {
        url: String,
        headers: Vec<(String, String)>,
        subprotocols: Vec<String>,
    },
}

impl Binding {
    /// `stdio`, `http` or `websocket`, as the payload names it.
    pub fn mode(&self) -> &'static str {
        match self {
            Self::Stdio { .. } => "stdio",
            Self::Http { .. } => "http",
            Self::WebSocket { .. } => "websocket",
        }
    }
}

/// What the peer's requests get.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum PeerPolicy {
    /// `-32601 unsupported peer request`.
    #[default]
    Reject,
    /// A fixed result per method; any other method is rejected.
    Answer(Map),
}

/// What one execution or session does.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub request: Option<Value>,
    pub binding: Binding,
    pub timeout_ms: Option<u64>,
    pub ready_method: Option<String>,
    pub peer: PeerPolicy,
}

fn invalid(field: &str, problem: impl std::fmt::Display) -> Rejection {
    Rejection::invalid_request(format!("payload.{field} {problem}")).with_detail("field", field)
}

fn strings(payload: &Map, field: &str) -> Result<Vec<String>, Rejection> {
    match payload.get(field) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                item.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| invalid(field, "must be a list of strings"))
            })
            .collect(),
        Some(_) => Err(invalid(field, "must be a list of strings")),
    }
}

fn string_map(value: Option<&Value>, field: &str) -> Result<Vec<(String, String)>, Rejection> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(key, value)| match value {
                Value::String(text) => Ok((key.clone(), text.clone())),
                _ => Err(invalid(field, format!("value of {key:?} must be a string"))),
            })
            .collect(),
        Some(_) => Err(invalid(field, "must be an object of strings")),
    }
}

impl Plan {
    /// The plan of `req`, or why its payload is refused. `needs_request`: `execute` sends one
    /// request and waits for its answer, so it needs one.
    pub fn from_request(req: &Request, needs_request: bool) -> Result<Self, Rejection> {
        let Value::Object(payload) = &req.payload else {
            return Err(Rejection::invalid_request("the payload must be an object"));
        };
        let request = match payload.get("request") {
            None | Some(Value::Null) if needs_request => {
                return Err(invalid("request", "is required: the call to make"));
            }
            None | Some(Value::Null) => None,
            Some(request) => {
                // Encoding it once checks it (method, params, id) before any I/O.
                execution_plane_sdk::jsonrpc::encode_once(request)
                    .map_err(|error| invalid("request", error))?;
                Some(request.clone())
            }
        };
        let binding = binding(payload)?;
        let timeout_ms = match payload.get("timeout_ms") {
            None | Some(Value::Null) => None,
            Some(value) => Some(
                value
                    .as_u64()
                    .filter(|ms| (1..=MAX_TIMEOUT_MS).contains(ms))
                    .ok_or_else(|| {
                        invalid(
                            "timeout_ms",
                            format!("must be an integer from 1 to {MAX_TIMEOUT_MS}"),
                        )
                    })?,
            ),
        };
        let ready_method = match payload.get("ready") {
            None | Some(Value::Null) => None,
            Some(Value::Object(ready)) => Some(
                ready
                    .get("method")
                    .and_then(Value::as_str)
                    .ok_or_else(|| invalid("ready", "must be {\"method\": name}"))?
                    .to_owned(),
            ),
            Some(_) => return Err(invalid("ready", "must be {\"method\": name}")),
        };
        let peer = match payload.get("peer_requests") {
            None | Some(Value::Null) => PeerPolicy::Reject,
            Some(Value::String(policy)) if policy == "reject" => PeerPolicy::Reject,
            Some(Value::Object(answers)) => PeerPolicy::Answer(answers.clone()),
            Some(_) => {
                return Err(invalid(
                    "peer_requests",
                    "must be \"reject\" or an object of method to result",
                ));
            }
        };
        Ok(Self {
            request,
            binding,
            timeout_ms,
            ready_method,
            peer,
        })
    }
}

fn binding(payload: &Map) -> Result<Binding, Rejection> {
    let empty = Map::new();
    let spec = match payload.get("transport_binding") {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(spec)) => spec,
        Some(_) => return Err(invalid("transport_binding", "must be an object")),
    };
    let mode = match spec.get("mode") {
        None | Some(Value::Null) => "stdio",
        Some(Value::String(mode)) => mode.as_str(),
        Some(_) => return Err(invalid("transport_binding.mode", "must be a string")),
    };
    let url = || {
        spec.get("url").and_then(Value::as_str).ok_or_else(|| {
            invalid(
                "transport_binding.url",
                format!("is required for mode {mode:?}"),
            )
        })
    };
    let headers = string_map(spec.get("headers"), "transport_binding.headers")?;
    match mode {
        "stdio" => {
            let command = payload
                .get("command")
                .and_then(Value::as_str)
                .filter(|command| !command.is_empty())
                .ok_or_else(|| invalid("command", "is required for mode \"stdio\""))?
                .to_owned();
            let framing = match spec.get("framing").and_then(Value::as_str) {
                None | Some("ndjson") => Framing::Ndjson,
                Some("content-length") => Framing::ContentLength,
                Some(other) => {
                    return Err(invalid(
                        "transport_binding.framing",
                        format!("{other:?} is not \"ndjson\" or \"content-length\""),
                    ));
                }
            };
            Ok(Binding::Stdio {
                command,
                argv: strings(payload, "argv")?,
                env: string_map(payload.get("env"), "env")?,
                cwd: payload
                    .get("cwd")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                framing,
            })
        }
        "http" => Ok(Binding::Http {
            url: Url::parse(url()?).map_err(|error| invalid("transport_binding.url", error))?,
            headers,
        }),
        "websocket" => {
            let url = url()?;
            if !(url.starts_with("ws://") || url.starts_with("wss://")) {
                return Err(invalid(
                    "transport_binding.url",
                    "must be a ws:// or wss:// URL for mode \"websocket\"",
                ));
            }
            let subprotocols = match spec.get("subprotocols") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|item| {
                        item.as_str().map(str::to_owned).ok_or_else(|| {
                            invalid(
                                "transport_binding.subprotocols",
                                "must be a list of strings",
                            )
                        })
                    })
                    .collect::<Result<_, _>>()?,
                Some(_) => {
                    return Err(invalid(
                        "transport_binding.subprotocols",
                        "must be a list of strings",
                    ));
                }
            };
            Ok(Binding::WebSocket {
                url: url.to_owned(),
                headers,
                subprotocols,
            })
        }
        other => Err(invalid(
            "transport_binding.mode",
            format!("{other:?} is not \"stdio\", \"http\" or \"websocket\""),
        )),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use execution_plane_sdk::json;

    use super::*;

    fn plan(payload: Value) -> Result<Plan, Rejection> {
        Plan::from_request(&Request::new(payload), true)
    }

    #[test]
    fn stdio_is_the_default_mode_and_needs_a_command() {
        let p = plan(json!({"request": "ping", "command": "server", "argv": ["--stdio"]})).unwrap();
        let Binding::Stdio {
            command,
            argv,
            framing,
            ..
        } = p.binding
        else {
            panic!("stdio")
        };
        assert_eq!(
            (command.as_str(), argv, framing),
            ("server", vec!["--stdio".to_owned()], Framing::Ndjson)
        );
        let refused = plan(json!({"request": "ping"})).unwrap_err();
        assert_eq!(refused.details["field"], "command");
    }

    #[test]
    fn each_mode_reads_its_keys() {
        let http = plan(json!({"request": {"method": "a"}, "transport_binding": {"mode": "http", "url": "http://h/rpc"}})).unwrap();
        assert_eq!(http.binding.mode(), "http");
        let ws = plan(json!({"request": ["a", [1]], "transport_binding": {"mode": "websocket", "url": "ws://h/rpc", "subprotocols": ["jsonrpc"]}})).unwrap();
        assert_eq!(ws.binding.mode(), "websocket");
        let lsp = plan(json!({"request": "a", "command": "ls", "transport_binding": {"framing": "content-length"}})).unwrap();
        assert!(matches!(
            lsp.binding,
            Binding::Stdio {
                framing: Framing::ContentLength,
                ..
            }
        ));
    }

    #[test]
    fn bad_payloads_are_refused_naming_the_field() {
        for (payload, field) in [
            (json!({"command": "x"}), "request"),
            (
                json!({"request": {"params": []}, "command": "x"}),
                "request",
            ),
            (
                json!({"request": "a", "transport_binding": {"mode": "tcp"}}),
                "transport_binding.mode",
            ),
            (
                json!({"request": "a", "transport_binding": {"mode": "http"}}),
                "transport_binding.url",
            ),
            (
                json!({"request": "a", "transport_binding": {"mode": "websocket", "url": "http://h/"}}),
                "transport_binding.url",
            ),
            (
                json!({"request": "a", "command": "x", "transport_binding": {"framing": "lines"}}),
                "transport_binding.framing",
            ),
            (
                json!({"request": "a", "command": "x", "timeout_ms": 0}),
                "timeout_ms",
            ),
            (
                json!({"request": "a", "command": "x", "ready": "yes"}),
                "ready",
            ),
            (
                json!({"request": "a", "command": "x", "peer_requests": 3}),
                "peer_requests",
            ),
            (json!({"request": "a", "command": "x", "argv": [1]}), "argv"),
        ] {
            let refused = plan(payload.clone()).unwrap_err();
            assert_eq!(refused.reason, "invalid_lane_request", "{payload}");
            assert_eq!(refused.details["field"], field, "{payload}");
        }
    }

    #[test]
    fn a_stream_may_open_without_a_first_request() {
        let p = Plan::from_request(&Request::new(json!({"command": "x"})), false).unwrap();
        assert!(p.request.is_none());
    }
}
