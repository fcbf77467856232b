//! The full-duplex transports — a WebSocket the host holds, a local process's stdio — and
//! waiting on several things at once (the transport, the caller's input, a deadline). Both
//! exist only in the wasm build: natively the SDK has no sockets or processes, and opening one
//! fails with the SDK's own "only in a wasm build" error.

use std::time::{Duration, Instant};

use crate::payload::Binding;
use crate::transport::{Transport, TransportError};

#[cfg(target_arch = "wasm32")]
pub use wasm::{open_stdio, open_websocket, wait_for};

/// Natively there is nothing to wait on.
#[cfg(not(target_arch = "wasm32"))]
pub fn wait_for(_: &[()], _: Option<Instant>, _: bool) {}

/// Natively no WebSocket opens.
#[cfg(not(target_arch = "wasm32"))]
pub fn open_websocket(
    _: &Binding,
    _: Option<Duration>,
) -> Result<Box<dyn Transport>, TransportError> {
    Err(TransportError::Broken(
        execution_plane_sdk::websocket::WsError::Unavailable.to_string(),
    ))
}

/// Natively no process starts.
#[cfg(not(target_arch = "wasm32"))]
pub fn open_stdio(_: &Binding) -> Result<Box<dyn Transport>, TransportError> {
    Err(TransportError::Launch(
        execution_plane_sdk::process::ProcessError::Unsupported.to_string(),
    ))
}

#[cfg(target_arch = "wasm32")]
mod wasm {
    use std::collections::VecDeque;

    use execution_plane_sdk::bindings::wasi::clocks::monotonic_clock;
    use execution_plane_sdk::bindings::wasi::io::poll::{self, Pollable};
    use execution_plane_sdk::jsonrpc::{FrameDecoder, Framing, encode_frame};
    use execution_plane_sdk::process::{Child, Command, ProcessError};
    use execution_plane_sdk::websocket::{ConnectOptions, Connection, Message, WsError};
    use execution_plane_sdk::{Value, json};

    use super::*;
    use crate::payload::MAX_FRAME_BYTES;
    use crate::transport::Arrived;

    /// Blocks until one of `pollables` is ready, the caller's input is (`with_input`), or
    /// `until` passes.
    pub fn wait_for(pollables: &[&Pollable], until: Option<Instant>, with_input: bool) {
        let input = (with_input && !execution_plane_sdk::input::ended())
            .then(execution_plane_sdk::input::subscribe);
        let timer = until.map(|until| {
            let left = until.saturating_duration_since(Instant::now());
            monotonic_clock::subscribe_duration(u64::try_from(left.as_nanos()).unwrap_or(u64::MAX))
        });
        let mut list: Vec<&Pollable> = pollables.to_vec();
        list.extend(input.as_ref());
        list.extend(timer.as_ref());
        if !list.is_empty() {
            poll::poll(&list);
        }
    }

    /// JSON-RPC over a WebSocket: one text message per JSON-RPC message.
    struct WebSocketTransport {
        connection: Connection,
        sent: u64,
        received: u64,
        close: Option<u16>,
    }

    pub fn open_websocket(
        binding: &Binding,
        _timeout: Option<Duration>,
    ) -> Result<Box<dyn Transport>, TransportError> {
        let Binding::WebSocket {
            url,
            headers,
            subprotocols,
        } = binding
        else {
            return Err(TransportError::Broken("not a websocket binding".to_owned()));
        };
        let mut options = ConnectOptions::new();
        for (name, value) in headers {
            options = options.header(name.clone(), value.clone());
        }
        for protocol in subprotocols {
            options = options.subprotocol(protocol.clone());
        }
        let connection = Connection::connect(url, &options).map_err(ws_error)?;
        Ok(Box::new(WebSocketTransport {
            connection,
            sent: 0,
            received: 0,
            close: None,
        }))
    }

    fn ws_error(error: WsError) -> TransportError {
        match error {
            WsError::Denied(_) => TransportError::Denied(error.to_string()),
            other => TransportError::Broken(other.to_string()),
        }
    }

    impl Transport for WebSocketTransport {
        fn send(&mut self, message: &Value) -> Result<(), TransportError> {
            self.connection
                .send_text(&message.to_string())
                .map_err(ws_error)?;
            self.sent += 1;
            Ok(())
        }

        fn try_receive(&mut self) -> Result<Option<Arrived>, TransportError> {
            match self.connection.receive() {
                Ok(Some(Message::Text(text))) => {
                    self.received += 1;
                    Ok(Some(Arrived::Frame(text.into_bytes())))
                }
                Ok(Some(Message::Binary(data))) => {
                    self.received += 1;
                    Ok(Some(Arrived::Frame(data)))
                }
                Ok(Some(Message::Close(frame))) => {
                    self.close = Some(frame.code);
                    Ok(Some(Arrived::Closed))
                }
                Ok(None) => Ok(None),
                Err(WsError::Closed) => Ok(Some(Arrived::Closed)),
                Err(error) => Err(ws_error(error)),
            }
        }

