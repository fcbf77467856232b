//! Processes on a terminal (`pty: true`), with `portable-pty`: the process gets a fresh
//! pseudo-terminal of `rows` × `cols` as its stdin, stdout and stderr, in a session (and process
//! group) of its own. The terminal's blocking reads and writes run on threads of their own; the
//! process is reaped with `waitpid`, so its exit normalizes like any other. On a terminal an
//! interrupt is Ctrl-C and the end of input Ctrl-D, as a user at a keyboard would send them.

use std::io::{Read as _, Write as _};
use std::os::unix::process::ExitStatusExt as _;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use ep_lane_api::CancelSignal;
use portable_pty::{CommandBuilder, PtySize, native_pty_system};
use rustix::process::{Pid, Signal, WaitOptions};
use tokio::sync::{mpsc, oneshot};

use crate::exit::Exit;
use crate::run::{
    Captured, DRAIN_AFTER_KILL, Ending, Invocation, LaunchError, Ran, TERM_GRACE, preflight,
    signal_group,
};

/// Ctrl-C: the terminal turns it into SIGINT for the foreground process group.
pub const CTRL_C: u8 = 0x03;
/// Ctrl-D: the end of input on a terminal in canonical mode.
pub const CTRL_D: u8 = 0x04;

/// The terminal's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TerminalSize {
    /// Rows.
    pub rows: u16,
    /// Columns.
    pub cols: u16,
}

impl Default for TerminalSize {
    fn default() -> Self {
        Self { rows: 24, cols: 80 }
    }
}

/// A process running on a terminal.
pub struct OnTerminal {
    /// What the terminal shows, chunk by chunk (ends when the terminal closes).
    pub output: mpsc::Receiver<Vec<u8>>,
    /// Bytes for the terminal's input (the keyboard).
    pub input: mpsc::Sender<Vec<u8>>,
    /// The process's exit, once it has been reaped.
    pub exited: oneshot::Receiver<Exit>,
    /// The process (its session's and group's leader).
    pub pid: Option<u32>,
}

impl OnTerminal {
    /// Sends `signal` to the process's group.
    pub fn signal(&self, signal: Signal) {
        signal_group(self.pid, signal);
    }
}

fn spawn_error(error: impl std::fmt::Display) -> LaunchError {
    LaunchError::Spawn(std::io::Error::other(error.to_string()))
}

/// Starts `invocation` on a new terminal of `size`.
pub fn spawn(invocation: &Invocation, size: TerminalSize) -> Result<OnTerminal, LaunchError> {
    preflight(invocation)?;
    let pair = native_pty_system()
        .openpty(PtySize {
            rows: size.rows,
            cols: size.cols,
            pixel_width: 0,
            pixel_height: 0,
        })
        .map_err(spawn_error)?;
    let mut command = CommandBuilder::new(&invocation.program);
    command.args(&invocation.argv);
    command.cwd(&invocation.cwd);
    command.env_clear();
    for (key, value) in &invocation.env {
        command.env(key, value);
    }
    let child = pair.slave.spawn_command(command).map_err(spawn_error)?;
    // The terminal closes for the reader once the process (and whatever it left) closes it.
    drop(pair.slave);
    let pid = child.process_id();
    let mut reader = pair.master.try_clone_reader().map_err(spawn_error)?;
    let mut writer = pair.master.take_writer().map_err(spawn_error)?;
    let (output_tx, output) = mpsc::channel::<Vec<u8>>(16);
    std::thread::Builder::new()
        .name("ep-pty-read".to_owned())
        .spawn(move || {
            let mut buffer = vec![0u8; 16 * 1024];
            loop {
                match reader.read(&mut buffer) {
                    // EIO once the terminal's other side is closed: the end.
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if output_tx.blocking_send(buffer[..n].to_vec()).is_err() {
                            return;
                        }
                    }
                }
            }
        })
        .map_err(LaunchError::Spawn)?;
    let (input, mut input_rx) = mpsc::channel::<Vec<u8>>(16);
    let master = pair.master;
    std::thread::Builder::new()
        .name("ep-pty-write".to_owned())
        .spawn(move || {
            // The master lives as long as input can come, so the terminal stays open.
            let _master = master;
            while let Some(bytes) = input_rx.blocking_recv() {
                if writer
                    .write_all(&bytes)
                    .and_then(|()| writer.flush())
                    .is_err()
                {
                    return;
                }
            }
        })
        .map_err(LaunchError::Spawn)?;
    let (exited_tx, exited) = oneshot::channel();
    let reaped = pid
        .and_then(|pid| i32::try_from(pid).ok())
        .and_then(Pid::from_raw);
    std::thread::Builder::new()
        .name("ep-pty-wait".to_owned())
        .spawn(move || {
            // portable-pty's own child handle is never waited on: this thread reaps it.
            let _child = child;
            let exit =
                match reaped.map(|pid| rustix::process::waitpid(Some(pid), WaitOptions::empty())) {
                    Some(Ok(Some((_, status)))) => Exit::of(ExitStatus::from_raw(status.as_raw())),
                    _ => Exit::Code(-1),
                };
            let _ = exited_tx.send(exit);
        })
        .map_err(LaunchError::Spawn)?;
    Ok(OnTerminal {
        output,
        input,
        exited,
        pid,
    })
}

