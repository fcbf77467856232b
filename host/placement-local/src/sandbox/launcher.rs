//! The launcher: the host starts a sandboxed process as its own binary in launcher mode
//! (`<launcher> __ep-sandbox-exec <spec> <program> [args…]`). In that fresh, single-threaded
//! process it builds the Landlock ruleset, switches to the execution's uid (a root host), sets
//! the limits, restricts itself
//! (`no_new_privs`, Landlock, seccomp) and executes the program in its place: the program runs
//! with the pid, process group, pipes or terminal and environment the host gave the launcher.
//!
//! If the sandbox cannot be applied, nothing runs: the launcher writes one line starting
//! [`REFUSED_PREFIX`] to stderr and exits [`REFUSED_EXIT`].
//!
//! `__ep-sandbox-probe <spec>` applies the same sandbox to the launcher itself, tries what it
//! must stop, and prints what held as JSON ([`Enforcement`]): what the host's verifier attests.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use landlock::{
    ABI, Access, AccessFs, AccessNet, CompatLevel, Compatible, LandlockStatus, NetPort,
    PathBeneath, PathFd, Ruleset, RulesetAttr, RulesetCreated, RulesetCreatedAttr, RulesetStatus,
    Scope,
};
use nix::sys::resource::{Resource, getrlimit, setrlimit};
use nix::unistd::{Gid, Uid, setgroups, setresgid, setresuid};
use serde::{Deserialize, Serialize};

use super::seccomp;
use super::spec::{Limits, Spec};

/// First argument of a launch.
pub const EXEC_ARG: &str = "__ep-sandbox-exec";
/// First argument of a probe.
pub const PROBE_ARG: &str = "__ep-sandbox-probe";
/// Exit status of a launch whose sandbox could not be applied.
pub const REFUSED_EXIT: i32 = 125;
/// How the launcher's one line of refusal on stderr starts.
pub const REFUSED_PREFIX: &str = "execution-plane sandbox: ";
/// The Landlock ABI the sandbox needs: filesystem rights with truncate and device ioctls, TCP
/// bind and connect, and the signal and abstract-socket scopes.
pub const LANDLOCK_ABI: ABI = ABI::V6;

