//! One process, run to its end (inventory §8.6): spawned in a process group of its own, its
//! stdin written (then closed, unless the request keeps it open), stdout and stderr read as they
//! come (each capped; the rest read and dropped so the process never blocks on a full pipe),
//! until it exits, its time runs out or it is cancelled. Out of time or cancelled: SIGTERM to the
//! group, 200 ms, then SIGKILL to the group; what it wrote so far is kept. A one-shot run ends
//! its whole group: anything it left running in it is killed once it exits.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use ep_lane_api::CancelSignal;
use rustix::process::{Pid, Signal};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

use crate::exit::Exit;
use crate::payload::StderrMode;

/// How long a process has after SIGTERM before SIGKILL.
pub const TERM_GRACE: Duration = Duration::from_millis(200);
/// How long the output of a killed process group is still read.
pub const DRAIN_AFTER_KILL: Duration = Duration::from_millis(500);

/// Everything a run needs, resolved by the policy.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// The program to execute.
    pub program: PathBuf,
    /// Its arguments.
    pub argv: Vec<String>,
    /// Its working directory.
    pub cwd: PathBuf,
    /// Its whole environment.
    pub env: Vec<(String, String)>,
    /// Bytes for its stdin.
    pub stdin: Option<Vec<u8>>,
    /// Close stdin once written.
    pub close_stdin: bool,
    /// Where stderr goes in `output`.
    pub stderr_mode: StderrMode,
    /// `(uid, gid)` to run as.
    pub user: Option<(u32, u32)>,
    /// Most bytes kept of stdout, of stderr and of `output`.
    pub max_output_bytes: usize,
}

/// Why a process did not run.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// The working directory does not exist (or is not a directory).
    #[error("cwd not found: {0}")]
    CwdNotFound(PathBuf),
    /// The program does not exist, or may not be executed.
    #[error("command not found: {0}")]
    CommandNotFound(String),
    /// The OS refused to start it.
    #[error("process launch failed: {0}")]
    Spawn(#[source] std::io::Error),
}

/// Output kept up to a cap.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Captured {
    /// The bytes kept.
    pub bytes: Vec<u8>,
    /// Every byte read, kept or not.
    pub total: u64,
}

impl Captured {
    /// Counts `chunk` and keeps what fits under `cap`.
    pub(crate) fn push(&mut self, chunk: &[u8], cap: usize) {
        self.total += chunk.len() as u64;
        let room = cap.saturating_sub(self.bytes.len());
        self.bytes
            .extend_from_slice(&chunk[..chunk.len().min(room)]);
    }

    /// Whether bytes were dropped at the cap.
    pub fn truncated(&self) -> bool {
        self.total > self.bytes.len() as u64
    }
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// The process exited.
    Exited(Exit),
    /// Its time ran out; it was killed.
    TimedOut,
    /// It was cancelled; it was killed.
    Cancelled,
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct Ran {
    /// How it ended.
    pub ending: Ending,
    /// Its stdout.
    pub stdout: Captured,
    /// Its stderr.
    pub stderr: Captured,
    /// stdout, or stdout and stderr interleaved as they arrived (`stderr_mode: stdout`).
    pub output: Captured,
    /// From spawn to the end.
    pub duration: Duration,
}

/// Reads `from` to its end into `own` and, when `combined` is set, into it as well.
async fn collect(
    mut from: impl AsyncRead + Unpin,
    own: Arc<Mutex<Captured>>,
    combined: Option<Arc<Mutex<Captured>>>,
    cap: usize,
) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                own.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(&buffer[..n], cap);
                if let Some(combined) = &combined {
                    combined
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(&buffer[..n], cap);
                }
            }
        }
    }
}

/// Sends `signal` to the process group `pgid` (never to pid 0 or 1: that would be the host's
/// own group or every process). A group that is gone already is fine.
pub(crate) fn signal_group(pgid: Option<u32>, signal: Signal) {
    let Some(pid) = pgid
        .and_then(|id| i32::try_from(id).ok())
        .filter(|id| *id > 1)
        .and_then(Pid::from_raw)
    else {
        return;
    };
    let _ = rustix::process::kill_process_group(pid, signal);
}

fn take(captured: &Arc<Mutex<Captured>>) -> Captured {
    std::mem::take(&mut *captured.lock().unwrap_or_else(PoisonError::into_inner))
}

/// A started process: the child, its process group, and when it started.
pub struct Spawned {
    /// The child (its pipes not yet taken).
    pub child: tokio::process::Child,
    /// Its process group (the child's pid), while known.
    pub pgid: Option<u32>,
    /// When it was spawned.
    pub started: Instant,
}

