//! Local processes, spoken to over their stdio: a language server, an MCP server, any tool that
//! reads requests on stdin and answers on stdout. The host starts them for the lane through the
//! `process` import (ABI 0.2.0), and only what is granted: the command must be in the
//! manifest's `[grants] process` and in the operator's `[lanes.<id>] process`, and the host's
//! `[process]` policy checks the command, its directory and its variables again (a sandboxed host
//! runs it sandboxed). A refusal is [`ProcessError::Denied`], never a trap.
//!
//! ```no_run
//! use execution_plane_sdk::process::{Command, ProcessError};
//!
//! fn ask(request: &str) -> Result<String, ProcessError> {
//!     let mut child = Command::new("my-language-server").arg("--stdio").spawn()?;
//!     child.write_stdin(request.as_bytes())?;
//!     child.write_stdin(b"\n")?;
//!     let line = child.read_stdout_line()?.unwrap_or_default();
//!     child.kill();
//!     Ok(String::from_utf8_lossy(&line).into_owned())
//! }
//! ```
//!
//! Dropping the [`Child`] ends the process (SIGKILL to its process group), and so does the end
//! of the execution, its cancellation or its deadline. Its stdin stays open until
//! [`Child::close_stdin`]. To wait on a child and something else at once (the caller's input,
//! a WebSocket), poll [`Child::stdout_pollable`] (or [`Child::exit_pollable`]) with the other
//! pollables (`wasi:io/poll`); drop those pollables before the child.
//!
//! Natively (`cargo test`), [`Command::spawn`] fails with [`ProcessError::Unsupported`]:
//! processes are only started by a host, for a lane built for `wasm32-wasip2`.

use std::fmt;

/// Largest slice handed to `blocking-write-and-flush` (the WASI limit for one call).
#[cfg(target_arch = "wasm32")]
const WRITE_CHUNK: usize = 4096;

/// Largest read asked of the host at once.
#[cfg(target_arch = "wasm32")]
const READ_CHUNK: u64 = 64 * 1024;

/// Why a process could not be started or spoken to. The `Display` text names the thing, the
/// reason and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProcessError {
    /// The host refused the command, its directory or a variable; the text (the host's, the
    /// same words as its `capability.denied` evidence) names the policy key that would allow it.
    Denied(String),
    /// The program could not be started (not found, not executable, the sandbox refused).
    LaunchFailed(String),
    /// The host could not start it now (its process limit), or failed otherwise.
    Other(String),
    /// Reading or writing one of the child's pipes failed.
    Io(String),
    /// The child's stdin was closed (by [`Child::close_stdin`], or because the process ended).
    StdinClosed,
    /// Processes are only available in a wasm build of the lane (this is a native build).
    Unsupported,
}

impl fmt::Display for ProcessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Denied(text) => write!(
                f,
                "the host refused to start the process: {text} (a lane starts only the commands \
                 of its manifest's [grants] process that the operator allows)"
            ),
            Self::LaunchFailed(text) => write!(
                f,
                "the process could not be started: {text} (check the command exists on the \
                 host's [process] path and is executable)"
            ),
            Self::Other(text) => write!(f, "the host could not start the process: {text}"),
            Self::Io(text) => write!(f, "the process's pipe failed: {text}"),
            Self::StdinClosed => write!(
                f,
                "the process's stdin is closed (by close_stdin, or because the process ended); \
                 spawn a new process to write again"
            ),
            Self::Unsupported => write!(
                f,
                "processes are only available in a wasm build of the lane (wasm32-wasip2, run by \
                 a host that grants `process`); this is a native build"
            ),
        }
    }
}

impl std::error::Error for ProcessError {}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitStatus {
    /// Its exit code, when it exited.
    pub code: Option<i32>,
    /// The signal that ended it, when one did (9 after [`Child::kill`]).
    pub signal: Option<i32>,
}

impl ExitStatus {
    /// Whether it exited with code 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

/// What to run: a program by name (looked up on the host's `[process] path`) or absolute path,
/// its arguments, variables and working directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[must_use]
pub struct Command {
    program: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    cwd: Option<String>,
}

impl Command {
    /// A command running `program` (as the manifest's `[grants] process` names it).
    pub fn new(program: impl Into<String>) -> Self {
        Self {
            program: program.into(),
            ..Self::default()
        }
    }

    /// Adds one argument.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets a variable (the host's `[process] env` must allow its name).
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// Runs it in `dir` (inside the host's `[process] cwd`; relative to its first directory).
    pub fn cwd(mut self, dir: impl Into<String>) -> Self {
        self.cwd = Some(dir.into());
        self
    }

    /// The program.
    pub fn program(&self) -> &str {
        &self.program
    }

    /// Starts it, stdin, stdout and stderr piped.
    pub fn spawn(&self) -> Result<Child, ProcessError> {
        #[cfg(target_arch = "wasm32")]
        {
            wasi::spawn(self).map(|inner| Child { inner })
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            Err(ProcessError::Unsupported)
        }
    }
}

/// A running process. Dropping it ends the process (and its process group).
pub struct Child {
    #[cfg(target_arch = "wasm32")]
    inner: wasi::Inner,
    #[cfg(not(target_arch = "wasm32"))]
    _never: std::convert::Infallible,
}

impl fmt::Debug for Child {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Child").finish_non_exhaustive()
    }
}

