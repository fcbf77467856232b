//! The `process` capability (ABI 0.2.0): a lane starts a local process and speaks to it over
//! its stdio (JSON-RPC to a language server or an MCP server). Linked only when the lane has at
//! least one command; what it may start is checked twice at `child.spawn`: first against the
//! lane's grant (its manifest's `[grants] process` narrowed by the operator's `[lanes.<id>]
//! process`, compared as written), then by the host's [`ProcessLauncher`] against its own
//! `[process]` policy (commands, directories, variables, process cap, sandbox). A refusal is an
//! `error-code.denied(text)` naming the key to change, never a trap, and one typed
//! [`CapabilityDenial`] (`process.command`, `process.cwd`, `process.env`, ...) in the execution's
//! evidence.
//!
//! The child's stdin, stdout and stderr are ordinary `wasi:io` streams of their own in the
//! store's resource table (not children of the `child` resource, so the guest may drop them and
//! the child in any order); `subscribe-exit` is a pollable of its own too. Dropping the child —
//! or the store at the end of the execution, a cancel or a deadline — kills the child's process
//! group.
//!
//! The pipes are read and written on the guest's own task ([`pipes`]), not through a worker
//! task per stream.
//!
//! Evidence: `process: {spawned, denied, sandbox, commands, exits, bytes_in, bytes_out}` in the
//! execution's entry, where `commands` holds each spawned command's `sha256:` fingerprint (as
//! the process lane records it), `exits` how each ended (`null`: still running when the
//! execution ended, then killed), `bytes_in` what the host read from the children's stdout and
//! stderr, `bytes_out` what it wrote to their stdin. Never arguments, payloads or variables.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use ep_lane_api::{
    CapabilityDenial, ChildControl, ChildOutput, ChildStdin, LaneEvidence, LaunchError,
    LaunchRequest, LaunchedChild, ProcessLauncher,
};
use serde_json::{Map, Value, json};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use wasmtime::component::{HasSelf, Linker, Resource};
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream, DynPollable, Pollable};

mod pipes;

use super::Unit;
use crate::bindings::v2_0::process;
use crate::state::{Attribution, LaneState};
use pipes::{PipeReader, PipeWriter};

/// Import-name prefix of the `process` interface.
pub const PROCESS_IMPORT: &str = "execution-plane:lane/process@";

/// What a guest is told when the host has no launcher at all.
pub const NO_LAUNCHER: &str = "this host runs no local processes; configure [process]";

/// Children whose command and exit one execution's evidence keeps (the rest are counted).
const MAX_CHILDREN_KEPT: usize = 16;

/// Bytes a child's stdin accepts from the guest before the host has written them on.
const STDIN_BUDGET: usize = 64 << 10;

/// The unit: granted by `[grants] process` (commands).
pub(crate) const PROCESS: Unit = Unit {
    grant: "process",
    imports: &[PROCESS_IMPORT],
    granted: |grants| !grants.process.is_empty(),
    link: link_process,
    optional_as: Some("process"),
};

fn link_process(linker: &mut Linker<LaneState>) -> wasmtime::Result<()> {
    process::add_to_linker::<LaneState, HasSelf<LaneState>>(linker, |state| state)
}

/// The commands of a `process` grant, checked (a name without `/`, or an absolute path) and
/// without repeats, in order.
pub(crate) fn commands(asked: &[String]) -> Result<Vec<String>, String> {
    let mut commands: Vec<String> = Vec::with_capacity(asked.len());
    for command in asked {
        if command.trim().is_empty() {
            return Err("holds an empty command; name a command or give an absolute path".into());
        }
        if command.contains('/') && !command.starts_with('/') {
            return Err(format!(
                "holds {command:?}, a relative path; name a command or give an absolute path"
            ));
        }
        if !commands.contains(command) {
            commands.push(command.clone());
        }
    }
    Ok(commands)
}

