//! [`ProcessLauncher`]: how a lane starts a local process without knowing who runs it. A wasm
//! lane granted `process` asks the host's launcher for a child; the local process placement
//! implements it under the operator's `[process]` policy and sandbox, and a test can implement it
//! with pipes. Nothing here does I/O: the child's stdio are `tokio` byte streams, its exit is
//! awaited through [`ChildControl`].
//!
//! ```
//! use ep_lane_api::{LaunchError, LaunchRequest, ProcessLauncher};
//!
//! async fn greet(launcher: &dyn ProcessLauncher) -> Result<(), LaunchError> {
//!     let request = LaunchRequest::new("cat").env("LANG", "C");
//!     let mut child = launcher.launch(request).await?;
//!     let stdin = child.stdin.take(); // write to it, drop it to close the pipe
//!     drop(stdin);
//!     let status = child.control.exited().await;
//!     assert!(status.code().is_some() || status.signal().is_some());
//!     Ok(())
//! }
//! ```

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncWrite};

/// What to start: a program by name (looked up on the launcher's search path) or absolute path,
/// its arguments, the variables it sets, and where it runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[must_use]
pub struct LaunchRequest {
    /// The program, as the lane names it.
    pub program: String,
    /// Its arguments (after the program).
    pub args: Vec<String>,
    /// Variables it sets, on top of what the launcher passes through.
    pub env: Vec<(String, String)>,
    /// Its working directory (the launcher's default when `None`).
    pub cwd: Option<String>,
}

impl LaunchRequest {
    /// A request to run `program` with no arguments, variables or directory.
    pub fn new(program: impl Into<String>) -> Self {
        Self {
            program: program.into(),
            ..Self::default()
        }
    }

    /// The same request with `arg` appended to its arguments.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// The same request with `name` set to `value`.
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// The same request run in `cwd`.
    pub fn cwd(mut self, cwd: impl Into<String>) -> Self {
        self.cwd = Some(cwd.into());
        self
    }
}

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// It exited with this code.
    Code(i32),
    /// This signal ended it.
    Signal(i32),
}

impl ExitStatus {
    /// Its exit code, when it exited.
    pub fn code(self) -> Option<i32> {
        match self {
            Self::Code(code) => Some(code),
            Self::Signal(_) => None,
        }
    }

    /// The signal that ended it, when one did.
    pub fn signal(self) -> Option<i32> {
        match self {
            Self::Signal(signal) => Some(signal),
            Self::Code(_) => None,
        }
    }

    /// Whether it exited with code 0.
    pub fn success(self) -> bool {
        self == Self::Code(0)
    }
}

/// A child's stdin: written by the lane, closed when dropped.
pub type ChildStdin = Box<dyn AsyncWrite + Send + Unpin>;
/// A child's stdout or stderr: read by the lane until its end.
pub type ChildOutput = Box<dyn AsyncRead + Send + Unpin>;

/// The control half of a started child: its exit and its end. Dropping the last handle kills
/// the child's process group, like [`ChildControl::kill`].
#[async_trait]
pub trait ChildControl: Send + Sync + fmt::Debug {
    /// The child's process id (its process group's id too), while the launcher knows it.
    fn id(&self) -> Option<u32>;

    /// How it ended, once it has.
    fn try_exit(&self) -> Option<ExitStatus>;

    /// Waits until it has ended (any number of waiters, at any time).
    async fn exited(&self) -> ExitStatus;

    /// Ends it: SIGKILL to its whole process group (nothing when it has ended already).
    fn kill(&self);
}

/// A started child: its stdio (each taken once) and its control.
#[must_use = "dropping the child's control kills its process group"]
pub struct LaunchedChild {
    /// Its stdin, kept open until dropped.
    pub stdin: Option<ChildStdin>,
    /// Its stdout.
    pub stdout: Option<ChildOutput>,
    /// Its stderr.
    pub stderr: Option<ChildOutput>,
    /// Its exit and its end.
    pub control: Arc<dyn ChildControl>,
}

impl fmt::Debug for LaunchedChild {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LaunchedChild")
            .field("stdin", &self.stdin.is_some())
            .field("stdout", &self.stdout.is_some())
            .field("stderr", &self.stderr.is_some())
            .field("control", &self.control)
            .finish()
    }
}

/// Why a child did not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LaunchError {
    /// The launcher's policy refuses the command, its directory or a variable.
    #[error("{reason}")]
    Denied {
        /// What was refused, as evidence names it (`process.command`, `process.cwd`,
        /// `process.env`, ...).
        capability: String,
        /// Why, naming the policy key that would allow it.
        reason: String,
    },
    /// The program could not be started (not found, not executable, the sandbox refused).
    #[error("{reason}")]
    LaunchFailed {
        /// What went wrong.
        reason: String,
    },
    /// The host runs as many processes as it may (`[process] max_processes`), or has no room
    /// for one more sandboxed uid; a later attempt may succeed.
    #[error("{reason}")]
    Unavailable {
        /// What is exhausted, naming the limit.
        reason: String,
    },
}

/// Starts local processes for lanes, under the launcher's own policy.
#[async_trait]
pub trait ProcessLauncher: Send + Sync + fmt::Debug {
    /// Checks `request` against the launcher's policy and starts it in a process group of its
    /// own, stdin, stdout and stderr piped.
    async fn launch(&self, request: LaunchRequest) -> Result<LaunchedChild, LaunchError>;

    /// The isolation its children run under, as evidence names it (`none`, or a class such as
    /// `local-process-sandboxed`).
    fn sandbox(&self) -> &str {
        "none"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_built_in_order() {
        let request = LaunchRequest::new("sh")
            .arg("-c")
            .arg("echo $A")
            .env("A", "1")
            .cwd("/tmp");
        assert_eq!(request.program, "sh");
        assert_eq!(request.args, ["-c", "echo $A"]);
        assert_eq!(request.env, [("A".to_owned(), "1".to_owned())]);
        assert_eq!(request.cwd.as_deref(), Some("/tmp"));
    }

    #[test]
    fn an_exit_is_a_code_or_a_signal() {
        assert!(ExitStatus::Code(0).success());
        assert_eq!(ExitStatus::Code(3).code(), Some(3));
        assert_eq!(ExitStatus::Signal(9).signal(), Some(9));
        assert_eq!(ExitStatus::Signal(9).code(), None);
        assert!(!ExitStatus::Signal(9).success());
    }

    #[test]
    fn errors_read_as_their_reason() {
        let denied = LaunchError::Denied {
            capability: "process.command".to_owned(),
            reason: "command \"x\" is not granted; add it to [process] commands".to_owned(),
        };
        assert!(denied.to_string().contains("[process] commands"));
    }
}