        fn wait(&mut self, until: Option<Instant>, with_input: bool) {
            let socket = self.connection.subscribe();
            wait_for(&[&socket], until, with_input);
        }

        fn close(&mut self) {
            let _ = self.connection.close(1000, "");
        }

        fn summary(&self) -> Value {
            json!({"mode": "websocket", "sent": self.sent, "received": self.received, "close_code": self.close})
        }
    }

    /// How long a peer that closed its stdout has to exit before the stream ends without its
    /// exit status.
    const EXIT_GRACE: Duration = Duration::from_millis(500);

    /// JSON-RPC over a local process's stdio, newline-delimited or `Content-Length` framed.
    /// Its stderr is read and counted (never kept), so a chatty server never blocks on it.
    struct StdioTransport {
        child: Child,
        framing: Framing,
        decoder: FrameDecoder,
        frames: VecDeque<Vec<u8>>,
        stdout_done: bool,
        stderr_bytes: u64,
    }

    pub fn open_stdio(binding: &Binding) -> Result<Box<dyn Transport>, TransportError> {
        let Binding::Stdio {
            command,
            argv,
            env,
            cwd,
            framing,
        } = binding
        else {
            return Err(TransportError::Broken("not a stdio binding".to_owned()));
        };
        let mut spawn = Command::new(command.clone()).args(argv.iter().cloned());
        for (name, value) in env {
            spawn = spawn.env(name.clone(), value.clone());
        }
        if let Some(cwd) = cwd {
            spawn = spawn.cwd(cwd.clone());
        }
        let child = spawn.spawn().map_err(|error| match error {
            ProcessError::Denied(_) => TransportError::Denied(error.to_string()),
            ProcessError::LaunchFailed(_) => TransportError::Launch(error.to_string()),
            other => TransportError::Broken(other.to_string()),
        })?;
        Ok(Box::new(StdioTransport {
            child,
            framing: *framing,
            decoder: FrameDecoder::new(*framing, MAX_FRAME_BYTES),
            frames: VecDeque::new(),
            stdout_done: false,
            stderr_bytes: 0,
        }))
    }

    impl StdioTransport {
        /// The peer closed its stdout: give it [`EXIT_GRACE`] to exit, so the summary reports
        /// how it ended (a pipe's end is seen before the host has reaped the process). One that
        /// lingers is reported without an exit and killed when the child is dropped.
        fn await_exit(&mut self) {
            if self.child.try_wait().is_none() {
                let exited = self.child.exit_pollable();
                wait_for(&[&exited], Some(Instant::now() + EXIT_GRACE), false);
            }
        }

        fn drain_stderr(&mut self) {
            while let Ok(Some(chunk)) = self.child.try_read_stderr() {
                if chunk.is_empty() {
                    break;
                }
                self.stderr_bytes += chunk.len() as u64;
            }
        }
    }

    impl Transport for StdioTransport {
        fn send(&mut self, message: &Value) -> Result<(), TransportError> {
            self.child
                .write_stdin(&encode_frame(self.framing, message))
                .map_err(|error| TransportError::Broken(error.to_string()))
        }

        fn try_receive(&mut self) -> Result<Option<Arrived>, TransportError> {
            self.drain_stderr();
            while self.frames.is_empty() && !self.stdout_done {
                match self.child.try_read_stdout() {
                    Ok(Some(chunk)) if chunk.is_empty() => break,
                    Ok(Some(chunk)) => {
                        let frames = self
                            .decoder
                            .push(&chunk)
                            .map_err(|error| TransportError::Framing(error.to_string()))?;
                        self.frames.extend(frames);
                    }
                    Ok(None) => {
                        self.stdout_done = true;
                        let last = self
                            .decoder
                            .finish()
                            .map_err(|error| TransportError::Framing(error.to_string()))?;
                        self.frames.extend(last);
                    }
                    Err(error) => return Err(TransportError::Broken(error.to_string())),
                }
            }
            Ok(match self.frames.pop_front() {
                Some(frame) => Some(Arrived::Frame(frame)),
                None if self.stdout_done => {
                    self.await_exit();
                    Some(Arrived::Closed)
                }
                None => None,
            })
        }

        fn wait(&mut self, until: Option<Instant>, with_input: bool) {
            let stdout = self.child.stdout_pollable();
            let stderr = self.child.stderr_pollable();
            let list: Vec<&Pollable> = [stdout.as_ref(), stderr.as_ref()]
                .into_iter()
                .flatten()
                .collect();
            wait_for(&list, until, with_input);
        }

        fn close(&mut self) {
            self.child.close_stdin();
        }

        fn summary(&self) -> Value {
            let exit = self.child.try_wait();
            json!({
                "mode": "stdio",
                "framing": match self.framing { Framing::Ndjson => "ndjson", Framing::ContentLength => "content-length" },
                "exit": exit.map(|e| json!({"code": e.code, "signal": e.signal})),
                "stderr_bytes": self.stderr_bytes,
            })
        }
    }
}
