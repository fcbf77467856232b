//! What the operator grants a sandboxed process (`[process.sandbox]`), and the spec the host
//! hands the launcher for one execution.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Directories a sandboxed process may read and execute from unless the operator says
/// otherwise (the system's programs and libraries, and its configuration).
pub const DEFAULT_READ: [&str; 6] = ["/usr", "/bin", "/sbin", "/lib", "/lib64", "/etc"];
/// Device files a sandboxed process may read and write.
pub const DEFAULT_DEVICES: [&str; 5] = [
    "/dev/null",
    "/dev/zero",
    "/dev/random",
    "/dev/urandom",
    "/dev/tty",
];
/// The first uid (and the gid) sandboxed processes run as when the host runs as root.
pub const DEFAULT_UID_BASE: u32 = 2_000_000_000;
/// How many uids the host hands out, one per running sandboxed execution.
pub const DEFAULT_UID_COUNT: u32 = 4096;

/// Resource limits a sandboxed process (and everything it starts) runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// CPU seconds (`RLIMIT_CPU`): SIGXCPU at the limit, SIGKILL a second later.
    pub cpu_seconds: u64,
    /// Bytes of address space (`RLIMIT_AS`).
    pub address_space_bytes: u64,
    /// Open file descriptors (`RLIMIT_NOFILE`).
    pub open_files: u64,
    /// Processes and threads of its uid (`RLIMIT_NPROC`).
    pub processes: u64,
    /// Largest file it may write (`RLIMIT_FSIZE`).
    pub file_size_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            cpu_seconds: 60,
            address_space_bytes: 4 << 30,
            open_files: 256,
            processes: 64,
            file_size_bytes: 1 << 30,
        }
    }
}

/// The `[process.sandbox]` policy.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SandboxPolicy {
    /// Offer the `local-process-sandboxed` class (only ever when the kernel enforces it).
    pub enabled: bool,
    /// Directories (or files) a process may read and execute from; missing ones are skipped.
    pub read: Vec<PathBuf>,
    /// Directories a process may also write, besides its working directory.
    pub write: Vec<PathBuf>,
    /// Device files a process may read and write.
    pub devices: Vec<PathBuf>,
    /// TCP ports a process may connect to (any address). Empty: no network at all.
    pub connect_tcp: Vec<u16>,
    /// Resource limits.
    pub limits: Limits,
    /// First uid (and the shared gid) of the range sandboxed processes run as under a root host.
    pub uid_base: u32,
    /// How many uids the range holds.
    pub uid_count: u32,
    /// The binary that applies the sandbox (default: the running `execution-plane` binary).
    pub launcher: Option<PathBuf>,
}

impl Default for SandboxPolicy {
    fn default() -> Self {
        Self {
            enabled: true,
            read: DEFAULT_READ.iter().map(PathBuf::from).collect(),
            write: Vec::new(),
            devices: DEFAULT_DEVICES.iter().map(PathBuf::from).collect(),
            connect_tcp: Vec::new(),
            limits: Limits::default(),
            uid_base: DEFAULT_UID_BASE,
            uid_count: DEFAULT_UID_COUNT,
            launcher: None,
        }
    }
}

/// One execution's sandbox, as the launcher applies it before it executes the program.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spec {
    /// Read and execute.
    pub read: Vec<PathBuf>,
    /// Everything (the working directory and `[process.sandbox] write`).
    pub write: Vec<PathBuf>,
    /// Read and write, files only.
    pub devices: Vec<PathBuf>,
    /// TCP ports it may connect to.
    pub connect_tcp: Vec<u16>,
    /// Its limits.
    pub limits: Limits,
    /// `(uid, gid)` to switch to (a root host only).
    pub user: Option<(u32, u32)>,
}