impl Spawned {
    /// Ends the group: SIGTERM, [`TERM_GRACE`] for the process to exit, then SIGKILL.
    pub async fn terminate(&mut self) {
        signal_group(self.pgid, Signal::TERM);
        if tokio::time::timeout(TERM_GRACE, self.child.wait())
            .await
            .is_err()
        {
            signal_group(self.pgid, Signal::KILL);
            let _ = tokio::time::timeout(DRAIN_AFTER_KILL, self.child.wait()).await;
        }
    }

    /// Interrupts the group (SIGINT, what Ctrl-C sends).
    pub fn interrupt(&self) {
        signal_group(self.pgid, Signal::INT);
    }

    /// Kills whatever is left in the group (after the process itself exited).
    pub fn kill_group(&self) {
        signal_group(self.pgid, Signal::KILL);
    }
}

/// The working directory must be a directory and the program a file, before any spawn.
pub(crate) fn preflight(invocation: &Invocation) -> Result<(), LaunchError> {
    if !invocation.cwd.is_dir() {
        return Err(LaunchError::CwdNotFound(invocation.cwd.clone()));
    }
    if !invocation.program.is_file() {
        return Err(LaunchError::CommandNotFound(
            invocation.program.display().to_string(),
        ));
    }
    Ok(())
}

/// Checks the working directory and the program, then spawns `invocation` in a process group
/// of its own with stdout and stderr piped, and stdin piped when it gets bytes or stays open.
pub fn spawn(invocation: &Invocation) -> Result<Spawned, LaunchError> {
    preflight(invocation)?;
    let mut command = Command::new(&invocation.program);
    command
        .args(&invocation.argv)
        .current_dir(&invocation.cwd)
        .env_clear()
        .envs(invocation.env.iter().map(|(k, v)| (k, v)))
        .process_group(0)
        .stdin(if invocation.stdin.is_some() || !invocation.close_stdin {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some((uid, gid)) = invocation.user {
        command.uid(uid).gid(gid);
    }
    let started = Instant::now();
    let child = command.spawn().map_err(|error| match error.kind() {
        std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied => {
            LaunchError::CommandNotFound(invocation.program.display().to_string())
        }
        _ => LaunchError::Spawn(error),
    })?;
    let pgid = child.id();
    Ok(Spawned {
        child,
        pgid,
        started,
    })
}

/// Runs `invocation` for at most `limit`, or until `cancel` fires.
pub async fn run(
    invocation: &Invocation,
    limit: Duration,
    cancel: &CancelSignal,
) -> Result<Ran, LaunchError> {
    let mut spawned = spawn(invocation)?;
    let started = spawned.started;
    let child = &mut spawned.child;

    let cap = invocation.max_output_bytes;
    let stdout = Arc::new(Mutex::new(Captured::default()));
    let stderr = Arc::new(Mutex::new(Captured::default()));
    let output = Arc::new(Mutex::new(Captured::default()));
    let interleave = invocation.stderr_mode == StderrMode::Stdout;
    let mut readers = tokio::task::JoinSet::new();
    if let Some(pipe) = child.stdout.take() {
        readers.spawn(collect(
            pipe,
            Arc::clone(&stdout),
            Some(Arc::clone(&output)),
            cap,
        ));
    }
    if let Some(pipe) = child.stderr.take() {
        let combined = interleave.then(|| Arc::clone(&output));
        readers.spawn(collect(pipe, Arc::clone(&stderr), combined, cap));
    }
    // Written beside the reads, so a process that answers before it has read everything never
    // deadlocks on a full pipe. A process that exits without reading its stdin is not an
    // error (the write just stops).
    let mut kept_open = None;
    if let Some(mut pipe) = child.stdin.take() {
        let bytes = invocation.stdin.clone().unwrap_or_default();
        if invocation.close_stdin {
            readers.spawn(async move {
                let _ = pipe.write_all(&bytes).await;
                drop(pipe);
            });
        } else {
            let _ = pipe.write_all(&bytes).await;
            kept_open = Some(pipe);
        }
    }
    let deadline = tokio::time::Instant::now() + limit;
    let ending = tokio::select! {
        status = child.wait() => match status {
            Ok(status) => Ending::Exited(Exit::of(status)),
            Err(_) => Ending::Exited(Exit::Code(-1)),
        },
        () = tokio::time::sleep_until(deadline) => Ending::TimedOut,
        () = cancel.cancelled() => Ending::Cancelled,
    };
    drop(kept_open);
    if !matches!(ending, Ending::Exited(_)) {
        spawned.terminate().await;
    }
    // Whatever the process left in its group goes with it; its pipes then close.
    spawned.kill_group();
    let drain = async { while readers.join_next().await.is_some() {} };
    if tokio::time::timeout(DRAIN_AFTER_KILL, drain).await.is_err() {
        readers.abort_all();
    }
    Ok(Ran {
        ending,
        stdout: take(&stdout),
        stderr: take(&stderr),
        output: take(&output),
        duration: started.elapsed(),
    })
}