#[cfg(target_arch = "wasm32")]
impl Child {
    /// Writes all of `bytes` to the process's stdin (blocking while its pipe is full).
    pub fn write_stdin(&mut self, bytes: &[u8]) -> Result<(), ProcessError> {
        self.inner.write_stdin(bytes)
    }

    /// Closes the process's stdin (it reads the end of its input).
    pub fn close_stdin(&mut self) {
        self.inner.stdin = None;
    }

    /// The next chunk of stdout, blocking until one arrives; `None` at its end.
    pub fn read_stdout(&mut self) -> Result<Option<Vec<u8>>, ProcessError> {
        if !self.inner.stdout_buffer.is_empty() {
            return Ok(Some(std::mem::take(&mut self.inner.stdout_buffer)));
        }
        wasi::read(self.inner.stdout.as_ref(), true)
    }

    /// Whatever stdout has now (empty when nothing has arrived), without blocking; `None` at
    /// its end.
    pub fn try_read_stdout(&mut self) -> Result<Option<Vec<u8>>, ProcessError> {
        if !self.inner.stdout_buffer.is_empty() {
            return Ok(Some(std::mem::take(&mut self.inner.stdout_buffer)));
        }
        wasi::read(self.inner.stdout.as_ref(), false)
    }

    /// The next line of stdout with its `\n` (blocking until it is complete), or the rest of
    /// stdout when it ends without one; `None` at its end. For newline-delimited JSON-RPC.
    pub fn read_stdout_line(&mut self) -> Result<Option<Vec<u8>>, ProcessError> {
        loop {
            let buffer = &mut self.inner.stdout_buffer;
            if let Some(end) = memchr::memchr(b'\n', buffer) {
                let rest = buffer.split_off(end + 1);
                return Ok(Some(std::mem::replace(buffer, rest)));
            }
            match wasi::read(self.inner.stdout.as_ref(), true)? {
                Some(chunk) => self.inner.stdout_buffer.extend_from_slice(&chunk),
                None if self.inner.stdout_buffer.is_empty() => return Ok(None),
                None => return Ok(Some(std::mem::take(&mut self.inner.stdout_buffer))),
            }
        }
    }

    /// The next chunk of stderr, blocking until one arrives; `None` at its end.
    pub fn read_stderr(&mut self) -> Result<Option<Vec<u8>>, ProcessError> {
        wasi::read(self.inner.stderr.as_ref(), true)
    }

    /// Whatever stderr has now, without blocking; `None` at its end.
    pub fn try_read_stderr(&mut self) -> Result<Option<Vec<u8>>, ProcessError> {
        wasi::read(self.inner.stderr.as_ref(), false)
    }

    /// A pollable ready when [`Child::try_read_stdout`] has something (or stdout ended). Drop
    /// it before the child.
    pub fn stdout_pollable(&self) -> Option<crate::bindings::wasi::io::poll::Pollable> {
        self.inner.stdout.as_ref().map(|stream| stream.subscribe())
    }

    /// A pollable ready when [`Child::try_read_stderr`] has something (or stderr ended). Drop
    /// it before the child.
    pub fn stderr_pollable(&self) -> Option<crate::bindings::wasi::io::poll::Pollable> {
        self.inner.stderr.as_ref().map(|stream| stream.subscribe())
    }

    /// A pollable ready when the process has exited.
    pub fn exit_pollable(&self) -> crate::bindings::wasi::io::poll::Pollable {
        self.inner.child.subscribe_exit()
    }

    /// Waits until the process has exited and says how.
    pub fn wait(&mut self) -> ExitStatus {
        loop {
            if let Some(status) = self.try_wait() {
                return status;
            }
            self.inner.child.subscribe_exit().block();
        }
    }

    /// How the process ended, once it has.
    pub fn try_wait(&self) -> Option<ExitStatus> {
        self.inner.child.exit_status().map(|status| ExitStatus {
            code: status.code,
            signal: status.signal,
        })
    }