/// Why the sandbox could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The launcher was started without its arguments.
    #[error("usage: {0}")]
    Usage(&'static str),
    /// The spec does not read.
    #[error("the sandbox spec does not read: {0}")]
    Spec(#[from] serde_json::Error),
    /// Landlock refused the ruleset (or the kernel lacks a part of it).
    #[error("landlock: {0}")]
    Landlock(#[from] landlock::RulesetError),
    /// Landlock is not fully enforced by this kernel.
    #[error("landlock is not fully enforced by this kernel ({0})")]
    NotEnforced(String),
    /// A path to grant could not be opened.
    #[error("cannot open {path} to grant it: {source}")]
    Path {
        /// The path.
        path: PathBuf,
        /// Why.
        source: landlock::PathFdError,
    },
    /// Switching user failed.
    #[error("cannot switch to uid {uid}: {source}")]
    User {
        /// The uid.
        uid: u32,
        /// Why.
        source: nix::Error,
    },
    /// A limit could not be set.
    #[error("cannot set {limit}: {source}")]
    Limit {
        /// The limit.
        limit: &'static str,
        /// Why.
        source: nix::Error,
    },
    /// The seccomp filter could not be built or loaded.
    #[error("seccomp: {0}")]
    Seccomp(String),
}

/// What a probe found: the sandbox as the kernel applied it, and each escape it tried.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enforcement {
    /// The Landlock ABI the ruleset was enforced at.
    pub landlock_abi: u32,
    /// `no_new_privs` is set.
    pub no_new_privs: bool,
    /// The seccomp filter is loaded.
    pub seccomp: bool,
    /// The uid and gid it ran as, when it switched.
    pub user: Option<(u32, u32)>,
    /// The limits it ran under.
    pub limits: Limits,
    /// Each escape tried, and whether it was stopped.
    pub stopped: BTreeMap<String, bool>,
}

impl Enforcement {
    /// The escapes that were not stopped.
    pub fn failed_checks(&self) -> Vec<&str> {
        self.stopped
            .iter()
            .filter(|(_, stopped)| !**stopped)
            .map(|(name, _)| name.as_str())
            .collect()
    }
}

/// Runs the launcher and exits when this process was started as one; returns otherwise.
pub fn run_if_launcher() {
    let mut args = std::env::args_os().skip(1);
    let Some(mode) = args.next() else { return };
    let code = if mode == EXEC_ARG {
        launch(args)
    } else if mode == PROBE_ARG {
        probe(args)
    } else {
        return;
    };
    std::process::exit(code);
}

/// The launcher's refusal in `stderr` (its first line, without [`REFUSED_PREFIX`]), if it is one.
pub fn refusal(stderr: &[u8]) -> Option<String> {
    String::from_utf8_lossy(stderr)
        .lines()
        .next()
        .and_then(|line| line.strip_prefix(REFUSED_PREFIX))
        .map(str::to_owned)
}

fn refuse(error: &dyn std::fmt::Display) -> i32 {
    eprintln!("{REFUSED_PREFIX}{error}");
    REFUSED_EXIT
}

fn read_spec(arg: Option<OsString>) -> Result<Spec, ApplyError> {
    let arg = arg.ok_or(ApplyError::Usage("<launcher> MODE SPEC [PROGRAM ARGS…]"))?;
    Ok(serde_json::from_slice(arg.as_encoded_bytes())?)
}

/// Applies the spec, then executes the program; returns only when it could not.
fn launch(mut args: impl Iterator<Item = OsString>) -> i32 {
    let spec = match read_spec(args.next()) {
        Ok(spec) => spec,
        Err(error) => return refuse(&error),
    };
    let Some(program) = args.next() else {
        return refuse(&ApplyError::Usage(
            "<launcher> __ep-sandbox-exec SPEC PROGRAM [ARGS…]",
        ));
    };
    if let Err(error) = apply(&spec) {
        return refuse(&error);
    }
    let error = Command::new(&program).args(args).exec();
    eprintln!("{}: cannot execute: {error}", Path::new(&program).display());
    match error.kind() {
        std::io::ErrorKind::NotFound => 127,
        _ => 126,
    }
}

fn path_rule(
    path: &Path,
    access: landlock::BitFlags<AccessFs>,
) -> Result<PathBeneath<PathFd>, ApplyError> {
    let fd = PathFd::new(path).map_err(|source| ApplyError::Path {
        path: path.to_owned(),
        source,
    })?;
    // A file takes only the rights a file can have.
    let access = if path.is_dir() {
        access
    } else {
        access & AccessFs::from_file(LANDLOCK_ABI)
    };
    Ok(PathBeneath::new(fd, access))
}

/// The ruleset of `spec`, created (its path descriptors opened) but not yet enforced.
fn ruleset(spec: &Spec) -> Result<RulesetCreated, ApplyError> {
    let abi = LANDLOCK_ABI;
    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::HardRequirement)
        .handle_access(AccessFs::from_all(abi))?
        .handle_access(AccessNet::from_all(abi))?
        .scope(Scope::from_all(abi))?
        .create()?;
    // Read grants that do not exist here (`/lib64` on some systems) are skipped; the working
    // directory and the write grants must exist.
    for path in spec.read.iter().filter(|path| path.exists()) {
        ruleset = ruleset.add_rule(path_rule(path, AccessFs::from_read(abi))?)?;
    }
    for path in spec.devices.iter().filter(|path| path.exists()) {
        ruleset = ruleset.add_rule(path_rule(path, AccessFs::from_file(abi))?)?;
    }
    for path in &spec.write {
        ruleset = ruleset.add_rule(path_rule(path, AccessFs::from_all(abi))?)?;
    }
    for port in &spec.connect_tcp {
        ruleset = ruleset.add_rule(NetPort::new(*port, AccessNet::ConnectTcp))?;
    }
    Ok(ruleset)
}

/// Becomes `uid`/`gid` for good. The launcher is one thread, so the per-thread calls change the
/// whole process. (No sweep of the uid's other processes: another host on the machine may hand
/// out the same uid, and its processes are not ours to kill.)
fn switch_user(uid: u32, gid: u32) -> Result<(), ApplyError> {
    let failed = |source| ApplyError::User { uid, source };
    let gid = Gid::from_raw(gid);
    setgroups(&[gid]).map_err(failed)?;
    setresgid(gid, gid, gid).map_err(failed)?;
    let uid_value = Uid::from_raw(uid);
    setresuid(uid_value, uid_value, uid_value).map_err(failed)
}

