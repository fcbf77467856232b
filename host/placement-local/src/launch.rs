//! [`LocalLauncher`]: the lane API's [`ProcessLauncher`] on this host, for lanes that speak to a
//! local process over its stdio (a language server, an MCP server). It is the process lane's
//! twin ([`crate::ProcessLane::launcher`]): the same [`ProcessPolicy`] checks (and the same
//! denials, naming the `[process]` key), the same process slots (`max_processes` counts both),
//! the same sandbox when the lane is sandboxed. A child runs in a process group of its own with
//! stdin, stdout and stderr piped and stdin kept open; when it exits, whatever it left in its
//! group is killed; dropping its control (or [`ChildControl::kill`]) kills the whole group.
//!
//! A sandbox the launcher cannot apply shows as the child exiting 125 with one
//! `execution-plane sandbox: ...` line on its stderr (the launcher never runs the program then).

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use ep_lane_api::{
    ChildControl, ChildOutput, ChildStdin, ExitStatus, LaunchError, LaunchRequest, LaunchedChild,
    ProcessLauncher,
};
use rustix::process::Signal;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

use crate::exit::Exit;
use crate::payload::{LOCAL_SUBPROCESS, ProcessRequest, StderrMode, StreamOptions};
use crate::policy::ProcessPolicy;
use crate::run::{Invocation, Spawned, preflight, signal_group, spawn};
use crate::sandbox::{SANDBOXED_CLASS, Sandbox, SandboxError, UidLease};

/// Starts the processes lanes ask for, under the process lane's policy, slots and sandbox.
pub struct LocalLauncher {
    policy: ProcessPolicy,
    slots: Arc<Semaphore>,
    sandbox: Option<Arc<Sandbox>>,
}

impl std::fmt::Debug for LocalLauncher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalLauncher")
            .field("commands", &self.policy.commands)
            .field("sandboxed", &self.sandbox.is_some())
            .finish_non_exhaustive()
    }
}

impl LocalLauncher {
    pub(crate) fn new(
        policy: ProcessPolicy,
        slots: Arc<Semaphore>,
        sandbox: Option<Arc<Sandbox>>,
    ) -> Self {
        Self {
            policy,
            slots,
            sandbox,
        }
    }

    /// The policy it enforces.
    pub fn policy(&self) -> &ProcessPolicy {
        &self.policy
    }

    /// The process lane's request for `asked`: what [`ProcessPolicy::check`] reads.
    fn as_process_request(asked: &LaunchRequest) -> ProcessRequest {
        ProcessRequest {
            command: asked.program.clone(),
            argv: asked.args.clone(),
            env: asked.env.iter().cloned().collect::<BTreeMap<_, _>>(),
            cwd: asked.cwd.clone(),
            stdin: None,
            clear_env: false,
            stderr_mode: StderrMode::Separate,
            close_stdin: false,
            timeout: None,
            user: None,
            surface_kind: LOCAL_SUBPROCESS.to_owned(),
            stream: StreamOptions::default(),
            pty: None,
        }
    }

    /// Everything before the spawn: the policy, the program, a process slot and the sandbox.
    fn prepare(
        &self,
        asked: &LaunchRequest,
    ) -> Result<(Invocation, OwnedSemaphorePermit, Option<UidLease>), LaunchError> {
        let request = Self::as_process_request(asked);
        let granted = self.policy.check(&request).map_err(|denied| {
            tracing::info!(
                capability = denied.capability(),
                %denied,
                "lane process launch denied by policy"
            );
            LaunchError::Denied {
                capability: denied.capability().to_owned(),
                reason: denied.to_string(),
            }
        })?;
        let Some(program) = granted.program else {
            return Err(LaunchError::LaunchFailed {
                reason: format!(
                    "command not found: {} (not on [process] path {})",
                    asked.program, self.policy.path
                ),
            });
        };
        let slot =
            Arc::clone(&self.slots)
                .try_acquire_owned()
                .map_err(|_| LaunchError::Unavailable {
                    reason: format!(
                        "the host runs as many processes as [process] max_processes allows ({})",
                        self.policy.max_processes
                    ),
                })?;
        let mut invocation = Invocation {
            program,
            argv: request.argv.clone(),
            cwd: granted.cwd,
            env: crate::lane::environment(&self.policy, &request),
            stdin: None,
            close_stdin: false,
            stderr_mode: StderrMode::Separate,
            user: None,
            max_output_bytes: usize::MAX,
        };
        let lease = match &self.sandbox {
            None => None,
            Some(sandbox) => {
                preflight(&invocation).map_err(|error| LaunchError::LaunchFailed {
                    reason: error.to_string(),
                })?;
                sandbox.wrap(&mut invocation).map_err(|error| match error {
                    SandboxError::NoUid => LaunchError::Unavailable {
                        reason: error.to_string(),
                    },
                    other => LaunchError::LaunchFailed {
                        reason: format!("the sandbox could not be applied: {other}"),
                    },
                })?
            }
        };
        Ok((invocation, slot, lease))
    }
}