/// Waits for the terminal's process to exit, for at most `within`.
async fn exit_within(terminal: &mut OnTerminal, within: Duration) -> Option<Exit> {
    tokio::time::timeout(within, &mut terminal.exited)
        .await
        .ok()
        .map(|exit| exit.unwrap_or(Exit::Code(-1)))
}

/// Runs `invocation` on a terminal of `size` to its end (a unary `pty` request), for at most
/// `limit` or until `cancel` fires. The payload's `stdin` is typed first, then Ctrl-D when
/// `close_stdin`; what the terminal showed (its echo included) is the run's stdout and output,
/// and stderr, the same terminal, stays empty. Out of time or cancelled the session's group gets
/// SIGTERM, then SIGKILL; once the process exits, whatever it left in its group is killed.
pub async fn run(
    invocation: &Invocation,
    size: TerminalSize,
    limit: Duration,
    cancel: &CancelSignal,
) -> Result<Ran, LaunchError> {
    let started = Instant::now();
    let mut terminal = spawn(invocation, size)?;
    if let Some(bytes) = invocation.stdin.clone() {
        let _ = terminal.input.send(bytes).await;
    }
    if invocation.close_stdin {
        let _ = terminal.input.send(vec![CTRL_D]).await;
    }
    let cap = invocation.max_output_bytes;
    let mut shown = Captured::default();
    let deadline = tokio::time::Instant::now() + limit;
    let mut open = true;
    let ending = loop {
        tokio::select! {
            chunk = terminal.output.recv(), if open => match chunk {
                Some(chunk) => shown.push(&chunk, cap),
                None => open = false,
            },
            exit = &mut terminal.exited => break Ending::Exited(exit.unwrap_or(Exit::Code(-1))),
            () = tokio::time::sleep_until(deadline) => break Ending::TimedOut,
            () = cancel.cancelled() => break Ending::Cancelled,
        }
    };
    let ending = match ending {
        Ending::Exited(exit) => Ending::Exited(exit),
        stopped => {
            terminal.signal(Signal::TERM);
            if exit_within(&mut terminal, TERM_GRACE).await.is_none() {
                terminal.signal(Signal::KILL);
                let _ = exit_within(&mut terminal, DRAIN_AFTER_KILL).await;
            }
            stopped
        }
    };
    // Whatever it left in its session goes with it; the terminal then closes.
    terminal.signal(Signal::KILL);
    let drain = async {
        while open {
            match terminal.output.recv().await {
                Some(chunk) => shown.push(&chunk, cap),
                None => open = false,
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_AFTER_KILL, drain).await;
    Ok(Ran {
        ending,
        stdout: shown.clone(),
        stderr: Captured::default(),
        output: shown,
        duration: started.elapsed(),
    })
}