fn set_limits(limits: &Limits) -> Result<(), ApplyError> {
    let set = |resource, limit: &'static str, value: u64| {
        setrlimit(resource, value, value).map_err(|source| ApplyError::Limit { limit, source })
    };
    set(Resource::RLIMIT_CPU, "RLIMIT_CPU", limits.cpu_seconds)?;
    set(Resource::RLIMIT_AS, "RLIMIT_AS", limits.address_space_bytes)?;
    set(Resource::RLIMIT_NOFILE, "RLIMIT_NOFILE", limits.open_files)?;
    set(Resource::RLIMIT_NPROC, "RLIMIT_NPROC", limits.processes)?;
    set(
        Resource::RLIMIT_FSIZE,
        "RLIMIT_FSIZE",
        limits.file_size_bytes,
    )?;
    // No core files: they would land outside what the process may write.
    set(Resource::RLIMIT_CORE, "RLIMIT_CORE", 0)?;
    Ok(())
}

/// What `apply` enforced.
struct Applied {
    abi: u32,
    no_new_privs: bool,
}

/// The whole sandbox, on this process: ruleset, user, limits, then Landlock (with
/// `no_new_privs`) and seccomp.
fn apply(spec: &Spec) -> Result<Applied, ApplyError> {
    let ruleset = ruleset(spec)?;
    if let Some((uid, gid)) = spec.user {
        switch_user(uid, gid)?;
    }
    set_limits(&spec.limits)?;
    let status = ruleset.restrict_self()?;
    let abi = match status.landlock {
        LandlockStatus::Available { effective_abi, .. } => effective_abi as u32,
        other => return Err(ApplyError::NotEnforced(format!("{other:?}"))),
    };
    if status.ruleset != RulesetStatus::FullyEnforced || !status.no_new_privs {
        return Err(ApplyError::NotEnforced(format!(
            "ruleset {:?}, no_new_privs {}",
            status.ruleset, status.no_new_privs
        )));
    }
    let filters = seccomp::filters(!spec.connect_tcp.is_empty())
        .map_err(|error| ApplyError::Seccomp(error.to_string()))?;
    for filter in &filters {
        seccompiler::apply_filter(filter)
            .map_err(|error| ApplyError::Seccomp(error.to_string()))?;
    }
    Ok(Applied {
        abi,
        no_new_privs: status.no_new_privs,
    })
}

fn permission_denied<T>(result: std::io::Result<T>) -> bool {
    matches!(result, Err(error) if error.kind() == std::io::ErrorKind::PermissionDenied)
}

/// Applies the spec (with nothing granted) to the launcher itself and tries each escape.
fn probe(mut args: impl Iterator<Item = OsString>) -> i32 {
    let spec = match read_spec(args.next()) {
        Ok(spec) => spec,
        Err(error) => return refuse(&error),
    };
    let applied = match apply(&spec) {
        Ok(applied) => applied,
        Err(error) => return refuse(&error),
    };
    let mut stopped = BTreeMap::new();
    let mut tried = |name: &str, held: bool| {
        stopped.insert(name.to_owned(), held);
    };
    tried(
        "read_outside_grant",
        permission_denied(std::fs::read_dir("/")),
    );
    tried(
        "proc",
        permission_denied(std::fs::File::open("/proc/self/status")),
    );
    let loopback = std::net::SocketAddr::from(([127, 0, 0, 1], 9));
    tried(
        "tcp_connect",
        permission_denied(std::net::TcpStream::connect_timeout(
            &loopback,
            std::time::Duration::from_secs(1),
        )),
    );
    tried(
        "udp",
        permission_denied(std::net::UdpSocket::bind(("127.0.0.1", 0))),
    );
    tried(
        "new_namespace",
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER).is_err(),
    );
    tried(
        "process_limit",
        getrlimit(Resource::RLIMIT_NPROC).is_ok_and(|(soft, _)| soft == spec.limits.processes),
    );
    let enforcement = Enforcement {
        landlock_abi: applied.abi,
        no_new_privs: applied.no_new_privs,
        seccomp: true,
        user: spec.user,
        limits: spec.limits,
        stopped,
    };
    match serde_json::to_string(&enforcement) {
        Ok(json) => {
            println!("{json}");
            0
        }
        Err(error) => refuse(&error),
    }
}