/// A lane generation's processes: its grant and the host's launcher.
#[derive(Debug)]
pub(crate) struct LaneProcesses {
    /// The commands the lane may start, as its grant names them.
    commands: Vec<String>,
    /// The host's launcher (`None`: this host starts no processes).
    launcher: Option<Arc<dyn ProcessLauncher>>,
}

impl LaneProcesses {
    pub(crate) fn new(commands: Vec<String>, launcher: Option<Arc<dyn ProcessLauncher>>) -> Self {
        Self { commands, launcher }
    }
}

/// One child the execution started: its fingerprint and its control.
struct Started {
    command_sha256: String,
    control: Arc<dyn ChildControl>,
}

/// What one execution did with processes, kept outside its store (so a cancel or a fault that
/// drops the store still leaves its evidence).
#[derive(Default)]
pub(crate) struct ProcessLog {
    inner: Mutex<LogInner>,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
}

#[derive(Default)]
struct LogInner {
    spawned: u64,
    denied: u64,
    sandbox: Option<String>,
    started: Vec<Started>,
    denials: Vec<CapabilityDenial>,
}

impl std::fmt::Debug for ProcessLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("ProcessLog")
            .field("spawned", &inner.spawned)
            .field("denied", &inner.denied)
            .finish_non_exhaustive()
    }
}

impl ProcessLog {
    fn lock(&self) -> std::sync::MutexGuard<'_, LogInner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn spawned(&self, command_sha256: String, control: &Arc<dyn ChildControl>, sandbox: &str) {
        let mut inner = self.lock();
        inner.spawned += 1;
        inner.sandbox = Some(sandbox.to_owned());
        if inner.started.len() < MAX_CHILDREN_KEPT {
            inner.started.push(Started {
                command_sha256,
                control: Arc::clone(control),
            });
        }
    }

    fn deny(&self, who: &Attribution, denial: CapabilityDenial) {
        tracing::warn!(
            lane_id = &*who.lane_id,
            execution_ref = who.execution_ref.as_str(),
            capability = denial.capability,
            reason = denial.reason,
            "lane process denied"
        );
        let mut inner = self.lock();
        inner.denied += 1;
        if inner.denials.len() < MAX_CHILDREN_KEPT {
            inner.denials.push(denial);
        }
    }

    /// The denials kept since the last call (the counters stay).
    pub(crate) fn take_denials(&self) -> Vec<CapabilityDenial> {
        std::mem::take(&mut self.lock().denials)
    }

    /// The `process` summary of the execution's evidence entry.
    pub(crate) fn summary(&self) -> Value {
        let inner = self.lock();
        let exit = |started: &Started| match started.control.try_exit() {
            Some(status) => json!({ "code": status.code(), "signal": status.signal() }),
            None => Value::Null,
        };
        json!({
            "spawned": inner.spawned,
            "denied": inner.denied,
            "sandbox": inner.sandbox,
            "commands": inner.started.iter().map(|s| s.command_sha256.clone()).collect::<Vec<_>>(),
            "exits": inner.started.iter().map(exit).collect::<Vec<_>>(),
            "bytes_in": self.bytes_in.load(Ordering::Relaxed),
            "bytes_out": self.bytes_out.load(Ordering::Relaxed),
        })
    }
}

/// The execution's process evidence: the summary into `entry` (the execution's evidence
/// entry) and each kept denial reported to `evidence`.
pub(crate) fn report(
    log: &ProcessLog,
    entry: Option<&mut Map<String, Value>>,
    evidence: &LaneEvidence,
) {
    if let Some(entry) = entry {
        entry.insert("process".to_owned(), log.summary());
    }
    for denial in log.take_denials() {
        evidence.denied(denial);
    }
}

/// One store's processes: the generation's grant and launcher, the execution's log, and
/// whether the current phase may start anything (validation may not).
pub(crate) struct ProcessState {
    lane: Option<Arc<LaneProcesses>>,
    log: Arc<ProcessLog>,
    who: Attribution,
    pub(crate) open: bool,
}