    /// Ends the process: SIGKILL to its process group.
    pub fn kill(&self) {
        self.inner.child.kill();
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl Child {
    /// Writes all of `bytes` to the process's stdin (never: see [`ProcessError::Unsupported`]).
    pub fn write_stdin(&mut self, _bytes: &[u8]) -> Result<(), ProcessError> {
        match self._never {}
    }

    /// Closes the process's stdin.
    pub fn close_stdin(&mut self) {
        match self._never {}
    }

    /// The next chunk of stdout; `None` at its end.
    pub fn read_stdout(&mut self) -> Result<Option<Vec<u8>>, ProcessError> {
        match self._never {}
    }

    /// Whatever stdout has now, without blocking; `None` at its end.
    pub fn try_read_stdout(&mut self) -> Result<Option<Vec<u8>>, ProcessError> {
        match self._never {}
    }

    /// The next line of stdout; `None` at its end.
    pub fn read_stdout_line(&mut self) -> Result<Option<Vec<u8>>, ProcessError> {
        match self._never {}
    }

    /// The next chunk of stderr; `None` at its end.
    pub fn read_stderr(&mut self) -> Result<Option<Vec<u8>>, ProcessError> {
        match self._never {}
    }

    /// Whatever stderr has now, without blocking; `None` at its end.
    pub fn try_read_stderr(&mut self) -> Result<Option<Vec<u8>>, ProcessError> {
        match self._never {}
    }

    /// Waits until the process has exited and says how.
    pub fn wait(&mut self) -> ExitStatus {
        match self._never {}
    }

    /// How the process ended, once it has.
    pub fn try_wait(&self) -> Option<ExitStatus> {
        match self._never {}
    }

    /// Ends the process.
    pub fn kill(&self) {
        match self._never {}
    }
}

/// The one place that calls the `process` import and the child's `wasi:io` streams.
#[cfg(target_arch = "wasm32")]
mod wasi {
    use super::{Command, ProcessError, READ_CHUNK, WRITE_CHUNK};
    use crate::bindings::execution_plane::lane0_2_0::process::{self, ErrorCode};
    use crate::bindings::wasi::io::streams::{InputStream, OutputStream, StreamError};

    /// A child and its pipes. Fields drop in declaration order: the streams, then the child
    /// (the host accepts any order; this one lets the pipes end before the kill).
    pub(super) struct Inner {
        pub(super) stdin: Option<OutputStream>,
        pub(super) stdout: Option<InputStream>,
        pub(super) stderr: Option<InputStream>,
        /// Stdout read past the last line handed out.
        pub(super) stdout_buffer: Vec<u8>,
        pub(super) child: process::Child,
    }

    pub(super) fn spawn(command: &Command) -> Result<Inner, ProcessError> {
        let raw = process::Command {
            program: command.program.clone(),
            args: command.args.clone(),
            env: command.env.clone(),
            cwd: command.cwd.clone(),
        };
        let child = process::Child::spawn(&raw).map_err(|error| match error {
            ErrorCode::Denied(text) => ProcessError::Denied(text),
            ErrorCode::LaunchFailed(text) => ProcessError::LaunchFailed(text),
            ErrorCode::Other(text) => ProcessError::Other(text),
        })?;
        Ok(Inner {
            stdin: child.stdin(),
            stdout: child.stdout(),
            stderr: child.stderr(),
            stdout_buffer: Vec::new(),
            child,
        })
    }

    fn io(error: StreamError) -> ProcessError {
        match error {
            StreamError::Closed => ProcessError::StdinClosed,
            StreamError::LastOperationFailed(error) => {
                ProcessError::Io(super::first_line(&error.to_debug_string()))
            }
        }
    }

    impl Inner {
        pub(super) fn write_stdin(&mut self, bytes: &[u8]) -> Result<(), ProcessError> {
            let stdin = self.stdin.as_ref().ok_or(ProcessError::StdinClosed)?;
            for chunk in bytes.chunks(WRITE_CHUNK) {
                stdin.blocking_write_and_flush(chunk).map_err(io)?;
            }
            Ok(())
        }
    }

    /// One read of `stream` (blocking or not); `None` at its end or when there is none.
    pub(super) fn read(
        stream: Option<&InputStream>,
        blocking: bool,
    ) -> Result<Option<Vec<u8>>, ProcessError> {
        let Some(stream) = stream else {
            return Ok(None);
        };
        let read = if blocking {
            stream.blocking_read(READ_CHUNK)
        } else {
            stream.read(READ_CHUNK)
        };
        match read {
            Ok(chunk) => Ok(Some(chunk)),
            Err(StreamError::Closed) => Ok(None),
            Err(StreamError::LastOperationFailed(error)) => Err(ProcessError::Io(
                super::first_line(&error.to_debug_string()),
            )),
        }
    }
}

/// The message of an I/O error's debug text, without the host's backtrace after it.
#[cfg(target_arch = "wasm32")]
fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natively_a_spawn_says_processes_need_a_wasm_build() {
        let error = Command::new("cat")
            .arg("-u")
            .env("A", "1")
            .cwd("work")
            .spawn()
            .unwrap_err();
        assert_eq!(error, ProcessError::Unsupported);
        assert!(error.to_string().contains("only available in a wasm build"));
    }

    #[test]
    fn a_command_is_built_in_order() {
        let command = Command::new("sh").args(["-c", "echo hi"]).env("A", "1");
        assert_eq!(command.program(), "sh");
        assert_eq!(command.args, ["-c", "echo hi"]);
        assert_eq!(command.env, [("A".to_owned(), "1".to_owned())]);
        assert!(
            ExitStatus {
                code: Some(0),
                signal: None
            }
            .success()
        );
    }

    #[test]
    fn errors_say_what_to_do() {
        let denied = ProcessError::Denied("command \"x\" is not granted".to_owned());
        assert!(denied.to_string().contains("[grants] process"));
        assert!(
            ProcessError::StdinClosed
                .to_string()
                .contains("spawn a new")
        );
    }
}
