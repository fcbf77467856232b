//! The `local-process-sandboxed` class: a process confined by the kernel, not by promises.
//!
//! The host starts it through [`launcher`] (its own binary in launcher mode), which applies,
//! before the program runs: Landlock (ABI 6 or later, every right handled: read and execute in
//! `[process.sandbox] read`, everything in the working directory and `write`, read and write on
//! `devices`, TCP connect only to `connect_tcp` ports, no TCP bind, no signals or abstract Unix
//! sockets out of the sandbox), `no_new_privs`, a seccomp deny list (see `seccomp`), rlimits, and
//! under a root host a uid of its own (no capabilities). [`Sandbox::probe`] applies the same
//! sandbox to a launcher and tries the escapes it must stop; the verifier attests the class only
//! from a probe in which every one was stopped.

pub mod launcher;
mod seccomp;
mod spec;
mod uids;

use std::path::PathBuf;
use std::time::Duration;

pub use launcher::Enforcement;
pub use spec::{Limits, SandboxPolicy, Spec};
pub use uids::{UidLease, UidPool};

use crate::run::Invocation;

/// The class a probed sandbox is attested as.
pub const SANDBOXED_CLASS: &str = "local-process-sandboxed";
/// How long a probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the sandbox is not offered, or not applied to one execution.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The operator turned it off.
    #[error("[process.sandbox] enabled = false")]
    Disabled,
    /// The launcher could not be started.
    #[error("the sandbox launcher {path} could not be started: {source}")]
    Launcher {
        /// The launcher.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The launcher could not apply the sandbox.
    #[error("the kernel does not enforce the sandbox: {0}")]
    NotApplied(String),
    /// The sandbox was applied but an escape was not stopped.
    #[error("the sandbox did not stop: {}", .0.join(", "))]
    NotStopped(Vec<String>),
    /// Every uid of the range is in use.
    #[error("every uid of [process.sandbox] uid_base..+uid_count is in use")]
    NoUid,
    /// The spec could not be written.
    #[error("the sandbox spec could not be written: {0}")]
    Spec(#[from] serde_json::Error),
}

/// The sandbox of one host: its policy, its launcher, and (under a root host) its uids.
#[derive(Debug)]
pub struct Sandbox {
    policy: SandboxPolicy,
    launcher: PathBuf,
    uids: Option<UidPool>,
}

impl Sandbox {
    /// A sandbox applied by `launcher` (a binary that calls [`launcher::run_if_launcher`]).
    pub fn new(policy: SandboxPolicy, launcher: PathBuf) -> Self {
        let uids = rustix::process::getuid()
            .is_root()
            .then(|| UidPool::spread(policy.uid_base, policy.uid_count));
        Self {
            policy,
            launcher,
            uids,
        }
    }

    /// Whether its processes run as uids of their own (a root host).
    pub fn switches_user(&self) -> bool {
        self.uids.is_some()
    }

    /// Applies the sandbox, with nothing granted, to a launcher that then tries to read outside
    /// its grant, read `/proc`, connect over TCP, bind UDP, make a namespace, and checks its
    /// process limit. `Ok` only when the kernel enforced all of it and every escape was stopped.
    pub async fn probe(&self) -> Result<Enforcement, SandboxError> {
        if !self.policy.enabled {
            return Err(SandboxError::Disabled);
        }
        let lease = self.lease()?;
        let spec = Spec {
            read: Vec::new(),
            write: Vec::new(),
            devices: Vec::new(),
            connect_tcp: Vec::new(),
            limits: self.policy.limits,
            user: self.user(lease.as_ref()),
        };
        let launched = tokio::process::Command::new(&self.launcher)
            .arg(launcher::PROBE_ARG)
            .arg(serde_json::to_string(&spec)?)
            .env_clear()
            .current_dir("/")
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output();
        let output = tokio::time::timeout(PROBE_TIMEOUT, launched)
            .await
            .map_err(|_| SandboxError::NotApplied("the probe did not answer in 10 s".to_owned()))?
            .map_err(|source| SandboxError::Launcher {
                path: self.launcher.clone(),
                source,
            })?;
        drop(lease);
        if !output.status.success() {
            let said = launcher::refusal(&output.stderr).unwrap_or_else(|| {
                let stderr = String::from_utf8_lossy(&output.stderr);
                format!("the probe exited {} ({})", output.status, stderr.trim())
            });
            return Err(SandboxError::NotApplied(said));
        }
        let enforcement: Enforcement = serde_json::from_slice(&output.stdout)
            .map_err(|error| SandboxError::NotApplied(format!("the probe's report: {error}")))?;
        let failed = enforcement.failed_checks();
        if !failed.is_empty() || !enforcement.no_new_privs || !enforcement.seccomp {
            return Err(SandboxError::NotStopped(
                failed.into_iter().map(str::to_owned).collect(),
            ));
        }
        Ok(enforcement)
    }

    /// A uid of the range for one launch (a root host), or `None` when processes keep the
    /// host's.
    fn lease(&self) -> Result<Option<UidLease>, SandboxError> {
        self.uids
            .as_ref()
            .map(|uids| uids.acquire().ok_or(SandboxError::NoUid))
            .transpose()
    }

    fn user(&self, lease: Option<&UidLease>) -> Option<(u32, u32)> {
        match (&self.uids, lease) {
            (Some(uids), Some(lease)) => Some((lease.uid(), uids.gid())),
            _ => None,
        }
    }

    /// Rewrites `invocation` to start through the launcher under this sandbox, its working
    /// directory writable; the lease (a root host) holds the execution's uid until it ends.
    pub(crate) fn wrap(
        &self,
        invocation: &mut Invocation,
    ) -> Result<Option<UidLease>, SandboxError> {
        let lease = self.lease()?;
        let mut write = vec![invocation.cwd.clone()];
        write.extend(self.policy.write.iter().cloned());
        let spec = Spec {
            read: self.policy.read.clone(),
            write,
            devices: self.policy.devices.clone(),
            connect_tcp: self.policy.connect_tcp.clone(),
            limits: self.policy.limits,
            user: self.user(lease.as_ref()),
        };
        let program = std::mem::replace(&mut invocation.program, self.launcher.clone());
        let mut argv = vec![
            launcher::EXEC_ARG.to_owned(),
            serde_json::to_string(&spec)?,
            program.display().to_string(),
        ];
        argv.append(&mut invocation.argv);
        invocation.argv = argv;
        Ok(lease)
    }
}