impl ProcessState {
    pub(crate) fn new(
        lane: Option<Arc<LaneProcesses>>,
        log: Arc<ProcessLog>,
        who: Attribution,
        open: bool,
    ) -> Self {
        Self {
            lane,
            log,
            who,
            open,
        }
    }

    /// The launcher for `command`, or the denial to report and the guest's error text.
    fn admit(
        &self,
        command: &process::Command,
        command_sha256: &str,
    ) -> Result<Arc<dyn ProcessLauncher>, CapabilityDenial> {
        let denial = |capability: &str, reason: String, source: &str| {
            CapabilityDenial::new(capability, reason)
                .with("command_sha256", command_sha256)
                .with("source", source)
        };
        let lane_id = &*self.who.lane_id;
        if !self.open {
            return Err(denial(
                "process.command",
                "a lane starts no process while it validates a request; start it in execute or \
                 stream"
                    .to_owned(),
                "lane_phase",
            ));
        }
        let granted = self
            .lane
            .as_ref()
            .is_some_and(|lane| lane.commands.contains(&command.program));
        if !granted {
            return Err(denial(
                "process.command",
                format!(
                    "command {:?} is not granted to lane {lane_id:?}; add it to the manifest's \
                     [grants] process and the host policy's [lanes.{lane_id}] process",
                    command.program
                ),
                "lane_grant",
            ));
        }
        match self.lane.as_ref().and_then(|lane| lane.launcher.clone()) {
            Some(launcher) => Ok(launcher),
            None => Err(denial("process", NO_LAUNCHER.to_owned(), "host")),
        }
    }
}

/// A started child as the guest holds it: its control, and its stdio until the guest asks.
/// Dropping it kills the child's process group.
pub struct Child {
    control: Arc<dyn ChildControl>,
    stdin: Option<ChildStdin>,
    stdout: Option<ChildOutput>,
    stderr: Option<ChildOutput>,
    log: Arc<ProcessLog>,
}

impl Drop for Child {
    fn drop(&mut self) {
        self.control.kill();
    }
}

/// Ready when the child has exited.
struct ExitReady(Arc<dyn ChildControl>);

#[async_trait::async_trait]
impl Pollable for ExitReady {
    async fn ready(&mut self) {
        self.0.exited().await;
    }
}