#[async_trait]
impl ProcessLauncher for LocalLauncher {
    async fn launch(&self, asked: LaunchRequest) -> Result<LaunchedChild, LaunchError> {
        let (invocation, slot, lease) = self.prepare(&asked)?;
        let mut spawned = spawn(&invocation).map_err(|error| LaunchError::LaunchFailed {
            reason: error.to_string(),
        })?;
        let stdin = spawned
            .child
            .stdin
            .take()
            .map(|pipe| Box::new(pipe) as ChildStdin);
        let stdout = spawned
            .child
            .stdout
            .take()
            .map(|pipe| Box::new(pipe) as ChildOutput);
        let stderr = spawned
            .child
            .stderr
            .take()
            .map(|pipe| Box::new(pipe) as ChildOutput);
        let (exit_tx, exit_rx) = watch::channel(None);
        let pgid = spawned.pgid;
        tokio::spawn(wait_for_exit(
            Reaper {
                spawned,
                exited: false,
            },
            exit_tx,
            slot,
            lease,
        ));
        Ok(LaunchedChild {
            stdin,
            stdout,
            stderr,
            control: Arc::new(LocalChild {
                pgid,
                exit: exit_rx,
            }),
        })
    }

    fn sandbox(&self) -> &str {
        if self.sandbox.is_some() {
            SANDBOXED_CLASS
        } else {
            "none"
        }
    }
}

/// Owns the child until it is reaped; dropped early (the runtime shutting down), it kills the
/// group so nothing outlives the host's interest in it.
struct Reaper {
    spawned: Spawned,
    exited: bool,
}

impl Drop for Reaper {
    fn drop(&mut self) {
        if !self.exited {
            self.spawned.kill_group();
        }
    }
}

/// Waits for the child, kills what it left in its group, publishes how it ended, then gives back
/// its process slot (and its sandbox uid).
async fn wait_for_exit(
    mut reaper: Reaper,
    exit: watch::Sender<Option<ExitStatus>>,
    slot: OwnedSemaphorePermit,
    lease: Option<UidLease>,
) {
    let status = match reaper.spawned.child.wait().await {
        Ok(status) => match Exit::of(status) {
            Exit::Success => ExitStatus::Code(0),
            Exit::Code(code) => ExitStatus::Code(code),
            Exit::Signal(signal) => ExitStatus::Signal(signal),
        },
        Err(_) => ExitStatus::Code(-1),
    };
    // Whatever the process left in its group goes with it (as in a one-shot run).
    reaper.spawned.kill_group();
    reaper.exited = true;
    exit.send_replace(Some(status));
    drop(slot);
    drop(lease);
}

/// The control of one launched child.
#[derive(Debug)]
struct LocalChild {
    pgid: Option<u32>,
    exit: watch::Receiver<Option<ExitStatus>>,
}

#[async_trait]
impl ChildControl for LocalChild {
    fn id(&self) -> Option<u32> {
        self.pgid
    }

    fn try_exit(&self) -> Option<ExitStatus> {
        *self.exit.borrow()
    }

    async fn exited(&self) -> ExitStatus {
        let mut exit = self.exit.clone();
        match exit.wait_for(Option::is_some).await {
            Ok(status) => status.unwrap_or(ExitStatus::Code(-1)),
            // The reaper is gone without a status (the runtime shut down): it killed the group.
            Err(_) => ExitStatus::Signal(Signal::KILL.as_raw()),
        }
    }

    fn kill(&self) {
        if self.exit.borrow().is_none() {
            signal_group(self.pgid, Signal::KILL);
        }
    }
}

impl Drop for LocalChild {
    fn drop(&mut self) {
        self.kill();
    }
}