/// A child's pipe, counting the bytes that cross it into the execution's log.
struct Counted<T> {
    inner: T,
    log: Arc<ProcessLog>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Counted<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            let read = (buf.filled().len() - before) as u64;
            self.log.bytes_in.fetch_add(read, Ordering::Relaxed);
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Counted<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(written)) = polled {
            self.log
                .bytes_out
                .fetch_add(written as u64, Ordering::Relaxed);
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl process::Host for LaneState {}

impl process::HostChild for LaneState {
    async fn spawn(
        &mut self,
        command: process::Command,
    ) -> wasmtime::Result<Result<Resource<Child>, process::ErrorCode>> {
        let state = &self.caps.process;
        let log = Arc::clone(&state.log);
        let command_sha256 = ep_contracts::canonical::sha256_ref(command.program.as_bytes());
        let launcher = match state.admit(&command, &command_sha256) {
            Ok(launcher) => launcher,
            Err(denial) => {
                let text = denial.reason.clone();
                log.deny(&state.who, denial);
                return Ok(Err(process::ErrorCode::Denied(text)));
            }
        };
        let who = state.who.clone();
        let request = LaunchRequest {
            program: command.program,
            args: command.args,
            env: command.env,
            cwd: command.cwd,
        };
        let launched = match launcher.launch(request).await {
            Ok(launched) => launched,
            Err(LaunchError::Denied { capability, reason }) => {
                let denial = CapabilityDenial::new(capability, reason.clone())
                    .with("command_sha256", command_sha256)
                    .with("source", "process_policy");
                log.deny(&who, denial);
                return Ok(Err(process::ErrorCode::Denied(reason)));
            }
            Err(LaunchError::LaunchFailed { reason }) => {
                return Ok(Err(process::ErrorCode::LaunchFailed(reason)));
            }
            Err(LaunchError::Unavailable { reason }) => {
                return Ok(Err(process::ErrorCode::Other(reason)));
            }
        };
        let LaunchedChild {
            stdin,
            stdout,
            stderr,
            control,
        } = launched;
        log.spawned(command_sha256, &control, launcher.sandbox());
        let child = Child {
            control,
            stdin,
            stdout,
            stderr,
            log,
        };
        // A full table drops (and so kills) the child on the way out.
        Ok(Ok(self.table_mut().push(child)?))
    }

    async fn stdin(
        &mut self,
        child: Resource<Child>,
    ) -> wasmtime::Result<Option<Resource<DynOutputStream>>> {
        let table = self.table_mut();
        let child = table.get_mut(&child)?;
        let Some(pipe) = child.stdin.take() else {
            return Ok(None);
        };
        let counted = Counted {
            inner: pipe,
            log: Arc::clone(&child.log),
        };
        let stream: DynOutputStream = Box::new(PipeWriter::new(counted, STDIN_BUDGET));
        Ok(Some(table.push(stream)?))
    }

    async fn stdout(
        &mut self,
        child: Resource<Child>,
    ) -> wasmtime::Result<Option<Resource<DynInputStream>>> {
        let table = self.table_mut();
        let child = table.get_mut(&child)?;
        let Some(pipe) = child.stdout.take() else {
            return Ok(None);
        };
        let stream = input_stream(pipe, &child.log);
        Ok(Some(table.push(stream)?))
    }

    async fn stderr(
        &mut self,
        child: Resource<Child>,
    ) -> wasmtime::Result<Option<Resource<DynInputStream>>> {
        let table = self.table_mut();
        let child = table.get_mut(&child)?;
        let Some(pipe) = child.stderr.take() else {
            return Ok(None);
        };
        let stream = input_stream(pipe, &child.log);
        Ok(Some(table.push(stream)?))
    }

    async fn subscribe_exit(
        &mut self,
        child: Resource<Child>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        let table = self.table_mut();
        let control = Arc::clone(&table.get(&child)?.control);
        let ready = table.push(ExitReady(control))?;
        wasmtime_wasi::p2::subscribe(table, ready)
    }

    async fn exit_status(
        &mut self,
        child: Resource<Child>,
    ) -> wasmtime::Result<Option<process::ExitStatus>> {
        let status = self.table_mut().get(&child)?.control.try_exit();
        Ok(status.map(|status| process::ExitStatus {
            code: status.code(),
            signal: status.signal(),
        }))
    }

    async fn kill(&mut self, child: Resource<Child>) -> wasmtime::Result<()> {
        self.table_mut().get(&child)?.control.kill();
        Ok(())
    }

    async fn drop(&mut self, child: Resource<Child>) -> wasmtime::Result<()> {
        // Its streams and pollables are resources of their own: they stay valid (and report
        // the end of the pipe) after the child is gone.
        self.table_mut().delete(child)?;
        Ok(())
    }
}

fn input_stream(pipe: ChildOutput, log: &Arc<ProcessLog>) -> DynInputStream {
    let counted = Counted {
        inner: pipe,
        log: Arc::clone(log),
    };
    Box::new(PipeReader::new(counted))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn grant_commands_are_names_or_absolute_paths() {
        let asked = ["cat", "/usr/bin/env", "cat"].map(str::to_owned);
        assert_eq!(commands(&asked).unwrap(), ["cat", "/usr/bin/env"]);
        for bad in ["", " ", "./x", "bin/sh"] {
            assert!(commands(&[bad.to_owned()]).is_err(), "{bad:?}");
        }
    }
}
